/*
 * Unit tests for the protocol v1 frame codec (proto/proto.c).
 *
 * Frames are built byte by byte here, not with the encoder, so the decoder
 * is checked against the wire format itself.  Inputs are copied into heap
 * buffers of the exact length so that ASan and valgrind see any read past
 * the bytes handed to the decoder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MAXF 64 /* a small max_frame for the tests */

/* Write a raw frame: prefix L, then body bytes as given (len bytes). */
static size_t
raw_frame(uint8_t *dst, uint32_t l, const uint8_t *body, size_t len)
{
	proto_put_u32(dst, l);
	if (len != 0)
		memcpy(dst + 4, body, len);
	return 4 + len;
}

/* Write a request frame with an arbitrary header. */
static size_t
req_frame(uint8_t *dst, uint8_t version, uint8_t opcode, uint16_t flags,
    uint32_t id, const void *payload, size_t plen)
{
	proto_put_u32(dst, (uint32_t)(8 + plen));
	dst[4] = version;
	dst[5] = opcode;
	proto_put_u16(dst + 6, flags);
	proto_put_u32(dst + 8, id);
	if (plen != 0)
		memcpy(dst + 12, payload, plen);
	return 12 + plen;
}

/* Decode from an exact-size heap copy of buf[0..len). */
static enum proto_status
decode_exact(const uint8_t *buf, size_t len, size_t max_frame,
    struct proto_req *req, size_t *consumed)
{
	enum proto_status st;
	uint8_t *copy;

	copy = malloc(len != 0 ? len : 1);
	assert_non_null(copy);
	if (len != 0)
		memcpy(copy, buf, len);
	st = proto_decode_req(copy, len, max_frame, req, consumed);
	/* Point the views back into buf so callers may check them. */
	if (req->payload != NULL)
		req->payload = buf + (req->payload - copy);
	free(copy);
	return st;
}

static void
assert_req_zero(const struct proto_req *req)
{
	assert_int_equal(req->version, 0);
	assert_int_equal(req->opcode, 0);
	assert_int_equal(req->flags, 0);
	assert_int_equal(req->request_id, 0);
	assert_null(req->payload);
	assert_int_equal(req->payload_len, 0);
}

static void
test_decode_split_at_every_byte(void **state)
{
	uint8_t buf[64];
	struct proto_req req;
	size_t n, k, consumed;

	(void)state;
	n = req_frame(buf, 1, PROTO_OP_ECHO, 0, 0xdeadbeef, "hello", 5);
	assert_int_equal(n, 17);
	for (k = 0; k < n; k++) {
		consumed = 99;
		assert_int_equal(
		    decode_exact(buf, k, MAXF, &req, &consumed), PROTO_AGAIN);
		assert_int_equal(consumed, 0);
	}
	assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed), PROTO_OK);
	assert_int_equal(consumed, n);
	assert_int_equal(req.version, 1);
	assert_int_equal(req.opcode, PROTO_OP_ECHO);
	assert_int_equal(req.flags, 0);
	assert_int_equal(req.request_id, 0xdeadbeef);
	assert_int_equal(req.payload_len, 5);
	assert_ptr_equal(req.payload, buf + 12);
	assert_memory_equal(req.payload, "hello", 5);
}

static void
test_decode_empty_payload_at_every_byte(void **state)
{
	uint8_t buf[16];
	struct proto_req req;
	size_t k, consumed;

	(void)state;
	assert_int_equal(req_frame(buf, 1, PROTO_OP_PING, 0, 7, NULL, 0), 12);
	for (k = 0; k < 12; k++) {
		assert_int_equal(
		    decode_exact(buf, k, MAXF, &req, &consumed), PROTO_AGAIN);
		assert_int_equal(consumed, 0);
	}
	assert_int_equal(
	    decode_exact(buf, 12, MAXF, &req, &consumed), PROTO_OK);
	assert_int_equal(consumed, 12);
	assert_int_equal(req.opcode, PROTO_OP_PING);
	assert_int_equal(req.request_id, 7);
	assert_int_equal(req.payload_len, 0);
}

