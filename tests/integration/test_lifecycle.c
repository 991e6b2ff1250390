/*
 * The daemon's life: graceful stop (SIGTERM, SIGINT, timeouts.shutdown),
 * reload (SIGHUP: good file, broken file, restart-only settings), the
 * configuration checks of -t and of a plain start, the command line, and
 * a port that is already taken.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

/* Wait for d to exit on its own within timeout_ms; return the status. */
static int
wait_exit(struct h_daemon *d, int timeout_ms)
{
	int st = h_wait_exit(d, timeout_ms);

	if (st == -1 && d->pid > 0) {
		h_log_dump(d);
		fail_msg(
		    "socketd still running %d ms after the signal", timeout_ms);
	}
	return st;
}

#define NCONN 10
#define NREQ  200

static void
make_payload(char *p, size_t cap, int conn, int req)
{
	snprintf(p, cap, "connection %d request %d .........................",
	    conn, req);
}

/* Requests in flight when SIGTERM arrives are all answered. */
static void
test_sigterm_answers_requests_in_flight(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fds[NCONN], i, j, got;
	uint8_t *buf, *req;
	size_t len, n;
	struct h_frame f;
	char p[96];
	enum h_eof e;

	for (i = 0; i < NCONN; i++) {
		fds[i] = h_raw(T(state), d);
		h_raw_ping(fds[i], 1); /* surely accepted */
	}
	buf = malloc(NREQ * (PROTO_FRAME_MIN + sizeof(p)));
	assert_non_null(buf);
	for (i = 0; i < NCONN; i++) {
		len = 0;
		for (j = 0; j < NREQ; j++) {
			make_payload(p, sizeof(p), i, j);
			req = h_req(
			    PROTO_OP_ECHO, 100 + (uint32_t)j, p, strlen(p), &n);
			memcpy(buf + len, req, n);
			len += n;
			free(req);
		}
		assert_int_equal(h_send_all(fds[i], buf, len, H_IO_TIMEOUT), 0);
	}
	free(buf);
	h_signal(d, SIGTERM);
	for (i = 0; i < NCONN; i++) {
		for (got = 0; got < NREQ; got++) {
			if (h_read_frame(fds[i], &f, H_IO_TIMEOUT) == -1)
				fail_msg("connection %d: %d of %d answers, "
					 "then %s",
				    i, got, NREQ,
				    errno == EPIPE ? "EOF" : strerror(errno));
			make_payload(p, sizeof(p), i, got);
			if (f.status != PROTO_OK ||
			    f.request_id != 100 + (uint32_t)got ||
			    strcmp((const char *)f.payload, p) != 0)
				fail_msg("connection %d answer %d: status %u "
					 "id %" PRIu32 " \"%s\"",
				    i, got, f.status, f.request_id,
				    (const char *)f.payload);
			h_frame_free(&f);
		}
		e = h_wait_eof(fds[i], H_IO_TIMEOUT, NULL);
		if (e != H_EOF)
			fail_msg("connection %d after %d answers: %s, "
				 "expected EOF",
			    i, NREQ, h_eof_str(e));
	}
	for (i = 0; i < NCONN; i++)
		h_close(T(state), fds[i]);
	assert_int_equal(wait_exit(d, 10000), 0);
	assert_int_equal(h_log_count(d, "stopped", NULL), 1);
}

static void
test_sigterm_idle_connection(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	int64_t t0, dt;
	enum h_eof e;

	h_raw_ping(fd, 1);
	t0 = h_now_ms();
	h_signal(d, SIGTERM);
	/* The idle client is told at once (FIN), and need not react. */
	e = h_wait_eof(fd, 2000, NULL);
	if (e != H_EOF)
		fail_msg("idle connection after SIGTERM: %s, expected EOF",
		    h_eof_str(e));
	assert_int_equal(wait_exit(d, 10000), 0);
	dt = h_now_ms() - t0;
	if (dt >= 3000)
		fail_msg(
		    "exit took %" PRId64 " ms with one idle connection", dt);
}

static void
test_sigint_stops(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);

	h_ping(c);
	h_sdc_close(T(state), c);
	h_signal(d, SIGINT);
	assert_int_equal(wait_exit(d, 5000), 0);
	assert_int_equal(h_log_count(d, "Interrupt received", NULL), 1);
}

