/*
 * test_sdclient: the client library against the other end of a socketpair
 * (framing, timeouts, EOF, request_id checks) and against a listening
 * socket on 127.0.0.1 port 0 (connect).  A forked child plays a slow
 * server where the client must wait while bytes trickle in.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

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

#include "proto.h"
#include "sdclient.h"

/* The client's end is wrapped in c; the test plays the server on peer. */
struct pair {
	struct sdc c;
	int peer;
};

static int
setup_pair(void **state)
{
	struct pair *p;
	int sv[2];

	p = calloc(1, sizeof(*p));
	assert_non_null(p);
	assert_int_equal(
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	sdc_attach(&p->c, sv[0], 2000);
	p->peer = sv[1];
	*state = p;
	return 0;
}

static int
teardown_pair(void **state)
{
	struct pair *p = *state;

	sdc_close(&p->c);
	if (p->peer >= 0)
		(void)close(p->peer);
	free(p);
	return 0;
}

static void
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		assert_true(n > 0);
		b += n;
		len -= (size_t)n;
	}
}

static void
read_all(int fd, void *buf, size_t len)
{
	uint8_t *b = buf;
	ssize_t n;

	while (len > 0) {
		n = read(fd, b, len);
		if (n == -1 && errno == EINTR)
			continue;
		assert_true(n > 0);
		b += n;
		len -= (size_t)n;
	}
}

/* Encode a response into buf; return its length. */
static size_t
make_resp(uint8_t *buf, size_t cap, uint8_t opcode, uint16_t status,
    uint32_t id, const char *payload)
{
	size_t n;

	n = proto_encode_resp(buf, cap, opcode, status, id, payload,
	    payload != NULL ? strlen(payload) : 0);
	assert_true(n <= cap);
	return n;
}

static void
write_resp(
    int fd, uint8_t opcode, uint16_t status, uint32_t id, const char *payload)
{
	uint8_t buf[256];

	write_all(
	    fd, buf, make_resp(buf, sizeof(buf), opcode, status, id, payload));
}

static void
assert_payload(const struct proto_resp *r, const char *want)
{
	assert_int_equal(r->payload_len, strlen(want));
	assert_memory_equal(r->payload, want, strlen(want));
}

static long
elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void
test_send_encodes_request(void **state)
{
	/* clang-format off */
	static const uint8_t want[] = {
		0, 0, 0, 11,		/* length: header + 3 */
		1,			/* version */
		PROTO_OP_ECHO,		/* opcode */
		0, 0,			/* flags */
		0x01, 0x02, 0x03, 0x04,	/* request_id */
		'a', 'b', 'c',		/* payload */
	};
	/* clang-format on */
	struct pair *p = *state;
	uint8_t got[sizeof(want)];
	char err[SDC_ERRLEN];

	assert_int_equal(
	    sdc_send(&p->c, PROTO_OP_ECHO, 0x01020304, "abc", 3, err), 0);
	read_all(p->peer, got, sizeof(got));
	assert_memory_equal(got, want, sizeof(want));
}

static void
test_send_large_payload(void **state)
{
	struct pair *p = *state;
	char err[SDC_ERRLEN];
	uint8_t hdr[PROTO_FRAME_MIN], *pl, *got;
	size_t len = (size_t)64 * 1024, i;

	pl = malloc(len);
	got = malloc(len);
	assert_non_null(pl);
	assert_non_null(got);
	for (i = 0; i < len; i++)
		pl[i] = (uint8_t)(i * 7);
	assert_int_equal(sdc_send(&p->c, PROTO_OP_ECHO, 9, pl, len, err), 0);
	read_all(p->peer, hdr, sizeof(hdr));
	assert_int_equal(proto_get_u32(hdr), PROTO_HDR_SIZE + len);
	assert_int_equal(proto_get_u32(hdr + 8), 9);
	read_all(p->peer, got, len);
	assert_memory_equal(got, pl, len);
	free(pl);
	free(got);
}

