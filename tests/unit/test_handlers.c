/*
 * Unit tests for the protocol v1 handlers (proto/handlers.c).
 *
 * Requests go through the real encoder and decoder, responses are read
 * back with proto_decode_resp().  Output buffers are heap blocks of exactly
 * the room promised to proto_handle() followed by a guard band, so a write
 * past cap shows both in the guard check and under ASan/valgrind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define GUARD       32
#define GUARD_BYTE  0xee
#define FAKE_NOW_NS UINT64_C(0x0102030405060708)

/* What the fake callbacks see and do. */
struct fake {
	uint64_t now;
	unsigned clock_calls;
	size_t info_cap; /* the cap the last callback was given */
	void *info_buf;
	unsigned text_calls;
	size_t overrun; /* claim this many bytes more than cap */
};

static uint64_t
fake_now(void *arg)
{
	struct fake *f = arg;

	f->clock_calls++;
	return f->now;
}

static size_t
fake_info(void *arg, char *buf, size_t cap)
{
	struct fake *f = arg;
	size_t off = 0;

	f->text_calls++;
	f->info_cap = cap;
	f->info_buf = buf;
	proto_kv_str(buf, cap, &off, "version", "0.1.0");
	proto_kv_u64(buf, cap, &off, "workers", 8);
	return off + f->overrun;
}

static size_t
fake_stats(void *arg, char *buf, size_t cap)
{
	struct fake *f = arg;
	size_t off = 0;

	f->text_calls++;
	f->info_cap = cap;
	proto_kv_u64(buf, cap, &off, "requests_total", 12345);
	proto_kv_u64(buf, cap, &off, "connections", 0);
	return off + f->overrun;
}

/* A buffer of cap bytes plus a guard band. */
struct outbuf {
	uint8_t *p;
	size_t cap;
};

static void
out_alloc(struct outbuf *o, size_t cap)
{
	o->cap = cap;
	o->p = malloc(cap + GUARD);
	assert_non_null(o->p);
	memset(o->p, GUARD_BYTE, cap + GUARD);
}

static void
out_free(struct outbuf *o)
{
	size_t i;

	for (i = 0; i < GUARD; i++)
		assert_int_equal(o->p[o->cap + i], GUARD_BYTE);
	free(o->p);
	o->p = NULL;
}

/*
 * Encode and decode a request into *req, backed by the caller's wire
 * buffer (at least 12 + plen bytes).
 */
static void
make_req(uint8_t *wire, struct proto_req *req, uint8_t opcode, uint32_t id,
    const void *payload, size_t plen)
{
	size_t n, consumed;

	n = proto_encode_req(wire, 12 + plen, opcode, id, payload, plen);
	assert_int_equal(n, 12 + plen);
	assert_int_equal(
	    proto_decode_req(wire, n, SIZE_MAX, req, &consumed), PROTO_OK);
	assert_int_equal(consumed, n);
}

/* Read back a response of n bytes that must be exactly one frame. */
static void
read_resp(const uint8_t *out, size_t n, struct proto_resp *resp)
{
	size_t consumed;

	assert_true(n >= PROTO_FRAME_MIN);
	assert_int_equal(
	    proto_decode_resp(out, n, SIZE_MAX, resp, &consumed), PROTO_OK);
	assert_int_equal(consumed, n);
}

/*
 * Handle one request with a buffer of exactly proto_resp_bound() bytes and
 * check the response header; the payload is left in *resp.
 */
static void
handle(const struct proto_ctx *ctx, uint8_t opcode, uint32_t id,
    const void *payload, size_t plen, enum proto_status want, struct outbuf *o,
    struct proto_resp *resp)
{
	uint8_t *wire;
	struct proto_req req;
	enum proto_status st = PROTO_AGAIN;
	size_t n;

	wire = malloc(12 + plen);
	assert_non_null(wire);
	make_req(wire, &req, opcode, id, payload, plen);
	out_alloc(o, proto_resp_bound(&req));
	n = proto_handle(&req, ctx, o->p, o->cap, &st);
	assert_true(n <= o->cap);
	assert_int_equal(st, want);
	read_resp(o->p, n, resp);
	assert_int_equal(resp->opcode, opcode);
	assert_int_equal(resp->status, want);
	assert_int_equal(resp->request_id, id);
	free(wire);
}

