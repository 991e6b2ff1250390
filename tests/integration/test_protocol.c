/*
 * Protocol v1 against the running daemon: every opcode, every error
 * status, framing edge cases (pipelining, a byte at a time, half-close),
 * and IPv6 / dual-stack listeners.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
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

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

/* "running" or "exited with status N", for failure messages. */
static const char *
daemon_state(struct h_daemon *d, char *buf, size_t cap)
{
	int st = h_wait_exit(d, 500); /* a crash takes a moment to reap */

	if (st == -1 && d->pid > 0)
		return "running";
	snprintf(buf, cap, "exited with status %d", st);
	return buf;
}

/* Send raw bytes and read one frame, asserting status, id and message. */
static void
expect_error(int fd, const void *req, size_t len, uint8_t opcode,
    uint16_t status, uint32_t id, const char *msg)
{
	struct h_frame f;

	assert_int_equal(h_send_all(fd, req, len, H_IO_TIMEOUT), 0);
	h_expect_frame(fd, opcode, status, id, &f);
	assert_string_equal((const char *)f.payload, msg);
	h_frame_free(&f);
}

static void
test_ping(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);
	int fd = h_raw(T(state), d);

	h_ping(c);
	h_ping(c);
	h_raw_ping(fd, 0xdeadbeef);
	h_raw_ping(fd, 1);
	h_raw_ping(fd, 0);
}

static void
echo_one(int fd, uint32_t id, size_t len)
{
	struct h_frame f;
	uint8_t *p = NULL;
	size_t i;

	if (len > 0) {
		p = malloc(len);
		assert_non_null(p);
		for (i = 0; i < len; i++)
			p[i] = (uint8_t)(i * 7 + len);
	}
	assert_int_equal(h_send_req(fd, PROTO_OP_ECHO, id, p, len), 0);
	h_expect_frame(fd, PROTO_OP_ECHO, PROTO_OK, id, &f);
	assert_int_equal(f.payload_len, len);
	if (len > 0)
		assert_memory_equal(f.payload, p, len);
	h_frame_free(&f);
	free(p);
}

static void
test_echo(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);

	echo_one(fd, 10, 0);
	echo_one(fd, 11, 1);
	echo_one(fd, 12, 100 * 1024);
	echo_one(fd, 13, 3);
	/* The largest frame the default max_frame_size (1 MiB) allows. */
	echo_one(fd, 14, PROTO_DEFAULT_MAX - PROTO_HDR_SIZE);
	echo_one(fd, 15, 2);
}

