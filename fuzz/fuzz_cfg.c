/*
 * fuzz_cfg: the configuration loader fed arbitrary files.
 *
 * The input is written to a file and loaded with cfg_load().  The file is
 * socketd.conf inside a private directory made once per process with
 * mkdtemp() under $TMPDIR (default /tmp) and rewritten for every input;
 * both are removed at exit.  The private directory keeps @include, which
 * libconfig resolves against the main file's directory, away from other
 * files: inputs containing ".." are skipped, so an @include can only find
 * the input itself (libconfig 1.5 stops at a depth of 10) or nothing.
 * Nothing else is created.
 *
 * A BUG THIS FOUND: an @include that names a directory
 * ('@include ""' or '@include "."' here; '@include "conf.d"' in real
 * life) makes libconfig's scanner fail to read it and call exit(2)
 * ("input in flex scanner failed"): cfg_load never returns, so socketd -t
 * and a SIGHUP reload end the process.  libconfig 1.5 opens the path
 * without checking what it is (upstream: hyperrealm/libconfig issue #292,
 * still in 1.8.2).  cfg_load() now checks every @include target first;
 * regress/cfg/include-directory keeps the input that found it.
 *
 * Invariants (any violation aborts; LeakSanitizer reports leaks):
 * - a failed load leaves *out empty and err->text a non-empty message;
 * - a loaded config is within the ranges cfg.h documents: 1..16 listen
 *   entries, unique by address, none with '*' or a scheme other than
 *   tls://, the numeric bounds, 0/1 booleans, known log level, target
 *   and TLS version, at most 64 allow and 64 deny networks with prefixes
 *   0..32 or 0..128, strings NULL or 1..4095 bytes; a tls:// listener
 *   comes with tls.certificate and tls.key, verify_client with tls.ca;
 * - cfg_access_allows() agrees with a bit-by-bit reading of the rules
 *   (deny wins, empty allow allows all, ::ffff:a.b.c.d judged as IPv4)
 *   for each network's own address, its neighbour just outside the prefix
 *   and its IPv4-mapped form;
 * - cfg_dump() writes it, cfg_load() of that dump gives the same config
 *   and cfg_diff_restart() sees no difference; so does cfg_copy();
 * - cfg_diff_restart() against the defaults counts exactly the restart
 *   settings that differ (listen compared as a set) and keeps its list
 *   NUL-terminated in a short buffer.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cfg.h"

#include "fuzz.h"

#define DUMP_CAP_MAX (64u * 1024 * 1024)

static char dir[PATH_MAX / 2]; /* room for "/socketd.conf" in path */
static char path[PATH_MAX];
static int fd = -1;

static void
cleanup(void)
{
	if (fd != -1)
		close(fd);
	if (path[0] != '\0')
		unlink(path);
	if (dir[0] != '\0')
		rmdir(dir);
}

/* Make the private directory and the file, once per process. */
static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	if (fd != -1)
		return;
	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	if (snprintf(dir, sizeof(dir), "%s/socketd-fuzz-cfg.XXXXXX", tmp) >=
		(int)sizeof(dir) ||
	    mkdtemp(dir) == NULL) {
		perror("fuzz_cfg: mkdtemp");
		abort();
	}
	snprintf(path, sizeof(path), "%s/socketd.conf", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		perror("fuzz_cfg: open");
		rmdir(dir);
		abort();
	}
	atexit(cleanup);
}

/* Replace the file's contents with p[0..n). */
static void
rewrite(const void *p, size_t n)
{
	const char *b = p;
	size_t off = 0;
	ssize_t w;

	if (ftruncate(fd, 0) == -1) {
		perror("fuzz_cfg: ftruncate");
		abort();
	}
	while (off < n) {
		w = pwrite(fd, b + off, n - off, (off_t)off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			perror("fuzz_cfg: pwrite");
			abort();
		}
		off += (size_t)w;
	}
}

