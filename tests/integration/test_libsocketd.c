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
 *
 * Since 1.1: pub/sub (blocking and non-blocking), GOAWAY during a drain
 * (the blocking client stops using the connection, the non-blocking one
 * is told), and the non-blocking client driven by a poll() loop:
 * pipelining, a refused connect, TLS, cancellation on free.  Its timeout
 * and a close in the middle of an answer are played by the test itself
 * on a listening socket (the client never blocks, so one thread can be
 * both ends).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
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

/* ---- the non-blocking client: a poll() loop ---- */

/*
 * Drive a with poll() until *count reaches want or timeout_ms passes.
 * Returns 0 when reached, 1 on timeout, or the error process returned.
 */
static int
drive(struct socketd_async *a, const int *count, int want, int timeout_ms)
{
	int64_t end = h_now_ms() + timeout_ms, left;
	struct pollfd p;
	unsigned ev;
	int rv, ms;

	while (*count < want) {
		left = end - h_now_ms();
		if (left <= 0)
			return 1;
		ev = socketd_async_events(a);
		ms = socketd_async_timeout(a);
		if (ms < 0 || ms > left)
			ms = (int)left;
		p.fd = socketd_async_fd(a);
		p.events = (short)((ev & SOCKETD_WANT_READ ? POLLIN : 0) |
		    (ev & SOCKETD_WANT_WRITE ? POLLOUT : 0));
		p.revents = 0;
		(void)poll(&p, p.fd >= 0 ? 1 : 0, ms);
		if ((rv = socketd_async_process(a)) != 0)
			return rv;
	}
	return 0;
}

/* What the callbacks saw. */
struct seen {
	int answers;     /* callbacks called */
	int ok;          /* with result OK and status OK */
	int last_result; /* result of the last one */
	unsigned status; /* of the last one */
	uint32_t u32;    /* a 4-byte answer */
	int bad;         /* answers whose bytes were wrong */
	int events[5];   /* by enum socketd_async_event */
	int last_value;  /* of the last event */
	char text[128];  /* of the last event */
	int messages;
	char topic[64];
	char data[64];
	uint32_t sub_id;
	int next; /* echo: index of the answer expected next */
	struct socketd_async *free_me; /* freed by the first answer */
};

static void
on_answer(struct socketd_async *a, int result, unsigned status,
    const uint8_t *answer, size_t len, void *arg)
{
	struct seen *s = arg;

	(void)a;
	s->answers++;
	s->last_result = result;
	s->status = status;
	if (result == SOCKETD_E_OK && status == SOCKETD_STATUS_OK)
		s->ok++;
	if (result == SOCKETD_E_OK && len == 4)
		s->u32 = (uint32_t)answer[0] << 24 | (uint32_t)answer[1] << 16 |
		    (uint32_t)answer[2] << 8 | answer[3];
	if (s->free_me != NULL) {
		struct socketd_async *f = s->free_me;

		s->free_me = NULL;
		socketd_async_free(f);
	}
}

static void
on_event(
    struct socketd_async *a, int event, int value, const char *text, void *arg)
{
	struct seen *s = arg;

	(void)a;
	if (event >= 1 && event <= 4)
		s->events[event]++;
	s->last_value = value;
	(void)snprintf(s->text, sizeof(s->text), "%s", text ? text : "");
}

static void
on_message(struct socketd_async *a, const struct socketd_message *m, void *arg)
{
	struct seen *s = arg;

	(void)a;
	s->messages++;
	s->sub_id = m->sub_id;
	(void)snprintf(s->topic, sizeof(s->topic), "%s", m->topic);
	(void)snprintf(s->data, sizeof(s->data), "%.*s", (int)m->len,
	    (const char *)m->data);
}

static struct socketd_async *
async_for(const struct socketd_client *settings, struct seen *s, int port)
{
	struct socketd_async *a = socketd_async_new(settings);

	assert_non_null(a);
	assert_int_equal(
	    socketd_async_set_handlers(a, on_event, on_message, s), 0);
	if (socketd_async_connect(a, "127.0.0.1", (unsigned)port) != 0)
		fail_msg("async connect: %s", socketd_async_errmsg(a));
	return a;
}

#define N_PIPE 1000

/* Echo answer i must carry the bytes of request i. */
static void
on_echo(struct socketd_async *a, int result, unsigned status,
    const uint8_t *answer, size_t len, void *arg)
{
	struct seen *s = arg;
	char want[32];
	int n;

	(void)a;
	n = snprintf(want, sizeof(want), "request %d", s->next++);
	s->answers++;
	if (result != SOCKETD_E_OK || status != 0 || len != (size_t)n ||
	    memcmp(answer, want, len) != 0)
		s->bad++;
	else
		s->ok++;
}