static void
assert_payload_str(const struct proto_resp *resp, const char *s)
{
	assert_int_equal(resp->payload_len, strlen(s));
	assert_memory_equal(resp->payload, s, strlen(s));
}

static const struct proto_ctx *
fake_ctx(struct proto_ctx *ctx, struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->now = FAKE_NOW_NS;
	ctx->now_ns = fake_now;
	ctx->info = fake_info;
	ctx->stats = fake_stats;
	ctx->opcodes = fake_stats;
	ctx->arg = f;
	return ctx;
}

static void
test_ping_ok_empty(void **state)
{
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	handle(fake_ctx(&ctx, &f), PROTO_OP_PING, 0x11223344, NULL, 0, PROTO_OK,
	    &o, &resp);
	assert_int_equal(resp.payload_len, 0);
	out_free(&o);
	/* PING needs no context at all. */
	handle(NULL, PROTO_OP_PING, 1, NULL, 0, PROTO_OK, &o, &resp);
	out_free(&o);
}

static void
test_ping_wire_bytes(void **state)
{
	static const uint8_t want[] = {0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0};
	uint8_t wire[12];
	struct proto_req req;
	struct outbuf o;

	(void)state;
	make_req(wire, &req, PROTO_OP_PING, 0, NULL, 0);
	out_alloc(&o, proto_resp_bound(&req));
	/* status may be NULL. */
	assert_int_equal(proto_handle(&req, NULL, o.p, o.cap, NULL), 12);
	assert_memory_equal(o.p, want, sizeof(want));
	/* Nothing past the frame is touched. */
	assert_int_equal(o.p[12], GUARD_BYTE);
	out_free(&o);
}

static void
test_echo_payload(void **state)
{
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	handle(fake_ctx(&ctx, &f), PROTO_OP_ECHO, 5, "hello, world", 12,
	    PROTO_OK, &o, &resp);
	assert_payload_str(&resp, "hello, world");
	out_free(&o);
}

static void
test_echo_empty_payload(void **state)
{
	struct proto_resp resp;
	struct outbuf o;

	(void)state;
	handle(NULL, PROTO_OP_ECHO, 6, NULL, 0, PROTO_OK, &o, &resp);
	assert_int_equal(resp.payload_len, 0);
	out_free(&o);
}

static void
test_echo_large_payload(void **state)
{
	static const size_t sizes[] = {PROTO_TEXT_MAX - 1, PROTO_TEXT_MAX,
	    PROTO_TEXT_MAX + 1, PROTO_DEFAULT_MAX - PROTO_HDR_SIZE};
	struct proto_resp resp;
	struct outbuf o;
	uint8_t *payload;
	size_t i, j, len;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		len = sizes[i];
		payload = malloc(len);
		assert_non_null(payload);
		for (j = 0; j < len; j++)
			payload[j] = (uint8_t)(j ^ (j >> 8));
		handle(
		    NULL, PROTO_OP_ECHO, 7, payload, len, PROTO_OK, &o, &resp);
		assert_int_equal(o.cap,
		    PROTO_FRAME_MIN +
			(len > PROTO_TEXT_MAX ? len : PROTO_TEXT_MAX));
		assert_int_equal(resp.payload_len, len);
		assert_memory_equal(resp.payload, payload, len);
		out_free(&o);
		free(payload);
	}
}

static void
test_echo_in_place(void **state)
{
	uint8_t buf[PROTO_FRAME_MIN + PROTO_TEXT_MAX];
	struct proto_req req;
	struct proto_resp resp;
	size_t n;

	(void)state;
	/* The response overwrites the request it answers. */
	make_req(buf, &req, PROTO_OP_ECHO, 9, "in place", 8);
	n = proto_handle(&req, NULL, buf, sizeof(buf), NULL);
	read_resp(buf, n, &resp);
	assert_int_equal(resp.status, PROTO_OK);
	assert_payload_str(&resp, "in place");
}

