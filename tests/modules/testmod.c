/*
 * testmod: the test suite's module, for what examples/modules/hello does
 * not show: pushes, per-connection state and its close hook, replies after
 * the connection closed or after TIMEOUT, a handler that never answers or
 * answers twice, one that holds its worker, settings and reload refusal.
 *
 * Built three ways (tests/modules/CMakeLists.txt): testmod.so, and for
 * load errors testmod_badabi.so (TESTMOD_BAD_ABI: ABI 99.0) and
 * testmod_nosym.so (TESTMOD_NO_SYMBOL: no descriptor).
 *
 * Handlers, from the configured opcode B:
 *   B+0  echo      SYNC      the payload back
 *   B+1  noreply   SYNC      returns without answering (INTERNAL)
 *   B+2  hold      ASYNC     kept until release
 *   B+3  release   SYNC      a new thread answers every held request OK;
 *                            the answer is "released N gone G"
 *   B+4  whoami    SYNC      "ID FAMILY ADDR PORT LISTENER"
 *   B+5  push      SYNC      "ID TEXT": push TEXT to connection ID; the
 *                            answer names api->push's result
 *   B+6  state     SYNC      a per-connection counter, incremented
 *   B+7  block     BLOCKING  sleeps "MS", answers "done"
 *   B+8  spin      SYNC      busy-waits "MS" on the worker
 *   B+9  twice     SYNC      replies twice ("first"; the second refused)
 *   B+10 now       ASYNC     replies before returning
 *   B+11 label     SYNC      the `label` setting in force
 *   push B+12 note
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <socketd/module.h>

static const struct sd_api *api;
static struct sd_mod *self;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct sd_req *held[1024];
static size_t nheld;
static uint64_t closed;
static uint64_t running; /* block handlers in progress */
static char label[64];

static void
reply_str(struct sd_req *r, unsigned st, const char *s)
{
	api->reply(r, st, s, strlen(s));
}

static long
num(struct sd_req *r)
{
	char buf[32];
	size_t n;
	const uint8_t *p = api->payload(r, &n);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
#ifdef TESTMOD_FUZZ
	/* Fuzzing: any number, but never a long sleep or spin. */
	return strtol(buf, NULL, 10) < 0 ? -1 : strtol(buf, NULL, 10) % 4;
#else
	return strtol(buf, NULL, 10);
#endif
}

static void
echo(struct sd_req *r)
{
	size_t n;
	const uint8_t *p = api->payload(r, &n);

	api->reply(r, SD_STATUS_OK, p, n);
}

static void
noreply(struct sd_req *r)
{
	(void)r;
}

static void
hold(struct sd_req *r)
{
	pthread_mutex_lock(&mu);
	if (nheld == sizeof(held) / sizeof(held[0])) {
		pthread_mutex_unlock(&mu);
		reply_str(r, SD_STATUS_INTERNAL, "too many held");
		return;
	}
	held[nheld++] = r;
	pthread_mutex_unlock(&mu);
}

struct batch {
	struct sd_req **r;
	size_t n, gone;
};

static void *
release_main(void *p)
{
	struct batch *b = p;
	size_t i;

	for (i = 0; i < b->n; i++)
		if (api->reply(b->r[i], SD_STATUS_OK, "released", 8) ==
		    SD_EGONE)
			b->gone++;
	return NULL;
}

static void
release(struct sd_req *r)
{
	struct sd_req *mine[1024];
	struct batch b = {mine, 0, 0};
	pthread_t t;
	char out[64];

	pthread_mutex_lock(&mu);
	memcpy(mine, held, nheld * sizeof(held[0]));
	b.n = nheld;
	nheld = 0;
	pthread_mutex_unlock(&mu);
	/* From a thread of the module's own, as a real module would. */
	if (pthread_create(&t, NULL, release_main, &b) != 0) {
		release_main(&b);
	} else {
		pthread_join(t, NULL);
	}
	snprintf(out, sizeof(out), "released %zu gone %zu", b.n, b.gone);
	reply_str(r, SD_STATUS_OK, out);
}