static void
test_send_raw_sends_bytes_as_given(void **state)
{
	struct pair *p = *state;
	char err[SDC_ERRLEN];
	uint8_t got[3];

	assert_int_equal(sdc_send_raw(&p->c, "\x00\x00\x01", 3, err), 0);
	read_all(p->peer, got, sizeof(got));
	assert_memory_equal(got, "\x00\x00\x01", 3);
}

static void
test_recv_reassembles_one_byte_at_a_time(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	struct timespec pause = {0, 2 * 1000 * 1000};
	char err[SDC_ERRLEN];
	uint8_t frame[64];
	size_t n, i;
	pid_t pid;
	int status;

	n = make_resp(
	    frame, sizeof(frame), PROTO_OP_ECHO, PROTO_OK, 77, "hello");
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		/* The slow server: one byte, a pause, the next byte... */
		for (i = 0; i < n; i++) {
			if (write(p->peer, frame + i, 1) != 1)
				_exit(1);
			(void)nanosleep(&pause, NULL);
		}
		_exit(0);
	}
	assert_int_equal(sdc_recv(&p->c, &r, err), 0);
	assert_int_equal(r.version, PROTO_VERSION);
	assert_int_equal(r.opcode, PROTO_OP_ECHO);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.request_id, 77);
	assert_payload(&r, "hello");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_recv_times_out_when_nothing_comes(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	struct timespec t0;
	char err[SDC_ERRLEN];
	long ms;

	p->c.timeout_ms = 200;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	ms = elapsed_ms(&t0);
	assert_string_equal(
	    err, "timed out after 200 ms waiting for a response");
	assert_true(ms >= 190);
	assert_true(ms < 1500);
}

static void
test_recv_goes_on_after_timeout(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];
	uint8_t frame[64];
	size_t n;

	n = make_resp(frame, sizeof(frame), PROTO_OP_PING, PROTO_OK, 5, "xyz");
	p->c.timeout_ms = 50;
	write_all(p->peer, frame, 6);
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_non_null(strstr(err, "timed out"));
	write_all(p->peer, frame + 6, n - 6);
	assert_int_equal(sdc_recv(&p->c, &r, err), 0);
	assert_int_equal(r.request_id, 5);
	assert_payload(&r, "xyz");
}

static void
test_recv_two_frames_in_one_read(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];
	uint8_t frames[128];
	size_t n;

	n = make_resp(
	    frames, sizeof(frames), PROTO_OP_ECHO, PROTO_OK, 1, "first");
	n += make_resp(frames + n, sizeof(frames) - n, PROTO_OP_ECHO, PROTO_OK,
	    2, "second");
	write_all(p->peer, frames, n);
	assert_int_equal(sdc_recv(&p->c, &r, err), 0);
	assert_int_equal(r.request_id, 1);
	assert_payload(&r, "first");
	assert_int_equal(sdc_recv(&p->c, &r, err), 0);
	assert_int_equal(r.request_id, 2);
	assert_payload(&r, "second");
	/* Nothing is left over: the next receive waits. */
	p->c.timeout_ms = 20;
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_non_null(strstr(err, "timed out"));
}

static void
test_recv_grows_buffer_for_large_frame(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];
	size_t len = 100 * 1000, n;
	uint8_t *frame;
	char *pl;
	pid_t pid;
	int status;

	pl = malloc(len + 1);
	frame = malloc(len + PROTO_FRAME_MIN);
	assert_non_null(pl);
	assert_non_null(frame);
	memset(pl, 'q', len);
	pl[len] = '\0';
	n = make_resp(
	    frame, len + PROTO_FRAME_MIN, PROTO_OP_ECHO, PROTO_OK, 3, pl);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		ssize_t w;
		size_t off = 0;

		while (off < n) {
			if ((w = write(p->peer, frame + off, n - off)) <= 0)
				break;
			off += (size_t)w;
		}
		/* Free the copies too, or valgrind counts them in the child. */
		free(pl);
		free(frame);
		_exit(off == n ? 0 : 1);
	}
	assert_int_equal(sdc_recv(&p->c, &r, err), 0);
	assert_payload(&r, pl);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(pl);
	free(frame);
}

