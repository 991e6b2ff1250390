/*
 * libsocketd.so.1 against the real daemon: the built-in requests, an
 * unknown opcode and a bad request as statuses, OPCODES (served or not,
 * whichever this daemon does), pipelining, TOO_LARGE and BUSY as the
 * daemon sends them, a daemon that stops under a connection, and TLS
 * (a good handshake, a wrong CA, a name the certificate does not carry,
 * insecure).  The program links the shared library through its public
 * header, as users do; the harness's own sdclient is used only to start
 * and watch daemons.
 *
 * The TLS certificate is self-signed for IP 127.0.0.1, made at run time
 * with the openssl command; without one the TLS test is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <socketd/client.h>

#include "harness.h"

#define T(state) ((struct h_ctx *)*(state))

static struct socketd_client *
lib_connect(const struct h_daemon *d)
{
	struct socketd_client *c = socketd_new();

	assert_non_null(c);
	assert_int_equal(socketd_set_timeout(c, H_IO_TIMEOUT), SOCKETD_E_OK);
	if (socketd_connect(c, "127.0.0.1", (unsigned)d->port) != 0)
		fail_msg("connect: %s", socketd_errmsg(c));
	return c;
}

static void
ok(struct socketd_client *c, int rv, const char *what)
{
	if (rv != SOCKETD_E_OK)
		fail_msg("%s: %s (%s)", what, socketd_errmsg(c),
		    socketd_strerror(rv));
}

static void
test_builtin_requests(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct socketd_client *c = lib_connect(d);
	const char *text, *v;
	const uint8_t *a;
	char peer[64], want[64];
	struct timespec now;
	uint8_t *big;
	uint64_t ns, now_ns;
	size_t n, vlen, i;
	unsigned st;

	ok(c, socketd_ping(c), "ping");
	ok(c, socketd_echo(c, "hello", 5), "echo");
	/* 100 KB: several reads and writes each way. */
	big = malloc(100000);
	assert_non_null(big);
	for (i = 0; i < 100000; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	ok(c, socketd_echo(c, big, 100000), "echo 100000 bytes");
	free(big);

	ok(c, socketd_info(c, &text, &n), "info");
	assert_int_equal(strlen(text), n);
	assert_int_equal(
	    socketd_text_value(text, n, "version", &v, &vlen), SOCKETD_E_OK);
	assert_int_equal(vlen, strlen(SOCKETD_VERSION));
	assert_memory_equal(v, SOCKETD_VERSION, vlen);
	assert_int_equal(
	    socketd_text_value(text, n, "pid", &v, &vlen), SOCKETD_E_OK);
	(void)snprintf(want, sizeof(want), "%ld", (long)d->pid);
	assert_int_equal(vlen, strlen(want));
	assert_memory_equal(v, want, vlen);

	ok(c, socketd_stats(c, &text, &n), "stats");
	assert_int_equal(
	    socketd_text_value(text, n, "connections_current", &v, &vlen),
	    SOCKETD_E_OK);
	assert_true(vlen >= 1 && v[0] >= '1' && v[0] <= '9');

	ok(c, socketd_time(c, &ns), "time");
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
	now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	assert_true(ns + 5000000000u > now_ns && ns < now_ns + 5000000000u);

	/* An unknown opcode and a bad request are answers, not failures. */
	ok(c, socketd_call(c, 0x7f, NULL, 0, &st, &a, &n), "call 0x7f");
	assert_int_equal(st, SOCKETD_STATUS_UNKNOWN_OPCODE);
	assert_int_equal(n, strlen("unknown opcode 0x7f"));
	assert_memory_equal(a, "unknown opcode 0x7f", n);
	ok(c, socketd_call(c, SOCKETD_OP_PING, "x", 1, &st, NULL, NULL),
	    "ping with a payload");
	assert_int_equal(st, SOCKETD_STATUS_BAD_REQUEST);
	assert_int_equal(socketd_status(c), SOCKETD_STATUS_BAD_REQUEST);

	ok(c, socketd_peer(c, peer, sizeof(peer)), "peer");
	(void)snprintf(want, sizeof(want), "127.0.0.1:%d", d->port);
	assert_string_equal(peer, want);
	assert_null(socketd_tls_version(c));
	socketd_free(c);
}

/*
 * OPCODES: this daemon may or may not serve it yet (protocol 1.1).
 * Either way the answer is exact: names that resolve, or a clear error
 * that leaves the connection usable.
 */