static void
test_info(void **state)
{
	static const struct h_opts o = {.extra = "workers = 2;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);
	struct proto_resp r;
	char err[SDC_ERRLEN], v[64], want[32];

	assert_int_equal(sdc_call(c, PROTO_OP_INFO, NULL, 0, &r, err), 0);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(
	    h_text_value(r.payload, r.payload_len, "version", v, sizeof(v)), 0);
	assert_string_equal(v, SOCKETD_VERSION);
	assert_int_equal(
	    h_text_value(r.payload, r.payload_len, "pid", v, sizeof(v)), 0);
	snprintf(want, sizeof(want), "%ld", (long)d->pid);
	assert_string_equal(v, want);
	assert_int_equal(h_text_value(r.payload, r.payload_len,
			     "uptime_seconds", v, sizeof(v)),
	    0);
	assert_true(strtoul(v, NULL, 10) < 60);
	assert_int_equal(
	    h_text_value(r.payload, r.payload_len, "workers", v, sizeof(v)), 0);
	assert_string_equal(v, "2");
	assert_int_equal(
	    h_text_value(r.payload, r.payload_len, "protocol", v, sizeof(v)),
	    0);
	assert_string_equal(v, "1");
	/* The text is lines of "name value", the last one ends too. */
	assert_true(r.payload_len > 0);
	assert_int_equal(r.payload[r.payload_len - 1], '\n');
}

static void
test_stats(void **state)
{
	static const char *const names[] = {"connections_current",
	    "connections_total", "connections_rejected", "requests_total",
	    "bytes_received", "bytes_sent"};
	struct h_daemon *d = h_start(T(state), NULL);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);
	struct proto_resp r;
	char err[SDC_ERRLEN], v[64];
	uint64_t req0, rx0, tx0, len0, req1, rx1, tx1;
	size_t i;

	assert_int_equal(sdc_call(c, PROTO_OP_STATS, NULL, 0, &r, err), 0);
	assert_int_equal(r.status, PROTO_OK);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (h_text_value(
			r.payload, r.payload_len, names[i], v, sizeof(v)) != 0)
			fail_msg("STATS lacks %s:\n%.*s", names[i],
			    (int)r.payload_len, (const char *)r.payload);
	assert_int_equal(h_text_value(r.payload, r.payload_len,
			     "connections_current", v, sizeof(v)),
	    0);
	assert_true(strtoull(v, NULL, 10) >= 1);
	assert_int_equal(h_text_value(r.payload, r.payload_len,
			     "connections_total", v, sizeof(v)),
	    0);
	assert_true(strtoull(v, NULL, 10) >= 1);
	assert_int_equal(h_text_value(r.payload, r.payload_len,
			     "connections_rejected", v, sizeof(v)),
	    0);
	assert_string_equal(v, "0");
	h_text_value(r.payload, r.payload_len, "requests_total", v, sizeof(v));
	req0 = strtoull(v, NULL, 10);
	h_text_value(r.payload, r.payload_len, "bytes_received", v, sizeof(v));
	rx0 = strtoull(v, NULL, 10);
	h_text_value(r.payload, r.payload_len, "bytes_sent", v, sizeof(v));
	tx0 = strtoull(v, NULL, 10);
	len0 = PROTO_FRAME_MIN + r.payload_len;
	/* This STATS request itself was received before the answer. */
	assert_true(rx0 >= PROTO_FRAME_MIN);

	h_ping(c);
	h_ping(c);
	h_ping(c);
	assert_int_equal(sdc_call(c, PROTO_OP_STATS, NULL, 0, &r, err), 0);
	h_text_value(r.payload, r.payload_len, "requests_total", v, sizeof(v));
	req1 = strtoull(v, NULL, 10);
	h_text_value(r.payload, r.payload_len, "bytes_received", v, sizeof(v));
	rx1 = strtoull(v, NULL, 10);
	h_text_value(r.payload, r.payload_len, "bytes_sent", v, sizeof(v));
	tx1 = strtoull(v, NULL, 10);
	/* The first STATS and three PINGs; nothing else talks to it. */
	assert_int_equal(req1 - req0, 4);
	/* Three PINGs and the second STATS, 12 bytes each. */
	assert_int_equal(rx1 - rx0, 4 * PROTO_FRAME_MIN);
	/* The first STATS answer and three PONGs. */
	assert_int_equal(tx1 - tx0, len0 + 3 * PROTO_FRAME_MIN);
}

static void
test_time(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	struct timespec ts;
	struct h_frame f;
	uint64_t ns, now;
	int64_t diff;

	assert_int_equal(h_send_req(fd, PROTO_OP_TIME, 42, NULL, 0), 0);
	h_expect_frame(fd, PROTO_OP_TIME, PROTO_OK, 42, &f);
	clock_gettime(CLOCK_REALTIME, &ts);
	assert_int_equal(f.payload_len, 8);
	ns = (uint64_t)proto_get_u32(f.payload) << 32 |
	    proto_get_u32(f.payload + 4);
	h_frame_free(&f);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	diff = (int64_t)(now - ns);
	if (diff < 0)
		diff = -diff;
	if (diff > 5 * (int64_t)1000000000)
		fail_msg("server time %" PRIu64 " is %" PRId64
			 " ns away from ours %" PRIu64,
		    ns, diff, now);
}

