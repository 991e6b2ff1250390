/*
 * proto.c: the protocol v1 frame codec and the status/opcode names.
 *
 * The decoders keep no state between calls: the caller keeps every byte
 * not yet consumed and calls again with more, so a frame split at any byte
 * decodes exactly as a whole one.  Every read of a network byte is checked
 * against len before it happens.  The encoders follow snprintf: they return
 * the length the frame needs and write nothing at all when it does not fit.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

static const char *const status_names[] = {
    [PROTO_OK] = "OK",
    [PROTO_UNKNOWN_OPCODE] = "UNKNOWN_OPCODE",
    [PROTO_BAD_REQUEST] = "BAD_REQUEST",
    [PROTO_TOO_LARGE] = "TOO_LARGE",
    [PROTO_BUSY] = "BUSY",
    [PROTO_INTERNAL] = "INTERNAL",
    [PROTO_UNSUPPORTED_VERSION] = "UNSUPPORTED_VERSION",
    [PROTO_DENIED] = "DENIED",
    [PROTO_TIMEOUT] = "TIMEOUT",
    [PROTO_OVERLOADED] = "OVERLOADED",
    [PROTO_INVALID_TOPIC] = "INVALID_TOPIC",
    [PROTO_FORBIDDEN] = "FORBIDDEN",
    [PROTO_LIMIT_EXCEEDED] = "LIMIT_EXCEEDED",
    [PROTO_NOT_SUBSCRIBED] = "NOT_SUBSCRIBED",
};

static const char *const opcode_names[] = {
    [PROTO_OP_PING] = "ping",
    [PROTO_OP_ECHO] = "echo",
    [PROTO_OP_INFO] = "info",
    [PROTO_OP_STATS] = "stats",
    [PROTO_OP_TIME] = "time",
    [PROTO_OP_OPCODES] = "opcodes",
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Look at the length prefix.  PROTO_OK: the whole frame is in buf and *blen
 * is its body length.  PROTO_AGAIN: more bytes are needed.  PROTO_TOO_LARGE:
 * the prefix alone condemns the frame.
 */
static enum proto_status
frame_body(const uint8_t *buf, size_t len, size_t max_frame, size_t *blen)
{
	uint32_t l;

	if (len < PROTO_LEN_SIZE)
		return PROTO_AGAIN;
	l = proto_get_u32(buf);
	if (l > max_frame)
		return PROTO_TOO_LARGE;
	/* Written so that it cannot overflow, whatever size_t is. */
	if (len - PROTO_LEN_SIZE < l)
		return PROTO_AGAIN;
	*blen = l;
	return PROTO_OK;
}

enum proto_status
proto_decode_req(const uint8_t *buf, size_t len, size_t max_frame,
    struct proto_req *req, size_t *consumed)
{
	const uint8_t *body;
	enum proto_status st;
	size_t blen;

	memset(req, 0, sizeof(*req));
	*consumed = 0;
	if ((st = frame_body(buf, len, max_frame, &blen)) != PROTO_OK)
		return st;
	body = buf + PROTO_LEN_SIZE;
	*consumed = PROTO_LEN_SIZE + blen;

	/* A short header: keep what could be read; request_id stays 0. */
	if (blen < PROTO_HDR_SIZE) {
		if (blen >= 1)
			req->version = body[0];
		if (blen >= 2)
			req->opcode = body[1];
		if (blen >= 4)
			req->flags = proto_get_u16(body + 2);
		return PROTO_BAD_REQUEST;
	}

	req->version = body[0];
	req->opcode = body[1];
	req->flags = proto_get_u16(body + 2);
	req->request_id = proto_get_u32(body + 4);
	req->payload = body + PROTO_HDR_SIZE;
	req->payload_len = blen - PROTO_HDR_SIZE;
	if (req->version != PROTO_VERSION)
		return PROTO_UNSUPPORTED_VERSION;
	if (req->flags != 0)
		return PROTO_BAD_REQUEST;
	return PROTO_OK;
}

enum proto_status
proto_decode_resp(const uint8_t *buf, size_t len, size_t max_frame,
    struct proto_resp *resp, size_t *consumed)
{
	const uint8_t *body;
	enum proto_status st;
	size_t blen;

	memset(resp, 0, sizeof(*resp));
	*consumed = 0;
	if ((st = frame_body(buf, len, max_frame, &blen)) != PROTO_OK)
		return st;
	body = buf + PROTO_LEN_SIZE;

	/* A broken server: consume nothing, the caller drops the link. */
	if (blen < PROTO_HDR_SIZE) {
		if (blen >= 1)
			resp->version = body[0];
		if (blen >= 2)
			resp->opcode = body[1];
		if (blen >= 4)
			resp->status = proto_get_u16(body + 2);
		return PROTO_BAD_REQUEST;
	}

	*consumed = PROTO_LEN_SIZE + blen;
	resp->version = body[0];
	resp->opcode = body[1];
	resp->status = proto_get_u16(body + 2);
	resp->request_id = proto_get_u32(body + 4);
	resp->payload = body + PROTO_HDR_SIZE;
	resp->payload_len = blen - PROTO_HDR_SIZE;
	if (resp->version != PROTO_VERSION)
		return PROTO_UNSUPPORTED_VERSION;
	return PROTO_OK;
}

/*
 * Both frame kinds share one layout; word is the flags of a request or the
 * status of a response.  A payload whose body length cannot be written in
 * the u32 prefix yields SIZE_MAX, which no buffer can hold.
 */
static size_t
encode(uint8_t *dst, size_t cap, uint8_t opcode, uint16_t word,
    uint32_t request_id, const void *payload, size_t payload_len)
{
	size_t n;

	if (payload_len > UINT32_MAX - PROTO_HDR_SIZE ||
	    payload_len > SIZE_MAX - PROTO_FRAME_MIN)
		return SIZE_MAX;
	n = PROTO_FRAME_MIN + payload_len;
	if (n > cap)
		return n;
	proto_put_u32(dst, (uint32_t)(PROTO_HDR_SIZE + payload_len));
	dst[4] = PROTO_VERSION;
	dst[5] = opcode;
	proto_put_u16(dst + 6, word);
	proto_put_u32(dst + 8, request_id);
	/* memmove: an in-place ECHO has payload == dst + PROTO_FRAME_MIN. */
	if (payload_len != 0)
		memmove(dst + PROTO_FRAME_MIN, payload, payload_len);
	return n;
}

size_t
proto_encode_req(uint8_t *dst, size_t cap, uint8_t opcode, uint32_t request_id,
    const void *payload, size_t payload_len)
{
	return encode(dst, cap, opcode, 0, request_id, payload, payload_len);
}

size_t
proto_encode_resp(uint8_t *dst, size_t cap, uint8_t opcode, uint16_t status,
    uint32_t request_id, const void *payload, size_t payload_len)
{
	return encode(
	    dst, cap, opcode, status, request_id, payload, payload_len);
}

const char *
proto_status_str(unsigned status)
{
	if (status < NITEMS(status_names) && status_names[status] != NULL)
		return status_names[status];
	if (status == PROTO_AGAIN)
		return "AGAIN";
	return "UNKNOWN_STATUS";
}

const char *
proto_opcode_str(unsigned opcode)
{
	if (opcode < NITEMS(opcode_names))
		return opcode_names[opcode];
	return NULL;
}