static void
test_recv_eof_is_connection_closed(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	(void)close(p->peer);
	p->peer = -1;
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_string_equal(err, "connection closed by server");
}

static void
test_recv_eof_mid_frame(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	write_all(p->peer, "\x00\x00\x00\x08\x01\x00", 6);
	(void)close(p->peer);
	p->peer = -1;
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_non_null(strstr(err, "connection closed by server"));
}

static void
test_recv_rejects_frame_over_max_frame(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	p->c.max_frame = 64;
	write_all(p->peer, "\x00\x00\x03\xe8", 4); /* 1000 */
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_string_equal(err,
	    "server sent a response of 1000 bytes, "
	    "more than the limit of 64 bytes");
}

static void
test_recv_spots_a_text_protocol(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	write_all(p->peer, "HTTP/1.1 400 Bad Request\r\n", 26);
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_non_null(strstr(err, "not a socketd server"));
}

static void
test_recv_rejects_short_body(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	write_all(p->peer, "\x00\x00\x00\x03\x01\x00\x00", 7);
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_non_null(strstr(err, "malformed response"));
}

static void
test_recv_rejects_other_version(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];
	uint8_t frame[64];
	size_t n;

	n = make_resp(frame, sizeof(frame), PROTO_OP_PING, PROTO_OK, 1, NULL);
	frame[PROTO_LEN_SIZE] = 2;
	write_all(p->peer, frame, n);
	assert_int_equal(sdc_recv(&p->c, &r, err), -1);
	assert_non_null(strstr(err, "protocol version 2"));
}

static void
test_call_round_trip(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];
	uint8_t req[PROTO_FRAME_MIN + 2];

	/* The answers wait in the socket before the requests are sent. */
	write_resp(p->peer, PROTO_OP_ECHO, PROTO_OK, 1, "hi");
	write_resp(p->peer, PROTO_OP_PING, PROTO_OK, 2, NULL);
	assert_int_equal(sdc_call(&p->c, PROTO_OP_ECHO, "hi", 2, &r, err), 0);
	assert_int_equal(r.status, PROTO_OK);
	assert_payload(&r, "hi");
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), 0);
	assert_int_equal(r.request_id, 2);

	read_all(p->peer, req, sizeof(req));
	assert_int_equal(req[5], PROTO_OP_ECHO);
	assert_int_equal(proto_get_u32(req + 8), 1);
	read_all(p->peer, req, PROTO_FRAME_MIN);
	assert_int_equal(req[5], PROTO_OP_PING);
	assert_int_equal(proto_get_u32(req + 8), 2);
}

static void
test_call_rejects_request_id_mismatch(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	write_resp(p->peer, PROTO_OP_PING, PROTO_OK, 99, NULL);
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), -1);
	assert_string_equal(err, "server answered request_id 99, expected 1");
}

static void
test_call_rejects_opcode_mismatch(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	write_resp(p->peer, PROTO_OP_TIME, PROTO_OK, 1, NULL);
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), -1);
	assert_non_null(strstr(err, "opcode 4"));
}

static void
test_call_takes_ok_with_request_id_zero_for_a_push(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	/*
	 * Protocol v1.1: status OK with request_id 0 (which no request
	 * carries) is a push, not the answer: skipped; the answer never
	 * comes here.
	 */
	write_resp(p->peer, PROTO_OP_PING, PROTO_OK, 0, NULL);
	(void)close(p->peer);
	p->peer = -1;
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), -1);
	assert_non_null(strstr(err, "closed"));
	assert_false(p->c.goaway);
}

static void
test_call_accepts_busy_with_request_id_zero(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	write_resp(p->peer, 0, PROTO_BUSY, 0, "too many connections");
	assert_int_equal(sdc_call(&p->c, PROTO_OP_TIME, NULL, 0, &r, err), 0);
	assert_int_equal(r.status, PROTO_BUSY);
	assert_payload(&r, "too many connections");
}