static void
test_unknown_opcode(void **state)
{
	static const uint8_t ops[] = {0x07, 0x7f, 0x80, 0xff};
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	struct h_frame f;
	char msg[32];
	size_t i;

	for (i = 0; i < sizeof(ops); i++) {
		assert_int_equal(
		    h_send_req(fd, ops[i], 100 + (uint32_t)i, "xy", 2), 0);
		h_expect_frame(
		    fd, ops[i], PROTO_UNKNOWN_OPCODE, 100 + (uint32_t)i, &f);
		snprintf(msg, sizeof(msg), "unknown opcode 0x%02x", ops[i]);
		assert_string_equal((const char *)f.payload, msg);
		h_frame_free(&f);
		h_raw_ping(fd, 200 + (uint32_t)i);
	}
	assert_int_equal(h_stat_of(T(state), d, "errors_unknown_opcode"), 4);
}

static void
test_bad_request(void **state)
{
	/* Bodies shorter than the 8-byte header: 0, 1, 4 and 7 bytes. */
	static const uint8_t short0[] = {0, 0, 0, 0};
	static const uint8_t short1[] = {0, 0, 0, 1, 1};
	static const uint8_t short4[] = {0, 0, 0, 4, 1, 0, 0, 0};
	static const uint8_t short7[] = {0, 0, 0, 7, 1, 1, 0, 0, 0, 0, 9};
	/* Flags 0x0001 on a PING with id 7. */
	static const uint8_t flags[] = {0, 0, 0, 8, 1, 0, 0, 1, 0, 0, 0, 7};
	/* A PING with a 3-byte payload, id 8. */
	static const uint8_t pingp[] = {
	    0, 0, 0, 11, 1, 0, 0, 0, 0, 0, 0, 8, 'a', 'b', 'c'};
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);

	expect_error(fd, short0, sizeof(short0), 0, PROTO_BAD_REQUEST, 0,
	    "frame body of 0 bytes is shorter than the 8-byte header");
	h_raw_ping(fd, 1);
	expect_error(fd, short1, sizeof(short1), 0, PROTO_BAD_REQUEST, 0,
	    "frame body of 1 bytes is shorter than the 8-byte header");
	h_raw_ping(fd, 2);
	expect_error(fd, short4, sizeof(short4), 0, PROTO_BAD_REQUEST, 0,
	    "frame body of 4 bytes is shorter than the 8-byte header");
	h_raw_ping(fd, 3);
	/* The opcode byte (1: ECHO) is read even from a short body. */
	expect_error(fd, short7, sizeof(short7), 1, PROTO_BAD_REQUEST, 0,
	    "frame body of 7 bytes is shorter than the 8-byte header");
	h_raw_ping(fd, 4);
	expect_error(fd, flags, sizeof(flags), PROTO_OP_PING, PROTO_BAD_REQUEST,
	    7, "flags must be zero");
	h_raw_ping(fd, 5);
	expect_error(fd, pingp, sizeof(pingp), PROTO_OP_PING, PROTO_BAD_REQUEST,
	    8, "PING takes no payload");
	h_raw_ping(fd, 6);
	assert_int_equal(h_stat_of(T(state), d, "errors_bad_request"), 6);
}

static void
test_unsupported_version(void **state)
{
	/* Version 2 PING, id 9; then version 0 ECHO, id 10. */
	static const uint8_t v2[] = {0, 0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 9};
	static const uint8_t v0[] = {0, 0, 0, 9, 0, 1, 0, 0, 0, 0, 0, 10, 'z'};
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);

	expect_error(fd, v2, sizeof(v2), PROTO_OP_PING,
	    PROTO_UNSUPPORTED_VERSION, 9, "unsupported protocol version 2");
	h_raw_ping(fd, 1);
	expect_error(fd, v0, sizeof(v0), PROTO_OP_ECHO,
	    PROTO_UNSUPPORTED_VERSION, 10, "unsupported protocol version 0");
	h_raw_ping(fd, 2);
}