static void
test_async_pipelining(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct seen s = {0};
	struct socketd_async *a = async_for(NULL, &s, d->port);
	char buf[32];
	int i, n, rv;
	int64_t t0 = h_now_ms();

	/* Queued while the connect is still under way. */
	for (i = 0; i < N_PIPE; i++) {
		n = snprintf(buf, sizeof(buf), "request %d", i);
		assert_int_equal(socketd_async_send(a, SOCKETD_OP_ECHO, buf,
				     (size_t)n, on_echo, &s, NULL),
		    0);
	}
	assert_int_equal(socketd_async_pending(a), N_PIPE);
	rv = drive(a, &s.answers, N_PIPE, 5000);
	if (rv != 0)
		fail_msg("drive: %d %s", rv, socketd_async_errmsg(a));
	print_message("%d pipelined echoes in %lld ms\n", N_PIPE,
	    (long long)(h_now_ms() - t0));
	assert_int_equal(s.ok, N_PIPE);
	assert_int_equal(s.bad, 0);
	assert_int_equal(s.events[SOCKETD_EV_CONNECTED], 1);
	assert_int_equal(socketd_async_pending(a), 0);
	/* Errors as values: an unknown opcode is a status, not a failure. */
	assert_int_equal(
	    socketd_async_send(a, 0x7f, NULL, 0, on_answer, &s, NULL), 0);
	s.answers = 0;
	assert_int_equal(drive(a, &s.answers, 1, 2000), 0);
	assert_int_equal(s.last_result, SOCKETD_E_OK);
	assert_int_equal(s.status, SOCKETD_STATUS_UNKNOWN_OPCODE);
	assert_int_equal(
	    socketd_async_send(a, 0x100, NULL, 0, NULL, NULL, NULL),
	    SOCKETD_E_INVALID);
	socketd_async_free(a);
}

static void
test_async_connect_refused(void **state)
{
	struct seen s = {0};
	struct socketd_async *a = socketd_async_new(NULL);
	int port = h_free_port(0), rv;

	(void)state;
	assert_non_null(a);
	assert_int_equal(socketd_async_set_handlers(a, on_event, NULL, &s), 0);
	/* Not connected: nothing to queue on. */
	assert_int_equal(socketd_async_send(a, 0, NULL, 0, NULL, NULL, NULL),
	    SOCKETD_E_NOT_CONNECTED);
	rv = socketd_async_connect(a, "127.0.0.1", (unsigned)port);
	if (rv == SOCKETD_E_OK) {
		/* Refused later: the request queued hears it. */
		assert_int_equal(
		    socketd_async_send(a, 0, NULL, 0, on_answer, &s, NULL), 0);
		rv = drive(a, &s.answers, 1, 3000);
		assert_int_equal(s.answers, 1);
		assert_int_equal(s.last_result, SOCKETD_E_CONNECT);
		assert_int_equal(s.events[SOCKETD_EV_CLOSED], 1);
		assert_int_equal(s.last_value, SOCKETD_E_CONNECT);
	}
	assert_int_equal(rv, SOCKETD_E_CONNECT);
	if (strstr(socketd_async_errmsg(a), "refused") == NULL)
		fail_msg("message: %s", socketd_async_errmsg(a));
	assert_int_equal(socketd_async_fd(a), -1);
	assert_int_equal(socketd_async_events(a), 0);
	assert_int_equal(s.events[SOCKETD_EV_CONNECTED], 0);
	socketd_async_free(a);
}

/* A listening socket on 127.0.0.1 for the test to play a server. */
static int
listener(struct h_ctx *t, int *port)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	h_track(t, fd);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Process a until the request is written and the server accepts it. */
static int
accept_request(
    struct h_ctx *t, struct socketd_async *a, int lfd, uint8_t *req, size_t len)
{
	int fd, never = 0;

	(void)drive(a, &never, 1, 100); /* connect and write */
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	h_track(t, fd);
	assert_int_equal(h_recv_exact(fd, req, len, 2000, NULL), 0);
	return fd;
}