static void
test_call_skips_pushes_and_remembers_goaway(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];
	uint8_t ga[4 + 4] = {0, 0, 0x07, 0xd0, 'b', 'y', 'e', '!'};
	uint8_t buf[64];

	/* An unknown push, GOAWAY (grace 2000 ms), then the answer. */
	write_resp(p->peer, 0x13, PROTO_OK, 0, "unknown push");
	write_all(p->peer, buf,
	    proto_encode_resp(buf, sizeof(buf), PROTO_OP_GOAWAY, PROTO_OK, 0,
		ga, sizeof(ga)));
	write_resp(p->peer, PROTO_OP_PING, PROTO_OK, 1, "");
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), 0);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.request_id, 1);
	assert_int_equal(r.opcode, PROTO_OP_PING);
	assert_true(p->c.goaway);
	assert_int_equal(p->c.goaway_grace_ms, 2000);
	/* No new request on a drained connection. */
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), -1);
	assert_int_equal(errno, ESHUTDOWN);
	assert_non_null(strstr(err, "GOAWAY"));
}

static void
test_call_reads_busy_after_server_closed(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	/* BUSY, then close: the send fails, the reason is still readable. */
	write_resp(p->peer, 0, PROTO_BUSY, 0, "busy");
	(void)close(p->peer);
	p->peer = -1;
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), 0);
	assert_int_equal(r.status, PROTO_BUSY);
	assert_payload(&r, "busy");
}

static void
test_call_to_closed_server_fails(void **state)
{
	struct pair *p = *state;
	struct proto_resp r;
	char err[SDC_ERRLEN];

	(void)close(p->peer);
	p->peer = -1;
	assert_int_equal(sdc_call(&p->c, PROTO_OP_PING, NULL, 0, &r, err), -1);
	assert_string_equal(err, "connection closed by server");
}

/* A listening socket on 127.0.0.1, port chosen by the kernel. */
static int
listener(char *port, size_t len)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	(void)snprintf(port, len, "%u", (unsigned)ntohs(sin.sin_port));
	return fd;
}

static void
test_connect_loopback(void **state)
{
	static const char *const hosts[] = {
	    "127.0.0.1", "[127.0.0.1]", "localhost"};
	struct sdc c;
	char port[8], peer[64], want[64], err[SDC_ERRLEN];
	size_t i;
	socklen_t sl;
	int lfd, afd, one;

	(void)state;
	lfd = listener(port, sizeof(port));
	(void)snprintf(want, sizeof(want), "127.0.0.1:%s", port);
	for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		if (sdc_connect(&c, hosts[i], port, 1000, err) != 0)
			fail_msg("%s: %s", hosts[i], err);
		assert_true(c.fd >= 0);
		assert_int_equal(c.timeout_ms, 1000);
		assert_int_equal(c.max_frame, SDC_MAX_FRAME_DEFAULT);
		one = 0;
		sl = sizeof(one);
		assert_int_equal(
		    getsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, &sl), 0);
		assert_true(one != 0);
		assert_int_equal(sdc_peer(&c, peer, sizeof(peer), err), 0);
		assert_string_equal(peer, want);
		afd = accept(lfd, NULL, NULL);
		assert_true(afd >= 0);
		(void)close(afd);
		sdc_close(&c);
	}
	(void)close(lfd);
}