static void
test_too_large(void **state)
{
	static const struct h_opts o = {.extra = "max_frame_size = 1024;"};
	struct h_daemon *d = h_start(T(state), &o);
	int fd = h_raw(T(state), d);
	uint8_t buf[12 + 500], more[1000];
	struct h_frame f;
	enum h_eof e;

	/* A frame of exactly max_frame_size is fine. */
	echo_one(fd, 1, 1024 - PROTO_HDR_SIZE);
	/* 2000 bytes announced, header and 500 payload bytes sent. */
	memset(buf, 'x', sizeof(buf));
	proto_put_u32(buf, 2000);
	buf[4] = 1;
	buf[5] = PROTO_OP_ECHO;
	proto_put_u16(buf + 6, 0);
	proto_put_u32(buf + 8, 77);
	assert_int_equal(h_send_all(fd, buf, sizeof(buf), H_IO_TIMEOUT), 0);
	/* More of the refused frame keeps coming after the answer left. */
	h_sleep_ms(50);
	memset(more, 'y', sizeof(more));
	(void)h_send_all(fd, more, sizeof(more), H_IO_TIMEOUT);
	h_expect_frame(fd, 0, PROTO_TOO_LARGE, 0, &f);
	assert_string_equal((const char *)f.payload,
	    "frame of 2000 bytes exceeds max_frame_size 1024");
	h_frame_free(&f);
	e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	if (e != H_EOF)
		fail_msg("after TOO_LARGE: %s, expected EOF", h_eof_str(e));
	assert_int_equal(h_stat_of(T(state), d, "errors_too_large"), 1);
}

/* Frames before the refused one in the same write are answered first. */
static void
test_too_large_after_requests(void **state)
{
	static const struct h_opts o = {.extra = "max_frame_size = 1024;"};
	struct h_daemon *d = h_start(T(state), &o);
	int fd = h_raw(T(state), d);
	uint8_t buf[3 * PROTO_FRAME_MIN + 3], *p;
	struct h_frame f;
	size_t n;
	enum h_eof e;

	p = h_req(PROTO_OP_PING, 1, NULL, 0, &n);
	memcpy(buf, p, n);
	free(p);
	p = h_req(PROTO_OP_ECHO, 2, "abc", 3, &n);
	memcpy(buf + PROTO_FRAME_MIN, p, n);
	free(p);
	/* Then the prefix of a 4 GiB frame and its header. */
	p = buf + 2 * PROTO_FRAME_MIN + 3;
	proto_put_u32(p, 0xffffffffu);
	p[4] = PROTO_VERSION;
	p[5] = PROTO_OP_ECHO;
	proto_put_u16(p + 6, 0);
	proto_put_u32(p + 8, 3);
	assert_int_equal(h_send_all(fd, buf, sizeof(buf), H_IO_TIMEOUT), 0);
	h_expect_frame(fd, PROTO_OP_PING, PROTO_OK, 1, &f);
	h_frame_free(&f);
	h_expect_frame(fd, PROTO_OP_ECHO, PROTO_OK, 2, &f);
	assert_string_equal((const char *)f.payload, "abc");
	h_frame_free(&f);
	h_expect_frame(fd, 0, PROTO_TOO_LARGE, 0, &f);
	assert_string_equal((const char *)f.payload,
	    "frame of 4294967295 bytes exceeds max_frame_size 1024");
	h_frame_free(&f);
	e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	if (e != H_EOF)
		fail_msg("after TOO_LARGE: %s, expected EOF", h_eof_str(e));
}

#define STRESS_CONNS  32
#define STRESS_ROUNDS 600