static void
test_decode_two_frames_back_to_back(void **state)
{
	uint8_t buf[64];
	struct proto_req req;
	size_t n1, n2, consumed;

	(void)state;
	n1 = req_frame(buf, 1, PROTO_OP_ECHO, 0, 1, "abc", 3);
	n2 = req_frame(buf + n1, 1, PROTO_OP_PING, 0, 2, NULL, 0);
	/* And the first 3 bytes of a third frame. */
	req_frame(buf + n1 + n2, 1, PROTO_OP_TIME, 0, 3, NULL, 0);

	assert_int_equal(
	    proto_decode_req(buf, n1 + n2 + 3, MAXF, &req, &consumed),
	    PROTO_OK);
	assert_int_equal(consumed, n1);
	assert_int_equal(req.opcode, PROTO_OP_ECHO);
	assert_int_equal(req.request_id, 1);
	assert_int_equal(req.payload_len, 3);
	assert_memory_equal(req.payload, "abc", 3);

	assert_int_equal(
	    proto_decode_req(buf + n1, n2 + 3, MAXF, &req, &consumed),
	    PROTO_OK);
	assert_int_equal(consumed, n2);
	assert_int_equal(req.opcode, PROTO_OP_PING);
	assert_int_equal(req.request_id, 2);
	assert_int_equal(req.payload_len, 0);

	assert_int_equal(
	    proto_decode_req(buf + n1 + n2, 3, MAXF, &req, &consumed),
	    PROTO_AGAIN);
	assert_int_equal(consumed, 0);
}

static void
test_decode_exact_max_frame_ok(void **state)
{
	uint8_t buf[4 + MAXF], payload[MAXF - 8];
	struct proto_req req;
	size_t consumed;

	(void)state;
	memset(payload, 'x', sizeof(payload));
	req_frame(buf, 1, PROTO_OP_ECHO, 0, 9, payload, sizeof(payload));
	assert_int_equal(proto_get_u32(buf), MAXF);
	assert_int_equal(
	    decode_exact(buf, sizeof(buf), MAXF, &req, &consumed), PROTO_OK);
	assert_int_equal(consumed, sizeof(buf));
	assert_int_equal(req.payload_len, MAXF - 8);
}

static void
test_decode_too_large_from_prefix_only(void **state)
{
	uint8_t buf[4];
	struct proto_req req;
	size_t consumed;

	(void)state;
	proto_put_u32(buf, MAXF + 1);
	memset(&req, 0xaa, sizeof(req));
	consumed = 99;
	assert_int_equal(
	    decode_exact(buf, 4, MAXF, &req, &consumed), PROTO_TOO_LARGE);
	assert_int_equal(consumed, 0);
	assert_req_zero(&req);

	/* Fewer than 4 bytes cannot tell. */
	assert_int_equal(
	    decode_exact(buf, 3, MAXF, &req, &consumed), PROTO_AGAIN);

	/* The default limit and the largest prefix. */
	proto_put_u32(buf, 2000000);
	assert_int_equal(
	    decode_exact(buf, 4, PROTO_DEFAULT_MAX, &req, &consumed),
	    PROTO_TOO_LARGE);
	assert_int_equal(consumed, 0);
	proto_put_u32(buf, UINT32_MAX);
	assert_int_equal(
	    decode_exact(buf, 4, PROTO_DEFAULT_MAX, &req, &consumed),
	    PROTO_TOO_LARGE);
	/* ... which is not too large when nothing bounds it: wait. */
	assert_int_equal(
	    decode_exact(buf, 4, SIZE_MAX, &req, &consumed), PROTO_AGAIN);
	assert_int_equal(consumed, 0);
}

static void
test_decode_short_body_is_bad_request(void **state)
{
	/* A body that would be a valid header if it were long enough. */
	static const uint8_t body[8] = {1, 0x01, 0, 0, 0x11, 0x22, 0x33, 0x44};
	uint8_t buf[4 + 8 + 12];
	struct proto_req req;
	size_t l, n, k, consumed;

	(void)state;
	for (l = 0; l < 8; l++) {
		n = raw_frame(buf, (uint32_t)l, body, l);
		/* Incomplete short frames still wait. */
		for (k = 0; k < n; k++)
			assert_int_equal(
			    decode_exact(buf, k, MAXF, &req, &consumed),
			    PROTO_AGAIN);
		/* A following frame must not be touched. */
		req_frame(buf + n, 1, PROTO_OP_PING, 0, 5, NULL, 0);
		memset(&req, 0xaa, sizeof(req));
		assert_int_equal(
		    decode_exact(buf, n + 12, MAXF, &req, &consumed),
		    PROTO_BAD_REQUEST);
		assert_int_equal(consumed, 4 + l);
		assert_int_equal(req.request_id, 0);
		assert_null(req.payload);
		assert_int_equal(req.payload_len, 0);
		/* What could be read is kept. */
		assert_int_equal(req.version, l >= 1 ? 1 : 0);
		assert_int_equal(req.opcode, l >= 2 ? PROTO_OP_ECHO : 0);
		assert_int_equal(req.flags, 0);
		/* The stream goes on with the next frame. */
		assert_int_equal(
		    decode_exact(buf + consumed, 12, MAXF, &req, &consumed),
		    PROTO_OK);
		assert_int_equal(req.request_id, 5);
	}
}