/* Whether p[0..n) contains "..". */
static int
has_dotdot(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (p[i] == '.' && p[i - 1] == '.')
			return 1;
	return 0;
}

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
check_str(const char *s)
{
	if (s != NULL)
		FUZZ_CHECK(s[0] != '\0' && strlen(s) <= 4095);
}

/* The ranges and shapes cfg.h promises. */
static void
check_cfg(const struct cfg *c)
{
	const char *a;
	size_t i, j;

	FUZZ_CHECK(c->nlisten >= 1 && c->nlisten <= CFG_LISTEN_MAX);
	for (i = 0; i < CFG_LISTEN_MAX; i++) {
		if (i >= c->nlisten) {
			FUZZ_CHECK(c->listen[i] == NULL);
			continue;
		}
		FUZZ_CHECK(c->listen[i] != NULL);
		a = cfg_listen_addr(c->listen[i], NULL);
		FUZZ_CHECK(strchr(a, '*') == NULL);
		FUZZ_CHECK(strstr(a, "://") == NULL);
		FUZZ_CHECK(strrchr(a, ':') != NULL);
		for (j = 0; j < i; j++)
			FUZZ_CHECK(
			    strcmp(a, cfg_listen_addr(c->listen[j], NULL)) !=
			    0);
	}
	FUZZ_CHECK(c->workers <= CFG_WORKERS_MAX);
	FUZZ_CHECK(c->queue_size >= 1 && c->queue_size <= CFG_QUEUE_MAX);
	FUZZ_CHECK(
	    c->max_connections >= 1 && c->max_connections <= CFG_CONN_MAX);
	FUZZ_CHECK(c->max_frame_size >= CFG_FRAME_MIN &&
	    c->max_frame_size <= CFG_FRAME_MAX);
	FUZZ_CHECK(c->backlog >= 1 && c->backlog <= CFG_BACKLOG_MAX);
	FUZZ_CHECK(c->idle_ms <= CFG_TIMEOUT_MAX_S * 1000u);
	FUZZ_CHECK(c->read_ms <= CFG_TIMEOUT_MAX_S * 1000u);
	FUZZ_CHECK(c->write_ms <= CFG_TIMEOUT_MAX_S * 1000u);
	FUZZ_CHECK(c->shutdown_ms <= CFG_TIMEOUT_MAX_S * 1000u);
	FUZZ_CHECK(c->handshake_ms <= CFG_TIMEOUT_MAX_S * 1000u);
	FUZZ_CHECK(c->tcp_nodelay == 0 || c->tcp_nodelay == 1);
	FUZZ_CHECK(c->tcp_keepalive == 0 || c->tcp_keepalive == 1);
	FUZZ_CHECK((unsigned)c->log_level <= CFG_LOG_DEBUG);
	FUZZ_CHECK((unsigned)c->log_target <= CFG_LOG_SYSLOG);
	FUZZ_CHECK(c->max_conn_per_source <= CFG_CONN_MAX);
	FUZZ_CHECK(c->nallow <= CFG_ACL_MAX && c->ndeny <= CFG_ACL_MAX);
	for (i = 0; i < c->nallow; i++)
		FUZZ_CHECK(c->allow[i].prefix <= (c->allow[i].v6 ? 128u : 32u));
	for (i = 0; i < c->ndeny; i++)
		FUZZ_CHECK(c->deny[i].prefix <= (c->deny[i].v6 ? 128u : 32u));
	FUZZ_CHECK(c->tls_verify_client == 0 || c->tls_verify_client == 1);
	FUZZ_CHECK((unsigned)c->tls_min_version <= CFG_TLS_1_3);
	if (cfg_tls_listeners(c) > 0)
		FUZZ_CHECK(c->tls_certificate != NULL && c->tls_key != NULL);
	if (c->tls_verify_client)
		FUZZ_CHECK(c->tls_ca != NULL);
	check_str(c->tls_certificate);
	check_str(c->tls_key);
	check_str(c->tls_ca);
	check_str(c->user);
	check_str(c->group);
	check_str(c->pid_file);
}