/*
 * Rounds of STRESS_CONNS connections on one worker, each sending, in two
 * writes, 129 to 300 PINGs, then one more PING and an oversized frame
 * header.  Each must get every PONG, the TOO_LARGE answer, then EOF, and
 * the server must stay up.  The first write leaves more frames than two
 * turns of REQ_BUDGET (64) answer, so the connection is on the worker's
 * ready list when the second write is read: the TOO_LARGE answer is then
 * produced by a read event while the connection is still on that list,
 * and its lingering close must not start twice.
 */
static void
test_too_large_after_pipelined_pings(void **state)
{
	static const struct h_opts o = {.extra = "workers = 1;"};
	static const char msg[] =
	    "frame of 2147483647 bytes exceeds max_frame_size 1048576";
	struct h_daemon *d = h_start(T(state), &o);
	uint8_t *first, tail[2 * PROTO_FRAME_MIN], *in;
	size_t flen[STRESS_CONNS], got[STRESS_CONNS], want, i, used;
	int fds[STRESS_CONNS], eof[STRESS_CONNS], left, round;
	struct pollfd pf[STRESS_CONNS];
	uint32_t rnd = 12345, j, np[STRESS_CONNS];
	struct proto_resp r;
	int64_t t0 = h_now_ms(), rt;
	char sbuf[48];
	ssize_t n;

	first = malloc(300 * PROTO_FRAME_MIN);
	in = malloc(1 << 16);
	assert_non_null(first);
	assert_non_null(in);
	for (j = 0; j < 300; j++)
		assert_int_equal(
		    proto_encode_req(first + j * PROTO_FRAME_MIN,
			PROTO_FRAME_MIN, PROTO_OP_PING, j, NULL, 0),
		    PROTO_FRAME_MIN);
	assert_int_equal(proto_encode_req(tail, PROTO_FRAME_MIN, PROTO_OP_PING,
			     300, NULL, 0),
	    PROTO_FRAME_MIN);
	proto_put_u32(tail + PROTO_FRAME_MIN, 0x7fffffffu);
	tail[PROTO_FRAME_MIN + 4] = PROTO_VERSION;
	tail[PROTO_FRAME_MIN + 5] = PROTO_OP_ECHO;
	proto_put_u16(tail + PROTO_FRAME_MIN + 6, 0);
	proto_put_u32(tail + PROTO_FRAME_MIN + 8, 1);
	for (round = 0; round < STRESS_ROUNDS && h_now_ms() - t0 < 3000;
	     round++) {
		for (i = 0; i < STRESS_CONNS; i++) {
			fds[i] = h_connect(
			    T(state), "127.0.0.1", d->port, H_IO_TIMEOUT);
			if (fds[i] == -1)
				fail_msg("round %d: connect: %s (socketd "
					 "%s)",
				    round, strerror(errno),
				    daemon_state(d, sbuf, sizeof(sbuf)));
			rnd = rnd * 1103515245u + 12345u;
			np[i] = 129 + (rnd >> 16) % 172;
			flen[i] = np[i] * PROTO_FRAME_MIN;
			got[i] = 0;
			eof[i] = 0;
		}
		for (i = 0; i < STRESS_CONNS; i++) {
			/* Two writes; errors show up as missing answers. */
			(void)h_send_all(fds[i], first, flen[i], 1000);
			(void)h_send_all(fds[i], tail, sizeof(tail), 1000);
		}
		rt = h_now_ms();
		left = STRESS_CONNS;
		while (left > 0 && h_now_ms() - rt < 5000) {
			for (i = 0; i < STRESS_CONNS; i++) {
				pf[i].fd = eof[i] ? -1 : fds[i];
				pf[i].events = POLLIN;
				pf[i].revents = 0;
			}
			if (poll(pf, STRESS_CONNS, 100) <= 0)
				continue;
			for (i = 0; i < STRESS_CONNS; i++) {
				if (eof[i] || pf[i].revents == 0)
					continue;
				n = recv(fds[i], in, 1 << 16, MSG_DONTWAIT);
				if (n > 0) {
					/* Keep the tail: the last answer. */
					got[i] += (size_t)n;
					if ((size_t)n >=
					    PROTO_FRAME_MIN + sizeof(msg) - 1)
						memcpy(in + (1 << 15),
						    in + n -
							(PROTO_FRAME_MIN +
							    sizeof(msg) - 1),
						    PROTO_FRAME_MIN +
							sizeof(msg) - 1);
				} else if (n == 0 ||
				    (errno != EAGAIN && errno != EINTR)) {
					eof[i] = n == 0 ? 1 : -1;
					left--;
				}
			}
		}
		for (i = 0; i < STRESS_CONNS; i++) {
			want = (np[i] + 1) * PROTO_FRAME_MIN + PROTO_FRAME_MIN +
			    sizeof(msg) - 1;
			if (eof[i] != 1 || got[i] != want)
				fail_msg("round %d connection %zu (%" PRIu32
					 " PINGs): %zu of %zu answer bytes, "
					 "then %s (socketd %s)",
				    round, i, np[i], got[i], want,
				    eof[i] == 1        ? "EOF"
					: eof[i] == -1 ? "an error"
						       : "nothing for 5 s",
				    daemon_state(d, sbuf, sizeof(sbuf)));
			h_close(T(state), fds[i]);
		}
	}
	/* The last read of the last connection ended with TOO_LARGE. */
	assert_int_equal(
	    proto_decode_resp(in + (1 << 15), PROTO_FRAME_MIN + sizeof(msg) - 1,
		1024, &r, &used),
	    PROTO_OK);
	assert_int_equal(r.status, PROTO_TOO_LARGE);
	print_message(
	    "# %d rounds in %" PRId64 " ms\n", round, h_now_ms() - t0);
	free(first);
	free(in);
	fds[0] = h_raw(T(state), d);
	h_raw_ping(fds[0], 1);
}