static void
test_decode_bad_version(void **state)
{
	uint8_t buf[32];
	struct proto_req req;
	size_t n, consumed;

	(void)state;
	n = req_frame(buf, 2, PROTO_OP_ECHO, 0, 0x01020304, "hi", 2);
	assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed),
	    PROTO_UNSUPPORTED_VERSION);
	assert_int_equal(consumed, n);
	assert_int_equal(req.version, 2);
	assert_int_equal(req.opcode, PROTO_OP_ECHO);
	assert_int_equal(req.request_id, 0x01020304);

	n = req_frame(buf, 0, PROTO_OP_PING, 0, 1, NULL, 0);
	assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed),
	    PROTO_UNSUPPORTED_VERSION);
	assert_int_equal(req.version, 0);

	/* The version is judged before the flags. */
	n = req_frame(buf, 2, PROTO_OP_PING, 1, 1, NULL, 0);
	assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed),
	    PROTO_UNSUPPORTED_VERSION);
}

static void
test_decode_nonzero_flags(void **state)
{
	uint8_t buf[32];
	struct proto_req req;
	size_t n, consumed;
	uint16_t flags[] = {0x0001, 0x8000, 0xffff};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		n = req_frame(buf, 1, PROTO_OP_STATS, flags[i], 0xcafe, "z", 1);
		assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed),
		    PROTO_BAD_REQUEST);
		assert_int_equal(consumed, n);
		assert_int_equal(req.opcode, PROTO_OP_STATS);
		assert_int_equal(req.flags, flags[i]);
		assert_int_equal(req.request_id, 0xcafe);
	}
}

static void
test_decode_leaves_opcode_and_payload_to_handler(void **state)
{
	uint8_t buf[32];
	struct proto_req req;
	size_t n, consumed;

	(void)state;
	n = req_frame(buf, 1, 0x05, 0, 1, NULL, 0);
	assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed), PROTO_OK);
	assert_int_equal(req.opcode, 0x05);
	n = req_frame(buf, 1, PROTO_OP_PING, 0, 1, "x", 1);
	assert_int_equal(decode_exact(buf, n, MAXF, &req, &consumed), PROTO_OK);
	assert_int_equal(req.payload_len, 1);
}