static void
test_time_fake_clock(void **state)
{
	static const uint8_t want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	handle(
	    fake_ctx(&ctx, &f), PROTO_OP_TIME, 8, NULL, 0, PROTO_OK, &o, &resp);
	assert_int_equal(f.clock_calls, 1);
	assert_int_equal(resp.payload_len, 8);
	assert_memory_equal(resp.payload, want, 8);
	out_free(&o);

	f.now = UINT64_MAX;
	handle(&ctx, PROTO_OP_TIME, 8, NULL, 0, PROTO_OK, &o, &resp);
	assert_int_equal(resp.payload_len, 8);
	assert_int_equal(proto_get_u32(resp.payload), UINT32_MAX);
	assert_int_equal(proto_get_u32(resp.payload + 4), UINT32_MAX);
	out_free(&o);
}

static void
test_info_fake_callback(void **state)
{
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	handle(fake_ctx(&ctx, &f), PROTO_OP_INFO, 10, NULL, 0, PROTO_OK, &o,
	    &resp);
	assert_int_equal(f.text_calls, 1);
	/* The room after the header, capped at PROTO_TEXT_MAX. */
	assert_int_equal(f.info_cap, PROTO_TEXT_MAX);
	assert_ptr_equal(f.info_buf, o.p + PROTO_FRAME_MIN);
	assert_payload_str(&resp, "version 0.1.0\nworkers 8\n");
	out_free(&o);
}

static void
test_stats_fake_callback(void **state)
{
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	handle(fake_ctx(&ctx, &f), PROTO_OP_STATS, 11, NULL, 0, PROTO_OK, &o,
	    &resp);
	assert_int_equal(f.text_calls, 1);
	assert_int_equal(f.info_cap, PROTO_LIST_MAX);
	assert_payload_str(&resp, "requests_total 12345\nconnections 0\n");
	out_free(&o);
}

static void
test_text_room_capped_by_cap(void **state)
{
	uint8_t wire[12];
	struct proto_req req;
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;
	size_t n;

	(void)state;
	/* Below the promised bound the callback gets what there is. */
	make_req(wire, &req, PROTO_OP_INFO, 12, NULL, 0);
	out_alloc(&o, PROTO_FRAME_MIN + 20);
	n = proto_handle(&req, fake_ctx(&ctx, &f), o.p, o.cap, NULL);
	assert_int_equal(f.info_cap, 20);
	read_resp(o.p, n, &resp);
	assert_payload_str(&resp, "version 0.1.0\n");
	out_free(&o);

	/* Above it, still PROTO_TEXT_MAX. */
	out_alloc(&o, PROTO_FRAME_MIN + 3 * PROTO_TEXT_MAX);
	proto_handle(&req, &ctx, o.p, o.cap, NULL);
	assert_int_equal(f.info_cap, PROTO_TEXT_MAX);
	out_free(&o);
}

static void
test_payload_on_no_payload_op(void **state)
{
	static const struct {
		uint8_t op;
		const char *msg;
	} cases[] = {
	    {PROTO_OP_PING, "PING takes no payload"},
	    {PROTO_OP_INFO, "INFO takes no payload"},
	    {PROTO_OP_STATS, "STATS takes no payload"},
	    {PROTO_OP_TIME, "TIME takes no payload"},
	    {PROTO_OP_OPCODES, "OPCODES takes no payload"},
	};
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;
	size_t i;

	(void)state;
	fake_ctx(&ctx, &f);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		handle(&ctx, cases[i].op, 0x100 + (uint32_t)i, "x", 1,
		    PROTO_BAD_REQUEST, &o, &resp);
		assert_payload_str(&resp, cases[i].msg);
		out_free(&o);
	}
	/* The payload was judged before any callback ran. */
	assert_int_equal(f.clock_calls, 0);
	assert_int_equal(f.text_calls, 0);
}