static void
test_opcodes_or_a_clear_error(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct socketd_client *c = lib_connect(d);
	const char *text;
	unsigned op;
	size_t n;
	int rv;

	rv = socketd_opcodes(c, &text, &n);
	if (rv == SOCKETD_E_OK) {
		print_message("the daemon serves OPCODES:\n%s", text);
		ok(c, socketd_opcode(c, "echo", &op), "opcode echo");
		assert_int_equal(op, SOCKETD_OP_ECHO);
		ok(c, socketd_opcode(c, "opcodes", &op), "opcode opcodes");
		assert_int_equal(op, SOCKETD_OP_OPCODES);
		assert_int_equal(socketd_opcode(c, "no.such.name", &op),
		    SOCKETD_E_NOT_FOUND);
		ok(c, socketd_call_name(c, "ping", NULL, 0, NULL, NULL, NULL),
		    "call_name ping");
	} else {
		assert_int_equal(rv, SOCKETD_E_NO_OPCODES);
		if (strstr(socketd_errmsg(c), "does not serve OPCODES") == NULL)
			fail_msg("unclear: %s", socketd_errmsg(c));
		assert_int_equal(
		    socketd_call_name(c, "echo", "x", 1, NULL, NULL, NULL),
		    SOCKETD_E_NO_OPCODES);
	}
	ok(c, socketd_ping(c), "ping after OPCODES");
	socketd_free(c);
}

static void
test_pipelining(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct socketd_client *c = lib_connect(d);
	uint32_t ids[100], id;
	const uint8_t *a;
	char p[16];
	unsigned st;
	size_t n;
	int i;

	for (i = 0; i < 100; i++) {
		(void)snprintf(p, sizeof(p), "req %d", i);
		ok(c, socketd_send(c, SOCKETD_OP_ECHO, p, strlen(p), &ids[i]),
		    "send");
	}
	assert_int_equal(socketd_pending(c), 100);
	for (i = 0; i < 100; i++) {
		ok(c, socketd_recv(c, &id, &st, &a, &n), "recv");
		(void)snprintf(p, sizeof(p), "req %d", i);
		assert_int_equal(id, ids[i]);
		assert_int_equal(st, SOCKETD_STATUS_OK);
		assert_int_equal(n, strlen(p));
		assert_memory_equal(a, p, n);
	}
	assert_int_equal(socketd_pending(c), 0);
	ok(c, socketd_ping(c), "ping after the batch");
	socketd_free(c);
}