/* timeouts.shutdown bounds the stop when a client never reads. */
static void
test_shutdown_timeout(void **state)
{
	static const struct h_opts o = {
	    .extra = "timeouts: { shutdown = 1; };"};
	struct h_daemon *d = h_start(T(state), &o);
	uint8_t *payload, *req;
	size_t n, off = 0, total = 0;
	int64_t t0, last, dt;
	uint32_t id = 1;
	struct pollfd p;
	ssize_t w;
	int fd, fl, nfd;

	payload = malloc(256 * 1024);
	assert_non_null(payload);
	memset(payload, 'b', 256 * 1024);
	req = h_req(PROTO_OP_ECHO, id, payload, 256 * 1024, &n);
	free(payload);
	fd = h_raw(T(state), d);
	h_raw_ping(fd, 99);
	fl = fcntl(fd, F_GETFL);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
	/* Big answers, never read, until sending blocks for 300 ms. */
	t0 = last = h_now_ms();
	while (h_now_ms() - last < 300 && h_now_ms() - t0 < 10000) {
		w = send(fd, req + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			total += (size_t)w;
			last = h_now_ms();
			if (off == n) {
				off = 0;
				proto_put_u32(req + 8, ++id);
			}
			continue;
		}
		if (w == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			fail_msg("send: %s", strerror(errno));
		p.fd = fd;
		p.events = POLLOUT;
		p.revents = 0;
		(void)poll(&p, 1, 20);
	}
	free(req);
	assert_true(h_now_ms() - last >= 300); /* it did block */
	t0 = h_now_ms();
	h_signal(d, SIGTERM);
	/* While it drains, new clients are not accepted. */
	h_sleep_ms(200);
	if (h_wait_exit(d, 0) == -1) {
		nfd = h_connect(T(state), "127.0.0.1", d->port, 2000);
		if (nfd != -1)
			fail_msg("a new connection was accepted while "
				 "stopping");
		assert_int_equal(errno, ECONNREFUSED);
	}
	assert_int_equal(wait_exit(d, 10000), 0);
	dt = h_now_ms() - t0;
	print_message(
	    "# %zu bytes sent; exit %" PRId64 " ms after SIGTERM\n", total, dt);
	if (dt > 3500)
		fail_msg(
		    "exit took %" PRId64 " ms with timeouts.shutdown = 1", dt);
}

/* INFO value by name over c. */
static void
info_value(struct sdc *c, const char *name, char *out, size_t cap)
{
	struct proto_resp r;
	char err[SDC_ERRLEN];

	if (sdc_call(c, PROTO_OP_INFO, NULL, 0, &r, err) == -1)
		fail_msg("INFO: %s", err);
	assert_int_equal(r.status, PROTO_OK);
	if (h_text_value(r.payload, r.payload_len, name, out, cap) == -1)
		fail_msg("INFO has no %s", name);
}

static void
test_reload(void **state)
{
	static const struct h_opts o1 = {
	    .extra = "max_connections = 5;", .level = "info"};
	static const struct h_opts o2 = {
	    .extra = "max_connections = 2;", .level = "debug"};
	struct h_daemon *d = h_start(T(state), &o1);
	struct sdc *c1 = h_sdc_settled(T(state), d), *c2;
	char v[32];
	int fd;

	/* At level info a reset connection is not logged. */
	fd = h_raw(T(state), d);
	h_raw_ping(fd, 1);
	h_close_reset(T(state), fd);
	assert_int_equal(h_stat_wait(c1, "connections_current", 1, 5000), 1);
	assert_int_equal(h_log_count(d, "Connection reset by peer", NULL), 0);

	h_write_config(d, &o2);
	h_signal(d, SIGHUP);
	if (!h_log_wait(d, "reloaded", NULL, 5000)) {
		h_log_dump(d);
		fail_msg("no \"reloaded\" in the log 5 s after SIGHUP");
	}
	assert_int_equal(h_log_count(d, "reloaded", d->conf), 1);
	assert_int_equal(h_log_count(d, "needs a restart", NULL), 0);
	assert_int_equal(h_stat(c1, "reloads"), 1);
	assert_int_equal(h_stat(c1, "reload_failures"), 0);
	info_value(c1, "max_connections", v, sizeof(v));
	assert_string_equal(v, "2");

	/* The new limit: c1 and c2 fit, a third is refused. */
	c2 = h_sdc(T(state), "127.0.0.1", d->port);
	h_ping(c2);
	fd = h_raw(T(state), d);
	h_expect_refusal(fd, PROTO_BUSY, "max_connections (2) reached");
	h_close(T(state), fd);
	h_ping(c1);

	/* The new level: debug lines appear. */
	h_sdc_close(T(state), c2);
	assert_int_equal(h_stat_wait(c1, "connections_current", 1, 5000), 1);
	fd = h_raw(T(state), d);
	h_raw_ping(fd, 2);
	h_close_reset(T(state), fd);
	if (!h_log_wait(d, "Connection reset by peer", NULL, 5000)) {
		h_log_dump(d);
		fail_msg("log.level debug after reload: no debug line for a "
			 "reset connection");
	}
}

/* Reloaded timeouts and max_frame_size apply to open connections too. */
static void
test_reload_applies_to_open_connections(void **state)
{
	static const struct h_opts o1 = {.extra = "timeouts: { idle = 0; };"};
	static const struct h_opts o2 = {
	    .extra = "timeouts: { idle = 1; };\nmax_frame_size = 1024;"};
	struct h_daemon *d = h_start(T(state), &o1);
	int quiet = h_raw(T(state), d), busy = h_raw(T(state), d);
	uint8_t big[PROTO_FRAME_MIN];
	struct h_frame f;
	int64_t t0;
	enum h_eof e;

	h_raw_ping(quiet, 1);
	h_raw_ping(busy, 1);
	h_write_config(d, &o2);
	h_signal(d, SIGHUP);
	if (!h_log_wait(d, "reloaded", NULL, 5000)) {
		h_log_dump(d);
		fail_msg("no \"reloaded\" in the log 5 s after SIGHUP");
	}
	t0 = h_now_ms();
	/* max_frame_size 1024 for the next request of an open connection. */
	proto_put_u32(big, 2000);
	big[4] = PROTO_VERSION;
	big[5] = PROTO_OP_ECHO;
	proto_put_u16(big + 6, 0);
	proto_put_u32(big + 8, 2);
	assert_int_equal(h_send_all(busy, big, sizeof(big), H_IO_TIMEOUT), 0);
	h_expect_frame(busy, 0, PROTO_TOO_LARGE, 0, &f);
	h_frame_free(&f);
	/* idle = 1 for a connection that was idle before the reload. */
	e = h_wait_eof(quiet, 5000, NULL);
	if (e != H_EOF)
		fail_msg("idle connection after reloading idle = 1: %s "
			 "after %" PRId64 " ms",
		    h_eof_str(e), h_now_ms() - t0);
}

/* A burst of SIGHUPs while a client keeps asking: nothing breaks. */
static void
test_reload_storm(void **state)
{
	static const struct h_opts o = {.extra = "max_connections = 100;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);
	uint64_t reloads;
	char v[32];
	int i;

	for (i = 0; i < 50; i++) {
		h_signal(d, SIGHUP);
		h_ping(c);
		if (i % 10 == 0)
			info_value(c, "max_connections", v, sizeof(v));
	}
	/* Pending SIGHUPs merge: at least one reload, at most 50. */
	reloads = h_stat(c, "reloads");
	assert_true(reloads >= 1 && reloads <= 50);
	assert_int_equal(h_stat(c, "reload_failures"), 0);
	info_value(c, "max_connections", v, sizeof(v));
	assert_string_equal(v, "100");
	h_sdc_close(T(state), c);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_reload_broken_file(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port), *c2;
	char text[256], where[400], v[32];

	h_ping(c);
	snprintf(text, sizeof(text),
	    "listen = [ \"127.0.0.1:%d\" ];\n"
	    "max_connections = 5;\n"
	    "workers = ;\n",
	    d->port);
	h_write_file(d->conf, text);
	h_signal(d, SIGHUP);
	if (!h_log_wait(d, "reload failed", NULL, 5000)) {
		h_log_dump(d);
		fail_msg("no \"reload failed\" in the log 5 s after SIGHUP");
	}
	snprintf(where, sizeof(where), "%s:3: ", d->conf);
	if (h_log_count(d, "reload failed", where) != 1) {
		h_log_dump(d);
		fail_msg("the reload failure does not name %s", where);
	}
	assert_int_equal(h_log_count(d, "reloaded", NULL), 0);
	assert_int_equal(h_stat(c, "reload_failures"), 1);
	assert_int_equal(h_stat(c, "reloads"), 0);
	/* The old settings stay: still 10000 connections, still serving. */
	info_value(c, "max_connections", v, sizeof(v));
	assert_string_equal(v, "10000");
	h_ping(c);
	c2 = h_sdc(T(state), "127.0.0.1", d->port);
	h_ping(c2);
}

static void
test_reload_restart_settings(void **state)
{
	static const struct h_opts o1 = {.extra = "workers = 2;"};
	struct h_opts o2 = {.extra = "workers = 3;"};
	struct h_daemon *d = h_start(T(state), &o1);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port), *c2;
	char listen2[64], v[32];
	int port2 = h_free_port(0), fd;

	h_ping(c);
	snprintf(listen2, sizeof(listen2), "[ \"127.0.0.1:%d\" ]", port2);
	o2.listen = listen2;
	h_write_config(d, &o2);
	h_signal(d, SIGHUP);
	if (!h_log_wait(d, "reloaded", NULL, 5000)) {
		h_log_dump(d);
		fail_msg("no \"reloaded\" in the log 5 s after SIGHUP");
	}
	if (h_log_count(d, "needs a restart", "workers") != 1 ||
	    h_log_count(d, "needs a restart", "listen") != 1) {
		h_log_dump(d);
		fail_msg("the log does not say that listen and workers need "
			 "a restart");
	}
	assert_int_equal(h_stat(c, "reloads"), 1);
	info_value(c, "workers", v, sizeof(v));
	assert_string_equal(v, "2");
	/* Still on the old port, not on the new one. */
	c2 = h_sdc(T(state), "127.0.0.1", d->port);
	h_ping(c2);
	fd = h_connect(T(state), "127.0.0.1", port2, 2000);
	assert_int_equal(fd, -1);
	assert_int_equal(errno, ECONNREFUSED);
}

/* Run socketd with args (NULL-terminated, after argv[0]). */
static void
run_socketd(struct h_run *r, const char *a1, const char *a2, const char *a3)
{
	char *argv[5];

	argv[0] = (char *)SOCKETD_BIN;
	argv[1] = (char *)a1;
	argv[2] = (char *)a2;
	argv[3] = (char *)a3;
	argv[4] = NULL;
	h_run(argv, 10000, r);
}

/* socketd -t on text: exit status and, when msg, "PATH:msg" in stderr. */
static void
check_config(struct h_ctx *t, const char *name, const char *text, int status,
    const char *msg)
{
	char path[512], want[800];
	struct h_run *r = malloc(sizeof(*r));

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/%s", h_scratch(t), name);
	h_write_file(path, text);
	run_socketd(r, "-t", "-c", path);
	if (r->status != status)
		fail_msg("socketd -t -c %s: exit %d, expected %d; stderr: %s",
		    name, r->status, status, r->err);
	if (msg != NULL) {
		snprintf(want, sizeof(want), "socketd: %s:%s\n", path, msg);
		if (strcmp(r->err, want) != 0)
			fail_msg("socketd -t -c %s: stderr \"%s\", expected "
				 "\"%s\"",
			    name, r->err, want);
	}
	if (status == 0) {
		snprintf(want, sizeof(want),
		    "socketd: configuration file %s is OK\n", path);
		assert_string_equal(r->out, want);
	}
	/* The same file without -t: the same verdict, without starting. */
	if (status != 0) {
		run_socketd(r, "-c", path, NULL);
		if (r->status != status)
			fail_msg("socketd -c %s: exit %d, expected %d; "
				 "stderr: %s",
			    name, r->status, status, r->err);
		if (msg != NULL) {
			snprintf(want, sizeof(want), "%s:%s", path, msg);
			if (strstr(r->err, want) == NULL)
				fail_msg("socketd -c %s: stderr \"%s\" lacks "
					 "\"%s\"",
				    name, r->err, want);
		}
	}
	free(r);
}

static void
test_config_errors(void **state)
{
	struct h_ctx *t = T(state);
	struct h_run *r = malloc(sizeof(*r));
	char path[512], want[800];

	assert_non_null(r);
	check_config(t, "good.conf",
	    "listen = [ \"127.0.0.1:7411\", \"[::1]:7411\" ];\n"
	    "workers = 2;\n"
	    "timeouts: { idle = 0.5; read = 2; };\n"
	    "log: { level = \"warning\"; };\n",
	    0, NULL);
	check_config(t, "unknown.conf",
	    "workers = 2;\n"
	    "timeouts: {\n"
	    "\tidel = 5;\n"
	    "};\n",
	    1, "3: timeouts.idel: unknown setting");
	check_config(t, "type.conf",
	    "workers = 2;\n"
	    "max_connections = \"ten\";\n",
	    1, "2: max_connections: must be an integer from 1 to 10000000");
	check_config(t, "range.conf",
	    "\n"
	    "workers = 5000;\n",
	    1, "2: workers: must be an integer from 0 to 1024");
	check_config(t, "timeout.conf", "timeouts: { shutdown = 86401; };\n", 1,
	    "1: timeouts.shutdown: must be a number of seconds from 0 to "
	    "86400");
	check_config(t, "syntax.conf",
	    "workers = 2;\n"
	    "max_connections = 10;\n"
	    "backlog = ;\n",
	    1, "3: syntax error");

	check_config(t, "twice.conf",
	    "listen = [ \"127.0.0.1:7411\",\n"
	    "\t\"127.0.0.1:7411\" ];\n",
	    1, "2: listen: \"127.0.0.1:7411\": listed twice");
	check_config(t, "brackets.conf", "listen = [ \"::1:7411\" ];\n", 1,
	    "1: listen: \"::1:7411\": an IPv6 address needs brackets, as in "
	    "[::1]:7411");

	/* The shipped file is valid (and means the defaults). */
	run_socketd(r, "-t", "-c", SOCKETD_SOURCE_DIR "/config/socketd.conf");
	if (r->status != 0)
		fail_msg("socketd -t on config/socketd.conf: exit %d: %s",
		    r->status, r->err);

	/* A file that does not exist. */
	snprintf(path, sizeof(path), "%s/missing.conf", h_scratch(t));
	run_socketd(r, "-t", "-c", path);
	assert_int_equal(r->status, 1);
	snprintf(want, sizeof(want),
	    "socketd: %s: cannot read file: No such file or directory\n", path);
	assert_string_equal(r->err, want);
	run_socketd(r, "-c", path, NULL);
	assert_int_equal(r->status, 1);
	snprintf(want, sizeof(want),
	    "%s: cannot read file: No such file or directory\n", path);
	if (strstr(r->err, want) == NULL)
		fail_msg("socketd -c %s: stderr \"%s\"", path, r->err);
	free(r);
}

static void
test_command_line(void **state)
{
	struct h_run *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	run_socketd(r, "-V", NULL, NULL);
	assert_int_equal(r->status, 0);
	assert_string_equal(
	    r->out, "socketd " SOCKETD_VERSION "\nmodule ABI 1.0\n");
	run_socketd(r, "--version", NULL, NULL);
	assert_int_equal(r->status, 0);
	assert_string_equal(
	    r->out, "socketd " SOCKETD_VERSION "\nmodule ABI 1.0\n");
	run_socketd(r, "-h", NULL, NULL);
	assert_int_equal(r->status, 0);
	assert_non_null(strstr(r->out, "usage: socketd"));
	assert_string_equal(r->err, "");
	run_socketd(r, "-Z", NULL, NULL);
	assert_int_equal(r->status, 2);
	assert_non_null(strstr(r->err, "usage: socketd"));
	assert_string_equal(r->out, "");
	run_socketd(r, "--no-such-option", NULL, NULL);
	assert_int_equal(r->status, 2);
	run_socketd(r, "-c", NULL, NULL);
	assert_int_equal(r->status, 2);
	run_socketd(r, "-t", "extra-argument", NULL);
	assert_int_equal(r->status, 2);
	free(r);
}

static void
test_port_in_use(void **state)
{
	struct h_ctx *t = T(state);
	struct h_run *r = malloc(sizeof(*r));
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char path[512], text[256], want[128];
	int fd, port;

	assert_non_null(r);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	h_track(t, fd);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);

	snprintf(path, sizeof(path), "%s/inuse.conf", h_scratch(t));
	snprintf(text, sizeof(text), "listen = [ \"127.0.0.1:%d\" ];\n", port);
	h_write_file(path, text);
	run_socketd(r, "-c", path, NULL);
	assert_int_equal(r->status, 1);
	snprintf(want, sizeof(want),
	    "listen 127.0.0.1:%d: Address already "
	    "in use\n",
	    port);
	if (strstr(r->err, want) == NULL)
		fail_msg("stderr \"%s\" lacks \"%s\"", r->err, want);
	free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_sigterm_answers_requests_in_flight, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_sigterm_idle_connection, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_sigint_stops, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_shutdown_timeout, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_reload, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_applies_to_open_connections, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_storm, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_broken_file, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_restart_settings, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_config_errors, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_command_line, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_port_in_use, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_lifecycle", tests, h_group_setup, NULL);
}