static void
test_unknown_opcodes(void **state)
{
	static const struct {
		uint8_t op;
		const char *msg;
	} cases[] = {
	    {0x06, "unknown opcode 0x06"},
	    {0x7f, "unknown opcode 0x7f"},
	    {0x80, "unknown opcode 0x80"},
	    {0xff, "unknown opcode 0xff"},
	};
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;
	size_t i;

	(void)state;
	fake_ctx(&ctx, &f);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		handle(&ctx, cases[i].op, 0xabcd0000 + (uint32_t)i, NULL, 0,
		    PROTO_UNKNOWN_OPCODE, &o, &resp);
		assert_payload_str(&resp, cases[i].msg);
		out_free(&o);
		/* With a payload too: the opcode is judged first. */
		handle(&ctx, cases[i].op, 1, "abc", 3, PROTO_UNKNOWN_OPCODE, &o,
		    &resp);
		assert_payload_str(&resp, cases[i].msg);
		out_free(&o);
	}
}

static void
test_null_callbacks_internal(void **state)
{
	static const struct {
		uint8_t op;
		const char *msg;
	} cases[] = {
	    {PROTO_OP_INFO, "INFO not available"},
	    {PROTO_OP_STATS, "STATS not available"},
	    {PROTO_OP_TIME, "TIME not available"},
	    {PROTO_OP_OPCODES, "OPCODES not available"},
	};
	struct proto_ctx ctx;
	struct outbuf o;
	struct proto_resp resp;
	size_t i;

	(void)state;
	memset(&ctx, 0, sizeof(ctx));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		handle(
		    &ctx, cases[i].op, 40, NULL, 0, PROTO_INTERNAL, &o, &resp);
		assert_payload_str(&resp, cases[i].msg);
		out_free(&o);
		handle(
		    NULL, cases[i].op, 41, NULL, 0, PROTO_INTERNAL, &o, &resp);
		assert_payload_str(&resp, cases[i].msg);
		out_free(&o);
	}
}

static void
test_callback_overrun_internal(void **state)
{
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	fake_ctx(&ctx, &f);
	f.overrun = PROTO_LIST_MAX;
	handle(&ctx, PROTO_OP_INFO, 50, NULL, 0, PROTO_INTERNAL, &o, &resp);
	assert_payload_str(&resp, "INFO source overran its buffer");
	out_free(&o);
	handle(&ctx, PROTO_OP_STATS, 51, NULL, 0, PROTO_INTERNAL, &o, &resp);
	assert_payload_str(&resp, "STATS source overran its buffer");
	out_free(&o);
	handle(&ctx, PROTO_OP_OPCODES, 52, NULL, 0, PROTO_INTERNAL, &o, &resp);
	assert_payload_str(&resp, "OPCODES source overran its buffer");
	out_free(&o);
}

static void
test_opcodes_text_from_callback(void **state)
{
	struct proto_ctx ctx;
	struct fake f;
	struct outbuf o;
	struct proto_resp resp;

	(void)state;
	handle(fake_ctx(&ctx, &f), PROTO_OP_OPCODES, 12, NULL, 0, PROTO_OK, &o,
	    &resp);
	assert_int_equal(f.text_calls, 1);
	assert_int_equal(f.info_cap, PROTO_LIST_MAX);
	assert_payload_str(&resp, "requests_total 12345\nconnections 0\n");
	out_free(&o);
}

static void
test_handle_rechecks_version_and_flags(void **state)
{
	struct proto_req req;
	struct proto_resp resp;
	struct outbuf o;
	enum proto_status st;
	size_t n;

	(void)state;
	memset(&req, 0, sizeof(req));
	req.version = 3;
	req.opcode = PROTO_OP_PING;
	req.request_id = 60;
	out_alloc(&o, proto_resp_bound(&req));
	n = proto_handle(&req, NULL, o.p, o.cap, &st);
	assert_int_equal(st, PROTO_UNSUPPORTED_VERSION);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.request_id, 60);
	assert_payload_str(&resp, "unsupported protocol version 3");

	req.version = 1;
	req.flags = 4;
	n = proto_handle(&req, NULL, o.p, o.cap, &st);
	assert_int_equal(st, PROTO_BAD_REQUEST);
	read_resp(o.p, n, &resp);
	assert_payload_str(&resp, "flags must be zero");
	out_free(&o);
}