/* Whether addr is in net, one bit at a time. */
static int
in_net(const struct cfg_cidr *net, int v6, const uint8_t *addr)
{
	unsigned i;

	if (net->v6 != v6)
		return 0;
	for (i = 0; i < net->prefix; i++)
		if (((net->addr[i / 8] ^ addr[i / 8]) >> (7 - i % 8)) & 1)
			return 0;
	return 1;
}

/* The access rules as cfg.h states them. */
static int
oracle_allows(const struct cfg *c, int v6, const uint8_t *addr)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t i;

	if (v6 && memcmp(addr, mapped, 12) == 0) {
		v6 = 0;
		addr += 12;
	}
	for (i = 0; i < c->ndeny; i++)
		if (in_net(&c->deny[i], v6, addr))
			return 0;
	if (c->nallow == 0)
		return 1;
	for (i = 0; i < c->nallow; i++)
		if (in_net(&c->allow[i], v6, addr))
			return 1;
	return 0;
}

static void
check_addr(const struct cfg *c, int v6, const uint8_t *addr)
{
	FUZZ_CHECK(
	    cfg_access_allows(c, v6, addr) == oracle_allows(c, v6, addr));
}

/* Probe the rules at and around every network in list. */
static void
check_access_list(const struct cfg *c, const struct cfg_cidr *list, size_t n)
{
	uint8_t a[16];
	size_t i;
	unsigned bits;

	for (i = 0; i < n; i++) {
		bits = list[i].v6 ? 128 : 32;
		memcpy(a, list[i].addr, 16);
		check_addr(c, list[i].v6, a);
		if (list[i].prefix < bits) {
			a[list[i].prefix / 8] ^=
			    (uint8_t)(0x80 >> (list[i].prefix % 8));
			check_addr(c, list[i].v6, a);
		}
		if (!list[i].v6) {
			memset(a, 0, 10);
			a[10] = a[11] = 0xff;
			memcpy(a + 12, list[i].addr, 4);
			check_addr(c, 1, a);
		}
	}
}

static int
same_cidrs(const struct cfg_cidr *a, const struct cfg_cidr *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i].v6 != b[i].v6 || a[i].prefix != b[i].prefix ||
		    memcmp(a[i].addr, b[i].addr, a[i].v6 ? 16 : 4) != 0)
			return 0;
	return 1;
}

static int
same_cfg(const struct cfg *a, const struct cfg *b)
{
	size_t i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++)
		if (!same_str(a->listen[i], b->listen[i]))
			return 0;
	return a->workers == b->workers && a->queue_size == b->queue_size &&
	    a->max_connections == b->max_connections &&
	    a->max_frame_size == b->max_frame_size &&
	    a->backlog == b->backlog && a->idle_ms == b->idle_ms &&
	    a->read_ms == b->read_ms && a->write_ms == b->write_ms &&
	    a->shutdown_ms == b->shutdown_ms &&
	    a->handshake_ms == b->handshake_ms &&
	    a->tcp_nodelay == b->tcp_nodelay &&
	    a->tcp_keepalive == b->tcp_keepalive &&
	    a->log_level == b->log_level && a->log_target == b->log_target &&
	    a->max_conn_per_source == b->max_conn_per_source &&
	    a->nallow == b->nallow &&
	    same_cidrs(a->allow, b->allow, a->nallow) && a->ndeny == b->ndeny &&
	    same_cidrs(a->deny, b->deny, a->ndeny) &&
	    same_str(a->tls_certificate, b->tls_certificate) &&
	    same_str(a->tls_key, b->tls_key) &&
	    same_str(a->tls_ca, b->tls_ca) &&
	    a->tls_verify_client == b->tls_verify_client &&
	    a->tls_min_version == b->tls_min_version &&
	    same_str(a->user, b->user) && same_str(a->group, b->group) &&
	    same_str(a->pid_file, b->pid_file);
}

/* Whether a's listen entries are all in b. */
static int
listen_subset(const struct cfg *a, const struct cfg *b)
{
	size_t i, j;

	for (i = 0; i < a->nlisten; i++) {
		for (j = 0; j < b->nlisten; j++)
			if (strcmp(a->listen[i], b->listen[j]) == 0)
				break;
		if (j == b->nlisten)
			return 0;
	}
	return 1;
}