static void
test_async_timeout_and_close_mid_answer(void **state)
{
	struct socketd_client *settings = socketd_new();
	struct seen s = {0};
	struct socketd_async *a;
	uint8_t req[12 + 5], part[14] = {0, 0, 0, 13, 1, 1, 0, 0};
	int lfd, port, fd;
	int64_t t0, dt;

	lfd = listener(T(state), &port);
	assert_non_null(settings);
	assert_int_equal(socketd_set_timeout(settings, 300), 0);
	a = async_for(settings, &s, port);
	socketd_free(settings);

	/* A server that never answers: TIMEOUT after 300 ms, closed. */
	assert_int_equal(socketd_async_send(
			     a, SOCKETD_OP_PING, NULL, 0, on_answer, &s, NULL),
	    0);
	t0 = h_now_ms();
	fd = accept_request(T(state), a, lfd, req, 12);
	assert_int_equal(req[5], SOCKETD_OP_PING);
	assert_int_equal(drive(a, &s.answers, 1, 3000), SOCKETD_E_TIMEOUT);
	dt = h_now_ms() - t0;
	assert_int_equal(s.last_result, SOCKETD_E_TIMEOUT);
	assert_true(dt >= 290 && dt < 2000);
	assert_int_equal(s.events[SOCKETD_EV_CLOSED], 1);
	assert_int_equal(socketd_async_fd(a), -1);
	h_close(T(state), fd);

	/* Half an answer, then a close: CLOSED, said so. */
	assert_int_equal(socketd_async_connect(a, "127.0.0.1", (unsigned)port),
	    SOCKETD_E_OK);
	assert_int_equal(socketd_async_send(a, SOCKETD_OP_ECHO, "hello", 5,
			     on_answer, &s, NULL),
	    0);
	fd = accept_request(T(state), a, lfd, req, sizeof(req));
	memcpy(part + 8, req + 8, 4); /* the request_id */
	part[12] = 'h';
	part[13] = 'e';
	assert_int_equal(h_send_all(fd, part, sizeof(part), 1000), 0);
	h_close(T(state), fd);
	assert_int_equal(drive(a, &s.answers, 2, 3000), SOCKETD_E_CLOSED);
	assert_int_equal(s.answers, 2);
	assert_int_equal(s.last_result, SOCKETD_E_CLOSED);
	if (strstr(socketd_async_errmsg(a), "in the middle of an answer") ==
	    NULL)
		fail_msg("message: %s", socketd_async_errmsg(a));
	assert_int_equal(s.events[SOCKETD_EV_CLOSED], 2);
	socketd_async_free(a);
}

static void
test_async_cancelled_on_free(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct seen s = {0}, s2 = {0};
	struct socketd_async *a = async_for(NULL, &s, d->port);
	int i;

	/* Freed with 10 requests pending: each callback once, CANCELLED. */
	for (i = 0; i < 10; i++)
		assert_int_equal(socketd_async_send(a, SOCKETD_OP_PING, NULL, 0,
				     on_answer, &s, NULL),
		    0);
	socketd_async_free(a);
	assert_int_equal(s.answers, 10);
	assert_int_equal(s.last_result, SOCKETD_E_CANCELLED);
	assert_int_equal(s.events[SOCKETD_EV_CLOSED], 0);

	/* Freed from the first answer's callback: the other 4 cancelled. */
	a = async_for(NULL, &s2, d->port);
	for (i = 0; i < 5; i++)
		assert_int_equal(socketd_async_send(a, SOCKETD_OP_PING, NULL, 0,
				     on_answer, &s2, NULL),
		    0);
	s2.free_me = a;
	(void)drive(a, &s2.answers, 1, 3000); /* a is gone after this */
	assert_int_equal(s2.answers, 5);
	assert_int_equal(s2.ok, 1);
	assert_int_equal(s2.last_result, SOCKETD_E_CANCELLED);
}