static void
test_handle_short_cap_writes_nothing(void **state)
{
	uint8_t wire[12 + 100], payload[100];
	struct proto_req req;
	struct outbuf o;
	enum proto_status st;

	(void)state;
	/* A caller bug: like snprintf, the need comes back, nothing is written.
	 */
	memset(payload, 'p', sizeof(payload));
	make_req(wire, &req, PROTO_OP_ECHO, 1, payload, sizeof(payload));
	out_alloc(&o, 50);
	assert_int_equal(proto_handle(&req, NULL, o.p, o.cap, &st), 112);
	assert_int_equal(o.p[0], GUARD_BYTE);
	out_free(&o);

	make_req(wire, &req, PROTO_OP_INFO, 1, NULL, 0);
	out_alloc(&o, 11);
	assert_true(proto_handle(&req, NULL, o.p, o.cap, &st) > o.cap);
	assert_int_equal(o.p[0], GUARD_BYTE);
	out_free(&o);
}

static void
test_resp_bound(void **state)
{
	struct proto_req req;

	(void)state;
	memset(&req, 0, sizeof(req));
	assert_int_equal(
	    proto_resp_bound(&req), PROTO_FRAME_MIN + PROTO_TEXT_MAX);
	req.payload_len = PROTO_TEXT_MAX;
	assert_int_equal(
	    proto_resp_bound(&req), PROTO_FRAME_MIN + PROTO_TEXT_MAX);
	req.payload_len = PROTO_TEXT_MAX + 1;
	assert_int_equal(
	    proto_resp_bound(&req), PROTO_FRAME_MIN + PROTO_TEXT_MAX + 1);
	req.payload_len = SIZE_MAX;
	assert_int_equal(proto_resp_bound(&req), SIZE_MAX);
}

static void
test_error_null_req(void **state)
{
	struct proto_resp resp;
	struct outbuf o;
	size_t n;

	(void)state;
	out_alloc(&o, PROTO_FRAME_MIN + PROTO_TEXT_MAX);
	n = proto_error(NULL, PROTO_BUSY, "server busy, try later", o.p, o.cap);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.opcode, 0);
	assert_int_equal(resp.request_id, 0);
	assert_int_equal(resp.status, PROTO_BUSY);
	assert_payload_str(&resp, "server busy, try later");

	n = proto_error(NULL, PROTO_TOO_LARGE,
	    "frame of 2000000 bytes exceeds max_frame_size 1048576", o.p,
	    o.cap);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.status, PROTO_TOO_LARGE);
	assert_payload_str(
	    &resp, "frame of 2000000 bytes exceeds max_frame_size 1048576");
	out_free(&o);
}

static void
test_error_from_decoder(void **state)
{
	uint8_t wire[16];
	struct proto_req req;
	struct proto_resp resp;
	struct outbuf o;
	size_t consumed, n;

	(void)state;
	out_alloc(&o, PROTO_FRAME_MIN + PROTO_TEXT_MAX);

	/* A short header answers with request_id 0. */
	proto_put_u32(wire, 6);
	memcpy(wire + 4, "\x01\x01\x00\x00\xff\xff", 6);
	assert_int_equal(
	    proto_decode_req(wire, 10, 64, &req, &consumed), PROTO_BAD_REQUEST);
	n = proto_error(&req, PROTO_BAD_REQUEST,
	    "frame body of 6 bytes is shorter than the header", o.p, o.cap);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.status, PROTO_BAD_REQUEST);
	assert_int_equal(resp.request_id, 0);

	/* A bad version copies opcode and id. */
	make_req(wire, &req, PROTO_OP_ECHO, 0x5555, NULL, 0);
	wire[4] = 2;
	assert_int_equal(proto_decode_req(wire, 12, 64, &req, &consumed),
	    PROTO_UNSUPPORTED_VERSION);
	n = proto_error(&req, PROTO_UNSUPPORTED_VERSION, NULL, o.p, o.cap);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.opcode, PROTO_OP_ECHO);
	assert_int_equal(resp.request_id, 0x5555);
	assert_int_equal(resp.status, PROTO_UNSUPPORTED_VERSION);
	assert_payload_str(&resp, "unsupported protocol version 2");
	out_free(&o);
}