static void
test_encode_req_wire_bytes(void **state)
{
	/* The HAProxy health check sends exactly this PING. */
	static const uint8_t ping[] = {0, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t echo[] = {
	    0, 0, 0, 11, 1, 1, 0, 0, 0x12, 0x34, 0x56, 0x78, 'a', 'b', 'c'};
	uint8_t buf[32];

	(void)state;
	assert_int_equal(
	    proto_encode_req(buf, sizeof(buf), PROTO_OP_PING, 0, NULL, 0),
	    sizeof(ping));
	assert_memory_equal(buf, ping, sizeof(ping));
	assert_int_equal(proto_encode_req(buf, sizeof(buf), PROTO_OP_ECHO,
			     0x12345678, "abc", 3),
	    sizeof(echo));
	assert_memory_equal(buf, echo, sizeof(echo));
}

static void
test_encode_resp_wire_bytes(void **state)
{
	static const uint8_t want[] = {
	    0, 0, 0, 10, 1, 0x80, 0, 1, 0, 0, 0, 42, 'n', 'o'};
	uint8_t buf[32];

	(void)state;
	assert_int_equal(proto_encode_resp(buf, sizeof(buf), 0x80,
			     PROTO_UNKNOWN_OPCODE, 42, "no", 2),
	    sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void
test_encode_short_cap_writes_nothing(void **state)
{
	uint8_t buf[32], zero[32];
	size_t cap;

	(void)state;
	memset(zero, 0xee, sizeof(zero));
	for (cap = 0; cap < 17; cap++) {
		memset(buf, 0xee, sizeof(buf));
		assert_int_equal(
		    proto_encode_req(buf, cap, PROTO_OP_ECHO, 1, "hello", 5),
		    17);
		assert_memory_equal(buf, zero, sizeof(buf));
		assert_int_equal(proto_encode_resp(buf, cap, PROTO_OP_ECHO,
				     PROTO_OK, 1, "hello", 5),
		    17);
		assert_memory_equal(buf, zero, sizeof(buf));
	}
	/* Measuring with a NULL buffer, as with snprintf(NULL, 0, ...). */
	assert_int_equal(
	    proto_encode_req(NULL, 0, PROTO_OP_PING, 1, NULL, 0), 12);
	assert_int_equal(
	    proto_encode_resp(NULL, 0, PROTO_OP_PING, 0, 1, NULL, 0), 12);
	/* Exactly enough writes the frame and not a byte more. */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(
	    proto_encode_req(buf, 17, PROTO_OP_ECHO, 1, "hello", 5), 17);
	assert_int_equal(buf[17], 0xee);
}

static void
test_encode_unframeable_payload(void **state)
{
	uint8_t buf[16];

	(void)state;
	memset(buf, 0, sizeof(buf));
	/* A body of more than UINT32_MAX bytes has no length prefix. */
	assert_true(proto_encode_req(buf, sizeof(buf), PROTO_OP_ECHO, 1, buf,
			SIZE_MAX - 4) > sizeof(buf));
	assert_int_equal(
	    proto_encode_req(buf, sizeof(buf), PROTO_OP_ECHO, 1, buf, SIZE_MAX),
	    SIZE_MAX);
}

static void
test_req_round_trip(void **state)
{
	uint8_t buf[256], payload[200];
	struct proto_req req;
	size_t i, n, consumed;

	(void)state;
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	n = proto_encode_req(
	    buf, sizeof(buf), 0xfe, UINT32_MAX, payload, sizeof(payload));
	assert_int_equal(n, 12 + sizeof(payload));
	assert_int_equal(
	    decode_exact(buf, n, PROTO_DEFAULT_MAX, &req, &consumed), PROTO_OK);
	assert_int_equal(consumed, n);
	assert_int_equal(req.version, PROTO_VERSION);
	assert_int_equal(req.opcode, 0xfe);
	assert_int_equal(req.flags, 0);
	assert_int_equal(req.request_id, UINT32_MAX);
	assert_int_equal(req.payload_len, sizeof(payload));
	assert_memory_equal(req.payload, payload, sizeof(payload));
}

static void
test_resp_round_trip(void **state)
{
	uint8_t buf[64];
	struct proto_resp resp;
	size_t n, k, consumed;

	(void)state;
	n = proto_encode_resp(
	    buf, sizeof(buf), PROTO_OP_INFO, PROTO_DENIED, 77, "go away", 7);
	assert_int_equal(n, 19);
	for (k = 0; k < n; k++) {
		assert_int_equal(
		    proto_decode_resp(buf, k, MAXF, &resp, &consumed),
		    PROTO_AGAIN);
		assert_int_equal(consumed, 0);
	}
	assert_int_equal(
	    proto_decode_resp(buf, n, MAXF, &resp, &consumed), PROTO_OK);
	assert_int_equal(consumed, n);
	assert_int_equal(resp.version, 1);
	assert_int_equal(resp.opcode, PROTO_OP_INFO);
	assert_int_equal(resp.status, PROTO_DENIED);
	assert_int_equal(resp.request_id, 77);
	assert_int_equal(resp.payload_len, 7);
	assert_memory_equal(resp.payload, "go away", 7);
}

static void
test_resp_decode_short_body(void **state)
{
	static const uint8_t body[8] = {1, 0, 0, 0, 0, 0, 0, 1};
	uint8_t buf[16];
	struct proto_resp resp;
	size_t l, n, consumed;

	(void)state;
	for (l = 0; l < 8; l++) {
		n = raw_frame(buf, (uint32_t)l, body, l);
		consumed = 99;
		assert_int_equal(
		    proto_decode_resp(buf, n, MAXF, &resp, &consumed),
		    PROTO_BAD_REQUEST);
		assert_int_equal(consumed, 0);
		assert_int_equal(resp.request_id, 0);
		assert_null(resp.payload);
	}
}

static void
test_resp_decode_errors(void **state)
{
	uint8_t buf[32];
	struct proto_resp resp;
	size_t n, consumed;

	(void)state;
	proto_put_u32(buf, MAXF + 1);
	memset(&resp, 0xaa, sizeof(resp));
	assert_int_equal(
	    proto_decode_resp(buf, 4, MAXF, &resp, &consumed), PROTO_TOO_LARGE);
	assert_int_equal(consumed, 0);
	assert_int_equal(resp.status, 0);
	assert_null(resp.payload);

	n = proto_encode_resp(
	    buf, sizeof(buf), PROTO_OP_PING, PROTO_OK, 3, NULL, 0);
	buf[4] = 2;
	assert_int_equal(proto_decode_resp(buf, n, MAXF, &resp, &consumed),
	    PROTO_UNSUPPORTED_VERSION);
	assert_int_equal(consumed, n);
	assert_int_equal(resp.request_id, 3);
}

static void
test_status_names(void **state)
{
	(void)state;
	assert_string_equal(proto_status_str(PROTO_OK), "OK");
	assert_string_equal(
	    proto_status_str(PROTO_UNKNOWN_OPCODE), "UNKNOWN_OPCODE");
	assert_string_equal(proto_status_str(PROTO_BAD_REQUEST), "BAD_REQUEST");
	assert_string_equal(proto_status_str(PROTO_TOO_LARGE), "TOO_LARGE");
	assert_string_equal(proto_status_str(PROTO_BUSY), "BUSY");
	assert_string_equal(proto_status_str(PROTO_INTERNAL), "INTERNAL");
	assert_string_equal(
	    proto_status_str(PROTO_UNSUPPORTED_VERSION), "UNSUPPORTED_VERSION");
	assert_string_equal(proto_status_str(PROTO_DENIED), "DENIED");
	assert_string_equal(proto_status_str(PROTO_AGAIN), "AGAIN");
	assert_string_equal(proto_status_str(PROTO_TIMEOUT), "TIMEOUT");
	assert_string_equal(proto_status_str(PROTO_OVERLOADED), "OVERLOADED");
	assert_string_equal(
	    proto_status_str(PROTO_NOT_SUBSCRIBED), "NOT_SUBSCRIBED");
	assert_string_equal(proto_status_str(14), "UNKNOWN_STATUS");
	assert_string_equal(proto_status_str(0xffff), "UNKNOWN_STATUS");
	assert_string_equal(proto_status_str(~0u), "UNKNOWN_STATUS");
}

static void
test_opcode_names(void **state)
{
	unsigned op;

	(void)state;
	assert_string_equal(proto_opcode_str(PROTO_OP_PING), "ping");
	assert_string_equal(proto_opcode_str(PROTO_OP_ECHO), "echo");
	assert_string_equal(proto_opcode_str(PROTO_OP_INFO), "info");
	assert_string_equal(proto_opcode_str(PROTO_OP_STATS), "stats");
	assert_string_equal(proto_opcode_str(PROTO_OP_TIME), "time");
	assert_string_equal(proto_opcode_str(PROTO_OP_OPCODES), "opcodes");
	for (op = 0x06; op <= 0x1ff; op++)
		assert_null(proto_opcode_str(op));
	assert_null(proto_opcode_str(~0u));
}

static void
test_be_helpers(void **state)
{
	uint8_t b[4];

	(void)state;
	proto_put_u32(b, 0x01020304);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[3], 4);
	assert_int_equal(proto_get_u32(b), 0x01020304);
	proto_put_u32(b, 0xfffefdfc);
	assert_int_equal(proto_get_u32(b), 0xfffefdfc);
	proto_put_u16(b, 0xa1b2);
	assert_int_equal(b[0], 0xa1);
	assert_int_equal(b[1], 0xb2);
	assert_int_equal(proto_get_u16(b), 0xa1b2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_split_at_every_byte),
	    cmocka_unit_test(test_decode_empty_payload_at_every_byte),
	    cmocka_unit_test(test_decode_two_frames_back_to_back),
	    cmocka_unit_test(test_decode_exact_max_frame_ok),
	    cmocka_unit_test(test_decode_too_large_from_prefix_only),
	    cmocka_unit_test(test_decode_short_body_is_bad_request),
	    cmocka_unit_test(test_decode_bad_version),
	    cmocka_unit_test(test_decode_nonzero_flags),
	    cmocka_unit_test(test_decode_leaves_opcode_and_payload_to_handler),
	    cmocka_unit_test(test_encode_req_wire_bytes),
	    cmocka_unit_test(test_encode_resp_wire_bytes),
	    cmocka_unit_test(test_encode_short_cap_writes_nothing),
	    cmocka_unit_test(test_encode_unframeable_payload),
	    cmocka_unit_test(test_req_round_trip),
	    cmocka_unit_test(test_resp_round_trip),
	    cmocka_unit_test(test_resp_decode_short_body),
	    cmocka_unit_test(test_resp_decode_errors),
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_opcode_names),
	    cmocka_unit_test(test_be_helpers),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