static void
test_pubsub_blocking(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct socketd_client *sub = lib_connect(d), *pub = lib_connect(d);
	const struct socketd_message *m;
	uint32_t id, id2, n = 99;
	int64_t t0;

	ok(sub, socketd_subscribe(sub, "chat.>", 0, &id), "subscribe");
	ok(sub, socketd_subscribe(sub, "news.*", SOCKETD_SUB_NO_ECHO, &id2),
	    "subscribe news");
	assert_int_not_equal(id, id2);
	ok(pub, socketd_publish(pub, "chat.lobby", "hello", 5, &n), "publish");
	assert_int_equal(n, 1);
	ok(sub, socketd_next_message(sub, 2000, &m), "next message");
	assert_int_equal(m->sub_id, id);
	assert_int_equal(m->lost, 0);
	assert_string_equal(m->topic, "chat.lobby");
	assert_int_equal(m->topic_len, 10);
	assert_int_equal(m->len, 5);
	assert_memory_equal(m->data, "hello", 5);
	/* A message that arrives during a request waits for its turn. */
	ok(pub, socketd_publish(pub, "news.today", "x", 1, &n), "publish");
	assert_int_equal(n, 1);
	h_sleep_ms(50);
	ok(sub, socketd_ping(sub), "ping with a message on its way");
	ok(sub, socketd_next_message(sub, 0, &m), "queued message");
	assert_int_equal(m->sub_id, id2);
	assert_string_equal(m->topic, "news.today");
	/* Own publishes come back, unless NO_ECHO. */
	ok(sub, socketd_publish(sub, "news.today", "y", 1, &n), "self news");
	assert_int_equal(n, 0);
	ok(sub, socketd_publish(sub, "chat.self", "z", 1, &n), "self chat");
	assert_int_equal(n, 1);
	ok(sub, socketd_next_message(sub, 2000, &m), "echo");
	assert_string_equal(m->topic, "chat.self");
	/* A new connection renews the subscriptions; a close ends them. */
	ok(sub, socketd_connect(sub, "127.0.0.1", (unsigned)d->port),
	    "connect again");
	ok(pub, socketd_publish(pub, "chat.again", "r", 1, &n), "publish");
	assert_int_equal(n, 1);
	ok(sub, socketd_next_message(sub, 2000, &m), "after reconnecting");
	assert_string_equal(m->topic, "chat.again");
	/* Errors as values: a bad topic is the server's INVALID_TOPIC. */
	assert_int_equal(
	    socketd_publish(pub, "bad..topic", "", 0, &n), SOCKETD_E_SERVER);
	assert_int_equal(socketd_status(pub), SOCKETD_STATUS_INVALID_TOPIC);
	assert_int_equal(
	    socketd_subscribe(sub, "", 0, NULL), SOCKETD_E_INVALID);
	/* After unsubscribe: nothing; a wait times out, the link stays. */
	ok(sub, socketd_unsubscribe(sub, 0), "unsubscribe all");
	ok(pub, socketd_publish(pub, "chat.lobby", "gone", 4, &n), "publish");
	assert_int_equal(n, 0);
	t0 = h_now_ms();
	assert_int_equal(socketd_next_message(sub, 200, &m), SOCKETD_E_TIMEOUT);
	assert_null(m);
	assert_true(h_now_ms() - t0 >= 190);
	ok(sub, socketd_ping(sub), "ping after a wait that timed out");
	assert_int_equal(socketd_unsubscribe(sub, id), SOCKETD_E_SERVER);
	assert_int_equal(socketd_status(sub), SOCKETD_STATUS_NOT_SUBSCRIBED);
	ok(sub, socketd_subscribe(sub, "chat.>", 0, &id), "subscribe again");
	socketd_close(sub);
	ok(sub, socketd_connect(sub, "127.0.0.1", (unsigned)d->port),
	    "connect after close");
	/*
	 * The server ends the old connection's subscription when it reads
	 * the close, which a slow server (valgrind) may not have done yet:
	 * wait for that, but the new connection must never renew it.
	 */
	t0 = h_now_ms();
	do {
		ok(pub, socketd_publish(pub, "chat.lobby", "none", 4, &n),
		    "publish");
		if (n != 0)
			h_sleep_ms(20);
	} while (n != 0 && h_now_ms() - t0 < 5000);
	assert_int_equal(n, 0);
	assert_int_equal(socketd_next_message(sub, 0, &m), SOCKETD_E_TIMEOUT);
	socketd_free(sub);
	socketd_free(pub);
}