static void
test_too_large_then_closed(void **state)
{
	static const struct h_opts o = {.extra = "max_frame_size = 1024;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct socketd_client *c = lib_connect(d);
	static uint8_t big[2000];
	unsigned st;
	int rv;

	ok(c,
	    socketd_call(c, SOCKETD_OP_ECHO, big, sizeof(big), &st, NULL, NULL),
	    "echo 2000 bytes");
	assert_int_equal(st, SOCKETD_STATUS_TOO_LARGE);
	/*
	 * The server closes after TOO_LARGE: the close comes at a request
	 * boundary, so the next ping (idempotent) goes out again on a new
	 * connection.  A module call would not be sent twice.
	 */
	ok(c, socketd_ping(c), "ping after TOO_LARGE (reconnected)");
	ok(c,
	    socketd_call(c, SOCKETD_OP_ECHO, big, sizeof(big), &st, NULL, NULL),
	    "echo 2000 bytes again");
	assert_int_equal(st, SOCKETD_STATUS_TOO_LARGE);
	rv = socketd_call(c, SOCKETD_OP_MODULE_FIRST, NULL, 0, &st, NULL, NULL);
	if (rv != SOCKETD_E_CLOSED)
		fail_msg(
		    "module call after TOO_LARGE: %s (%s), expected closed",
		    socketd_strerror(rv), socketd_errmsg(c));
	assert_int_equal(socketd_fd(c), -1);
	/* The client reconnects with the same settings. */
	ok(c, socketd_connect(c, "127.0.0.1", (unsigned)d->port), "reconnect");
	ok(c, socketd_ping(c), "ping after reconnecting");
	socketd_free(c);
}

static void
test_busy_refusal(void **state)
{
	static const struct h_opts o = {.extra = "max_connections = 1;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct socketd_client *c;

	(void)h_sdc_settled(T(state), d);
	c = lib_connect(d);
	assert_int_equal(socketd_ping(c), SOCKETD_E_SERVER);
	assert_int_equal(socketd_status(c), SOCKETD_STATUS_BUSY);
	if (strstr(socketd_errmsg(c), "BUSY: max_connections (1) reached") ==
	    NULL)
		fail_msg("BUSY message: %s", socketd_errmsg(c));
	socketd_free(c);
}

static void
test_daemon_stops_under_the_client(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct socketd_client *c = lib_connect(d);
	unsigned port = (unsigned)d->port;
	int rv;

	ok(c, socketd_ping(c), "ping");
	assert_int_equal(h_stop(d, 10000), 0);
	/* Closed at a boundary: ping tries a new connection, refused. */
	rv = socketd_ping(c);
	if (rv != SOCKETD_E_CONNECT)
		fail_msg("ping after the daemon stopped: %s (%s)",
		    socketd_strerror(rv), socketd_errmsg(c));
	assert_int_equal(socketd_fd(c), -1);
	assert_int_equal(
	    socketd_connect(c, "127.0.0.1", port), SOCKETD_E_CONNECT);
	socketd_free(c);
}

/* ---- TLS ---- */

/* The openssl binary, or NULL. */
static const char *
find_openssl(void)
{
	static const char *const paths[] = {
	    "/usr/bin/openssl", "/bin/openssl", "/usr/local/bin/openssl"};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* A self-signed certificate for IP 127.0.0.1: dir/name.pem, .key. */
static int
make_cert(const char *bin, const char *dir, const char *name)
{
	char key[320], pem[320], subj[64];
	struct h_run *r = malloc(sizeof(*r));
	int st;

	assert_non_null(r);
	(void)snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	(void)snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
	(void)snprintf(subj, sizeof(subj), "/CN=libsocketd test %s", name);
	{
		const char *argv[] = {bin, "req", "-x509", "-newkey", "ec",
		    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		    "-keyout", key, "-out", pem, "-days", "2", "-subj", subj,
		    "-addext", "subjectAltName=IP:127.0.0.1", NULL};

		h_run((char *const *)argv, 20000, r);
	}
	st = r->status;
	if (st != 0)
		print_error("openssl req: exit %d\n%s", st, r->err);
	free(r);
	return st;
}

static void
test_tls(void **state)
{
	struct h_ctx *t = T(state);
	const char *bin = find_openssl(), *dir, *ver;
	char listen[96], extra[768], cafile[320], other[320];
	struct h_opts o;
	struct h_daemon *d;
	struct socketd_client *c;
	int tls_port;

	if (bin == NULL) {
		print_message("no openssl command: TLS not tested\n");
		skip();
	}
	dir = h_scratch(t);
	assert_int_equal(make_cert(bin, dir, "server"), 0);
	assert_int_equal(make_cert(bin, dir, "other"), 0);
	(void)snprintf(cafile, sizeof(cafile), "%s/server.pem", dir);
	(void)snprintf(other, sizeof(other), "%s/other.pem", dir);
	tls_port = h_free_port(0);
	(void)snprintf(listen, sizeof(listen),
	    "[ \"127.0.0.1:PORT\", \"tls://127.0.0.1:%d\" ]", tls_port);
	(void)snprintf(extra, sizeof(extra),
	    "tls: { certificate = \"%s/server.pem\"; key = "
	    "\"%s/server.key\"; };",
	    dir, dir);
	memset(&o, 0, sizeof(o));
	o.listen = listen;
	o.extra = extra;
	d = h_start(t, &o);

	/* Checked against its own certificate: it names 127.0.0.1. */
	c = socketd_new();
	assert_non_null(c);
	ok(c, socketd_set_tls_cafile(c, cafile), "cafile");
	ok(c, socketd_connect(c, "127.0.0.1", (unsigned)tls_port),
	    "TLS connect");
	ver = socketd_tls_version(c);
	assert_non_null(ver);
	assert_true(strncmp(ver, "TLSv1.", 6) == 0);
	ok(c, socketd_ping(c), "ping over TLS");
	ok(c, socketd_echo(c, "over tls", 8), "echo over TLS");

	/* The same certificate does not name "localhost". */
	assert_int_equal(
	    socketd_connect(c, "localhost", (unsigned)tls_port), SOCKETD_E_TLS);
	if (strstr(socketd_errmsg(c), "TLS handshake") == NULL)
		fail_msg("name mismatch: %s", socketd_errmsg(c));

	/* Another CA: the handshake fails, with a reason. */
	ok(c, socketd_set_tls_cafile(c, other), "other cafile");
	assert_int_equal(
	    socketd_connect(c, "127.0.0.1", (unsigned)tls_port), SOCKETD_E_TLS);
	if (strstr(socketd_errmsg(c), "certificate") == NULL)
		fail_msg("wrong CA: %s", socketd_errmsg(c));
	assert_int_equal(socketd_fd(c), -1);

	/* Insecure: no check at all. */
	ok(c, socketd_set_tls_cafile(c, NULL), "no cafile");
	ok(c, socketd_set_tls_insecure(c, 1), "insecure");
	ok(c, socketd_connect(c, "127.0.0.1", (unsigned)tls_port),
	    "insecure connect");
	ok(c, socketd_ping(c), "ping, insecure");

	/* TLS off again: the plain listener. */
	ok(c, socketd_set_tls(c, 0), "tls off");
	ok(c, socketd_connect(c, "127.0.0.1", (unsigned)d->port),
	    "plain connect");
	assert_null(socketd_tls_version(c));
	ok(c, socketd_ping(c), "plain ping");
	socketd_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_builtin_requests, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_opcodes_or_a_clear_error, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pipelining, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_too_large_then_closed, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_busy_refusal, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_daemon_stops_under_the_client, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_tls, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_libsocketd", tests, h_group_setup, NULL);
}