static void
test_error_default_messages(void **state)
{
	static const struct {
		enum proto_status st;
		const char *msg;
	} cases[] = {
	    {PROTO_BAD_REQUEST, "bad request"},
	    {PROTO_TOO_LARGE, "frame exceeds max_frame_size"},
	    {PROTO_BUSY, "server busy"},
	    {PROTO_INTERNAL, "internal error"},
	    {PROTO_UNSUPPORTED_VERSION, "unsupported protocol version"},
	    {PROTO_DENIED, "denied"},
	    {PROTO_UNKNOWN_OPCODE, "unknown opcode 0x00"},
	    /* Never on the wire: sent as INTERNAL. */
	    {PROTO_AGAIN, "internal error"},
	};
	struct proto_resp resp;
	struct outbuf o;
	size_t i, n;

	(void)state;
	out_alloc(&o, PROTO_FRAME_MIN + PROTO_TEXT_MAX);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = proto_error(NULL, cases[i].st, NULL, o.p, o.cap);
		read_resp(o.p, n, &resp);
		assert_int_equal(resp.status,
		    cases[i].st == PROTO_AGAIN ? PROTO_INTERNAL : cases[i].st);
		assert_payload_str(&resp, cases[i].msg);
	}
	out_free(&o);
}

static void
test_error_message_truncated_utf8(void **state)
{
	struct proto_resp resp;
	struct outbuf o;
	char *msg;
	size_t n;

	(void)state;
	/* PROTO_TEXT_MAX - 1 ASCII bytes, then "é" (2 bytes), then more. */
	msg = malloc(PROTO_TEXT_MAX + 16);
	assert_non_null(msg);
	memset(msg, 'a', PROTO_TEXT_MAX + 15);
	msg[PROTO_TEXT_MAX - 1] = (char)0xc3;
	msg[PROTO_TEXT_MAX] = (char)0xa9;
	msg[PROTO_TEXT_MAX + 15] = '\0';

	out_alloc(&o, PROTO_FRAME_MIN + PROTO_TEXT_MAX);
	n = proto_error(NULL, PROTO_INTERNAL, msg, o.p, o.cap);
	read_resp(o.p, n, &resp);
	/* The 2-byte character would straddle the limit: it is dropped. */
	assert_int_equal(resp.payload_len, PROTO_TEXT_MAX - 1);
	assert_memory_equal(resp.payload, msg, PROTO_TEXT_MAX - 1);

	/* Plain ASCII is cut at exactly PROTO_TEXT_MAX. */
	msg[PROTO_TEXT_MAX - 1] = 'b';
	msg[PROTO_TEXT_MAX] = 'c';
	n = proto_error(NULL, PROTO_INTERNAL, msg, o.p, o.cap);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.payload_len, PROTO_TEXT_MAX);
	assert_int_equal(resp.payload[PROTO_TEXT_MAX - 1], 'b');

	/* Exactly PROTO_TEXT_MAX bytes is not cut. */
	msg[PROTO_TEXT_MAX] = '\0';
	n = proto_error(NULL, PROTO_INTERNAL, msg, o.p, o.cap);
	read_resp(o.p, n, &resp);
	assert_int_equal(resp.payload_len, PROTO_TEXT_MAX);
	out_free(&o);

	/* Too small a buffer: the need comes back and nothing is written. */
	out_alloc(&o, 20);
	assert_int_equal(
	    proto_error(NULL, PROTO_INTERNAL, "0123456789", o.p, o.cap), 22);
	assert_int_equal(o.p[0], GUARD_BYTE);
	out_free(&o);
	free(msg);
}

static void
test_kv_lines(void **state)
{
	char buf[64];
	size_t off = 0;

	(void)state;
	assert_int_equal(proto_kv_u64(buf, sizeof(buf), &off, "zero", 0), 7);
	assert_int_equal(
	    proto_kv_u64(buf, sizeof(buf), &off, "max", UINT64_MAX), 25);
	assert_int_equal(
	    proto_kv_str(buf, sizeof(buf), &off, "name", "socketd"), 13);
	assert_int_equal(proto_kv_str(buf, sizeof(buf), &off, "empty", ""), 7);
	assert_int_equal(off, 52);
	assert_memory_equal(buf,
	    "zero 0\nmax 18446744073709551615\nname socketd\nempty \n", 52);
}