static void
whoami(struct sd_req *r)
{
	struct sd_conn_identity id;
	char addr[64], out[256];

	if (api->conn_identity(r, &id) != SD_OK) {
		reply_str(r, SD_STATUS_INTERNAL, "no identity");
		return;
	}
	inet_ntop(id.family, id.addr, addr, sizeof(addr));
	snprintf(out, sizeof(out), "%llu %s %s %u %s %s",
	    (unsigned long long)api->conn(r),
	    id.family == AF_INET ? "inet" : "inet6", addr, id.port, id.listener,
	    id.tls_subject != NULL ? id.tls_subject : "-");
	reply_str(r, SD_STATUS_OK, out);
}

static void
push(struct sd_req *r)
{
	static const char *const names[] = {
	    "OK", "EGONE", "EFULL", "EINVAL", "ENOMEM"};
	char buf[256], *sp;
	size_t n;
	const uint8_t *p = api->payload(r, &n);
	unsigned long long id;
	int rc;

	if (n == 0 || n >= sizeof(buf)) {
		reply_str(r, SD_STATUS_BAD_REQUEST, "ID TEXT");
		return;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	id = strtoull(buf, &sp, 10);
	if (*sp == ' ')
		sp++;
	if (*sp == '*') {
		/* "ID *N": N bytes of x (a push too large for a frame). */
		size_t big = strtoul(sp + 1, NULL, 10);
		char *x = malloc(big ? big : 1);

		if (x == NULL) {
			reply_str(r, SD_STATUS_INTERNAL, "out of memory");
			return;
		}
		memset(x, 'x', big);
		rc = api->push(self, id, api->opcode_of(self, 12), x, big);
		free(x);
	} else {
		rc = api->push(
		    self, id, api->opcode_of(self, 12), sp, strlen(sp));
	}
	reply_str(r, SD_STATUS_OK, names[-rc]);
}

static void
state(struct sd_req *r)
{
	void **slot = api->conn_state(r);
	char out[32];
	uint64_t *count;

	if (slot == NULL) {
		reply_str(r, SD_STATUS_INTERNAL, "no slot");
		return;
	}
	if (*slot == NULL && (*slot = calloc(1, sizeof(uint64_t))) == NULL) {
		reply_str(r, SD_STATUS_INTERNAL, "out of memory");
		return;
	}
	count = *slot;
	snprintf(out, sizeof(out), "%llu", (unsigned long long)++*count);
	reply_str(r, SD_STATUS_OK, out);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void
block(struct sd_req *r)
{
	long ms = num(r);

	if (ms < 0 || ms > 60000) {
		reply_str(r, SD_STATUS_BAD_REQUEST, "MS");
		return;
	}
	/* No connection state on a handler thread. */
	if (api->conn_state(r) != NULL) {
		reply_str(r, SD_STATUS_INTERNAL, "conn_state off the worker");
		return;
	}
	pthread_mutex_lock(&mu);
	running++;
	pthread_mutex_unlock(&mu);
	sleep_ms(ms);
	pthread_mutex_lock(&mu);
	running--;
	pthread_mutex_unlock(&mu);
	reply_str(r, SD_STATUS_OK, "done");
}

static void
spin(struct sd_req *r)
{
	struct timespec t0, t1;
	long ms = num(r);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t1);
	while ((t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000 <
	    ms);
	reply_str(r, SD_STATUS_OK, "spun");
}

static void
twice(struct sd_req *r)
{
	reply_str(r, SD_STATUS_OK, "first");
	/* Contract breach on purpose: socketd refuses it (a request that
	 * was answered inline is still the worker's own struct). */
	(void)api->reply(r, SD_STATUS_OK, "second", 6);
}

static void
now(struct sd_req *r)
{
	reply_str(r, SD_STATUS_OK, "now");
}

static void
get_label(struct sd_req *r)
{
	char out[64];

	pthread_mutex_lock(&mu);
	snprintf(out, sizeof(out), "%s", label);
	pthread_mutex_unlock(&mu);
	reply_str(r, SD_STATUS_OK, out);
}

static int
init(struct sd_mod *m, const struct sd_api *a, const struct sd_settings *s,
    char *err, size_t errlen)
{
	api = a;
	self = m;
	if (api->setting_bool(s, "fail_init")) {
		snprintf(err, errlen, "fail_init is set");
		return -1;
	}
	snprintf(label, sizeof(label), "%s", api->setting_str(s, "label"));
	return 0;
}

static int
reload(struct sd_mod *m, const struct sd_settings *s, char *err, size_t errlen)
{
	(void)m;
	if (api->setting_bool(s, "refuse_reload")) {
		snprintf(err, errlen, "refuse_reload is set");
		return -1;
	}
	pthread_mutex_lock(&mu);
	snprintf(label, sizeof(label), "%s", api->setting_str(s, "label"));
	pthread_mutex_unlock(&mu);
	return 0;
}

static void
conn_close(struct sd_mod *m, uint64_t conn, void *st)
{
	(void)m;
	(void)conn;
	free(st);
	pthread_mutex_lock(&mu);
	closed++;
	pthread_mutex_unlock(&mu);
}

static void
stats(struct sd_mod *m, struct sd_stats *st)
{
	uint64_t c, h, n;

	(void)m;
	pthread_mutex_lock(&mu);
	c = closed;
	h = nheld;
	n = running;
	pthread_mutex_unlock(&mu);
	api->stat(st, "closed", c);
	api->stat(st, "held", h);
	api->stat(st, "running", n);
}

static void
fini(struct sd_mod *m)
{
	size_t i;

	(void)m;
	for (i = 0; i < nheld; i++)
		api->reply(held[i], SD_STATUS_INTERNAL, "fini", 4);
	nheld = 0;
}

static const struct sd_setting settings[] = {
#ifdef TESTMOD_BAD_DEFAULT
    {"broken", SD_SET_INT, "500", 1, 100, NULL},
#endif
    {"fail_init", SD_SET_BOOL, "false", 0, 0, NULL},
    {"refuse_reload", SD_SET_BOOL, "false", 0, 0, NULL},
    {"label", SD_SET_STRING, "t", 1, 32, NULL},
    {"limit", SD_SET_INT, "5", 1, 100, NULL},
    {"ratio", SD_SET_FLOAT, "0.5", 0, 1, NULL},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct sd_handler handlers[] = {
    {"echo", SD_SYNC, echo},
    {"noreply", SD_SYNC, noreply},
    {"hold", SD_ASYNC, hold},
    {"release", SD_SYNC, release},
    {"whoami", SD_SYNC, whoami},
    {"push", SD_SYNC, push},
    {"state", SD_SYNC, state},
    {"block", SD_BLOCKING, block},
    {"spin", SD_SYNC, spin},
    {"twice", SD_SYNC, twice},
    {"now", SD_ASYNC, now},
    {"label", SD_SYNC, get_label},
#ifdef TESTMOD_LONG_NAME
    {"a_handler_name_that_is_far_too_long_for_opcodes_to_list_it", SD_SYNC,
	echo},
#endif
    {NULL, 0, NULL},
};

static const char *const pushes[] = {"note", NULL};

#ifdef TESTMOD_NO_SYMBOL
/* The descriptor under another name: what a typo would give. */
__attribute__((visibility("default")))
const struct sd_module socketd_module_misnamed = {
#else
SD_MODULE_EXPORT = {
#endif
#ifdef TESTMOD_BAD_ABI
    .magic = SD_MODULE_MAGIC,
    .abi_major = 99,
    .abi_minor = 0,
    .size = sizeof(struct sd_module),
#else
    SD_MODULE_HEADER,
#endif
    .name = "testmod",
    .version = "test",
    .settings = settings,
    .handlers = handlers,
    .pushes = pushes,
    .init = init,
    .reload = reload,
    .conn_close = conn_close,
    .stats = stats,
    .fini = fini,
};