static void
test_too_large_header_only(void **state)
{
	static const struct h_opts o = {.extra = "max_frame_size = 1024;"};
	struct h_daemon *d = h_start(T(state), &o);
	int fd = h_raw(T(state), d);
	uint8_t pre[4];
	struct h_frame f;
	enum h_eof e;

	/* Only the 4-byte prefix is needed to refuse. */
	proto_put_u32(pre, 1025);
	assert_int_equal(h_send_all(fd, pre, sizeof(pre), H_IO_TIMEOUT), 0);
	h_expect_frame(fd, 0, PROTO_TOO_LARGE, 0, &f);
	assert_string_equal((const char *)f.payload,
	    "frame of 1025 bytes exceeds max_frame_size 1024");
	h_frame_free(&f);
	e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	if (e != H_EOF)
		fail_msg("after TOO_LARGE: %s, expected EOF", h_eof_str(e));
}

#define NPIPE 1000

static void
test_pipelining(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	uint8_t *buf, *req, payload[64];
	size_t len = 0, cap = NPIPE * (PROTO_FRAME_MIN + sizeof(payload));
	size_t n, plen, i;
	struct h_frame f;
	uint32_t id;

	buf = malloc(cap);
	assert_non_null(buf);
	for (i = 0; i < NPIPE; i++) {
		id = 1000000 + (uint32_t)i * 3;
		if (i % 3 == 0) {
			req = h_req(PROTO_OP_PING, id, NULL, 0, &n);
		} else {
			plen = i % sizeof(payload);
			memset(payload, (int)(i & 0xff), plen);
			req = h_req(PROTO_OP_ECHO, id, payload, plen, &n);
		}
		memcpy(buf + len, req, n);
		len += n;
		free(req);
	}
	/* One send(2): the whole batch before reading anything. */
	assert_int_equal(h_send_all(fd, buf, len, H_IO_TIMEOUT), 0);
	free(buf);
	for (i = 0; i < NPIPE; i++) {
		id = 1000000 + (uint32_t)i * 3;
		if (i % 3 == 0) {
			h_expect_frame(fd, PROTO_OP_PING, PROTO_OK, id, &f);
			assert_int_equal(f.payload_len, 0);
		} else {
			plen = i % sizeof(payload);
			memset(payload, (int)(i & 0xff), plen);
			h_expect_frame(fd, PROTO_OP_ECHO, PROTO_OK, id, &f);
			assert_int_equal(f.payload_len, plen);
			assert_memory_equal(f.payload, payload, plen);
		}
		h_frame_free(&f);
	}
	/* Nothing more than the 1,000 answers. */
	h_raw_ping(fd, 5);
}