static void
test_kv_truncation(void **state)
{
	char buf[32];
	size_t off, cap, i;

	(void)state;
	/* "key 12345\n" is 10 bytes: it fits in 10, not in 9. */
	for (cap = 0; cap <= 12; cap++) {
		memset(buf, '#', sizeof(buf));
		off = 0;
		assert_int_equal(proto_kv_u64(buf, cap, &off, "key", 12345),
		    cap >= 10 ? 10 : 0);
		assert_int_equal(off, cap >= 10 ? 10 : 0);
		for (i = off; i < sizeof(buf); i++)
			assert_int_equal(buf[i], '#');
	}
	/* A second line that does not fit leaves the first one whole. */
	memset(buf, '#', sizeof(buf));
	off = 0;
	assert_int_equal(proto_kv_str(buf, 16, &off, "a", "b"), 4);
	assert_int_equal(proto_kv_str(buf, 16, &off, "long", "value!!"), 0);
	assert_int_equal(off, 4);
	assert_int_equal(buf[4], '#');
	/* ... while a shorter one still does: exactly to cap. */
	assert_int_equal(proto_kv_str(buf, 16, &off, "long", "valu!!"), 12);
	assert_int_equal(off, 16);
	assert_int_equal(buf[16], '#');
	assert_int_equal(proto_kv_u64(buf, 16, &off, "x", 1), 0);
	assert_int_equal(off, 16);
	/* An offset already past cap adds nothing. */
	off = 17;
	assert_int_equal(proto_kv_u64(buf, 16, &off, "x", 1), 0);
	assert_int_equal(off, 17);
}

static void
test_kv_refuses_broken_lines(void **state)
{
	char buf[64];
	size_t off = 0;

	(void)state;
	memset(buf, '#', sizeof(buf));
	assert_int_equal(
	    proto_kv_str(buf, sizeof(buf), &off, "two words", "v"), 0);
	assert_int_equal(proto_kv_str(buf, sizeof(buf), &off, "nl\n", "v"), 0);
	assert_int_equal(proto_kv_str(buf, sizeof(buf), &off, "", "v"), 0);
	assert_int_equal(proto_kv_str(buf, sizeof(buf), &off, "k", "a\nb"), 0);
	assert_int_equal(proto_kv_str(buf, sizeof(buf), &off, "k", NULL), 0);
	assert_int_equal(proto_kv_u64(buf, sizeof(buf), &off, NULL, 1), 0);
	assert_int_equal(off, 0);
	assert_int_equal(buf[0], '#');
	/* Spaces inside a value are fine. */
	assert_int_equal(proto_kv_str(buf, sizeof(buf), &off, "listen",
			     "127.0.0.1:7411 [::1]:7411"),
	    33);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ping_ok_empty),
	    cmocka_unit_test(test_ping_wire_bytes),
	    cmocka_unit_test(test_echo_payload),
	    cmocka_unit_test(test_echo_empty_payload),
	    cmocka_unit_test(test_echo_large_payload),
	    cmocka_unit_test(test_echo_in_place),
	    cmocka_unit_test(test_time_fake_clock),
	    cmocka_unit_test(test_info_fake_callback),
	    cmocka_unit_test(test_stats_fake_callback),
	    cmocka_unit_test(test_text_room_capped_by_cap),
	    cmocka_unit_test(test_payload_on_no_payload_op),
	    cmocka_unit_test(test_unknown_opcodes),
	    cmocka_unit_test(test_null_callbacks_internal),
	    cmocka_unit_test(test_callback_overrun_internal),
	    cmocka_unit_test(test_opcodes_text_from_callback),
	    cmocka_unit_test(test_handle_rechecks_version_and_flags),
	    cmocka_unit_test(test_handle_short_cap_writes_nothing),
	    cmocka_unit_test(test_resp_bound),
	    cmocka_unit_test(test_error_null_req),
	    cmocka_unit_test(test_error_from_decoder),
	    cmocka_unit_test(test_error_default_messages),
	    cmocka_unit_test(test_error_message_truncated_utf8),
	    cmocka_unit_test(test_kv_lines),
	    cmocka_unit_test(test_kv_truncation),
	    cmocka_unit_test(test_kv_refuses_broken_lines),
	};

	return cmocka_run_group_tests_name("handlers", tests, NULL, NULL);
}