static void
test_pubsub_async(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct socketd_client *pub = lib_connect(d);
	struct seen s = {0};
	struct socketd_async *a = async_for(NULL, &s, d->port);
	uint32_t id, n = 99;

	assert_int_equal(
	    socketd_async_subscribe(a, "room.*", 0, on_answer, &s, &id), 0);
	assert_int_equal(drive(a, &s.answers, 1, 2000), 0);
	assert_int_equal(s.ok, 1);
	assert_int_equal(s.u32, 1); /* subscriptions now */
	ok(pub, socketd_publish(pub, "room.a", "hi there", 8, &n), "publish");
	assert_int_equal(n, 1);
	assert_int_equal(drive(a, &s.messages, 1, 2000), 0);
	assert_int_equal(s.sub_id, id);
	assert_string_equal(s.topic, "room.a");
	assert_string_equal(s.data, "hi there");
	/* Its own publish: the answer (receivers) and the echo. */
	assert_int_equal(
	    socketd_async_publish(a, "room.b", "me", 2, on_answer, &s), 0);
	assert_int_equal(drive(a, &s.messages, 2, 2000), 0);
	assert_int_equal(s.answers, 2);
	assert_int_equal(s.u32, 1);
	assert_string_equal(s.topic, "room.b");
	assert_int_equal(socketd_async_unsubscribe(a, id, on_answer, &s), 0);
	assert_int_equal(drive(a, &s.answers, 3, 2000), 0);
	assert_int_equal(s.u32, 0);
	assert_int_equal(s.messages, 2);
	socketd_async_free(a);
	socketd_free(pub);
}

static void
test_goaway_during_drain(void **state)
{
	static const struct h_opts o = {
	    .extra = "timeouts: { drain = 0.3; shutdown = 4; };"};
	struct h_daemon *d = h_start(T(state), &o);
	struct socketd_client *c = lib_connect(d);
	struct seen s = {0};
	struct socketd_async *a = async_for(NULL, &s, d->port);
	int64_t t0;
	int rv;

	assert_int_equal(socketd_async_send(
			     a, SOCKETD_OP_PING, NULL, 0, on_answer, &s, NULL),
	    0);
	assert_int_equal(drive(a, &s.answers, 1, 2000), 0);
	ok(c, socketd_ping(c), "ping");
	h_signal(d, SIGTERM);
	/* The non-blocking client is told, with the grace period. */
	assert_int_equal(drive(a, &s.events[SOCKETD_EV_GOAWAY], 1, 3000), 0);
	assert_int_equal(s.last_value, 2000);
	assert_string_equal(s.text, "socketd is stopping");
	assert_int_equal(socketd_async_send(a, 0, NULL, 0, NULL, NULL, NULL),
	    SOCKETD_E_GOAWAY);
	/*
	 * The blocking one's GOAWAY may come a moment later (another
	 * worker): wait until it is there, then it is read with the answer.
	 */
	{
		struct pollfd p = {.fd = socketd_fd(c), .events = POLLIN};

		assert_int_equal(poll(&p, 1, 2000), 1);
	}
	ok(c, socketd_ping(c), "ping in the grace period");
	/* ...then sends nothing more on that connection: it reconnects,
	 * which this stopping daemon refuses. */
	rv = socketd_ping(c);
	if (rv != SOCKETD_E_CONNECT)
		fail_msg("ping after GOAWAY: %s (%s)", socketd_strerror(rv),
		    socketd_errmsg(c));
	/* Both connections closed: the daemon stops before the grace ends. */
	socketd_async_close(a);
	t0 = h_now_ms();
	assert_int_equal(h_wait_exit(d, 3000), 0);
	assert_true(h_now_ms() - t0 < 1500);
	socketd_async_free(a);
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

	/* The non-blocking client with the same settings, over TLS. */
	{
		struct seen s = {0};
		struct socketd_async *a = async_for(c, &s, tls_port);
		int i;

		for (i = 0; i < 20; i++)
			assert_int_equal(socketd_async_send(a, SOCKETD_OP_ECHO,
					     "tls", 3, on_answer, &s, NULL),
			    0);
		if (drive(a, &s.answers, 20, 5000) != 0)
			fail_msg("async TLS: %s", socketd_async_errmsg(a));
		assert_int_equal(s.ok, 20);
		assert_int_equal(s.events[SOCKETD_EV_CONNECTED], 1);
		socketd_async_free(a);
	}

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
	{
		struct seen s = {0};
		struct socketd_async *a = async_for(c, &s, tls_port);

		assert_int_equal(
		    socketd_async_send(a, 0, NULL, 0, on_answer, &s, NULL), 0);
		assert_int_equal(drive(a, &s.answers, 1, 3000), SOCKETD_E_TLS);
		assert_int_equal(s.last_result, SOCKETD_E_TLS);
		assert_int_equal(s.events[SOCKETD_EV_CLOSED], 1);
		socketd_async_free(a);
	}

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
	    cmocka_unit_test_setup_teardown(
		test_async_pipelining, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_async_connect_refused, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_async_timeout_and_close_mid_answer, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_async_cancelled_on_free, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pubsub_blocking, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pubsub_async, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_goaway_during_drain, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_libsocketd", tests, h_group_setup, NULL);
}
