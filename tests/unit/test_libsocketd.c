/*
 * test_libsocketd: the public API of libsocketd.so.1 (<socketd/client.h>),
 * linked as a program links it: the shared library and nothing else of
 * this tree.  A scripted fake server on 127.0.0.1 (a thread that accepts
 * one connection and runs a script over it) plays what the real daemon
 * will not: push frames, a wrong request_id, silence, a close in the
 * middle of an answer, OPCODES lists good and bad.  The same API against
 * the real daemon is tests/integration/test_libsocketd.c.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
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

/* ---- a scripted fake server ---- */

struct fake;
typedef void (*script_fn)(struct fake *, int fd);

struct fake {
	int lfd;
	unsigned port;
	pthread_t th;
	script_fn script;
	int mode;             /* set before the thread starts */
	_Atomic int requests; /* counted by the scripts */
	_Atomic int opcodes_asked;
};

struct req {
	uint8_t opcode;
	uint32_t id;
	uint8_t payload[4096];
	size_t len;
};

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int
read_exact(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One request frame; -1 at EOF or on a bad one. */
static int
read_req(int fd, struct req *r)
{
	uint8_t hdr[12];
	uint32_t blen;

	if (read_exact(fd, hdr, sizeof(hdr)) == -1)
		return -1;
	blen = get_u32(hdr);
	if (blen < 8 || blen - 8 > sizeof(r->payload) || hdr[4] != 1)
		return -1;
	r->opcode = hdr[5];
	r->id = get_u32(hdr + 8);
	r->len = blen - 8;
	return read_exact(fd, r->payload, r->len);
}

static void
write_raw(int fd, const void *buf, size_t len)
{
	(void)send(fd, buf, len, MSG_NOSIGNAL);
}

static void
write_frame(int fd, uint8_t opcode, uint16_t status, uint32_t id,
    const void *payload, size_t len)
{
	uint8_t f[12 + 4096];

	assert_true(len <= 4096);
	put_u32(f, (uint32_t)(8 + len));
	f[4] = 1;
	f[5] = opcode;
	f[6] = (uint8_t)(status >> 8);
	f[7] = (uint8_t)status;
	put_u32(f + 8, id);
	if (len > 0)
		memcpy(f + 12, payload, len);
	write_raw(fd, f, 12 + len);
}

/* Wait (bounded) for the client to close its end. */
static void
wait_eof(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b[256];

	while (poll(&p, 1, 5000) == 1 && recv(fd, b, sizeof(b), 0) > 0)
		;
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	struct timeval tv = {.tv_sec = 5};
	int fd;

	if (poll(&p, 1, 5000) != 1)
		return NULL;
	if ((fd = accept(f->lfd, NULL, NULL)) == -1)
		return NULL;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	f->script(f, fd);
	(void)close(fd);
	return NULL;
}

static struct fake *
fake_start_mode(script_fn script, int mode)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->script = script;
	f->mode = mode;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

static struct fake *
fake_start(script_fn script)
{
	return fake_start_mode(script, 0);
}

/* Join the script; its counters (each may be NULL); free f. */
static void
fake_join_counts(struct fake *f, int *requests, int *asked, int *taken)
{
	assert_int_equal(pthread_join(f->th, NULL), 0);
	if (requests != NULL)
		*requests = f->requests;
	if (asked != NULL)
		*asked = f->opcodes_asked;
	if (taken != NULL)
		*taken = f->mode;
	(void)close(f->lfd);
	free(f);
}

static void
fake_join(struct fake *f)
{
	fake_join_counts(f, NULL, NULL, NULL);
}

/* A client connected to f, 2 s timeout. */
static struct socketd_client *
client_for(const struct fake *f)
{
	struct socketd_client *c = socketd_new();

	assert_non_null(c);
	assert_int_equal(socketd_set_timeout(c, 2000), SOCKETD_E_OK);
	if (socketd_connect(c, "127.0.0.1", f->port) != SOCKETD_E_OK)
		fail_msg("connect: %s", socketd_errmsg(c));
	assert_true(socketd_fd(c) >= 0);
	return c;
}

static void
expect_msg(const struct socketd_client *c, const char *part)
{
	if (strstr(socketd_errmsg(c), part) == NULL)
		fail_msg(
		    "message \"%s\" lacks \"%s\"", socketd_errmsg(c), part);
}

/* ---- no server needed ---- */

static void
test_version_and_names(void **state)
{
	int e;

	(void)state;
	assert_int_equal(socketd_client_version(), 0x010100);
	assert_int_equal(
	    socketd_client_version(), SOCKETD_CLIENT_VERSION_NUMBER);
	for (e = SOCKETD_E_OK; e >= SOCKETD_E_CANCELLED; e--)
		assert_string_not_equal(socketd_strerror(e), "unknown error");
	assert_string_equal(socketd_strerror(-99), "unknown error");
	assert_string_equal(socketd_status_name(0), "OK");
	assert_string_equal(socketd_status_name(7), "DENIED");
	assert_string_equal(
	    socketd_status_name(SOCKETD_STATUS_TIMEOUT), "TIMEOUT");
	assert_string_equal(socketd_status_name(9), "OVERLOADED");
	assert_string_equal(socketd_status_name(13), "NOT_SUBSCRIBED");
	assert_string_equal(socketd_status_name(14), "UNKNOWN");
	assert_string_equal(socketd_status_name(0x100), "UNKNOWN");
}

static void
test_null_client_is_an_error(void **state)
{
	const uint8_t *a;
	size_t n;
	unsigned st;

	(void)state;
	assert_int_equal(socketd_connect(NULL, "h", 1), SOCKETD_E_INVALID);
	assert_int_equal(socketd_ping(NULL), SOCKETD_E_INVALID);
	assert_int_equal(
	    socketd_call(NULL, 0, NULL, 0, &st, &a, &n), SOCKETD_E_INVALID);
	assert_int_equal(socketd_set_timeout(NULL, 1), SOCKETD_E_INVALID);
	assert_int_equal(socketd_fd(NULL), -1);
	assert_int_equal(socketd_pending(NULL), 0);
	assert_null(socketd_tls_version(NULL));
	assert_non_null(socketd_errmsg(NULL));
	socketd_close(NULL);
	socketd_free(NULL);
}

static void
test_bad_arguments_are_errors(void **state)
{
	struct socketd_client *c = socketd_new();
	uint32_t id;

	(void)state;
	assert_non_null(c);
	assert_int_equal(socketd_connect(c, NULL, 1), SOCKETD_E_INVALID);
	assert_int_equal(socketd_connect(c, "", 1), SOCKETD_E_INVALID);
	expect_msg(c, "empty host");
	assert_int_equal(socketd_connect(c, "127.0.0.1", 0), SOCKETD_E_INVALID);
	assert_int_equal(
	    socketd_connect(c, "127.0.0.1", 65536), SOCKETD_E_INVALID);
	expect_msg(c, "invalid port 65536");
	assert_int_equal(socketd_set_timeout(c, -1), SOCKETD_E_INVALID);
	expect_msg(c, "invalid timeout -1");
	assert_int_equal(socketd_set_max_frame(c, 4), SOCKETD_E_INVALID);
	assert_int_equal(
	    socketd_set_tls_cert(c, NULL, "k.pem"), SOCKETD_E_INVALID);
	assert_int_equal(socketd_set_tls_cafile(c, ""), SOCKETD_E_INVALID);
	/* Not connected: every request says so, nothing crashes. */
	assert_int_equal(socketd_ping(c), SOCKETD_E_NOT_CONNECTED);
	expect_msg(c, "not connected");
	assert_int_equal(
	    socketd_send(c, 0, NULL, 0, &id), SOCKETD_E_NOT_CONNECTED);
	assert_int_equal(
	    socketd_recv(c, NULL, NULL, NULL, NULL), SOCKETD_E_NOT_CONNECTED);
	assert_int_equal(
	    socketd_opcode(c, "echo", NULL), SOCKETD_E_NOT_CONNECTED);
	assert_int_equal(socketd_peer(c, NULL, 0), SOCKETD_E_NOT_CONNECTED);
	/* A setting that worked before a failed one is kept. */
	assert_int_equal(socketd_set_timeout(c, 0), SOCKETD_E_OK);
	assert_string_equal(socketd_errmsg(c), "");
	socketd_free(c);
}

static void
test_tls_settings_checked_at_connect(void **state)
{
	struct socketd_client *c = socketd_new();

	(void)state;
	assert_non_null(c);
	assert_int_equal(
	    socketd_set_tls_cafile(c, "/nonexistent/ca.pem"), SOCKETD_E_OK);
	/* The file is read at connect, before any connection is tried. */
	assert_int_equal(socketd_connect(c, "127.0.0.1", 9), SOCKETD_E_INVALID);
	expect_msg(c, "/nonexistent/ca.pem");
	assert_int_equal(socketd_set_tls_insecure(c, 1), SOCKETD_E_OK);
	assert_int_equal(socketd_connect(c, "127.0.0.1", 9), SOCKETD_E_INVALID);
	expect_msg(c, "exclude each other");
	assert_int_equal(socketd_fd(c), -1);
	socketd_free(c);
}

static void
test_text_value(void **state)
{
	static const char text[] = "version 0.1.0\npid 42\nuptime_seconds 7\n"
				   "pidfile x\nlast 9";
	const char *v;
	size_t n;

	(void)state;
	assert_int_equal(
	    socketd_text_value(text, sizeof(text) - 1, "pid", &v, &n),
	    SOCKETD_E_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(v, "42", 2);
	assert_int_equal(
	    socketd_text_value(text, sizeof(text) - 1, "last", &v, &n),
	    SOCKETD_E_OK);
	assert_memory_equal(v, "9", 1);
	assert_int_equal(n, 1);
	/* A prefix of a name is not the name. */
	assert_int_equal(
	    socketd_text_value(text, sizeof(text) - 1, "uptime", &v, &n),
	    SOCKETD_E_NOT_FOUND);
	assert_int_equal(
	    socketd_text_value(text, sizeof(text) - 1, "a b", &v, &n),
	    SOCKETD_E_INVALID);
	assert_int_equal(
	    socketd_text_value(NULL, 0, "pid", &v, &n), SOCKETD_E_INVALID);
	assert_int_equal(socketd_text_value(text, 0, "version", &v, &n),
	    SOCKETD_E_NOT_FOUND);
}

static void
test_connect_refused(void **state)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct socketd_client *c = socketd_new();
	int fd;

	(void)state;
	/* A port nobody listens on: bound, then closed. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	(void)close(fd);
	assert_int_equal(socketd_connect(c, "127.0.0.1", ntohs(sa.sin_port)),
	    SOCKETD_E_CONNECT);
	expect_msg(c, "refused");
	assert_int_equal(socketd_fd(c), -1);
	assert_int_equal(socketd_connect(c, "no-such-host.invalid", 7411),
	    SOCKETD_E_CONNECT);
	expect_msg(c, "no-such-host.invalid");
	socketd_free(c);
}

/* ---- against the fake server ---- */

static void
script_pushes_then_pong(struct fake *f, int fd)
{
	struct req r;

	if (read_req(fd, &r) == -1)
		return;
	f->requests++;
	write_frame(fd, SOCKETD_OP_PUBSUB_MESSAGE, 0, 0, "hello", 5);
	write_frame(fd, 0x77, 0, 0, NULL, 0); /* a push nobody knows */
	write_frame(fd, r.opcode, 0, r.id, NULL, 0);
	wait_eof(fd);
}

struct pushes {
	int n;
	unsigned opcodes[4];
	char first[16];
	struct socketd_client *c;
	int reentry;
};

static void
on_push(void *arg, unsigned opcode, const uint8_t *payload, size_t len)
{
	struct pushes *p = arg;

	if (p->n == 0 && len < sizeof(p->first))
		memcpy(p->first, payload, len);
	if (p->n < 4)
		p->opcodes[p->n] = opcode;
	p->n++;
	if (p->c != NULL)
		p->reentry = socketd_ping(p->c);
}

static void
test_push_frames_go_to_the_handler(void **state)
{
	struct fake *f = fake_start(script_pushes_then_pong);
	struct socketd_client *c = client_for(f);
	struct pushes p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(
	    socketd_set_push_handler(c, on_push, &p), SOCKETD_E_OK);
	if (socketd_ping(c) != SOCKETD_E_OK)
		fail_msg("ping: %s", socketd_errmsg(c));
	assert_int_equal(p.n, 2);
	assert_int_equal(p.opcodes[0], SOCKETD_OP_PUBSUB_MESSAGE);
	assert_int_equal(p.opcodes[1], 0x77);
	assert_string_equal(p.first, "hello");
	socketd_free(c);
	fake_join(f);
}

static void
test_push_frames_dropped_without_handler(void **state)
{
	struct fake *f = fake_start(script_pushes_then_pong);
	struct socketd_client *c = client_for(f);

	(void)state;
	if (socketd_ping(c) != SOCKETD_E_OK)
		fail_msg("ping: %s", socketd_errmsg(c));
	assert_int_equal(socketd_status(c), SOCKETD_STATUS_OK);
	socketd_free(c);
	fake_join(f);
}

static void
test_push_handler_cannot_reenter(void **state)
{
	struct fake *f = fake_start(script_pushes_then_pong);
	struct socketd_client *c = client_for(f);
	struct pushes p;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.c = c;
	assert_int_equal(
	    socketd_set_push_handler(c, on_push, &p), SOCKETD_E_OK);
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	assert_int_equal(p.reentry, SOCKETD_E_INVALID);
	socketd_free(c);
	fake_join(f);
}

static void
script_wrong_id(struct fake *f, int fd)
{
	struct req r;

	(void)f;
	if (read_req(fd, &r) == -1)
		return;
	write_frame(fd, r.opcode, 0, r.id + 1, NULL, 0);
	wait_eof(fd);
}

static void
test_wrong_request_id_closes(void **state)
{
	struct fake *f = fake_start(script_wrong_id);
	struct socketd_client *c = client_for(f);

	(void)state;
	assert_int_equal(socketd_ping(c), SOCKETD_E_PROTOCOL);
	expect_msg(c, "request_id");
	/* Closed: a late answer must never reach a later call. */
	assert_int_equal(socketd_fd(c), -1);
	assert_int_equal(socketd_ping(c), SOCKETD_E_NOT_CONNECTED);
	socketd_free(c);
	fake_join(f);
}

static void
script_silent(struct fake *f, int fd)
{
	struct req r;

	(void)f;
	if (read_req(fd, &r) == -1)
		return;
	wait_eof(fd);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
test_silent_server_times_out(void **state)
{
	struct fake *f = fake_start(script_silent);
	struct socketd_client *c = client_for(f);
	int64_t t0, ms;

	(void)state;
	assert_int_equal(socketd_set_timeout(c, 300), SOCKETD_E_OK);
	t0 = now_ms();
	assert_int_equal(socketd_ping(c), SOCKETD_E_TIMEOUT);
	ms = now_ms() - t0;
	if (ms < 250 || ms > 3000)
		fail_msg("timed out after %lld ms, expected about 300",
		    (long long)ms);
	expect_msg(c, "timed out after 300 ms");
	assert_int_equal(socketd_fd(c), -1);
	socketd_free(c);
	fake_join(f);
}

static void
script_half_answer(struct fake *f, int fd)
{
	/* Length 20 (8 + 12 payload bytes), header, 2 payload bytes. */
	uint8_t part[14] = {0, 0, 0, 20, 1, 1, 0, 0, 0, 0, 0, 0, 'h', 'e'};
	struct req r;

	(void)f;
	if (read_req(fd, &r) == -1)
		return;
	put_u32(part + 8, r.id);
	write_raw(fd, part, sizeof(part));
}

static void
test_close_mid_answer(void **state)
{
	struct fake *f = fake_start(script_half_answer);
	struct socketd_client *c = client_for(f);

	(void)state;
	assert_int_equal(socketd_echo(c, "hello world!", 12), SOCKETD_E_CLOSED);
	expect_msg(c, "in the middle of a response");
	assert_int_equal(socketd_fd(c), -1);
	socketd_free(c);
	fake_join(f);
}

static const char opcodes_list[] = "0x00 ping\n0x01 echo\n0x02 info\n"
				   "0x05 opcodes\n0x06 goaway push\n"
				   "0x80 hello.upper\n0x81 hello.sleep\n";

/* OPCODES, then hello.upper requests until EOF. */
static void
script_opcodes(struct fake *f, int fd)
{
	struct req r;
	size_t i;

	while (read_req(fd, &r) == 0) {
		f->requests++;
		if (r.opcode == SOCKETD_OP_OPCODES) {
			f->opcodes_asked++;
			write_frame(fd, r.opcode, 0, r.id, opcodes_list,
			    sizeof(opcodes_list) - 1);
		} else if (r.opcode == 0x80) {
			for (i = 0; i < r.len; i++)
				if (r.payload[i] >= 'a' && r.payload[i] <= 'z')
					r.payload[i] -= 'a' - 'A';
			write_frame(fd, r.opcode, 0, r.id, r.payload, r.len);
		} else {
			write_frame(fd, r.opcode, 1, r.id, "unknown", 7);
		}
	}
}

static void
test_opcodes_resolve_names(void **state)
{
	struct fake *f = fake_start(script_opcodes);
	struct socketd_client *c = client_for(f);
	const uint8_t *a;
	const char *text;
	unsigned st, op;
	size_t n;

	(void)state;
	assert_int_equal(socketd_opcode(c, "hello.upper", &op), SOCKETD_E_OK);
	assert_int_equal(op, 0x80);
	if (socketd_call_name(c, "hello.upper", "abc", 3, &st, &a, &n) != 0)
		fail_msg("call_name: %s", socketd_errmsg(c));
	assert_int_equal(st, SOCKETD_STATUS_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(a, "ABC", 3);
	assert_int_equal(socketd_opcode(c, "hello.sleep", &op), SOCKETD_E_OK);
	assert_int_equal(op, 0x81);
	/* A push is listed, but not something to ask for. */
	assert_int_equal(socketd_opcode(c, "goaway", &op), SOCKETD_E_INVALID);
	expect_msg(c, "push");
	assert_int_equal(socketd_opcode(c, "nope", &op), SOCKETD_E_NOT_FOUND);
	expect_msg(c, "no opcode named 'nope'");
	assert_int_equal(socketd_opcode(c, "Bad Name", &op), SOCKETD_E_INVALID);
	assert_int_equal(socketd_opcode(c, "", &op), SOCKETD_E_INVALID);
	assert_int_equal(socketd_opcodes(c, &text, &n), SOCKETD_E_OK);
	assert_string_equal(text, opcodes_list);
	assert_int_equal(n, sizeof(opcodes_list) - 1);
	/* Asked once for the whole connection. */
	assert_int_equal(f->opcodes_asked, 1);
	assert_true(socketd_fd(c) >= 0);
	socketd_free(c);
	fake_join(f);
}

/* A protocol 1.0 server: every request answered, OPCODES unknown. */
static void
script_v10(struct fake *f, int fd)
{
	static const char msg[] = "unknown opcode 0x05";
	struct req r;

	(void)f;
	while (read_req(fd, &r) == 0) {
		if (r.opcode == SOCKETD_OP_OPCODES)
			write_frame(
			    fd, r.opcode, 1, r.id, msg, sizeof(msg) - 1);
		else
			write_frame(fd, r.opcode, 0, r.id, NULL, 0);
	}
}

static void
test_no_opcodes_is_a_clear_error(void **state)
{
	struct fake *f = fake_start(script_v10);
	struct socketd_client *c = client_for(f);
	unsigned op;

	(void)state;
	assert_int_equal(
	    socketd_call_name(c, "hello.upper", "x", 1, NULL, NULL, NULL),
	    SOCKETD_E_NO_OPCODES);
	expect_msg(c, "does not serve OPCODES");
	expect_msg(c, "UNKNOWN_OPCODE");
	assert_int_equal(socketd_opcode(c, "ping", &op), SOCKETD_E_NO_OPCODES);
	/* The connection is fine for everything else. */
	assert_true(socketd_fd(c) >= 0);
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	socketd_free(c);
	fake_join(f);
}

static void
script_bad_opcodes(struct fake *f, int fd)
{
	static const char bad[] = "0x00 ping\n0x1 echo\n";
	struct req r;

	(void)f;
	if (read_req(fd, &r) == -1)
		return;
	write_frame(fd, r.opcode, 0, r.id, bad, sizeof(bad) - 1);
	wait_eof(fd);
}

static void
test_malformed_opcodes_is_a_protocol_error(void **state)
{
	struct fake *f = fake_start(script_bad_opcodes);
	struct socketd_client *c = client_for(f);

	(void)state;
	assert_int_equal(socketd_opcodes(c, NULL, NULL), SOCKETD_E_PROTOCOL);
	expect_msg(c, "malformed line 2");
	assert_int_equal(socketd_fd(c), -1);
	socketd_free(c);
	fake_join(f);
}

/* PING: BAD_REQUEST; ECHO: other bytes; TIME: 4 bytes (mode 1) or 8. */
static void
script_wrong_answers(struct fake *f, int fd)
{
	static const uint8_t t8[8] = {0, 0, 0, 1, 0, 0, 0, 2};
	struct req r;

	while (read_req(fd, &r) == 0) {
		f->requests++;
		if (r.opcode == SOCKETD_OP_PING)
			write_frame(fd, r.opcode, 2, r.id, "nope\n", 5);
		else if (r.opcode == SOCKETD_OP_ECHO)
			write_frame(fd, r.opcode, 0, r.id, "xyz", 3);
		else if (r.opcode == SOCKETD_OP_TIME && f->mode == 1)
			write_frame(fd, r.opcode, 0, r.id, t8, 4);
		else
			write_frame(fd, r.opcode, 0, r.id, t8, 8);
	}
}

static void
test_error_status_and_wrong_answers(void **state)
{
	struct fake *f = fake_start(script_wrong_answers);
	struct socketd_client *c = client_for(f);
	uint64_t ns = 0;

	(void)state;
	assert_int_equal(socketd_ping(c), SOCKETD_E_SERVER);
	assert_int_equal(socketd_status(c), SOCKETD_STATUS_BAD_REQUEST);
	expect_msg(c, "ping: server answered BAD_REQUEST: nope");
	assert_true(socketd_fd(c) >= 0); /* an error status: still open */
	assert_int_equal(socketd_echo(c, "abc", 3), SOCKETD_E_PROTOCOL);
	expect_msg(c, "differ");
	assert_int_equal(socketd_fd(c), -1);
	socketd_free(c);
	fake_join(f);

	f = fake_start_mode(script_wrong_answers, 1);
	c = client_for(f);
	assert_int_equal(socketd_time(c, &ns), SOCKETD_E_PROTOCOL);
	expect_msg(c, "expected 8");
	socketd_free(c);
	fake_join(f);

	f = fake_start_mode(script_wrong_answers, 2);
	c = client_for(f);
	assert_int_equal(socketd_time(c, &ns), SOCKETD_E_OK);
	assert_int_equal(ns, (uint64_t)1 << 32 | 2);
	socketd_free(c);
	fake_join(f);
}

/* Read n requests, then answer them all, in order, with their ids. */
static void
script_batch(struct fake *f, int fd)
{
	struct req r[8];
	int i;

	for (i = 0; i < 8; i++) {
		if (read_req(fd, &r[i]) == -1)
			return;
		f->requests++;
	}
	for (i = 0; i < 8; i++)
		write_frame(
		    fd, r[i].opcode, 0, r[i].id, r[i].payload, r[i].len);
	wait_eof(fd);
}

static void
test_pipelining_in_order(void **state)
{
	struct fake *f = fake_start(script_batch);
	struct socketd_client *c = client_for(f);
	uint32_t ids[8], id;
	const uint8_t *a;
	unsigned st;
	size_t n;
	char p[8];
	int i;

	(void)state;
	for (i = 0; i < 8; i++) {
		(void)snprintf(p, sizeof(p), "m%d", i);
		assert_int_equal(
		    socketd_send(c, SOCKETD_OP_ECHO, p, strlen(p), &ids[i]),
		    SOCKETD_E_OK);
	}
	assert_int_equal(socketd_pending(c), 8);
	/* A plain call would take a pipelined answer for its own. */
	assert_int_equal(socketd_ping(c), SOCKETD_E_INVALID);
	expect_msg(c, "8 pipelined answer(s) pending");
	for (i = 0; i < 8; i++) {
		if (socketd_recv(c, &id, &st, &a, &n) != SOCKETD_E_OK)
			fail_msg("recv %d: %s", i, socketd_errmsg(c));
		(void)snprintf(p, sizeof(p), "m%d", i);
		assert_int_equal(id, ids[i]);
		assert_int_equal(st, SOCKETD_STATUS_OK);
		assert_int_equal(n, strlen(p));
		assert_memory_equal(a, p, n);
	}
	assert_int_equal(socketd_pending(c), 0);
	assert_int_equal(
	    socketd_recv(c, NULL, NULL, NULL, NULL), SOCKETD_E_INVALID);
	socketd_free(c);
	fake_join(f);
}

/* A refused connection: BUSY, request_id 0, then close. */
static void
script_busy(struct fake *f, int fd)
{
	static const char msg[] = "max_connections (1) reached";

	(void)f;
	write_frame(fd, 0, SOCKETD_STATUS_BUSY, 0, msg, sizeof(msg) - 1);
	(void)shutdown(fd, SHUT_WR);
	wait_eof(fd);
}

static void
test_busy_refusal_answers_the_call(void **state)
{
	struct fake *f = fake_start(script_busy);
	struct socketd_client *c = client_for(f);

	(void)state;
	assert_int_equal(socketd_ping(c), SOCKETD_E_SERVER);
	assert_int_equal(socketd_status(c), SOCKETD_STATUS_BUSY);
	expect_msg(c, "BUSY: max_connections (1) reached");
	socketd_free(c);
	fake_join(f);
}

/* An answer bigger than the client's max frame. */
static void
script_big(struct fake *f, int fd)
{
	static uint8_t big[4000];
	struct req r;

	(void)f;
	if (read_req(fd, &r) == -1)
		return;
	write_frame(fd, r.opcode, 0, r.id, big, sizeof(big));
	wait_eof(fd);
}

static void
test_answer_over_max_frame(void **state)
{
	struct fake *f = fake_start(script_big);
	struct socketd_client *c = client_for(f);

	(void)state;
	assert_int_equal(socketd_set_max_frame(c, 1000), SOCKETD_E_OK);
	assert_int_equal(socketd_call(c, 0x42, NULL, 0, NULL, NULL, NULL),
	    SOCKETD_E_PROTOCOL);
	expect_msg(c, "more than the limit of 1000 bytes");
	socketd_free(c);
	fake_join(f);
}

static void
test_request_arguments_checked(void **state)
{
	struct fake *f = fake_start(script_v10);
	struct socketd_client *c = client_for(f);

	(void)state;
	assert_int_equal(
	    socketd_call(c, 256, NULL, 0, NULL, NULL, NULL), SOCKETD_E_INVALID);
	expect_msg(c, "invalid opcode 256");
	assert_int_equal(
	    socketd_call(c, 1, NULL, 5, NULL, NULL, NULL), SOCKETD_E_INVALID);
	assert_int_equal(socketd_echo(c, NULL, 3), SOCKETD_E_INVALID);
	/* None of that touched the connection. */
	assert_true(socketd_fd(c) >= 0);
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	socketd_free(c);
	fake_join(f);
}

/* ---- GOAWAY, lost connections, pub/sub pushes (libsocketd 1.1) ---- */

/* The next connection on f's listener (scripts that take several). */
static int
fake_accept(struct fake *f)
{
	struct pollfd p = {.fd = f->lfd, .events = POLLIN};
	struct timeval tv = {.tv_sec = 5};
	int fd;

	if (poll(&p, 1, 5000) != 1 || (fd = accept(f->lfd, NULL, NULL)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	f->mode++; /* connections taken */
	return fd;
}

/* Answer PINGs on fd until EOF. */
static void
pong_until_eof(struct fake *f, int fd)
{
	struct req r;

	while (read_req(fd, &r) == 0) {
		f->requests++;
		write_frame(fd, r.opcode, 0, r.id, NULL, 0);
	}
}

static void
script_goaway(struct fake *f, int fd)
{
	uint8_t ga[4 + 3] = {0, 0, 3, 0xe8, 'b', 'y', 'e'}; /* 1000 ms */
	struct req r;
	int fd2;

	if (read_req(fd, &r) == -1)
		return;
	write_frame(fd, SOCKETD_OP_GOAWAY, 0, 0, ga, sizeof(ga));
	write_frame(fd, r.opcode, 0, r.id, NULL, 0);
	/* A client that knows GOAWAY sends nothing more here. */
	while (read_req(fd, &r) == 0)
		f->opcodes_asked++;
	if ((fd2 = fake_accept(f)) == -1)
		return;
	pong_until_eof(f, fd2);
	(void)close(fd2);
}

static void
test_goaway_reconnects_and_carries_on(void **state)
{
	struct fake *f = fake_start(script_goaway);
	struct socketd_client *c = client_for(f);
	struct pushes p = {0};
	int asked = -1, taken = -1;

	(void)state;
	assert_int_equal(socketd_set_push_handler(c, on_push, &p), 0);
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	assert_int_equal(p.n, 1); /* the handler hears of it too */
	assert_int_equal(p.opcodes[0], SOCKETD_OP_GOAWAY);
	/* The next requests go out on a new connection. */
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	socketd_free(c);
	fake_join_counts(f, NULL, &asked, &taken);
	assert_int_equal(asked, 0); /* nothing sent after GOAWAY */
	assert_int_equal(taken, 1); /* one new connection */
}

/*
 * conn 1 closes before answering a ping; conn 2 answers it, then closes
 * before answering a module call; conn 3 closes on the module call too;
 * conn 4 answers it.
 */
static void
script_boundary_closes(struct fake *f, int fd)
{
	struct req r;
	int c2, c3, c4;

	if (read_req(fd, &r) == -1)
		return;
	f->requests++;
	(void)shutdown(fd, SHUT_RDWR); /* EOF; fake_main closes it */
	if ((c2 = fake_accept(f)) == -1)
		return;
	if (read_req(c2, &r) == 0) {
		f->requests++;
		write_frame(c2, r.opcode, 0, r.id, NULL, 0);
	}
	if (read_req(c2, &r) == 0)
		f->requests++;
	(void)close(c2);
	if ((c3 = fake_accept(f)) == -1)
		return;
	if (read_req(c3, &r) == 0)
		f->requests++;
	(void)close(c3);
	if ((c4 = fake_accept(f)) == -1)
		return;
	if (read_req(c4, &r) == 0) {
		f->requests++;
		write_frame(c4, r.opcode, 0, r.id, "done", 4);
	}
	wait_eof(c4);
	(void)close(c4);
}

static void
test_boundary_close_retries_idempotent_only(void **state)
{
	struct fake *f = fake_start(script_boundary_closes);
	struct socketd_client *c = client_for(f);
	const uint8_t *a;
	size_t n;
	unsigned st;
	int requests = -1, taken = -1;

	(void)state;
	/* PING is idempotent: sent again on a new connection. */
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK);
	/* A module call may have run: not sent twice. */
	assert_int_equal(
	    socketd_call(c, 0x80, "x", 1, &st, &a, &n), SOCKETD_E_CLOSED);
	assert_int_equal(socketd_fd(c), -1);
	/* Unless the program says it may be. */
	assert_int_equal(socketd_set_retry(c, 1), SOCKETD_E_OK);
	assert_int_equal(socketd_connect(c, "127.0.0.1", f->port), 0);
	assert_int_equal(
	    socketd_call(c, 0x80, "x", 1, &st, &a, &n), SOCKETD_E_OK);
	assert_int_equal(st, SOCKETD_STATUS_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(a, "done", 4);
	socketd_free(c);
	fake_join_counts(f, &requests, NULL, &taken);
	assert_int_equal(requests, 5);
	assert_int_equal(taken, 3); /* connections after the first */
}

static void
script_pubsub(struct fake *f, int fd)
{
	uint8_t ans[4] = {0, 0, 0, 1}, msg[64];
	struct req r;
	uint32_t sub = 0;

	while (read_req(fd, &r) == 0) {
		f->requests++;
		if (r.opcode == SOCKETD_OP_PUBSUB_SUBSCRIBE && r.len >= 4)
			sub = get_u32(r.payload);
		if (r.opcode == SOCKETD_OP_PUBSUB_PUBLISH) {
			/* The echo before the answer, lost 2: a push. */
			put_u32(msg, sub);
			put_u32(msg + 4, 2);
			msg[8] = 0;
			msg[9] = 3;
			memcpy(msg + 10, "t.x", 3);
			memcpy(msg + 13, "data", 4);
			write_frame(
			    fd, SOCKETD_OP_PUBSUB_MESSAGE, 0, 0, msg, 17);
			ans[3] = 7;
		}
		write_frame(fd, r.opcode, 0, r.id, ans, 4);
	}
}

static void
test_messages_are_never_answers(void **state)
{
	struct fake *f = fake_start(script_pubsub);
	struct socketd_client *c = client_for(f);
	const struct socketd_message *m;
	uint32_t id = 0, n = 0;

	(void)state;
	assert_int_equal(socketd_subscribe(c, "t.*", 0, &id), SOCKETD_E_OK);
	assert_int_not_equal(id, 0);
	assert_int_equal(
	    socketd_publish(c, "t.x", "data", 4, &n), SOCKETD_E_OK);
	assert_int_equal(n, 7);
	assert_int_equal(socketd_next_message(c, 0, &m), SOCKETD_E_OK);
	assert_int_equal(m->sub_id, id);
	assert_int_equal(m->lost, 2);
	assert_string_equal(m->topic, "t.x");
	assert_int_equal(m->len, 4);
	assert_memory_equal(m->data, "data", 4);
	assert_int_equal(socketd_next_message(c, 0, &m), SOCKETD_E_TIMEOUT);
	assert_null(m);
	assert_true(socketd_fd(c) >= 0);
	assert_int_equal(socketd_next_message(c, -2, &m), SOCKETD_E_INVALID);
	socketd_free(c);
	fake_join(f);
}

/* Answer r OK with a u32 count (subscriptions, receivers). */
static void
answer_count(int fd, const struct req *r, uint32_t n)
{
	uint8_t ans[4];

	put_u32(ans, n);
	write_frame(fd, r->opcode, 0, r->id, ans, 4);
}

/*
 * conn 1: SUBSCRIBE, then a PING answered after a GOAWAY.  conn 2: the
 * renewed SUBSCRIBE, then the new one; f->requests = first id * 100 +
 * second id on conn 2.
 */
static void
script_resubscribe(struct fake *f, int fd)
{
	uint8_t ga[4] = {0, 0, 0, 100};
	struct req r;
	uint32_t ids[2] = {0, 0};
	int fd2, i;

	if (read_req(fd, &r) == -1)
		return;
	answer_count(fd, &r, 1);
	if (read_req(fd, &r) == -1)
		return;
	write_frame(fd, SOCKETD_OP_GOAWAY, 0, 0, ga, 4);
	write_frame(fd, r.opcode, 0, r.id, NULL, 0);
	while (read_req(fd, &r) == 0)
		f->opcodes_asked++;
	if ((fd2 = fake_accept(f)) == -1)
		return;
	for (i = 0; i < 2 && read_req(fd2, &r) == 0; i++) {
		if (r.opcode == SOCKETD_OP_PUBSUB_SUBSCRIBE && r.len > 8)
			ids[i] = get_u32(r.payload);
		answer_count(fd2, &r, (uint32_t)i + 1);
	}
	f->requests = (int)(ids[0] * 100 + ids[1]);
	wait_eof(fd2);
	(void)close(fd2);
}

static void
test_goaway_renews_subscriptions(void **state)
{
	struct fake *f = fake_start(script_resubscribe);
	struct socketd_client *c = client_for(f);
	uint32_t a = 0, b = 0;
	int requests = -1, asked = -1;

	(void)state;
	assert_int_equal(socketd_subscribe(c, "a.>", 0, &a), SOCKETD_E_OK);
	assert_int_equal(socketd_ping(c), SOCKETD_E_OK); /* GOAWAY comes */
	/* On a new connection: a renewed first, then b, each once. */
	assert_int_equal(socketd_subscribe(c, "b.>", 0, &b), SOCKETD_E_OK);
	assert_int_not_equal(a, b);
	socketd_free(c);
	fake_join_counts(f, &requests, &asked, NULL);
	assert_int_equal(asked, 0);
	assert_int_equal(requests, (int)(a * 100 + b));
}

static void
script_slow_consumer(struct fake *f, int fd)
{
	uint8_t notice[2 + 8] = {0, 1, 't', 'o', 'o', ' ', 's', 'l', 'o', 'w'};
	struct req r;

	(void)f;
	if (read_req(fd, &r) == -1)
		return;
	answer_count(fd, &r, 1);
	write_frame(fd, SOCKETD_OP_PUBSUB_NOTICE, 0, 0, notice, sizeof(notice));
	(void)shutdown(fd, SHUT_RDWR);
}

static void
test_slow_consumer_notice_ends_the_wait(void **state)
{
	struct fake *f = fake_start(script_slow_consumer);
	struct socketd_client *c = client_for(f);
	const struct socketd_message *m;
	uint32_t id;

	(void)state;
	assert_int_equal(socketd_subscribe(c, "a.>", 0, &id), SOCKETD_E_OK);
	assert_int_equal(socketd_next_message(c, 2000, &m), SOCKETD_E_CLOSED);
	expect_msg(c, "slow consumer: too slow");
	assert_int_equal(socketd_fd(c), -1);
	socketd_free(c);
	fake_join(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version_and_names),
	    cmocka_unit_test(test_null_client_is_an_error),
	    cmocka_unit_test(test_bad_arguments_are_errors),
	    cmocka_unit_test(test_tls_settings_checked_at_connect),
	    cmocka_unit_test(test_text_value),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test(test_push_frames_go_to_the_handler),
	    cmocka_unit_test(test_push_frames_dropped_without_handler),
	    cmocka_unit_test(test_push_handler_cannot_reenter),
	    cmocka_unit_test(test_wrong_request_id_closes),
	    cmocka_unit_test(test_silent_server_times_out),
	    cmocka_unit_test(test_close_mid_answer),
	    cmocka_unit_test(test_opcodes_resolve_names),
	    cmocka_unit_test(test_no_opcodes_is_a_clear_error),
	    cmocka_unit_test(test_malformed_opcodes_is_a_protocol_error),
	    cmocka_unit_test(test_error_status_and_wrong_answers),
	    cmocka_unit_test(test_pipelining_in_order),
	    cmocka_unit_test(test_busy_refusal_answers_the_call),
	    cmocka_unit_test(test_answer_over_max_frame),
	    cmocka_unit_test(test_request_arguments_checked),
	    cmocka_unit_test(test_goaway_reconnects_and_carries_on),
	    cmocka_unit_test(test_boundary_close_retries_idempotent_only),
	    cmocka_unit_test(test_messages_are_never_answers),
	    cmocka_unit_test(test_goaway_renews_subscriptions),
	    cmocka_unit_test(test_slow_consumer_notice_ends_the_wait),
	};

	return cmocka_run_group_tests_name("libsocketd", tests, NULL, NULL);
}
