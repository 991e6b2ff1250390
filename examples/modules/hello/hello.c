/*
 * hello: the example socketd module (docs/modules.md walks through it).
 *
 *   hello.upper  SD_SYNC      the payload with ASCII a-z upper-cased
 *   hello.sleep  SD_BLOCKING  "MS" (0..60000): OK after sleeping that long
 *   hello.later  SD_ASYNC     "MS" (0..60000): OK that long after arrival,
 *                             answered from the module's timer thread
 *
 * One setting, `greeting`, shows the settings and reload hooks at work.
 * Build it out of tree against an installed socketd-dev:
 *   cc -shared -fPIC $(pkg-config --cflags socketd-module) \
 *       -o hello.so hello.c -lpthread
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <socketd/module.h>

#define MAX_MS 60000

static const struct sd_api *api;
static struct sd_mod *self;

/* "0".."60000" and nothing else; -1 otherwise. */
static long
parse_ms(const uint8_t *p, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v <= MAX_MS ? v : -1;
}

static int
bad_ms(struct sd_req *r)
{
	static const char msg[] =
	    "payload must be a decimal number of milliseconds, 0 to 60000";

	return api->reply(r, SD_STATUS_BAD_REQUEST, msg, sizeof(msg) - 1);
}

/*
 * ASCII a-z to A-Z, eight bytes at a time: a synchronous handler runs on
 * the worker, so it should be quick.  For each byte b of w, the top bit
 * of (b & 0x7f) + (0x80 - 'a') is set when b >= 'a', and of
 * (b & 0x7f) + (0x7f - 'z') when b > 'z' (no carry crosses bytes: each
 * sum stays below 0x100); a byte with its own top bit set is not ASCII.
 * The lower-case bytes get 0x20 cleared.
 */
static uint64_t
upper8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ULL;
	uint64_t low7 = w & (0x7f * ones);
	uint64_t ge_a = low7 + (0x80 - 'a') * ones;
	uint64_t gt_z = low7 + (0x7f - 'z') * ones;
	uint64_t lower = ge_a & ~gt_z & ~w & (0x80 * ones);

	return w ^ (lower >> 2);
}

static void
upper(struct sd_req *r)
{
	uint8_t buf[4096], *out = buf;
	const uint8_t *p;
	uint64_t w;
	size_t n, i;

	p = api->payload(r, &n);
	if (n > sizeof(buf) && (out = malloc(n)) == NULL) {
		api->reply(r, SD_STATUS_INTERNAL, "out of memory", 13);
		return;
	}
	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		w = upper8(w);
		memcpy(out + i, &w, 8);
	}
	for (; i < n; i++)
		out[i] = p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32 : p[i];
	api->reply(r, SD_STATUS_OK, out, n);
	if (out != buf)
		free(out);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Runs on a handler thread: blocking is what it is for. */
static void
hsleep(struct sd_req *r)
{
	size_t n;
	const uint8_t *p = api->payload(r, &n);
	long ms = parse_ms(p, n);

	if (ms < 0) {
		bad_ms(r);
		return;
	}
	sleep_ms(ms);
	api->reply(r, SD_STATUS_OK, NULL, 0);
}

/*
 * hello.later: requests wait in a list ordered by deadline; one timer
 * thread answers them.  The lock protects the list and `stopping`.
 */
struct later {
	struct later *next;
	struct timespec due;
	struct sd_req *r;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static struct later *pending;
static uint64_t npending;
static int stopping;
static pthread_t timer;
static int timer_started;

static int
before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void *
timer_main(void *arg)
{
	struct timespec now;
	struct later *l;

	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((l = pending) != NULL && !before(&now, &l->due)) {
			pending = l->next;
			npending--;
			pthread_mutex_unlock(&mu);
			api->reply(l->r, SD_STATUS_OK, NULL, 0);
			free(l);
			pthread_mutex_lock(&mu);
			continue;
		}
		if (l != NULL)
			pthread_cond_timedwait(&cv, &mu, &l->due);
		else
			pthread_cond_wait(&cv, &mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void
later(struct sd_req *r)
{
	struct later *l, **pp;
	size_t n;
	const uint8_t *p = api->payload(r, &n);
	long ms = parse_ms(p, n);

	if (ms < 0) {
		bad_ms(r);
		return;
	}
	if ((l = malloc(sizeof(*l))) == NULL) {
		api->reply(r, SD_STATUS_INTERNAL, "out of memory", 13);
		return;
	}
	l->r = r;
	clock_gettime(CLOCK_MONOTONIC, &l->due);
	l->due.tv_sec += ms / 1000;
	l->due.tv_nsec += (ms % 1000) * 1000000L;
	if (l->due.tv_nsec >= 1000000000L) {
		l->due.tv_sec++;
		l->due.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mu);
	for (pp = &pending; *pp != NULL && !before(&l->due, &(*pp)->due);
	     pp = &(*pp)->next)
		;
	l->next = *pp;
	*pp = l;
	npending++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static int
init(struct sd_mod *m, const struct sd_api *a, const struct sd_settings *s,
    char *err, size_t errlen)
{
	pthread_condattr_t ca;
	int rc;

	api = a;
	self = m;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = pthread_create(&timer, NULL, timer_main, NULL)) != 0) {
		strncpy(err, strerror(rc), errlen - 1);
		err[errlen - 1] = '\0';
		return -1;
	}
	timer_started = 1;
	api->log(
	    m, SD_LOG_INFO, "greeting \"%s\"", api->setting_str(s, "greeting"));
	return 0;
}

static int
reload(struct sd_mod *m, const struct sd_settings *s, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	api->log(m, SD_LOG_INFO, "greeting is now \"%s\"",
	    api->setting_str(s, "greeting"));
	return 0;
}

static void
stats(struct sd_mod *m, struct sd_stats *st)
{
	uint64_t n;

	(void)m;
	pthread_mutex_lock(&mu);
	n = npending;
	pthread_mutex_unlock(&mu);
	api->stat(st, "later_pending", n);
}

/* Answer what still waits (its connections are gone), stop the timer. */
static void
fini(struct sd_mod *m)
{
	struct later *l;

	(void)m;
	pthread_mutex_lock(&mu);
	stopping = 1;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	if (timer_started)
		pthread_join(timer, NULL);
	while ((l = pending) != NULL) {
		pending = l->next;
		api->reply(l->r, SD_STATUS_INTERNAL, "shutting down", 13);
		free(l);
	}
}

static const struct sd_setting settings[] = {
    {"greeting", SD_SET_STRING, "hello", 1, 64, "logged at start and reload"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static const struct sd_handler handlers[] = {
    {"upper", SD_SYNC, upper},
    {"sleep", SD_BLOCKING, hsleep},
    {"later", SD_ASYNC, later},
    {NULL, 0, NULL},
};

SD_MODULE_EXPORT = {
    SD_MODULE_HEADER,
    .name = "hello",
    .version = "1.0",
    .settings = settings,
    .handlers = handlers,
    .init = init,
    .reload = reload,
    .stats = stats,
    .fini = fini,
};