/* cfg_diff_restart(a, b) against the list in cfg.c's comment. */
static void
check_diff(const struct cfg *a, const struct cfg *b)
{
	char small[16], big[256];
	int want = 0, n;

	want += !(a->nlisten == b->nlisten && listen_subset(a, b) &&
	    listen_subset(b, a));
	want += a->workers != b->workers;
	want += a->queue_size != b->queue_size;
	want += a->backlog != b->backlog;
	want += a->log_target != b->log_target;
	want += !same_str(a->user, b->user);
	want += !same_str(a->group, b->group);
	want += !same_str(a->pid_file, b->pid_file);

	FUZZ_CHECK(cfg_diff_restart(a, b, NULL, 0) == want);
	memset(small, 'x', sizeof(small));
	FUZZ_CHECK(cfg_diff_restart(a, b, small, sizeof(small)) == want);
	FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL);
	n = cfg_diff_restart(a, b, big, sizeof(big));
	FUZZ_CHECK(n == want);
	FUZZ_CHECK((n == 0) == (big[0] == '\0'));
	FUZZ_CHECK(strncmp(big, small, strlen(small)) == 0);
}

/* The dump of c, malloc'ed; grows the buffer until it fits. */
static char *
dump(const struct cfg *c)
{
	char *buf = NULL, *nb;
	size_t cap;

	for (cap = 4096; cap <= DUMP_CAP_MAX; cap *= 4) {
		if ((nb = realloc(buf, cap)) == NULL)
			break;
		buf = nb;
		if (cfg_dump(c, buf, cap) == 0) {
			FUZZ_CHECK(strlen(buf) < cap);
			return buf;
		}
		FUZZ_CHECK(strlen(buf) < cap); /* truncated, terminated */
	}
	free(buf);
	return NULL;
}

/* Dump, reload, compare; then the same through cfg_copy. */
static void
check_round_trip(const struct cfg *c)
{
	struct cfg again, copy;
	struct cfg_error err;
	char diff[256];
	char *text;

	if ((text = dump(c)) == NULL)
		return; /* out of memory */
	rewrite(text, strlen(text));
	if (cfg_load(path, &again, &err) != 0) {
		fprintf(stderr, "fuzz_cfg: the dump does not load: %s\n%s",
		    err.text, text);
		FUZZ_CHECK(!"cfg_dump output loads");
	}
	if (!same_cfg(c, &again)) {
		fprintf(
		    stderr, "fuzz_cfg: the dump loads differently:\n%s", text);
		FUZZ_CHECK(!"cfg_dump output loads to the same config");
	}
	FUZZ_CHECK(cfg_diff_restart(c, &again, diff, sizeof(diff)) == 0);
	cfg_free(&again);
	free(text);

	if (cfg_copy(&copy, c) == 0) {
		FUZZ_CHECK(same_cfg(c, &copy));
		cfg_free(&copy);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cfg empty;
	struct cfg c, d;
	struct cfg_error err;

	/* Keep @include inside the private directory (see the top). */
	if (has_dotdot(data, size))
		return 0;
	setup();
	rewrite(data, size);

	memset(&err, 0xff, sizeof(err));
	if (cfg_load(path, &c, &err) != 0) {
		FUZZ_CHECK(memcmp(&c, &empty, sizeof(c)) == 0);
		FUZZ_CHECK(memchr(err.text, '\0', sizeof(err.text)) != NULL);
		FUZZ_CHECK(err.text[0] != '\0');
		return 0;
	}
	check_cfg(&c);
	check_access_list(&c, c.allow, c.nallow);
	check_access_list(&c, c.deny, c.ndeny);
	check_round_trip(&c);
	if (cfg_defaults(&d, NULL) == 0) {
		check_diff(&d, &c);
		check_diff(&c, &d);
		cfg_free(&d);
	}
	cfg_free(&c);
	return 0;
}