/*
 * Send out[0..len) while reading whatever comes back, until want bytes
 * arrived (or 20 s); shut down our side after the last byte when shut.
 * Returns the bytes received (malloc'ed, *got set).
 */
static uint8_t *
pump(int fd, const uint8_t *out, size_t len, size_t want, int shut, size_t *got)
{
	int64_t t0 = h_now_ms();
	size_t off = 0, have = 0;
	struct pollfd p;
	uint8_t *in;
	ssize_t n;

	in = malloc(want + 1);
	assert_non_null(in);
	while (have < want && h_now_ms() - t0 < 20000) {
		p.fd = fd;
		p.events = POLLIN | (off < len ? POLLOUT : 0);
		p.revents = 0;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (off < len && (p.revents & POLLOUT)) {
			n = send(fd, out + off, len - off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				off += (size_t)n;
				if (off == len && shut)
					assert_int_equal(
					    shutdown(fd, SHUT_WR), 0);
			} else if (n == -1 && errno != EAGAIN &&
			    errno != EWOULDBLOCK) {
				fail_msg("send after %zu of %zu bytes: %s", off,
				    len, strerror(errno));
			}
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(fd, in + have, want + 1 - have, MSG_DONTWAIT);
			if (n > 0)
				have += (size_t)n;
			else if (n == 0 ||
			    (errno != EAGAIN && errno != EWOULDBLOCK))
				break;
		}
	}
	if (have != want)
		fail_msg("received %zu of %zu answer bytes (%zu of %zu sent)",
		    have, want, off, len);
	*got = have;
	return in;
}

#define NLARGE 100

/* Big answers pipelined past the output cap, read as they come. */
static void
pipeline_large(void **state, int shut)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	size_t len = 0, want = 0, n, i, off, plen, got;
	uint8_t *buf, *req, *in, *payload;
	struct proto_resp r;
	enum h_eof e;

	payload = malloc(64 * 1024);
	buf = malloc(NLARGE * (PROTO_FRAME_MIN + 64 * 1024));
	assert_non_null(payload);
	assert_non_null(buf);
	for (i = 0; i < NLARGE; i++) {
		plen = i % 5 == 0 ? 0 : 64 * 1024 - i * 7;
		memset(payload, (int)('A' + i % 26), plen);
		req = h_req(i % 5 == 0 ? PROTO_OP_PING : PROTO_OP_ECHO,
		    7000 + (uint32_t)i, payload, plen, &n);
		memcpy(buf + len, req, n);
		len += n;
		want += n; /* an ECHO or PING answer is as long */
		free(req);
	}
	in = pump(fd, buf, len, want, shut, &got);
	for (i = 0, off = 0; i < NLARGE; i++) {
		plen = i % 5 == 0 ? 0 : 64 * 1024 - i * 7;
		assert_int_equal(
		    proto_decode_resp(in + off, got - off, 1u << 20, &r, &n),
		    PROTO_OK);
		if (r.status != PROTO_OK || r.request_id != 7000 + i ||
		    r.payload_len != plen)
			fail_msg("answer %zu: status %u id %" PRIu32
				 " length %zu",
			    i, r.status, r.request_id, r.payload_len);
		memset(payload, (int)('A' + i % 26), plen);
		assert_memory_equal(r.payload, payload, plen);
		off += n;
	}
	assert_int_equal(off, got);
	free(in);
	free(buf);
	free(payload);
	if (shut) {
		e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
		if (e != H_EOF)
			fail_msg("after the answers: %s, expected EOF",
			    h_eof_str(e));
	} else {
		h_raw_ping(fd, 1);
	}
}