static void
test_connect_ipv6_literal(void **state)
{
	struct sockaddr_in6 sin6;
	struct sdc c;
	socklen_t sl = sizeof(sin6);
	char port[8], peer[64], want[64], err[SDC_ERRLEN];
	int lfd;

	(void)state;
	lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr = in6addr_loopback;
	if (lfd == -1 ||
	    bind(lfd, (struct sockaddr *)&sin6, sizeof(sin6)) == -1) {
		if (lfd != -1)
			(void)close(lfd);
		skip(); /* no IPv6 loopback here */
	}
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin6, &sl), 0);
	(void)snprintf(
	    port, sizeof(port), "%u", (unsigned)ntohs(sin6.sin6_port));
	(void)snprintf(want, sizeof(want), "[::1]:%s", port);

	assert_int_equal(sdc_connect(&c, "[::1]", port, 1000, err), 0);
	assert_int_equal(sdc_peer(&c, peer, sizeof(peer), err), 0);
	assert_string_equal(peer, want);
	sdc_close(&c);
	assert_int_equal(sdc_connect(&c, "::1", port, 1000, err), 0);
	sdc_close(&c);
	(void)close(lfd);
}

static void
test_connect_refused(void **state)
{
	struct sdc c;
	char port[8], want[128], err[SDC_ERRLEN];

	(void)state;
	/* A port that was just free: nobody listens there any more. */
	(void)close(listener(port, sizeof(port)));
	assert_int_equal(sdc_connect(&c, "127.0.0.1", port, 1000, err), -1);
	(void)snprintf(want, sizeof(want),
	    "connect to 127.0.0.1 port %s: Connection refused", port);
	assert_string_equal(err, want);
	assert_int_equal(c.fd, -1);
	sdc_close(&c); /* a failed connect leaves a closed sdc */
	sdc_close(&c);
}

static void
test_io_on_closed_sdc_fails(void **state)
{
	struct proto_resp r;
	struct sdc c;
	char err[SDC_ERRLEN];

	(void)state;
	sdc_attach(&c, -1, 100);
	assert_int_equal(sdc_send(&c, PROTO_OP_PING, 1, NULL, 0, err), -1);
	assert_string_equal(err, "not connected");
	assert_int_equal(sdc_recv(&c, &r, err), -1);
	assert_int_equal(sdc_call(&c, PROTO_OP_PING, NULL, 0, &r, err), -1);
	sdc_close(&c);
}

#define PAIR_TEST(f)                                                           \
	cmocka_unit_test_setup_teardown(f, setup_pair, teardown_pair)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    PAIR_TEST(test_send_encodes_request),
	    PAIR_TEST(test_send_large_payload),
	    PAIR_TEST(test_send_raw_sends_bytes_as_given),
	    PAIR_TEST(test_recv_reassembles_one_byte_at_a_time),
	    PAIR_TEST(test_recv_times_out_when_nothing_comes),
	    PAIR_TEST(test_recv_goes_on_after_timeout),
	    PAIR_TEST(test_recv_two_frames_in_one_read),
	    PAIR_TEST(test_recv_grows_buffer_for_large_frame),
	    PAIR_TEST(test_recv_eof_is_connection_closed),
	    PAIR_TEST(test_recv_eof_mid_frame),
	    PAIR_TEST(test_recv_rejects_frame_over_max_frame),
	    PAIR_TEST(test_recv_spots_a_text_protocol),
	    PAIR_TEST(test_recv_rejects_short_body),
	    PAIR_TEST(test_recv_rejects_other_version),
	    PAIR_TEST(test_call_round_trip),
	    PAIR_TEST(test_call_rejects_request_id_mismatch),
	    PAIR_TEST(test_call_rejects_opcode_mismatch),
	    PAIR_TEST(test_call_takes_ok_with_request_id_zero_for_a_push),
	    PAIR_TEST(test_call_accepts_busy_with_request_id_zero),
	    PAIR_TEST(test_call_skips_pushes_and_remembers_goaway),
	    PAIR_TEST(test_call_reads_busy_after_server_closed),
	    PAIR_TEST(test_call_to_closed_server_fails),
	    cmocka_unit_test(test_connect_loopback),
	    cmocka_unit_test(test_connect_ipv6_literal),
	    cmocka_unit_test(test_connect_refused),
	    cmocka_unit_test(test_io_on_closed_sdc_fails),
	};

	return cmocka_run_group_tests_name("sdclient", tests, NULL, NULL);
}