static void
test_pipelining_large(void **state)
{
	pipeline_large(state, 0);
}

static void
test_half_close_large(void **state)
{
	pipeline_large(state, 1);
}

static void
test_byte_at_a_time(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	uint8_t *req;
	struct h_frame f;
	size_t n, i;

	req = h_req(PROTO_OP_ECHO, 4242, "slowly", 6, &n);
	for (i = 0; i < n; i++) {
		assert_int_equal(h_send_all(fd, req + i, 1, H_IO_TIMEOUT), 0);
		h_sleep_ms(5);
	}
	free(req);
	h_expect_frame(fd, PROTO_OP_ECHO, PROTO_OK, 4242, &f);
	assert_string_equal((const char *)f.payload, "slowly");
	h_frame_free(&f);
	h_raw_ping(fd, 4243);
}

static void
test_half_close(void **state)
{
	struct h_daemon *d = h_start(T(state), NULL);
	int fd = h_raw(T(state), d);
	struct h_frame f;
	enum h_eof e;
	char p[16];
	uint32_t i;

	for (i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "req%u", i);
		assert_int_equal(
		    h_send_req(fd, PROTO_OP_ECHO, 500 + i, p, strlen(p)), 0);
	}
	/* A trailing partial frame gets no answer. */
	assert_int_equal(h_send_all(fd, "\0\0\0\x10\x01", 5, H_IO_TIMEOUT), 0);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	for (i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "req%u", i);
		h_expect_frame(fd, PROTO_OP_ECHO, PROTO_OK, 500 + i, &f);
		assert_string_equal((const char *)f.payload, p);
		h_frame_free(&f);
	}
	e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	if (e != H_EOF)
		fail_msg("after the answers: %s, expected EOF", h_eof_str(e));
}

static void
test_ipv6(void **state)
{
	static const struct h_opts o = {
	    .listen = "[ \"[::1]:PORT\", \"127.0.0.1:PORT\" ]",
	    .need_v6 = 1,
	};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c6 = h_sdc(T(state), "::1", d->port);
	struct sdc *c4 = h_sdc(T(state), "127.0.0.1", d->port);
	struct sdc *cb = h_sdc(T(state), "[::1]", d->port);
	char peer[64], err[SDC_ERRLEN], want[64];

	h_ping(c6);
	h_ping(c4);
	h_ping(cb);
	assert_int_equal(sdc_peer(c6, peer, sizeof(peer), err), 0);
	snprintf(want, sizeof(want), "[::1]:%d", d->port);
	assert_string_equal(peer, want);
	assert_int_equal(h_log_count(d, "listening on [::1]:", NULL), 1);
}

static void
test_dual_stack(void **state)
{
	static const struct h_opts o = {
	    .listen = "[ \"0.0.0.0:PORT\", \"[::]:PORT\" ]",
	    .need_v6 = 1,
	};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c6 = h_sdc(T(state), "::1", d->port);
	struct sdc *c4 = h_sdc(T(state), "127.0.0.1", d->port);

	h_ping(c6);
	h_ping(c4);
	assert_int_equal(h_log_count(d, "listening on 0.0.0.0:", NULL), 1);
	assert_int_equal(h_log_count(d, "listening on [::]:", NULL), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ping, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_echo, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_info, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_stats, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_time, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_unknown_opcode, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_bad_request, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_unsupported_version, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_too_large, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_too_large_after_requests, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_too_large_after_pipelined_pings, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_too_large_header_only, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pipelining, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pipelining_large, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_byte_at_a_time, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_half_close, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_half_close_large, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_ipv6, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_dual_stack, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_protocol", tests, h_group_setup, NULL);
}
