/*
 * handlers.c: protocol v1 request handlers, error responses and the
 * "name value\n" text helpers.
 *
 * Every response is written whole into the caller's buffer or not at all.
 * When cap is too small (a caller bug: cap >= proto_resp_bound() is the
 * contract) nothing is written and the return value, like snprintf's, is
 * larger than cap.  Error and text payloads never exceed PROTO_TEXT_MAX.
 *
 * PING and ECHO are the hot path: a switch, a few stores and one memmove.
 * Numbers are formatted by hand, so this file needs no stdio.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

#define U64_DIGITS 20 /* strlen("18446744073709551615") */

/* Write v in decimal at dst (room for U64_DIGITS); return the length. */
static size_t
fmt_u64(char *dst, uint64_t v)
{
	char tmp[U64_DIGITS];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		dst[i] = tmp[n - 1 - i];
	return n;
}

/* Write "0x" and two lower-case hex digits at dst; return 4. */
static size_t
fmt_hex8(char *dst, uint8_t v)
{
	static const char hex[] = "0123456789abcdef";

	dst[0] = '0';
	dst[1] = 'x';
	dst[2] = hex[v >> 4];
	dst[3] = hex[v & 0xf];
	return 4;
}

/* Copy a string into dst (room checked by the caller); return its length. */
static size_t
fmt_str(char *dst, const char *s)
{
	size_t n = strlen(s);

	/* Payload text, not a C string: no NUL wanted. */
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
	memcpy(dst, s, n);
	return n;
}

/*
 * The length of msg, at most PROTO_TEXT_MAX, cut before a UTF-8 sequence
 * that would straddle the limit so the payload stays valid UTF-8.
 */
static size_t
text_len(const char *msg)
{
	size_t n;

	/* strnlen, not memchr: memchr may read the whole range past the NUL. */
	if ((n = strnlen(msg, PROTO_TEXT_MAX + 1)) <= PROTO_TEXT_MAX)
		return n;
	n = PROTO_TEXT_MAX;
	while (n > 0 && ((unsigned char)msg[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* The message proto_error() sends when the caller gives none. */
static const char *
default_msg(const struct proto_req *req, enum proto_status status, char *buf)
{
	size_t n;

	switch (status) {
	case PROTO_OK:
		return "ok";
	case PROTO_UNKNOWN_OPCODE:
		n = fmt_str(buf, "unknown opcode ");
		n += fmt_hex8(buf + n, req != NULL ? req->opcode : 0);
		buf[n] = '\0';
		return buf;
	case PROTO_BAD_REQUEST:
		return "bad request";
	case PROTO_TOO_LARGE:
		return "frame exceeds max_frame_size";
	case PROTO_BUSY:
		return "server busy";
	case PROTO_INTERNAL:
		return "internal error";
	case PROTO_UNSUPPORTED_VERSION:
		if (req == NULL)
			return "unsupported protocol version";
		n = fmt_str(buf, "unsupported protocol version ");
		n += fmt_u64(buf + n, req->version);
		buf[n] = '\0';
		return buf;
	case PROTO_DENIED:
		return "denied";
	default:
		return proto_status_str(status);
	}
}

/*
 * A msg of NULL sends a default message for the status.  A status that
 * cannot go on the wire (PROTO_AGAIN and above) is sent as INTERNAL.
 */
size_t
proto_error(const struct proto_req *req, enum proto_status status,
    const char *msg, uint8_t *out, size_t cap)
{
	char buf[64];

	if ((unsigned)status >= PROTO_AGAIN) {
		status = PROTO_INTERNAL;
		msg = NULL;
	}
	if (msg == NULL)
		msg = default_msg(req, status, buf);
	return proto_encode_resp(out, cap, req != NULL ? req->opcode : 0,
	    (uint16_t)status, req != NULL ? req->request_id : 0, msg,
	    text_len(msg));
}

static size_t
fail(const struct proto_req *req, enum proto_status st, const char *msg,
    uint8_t *out, size_t cap, enum proto_status *status)
{
	if (status != NULL)
		*status = st;
	return proto_error(req, st, msg, out, cap);
}

static size_t
unknown_opcode(const struct proto_req *req, uint8_t *out, size_t cap,
    enum proto_status *status)
{
	char msg[32];
	size_t n;

	n = fmt_str(msg, "unknown opcode ");
	n += fmt_hex8(msg + n, req->opcode);
	msg[n] = '\0';
	return fail(req, PROTO_UNKNOWN_OPCODE, msg, out, cap, status);
}

/* The response header for a payload of plen bytes; room checked by caller. */
static void
put_hdr(uint8_t *out, const struct proto_req *req, size_t plen)
{
	proto_put_u32(out, (uint32_t)(PROTO_HDR_SIZE + plen));
	out[4] = PROTO_VERSION;
	out[5] = req->opcode;
	proto_put_u16(out + 6, PROTO_OK);
	proto_put_u32(out + 8, req->request_id);
}

/* The largest text answer the opcode gives. */
static size_t
text_max(uint8_t opcode)
{
	return opcode == PROTO_OP_STATS || opcode == PROTO_OP_OPCODES
	    ? PROTO_LIST_MAX
	    : PROTO_TEXT_MAX;
}

/* INFO, STATS, OPCODES: the callback writes the text straight into out. */
static size_t
handle_text(const struct proto_req *req, size_t (*fn)(void *, char *, size_t),
    void *arg, uint8_t *out, size_t cap, enum proto_status *status)
{
	static const char *const overran[] = {
	    [PROTO_OP_INFO] = "INFO source overran its buffer",
	    [PROTO_OP_STATS] = "STATS source overran its buffer",
	    [PROTO_OP_OPCODES] = "OPCODES source overran its buffer",
	};
	size_t room, n;

	if (cap < PROTO_FRAME_MIN) {
		if (status != NULL)
			*status = PROTO_OK;
		return proto_resp_bound(req);
	}
	room = cap - PROTO_FRAME_MIN;
	if (room > text_max(req->opcode))
		room = text_max(req->opcode);
	n = fn(arg, (char *)(out + PROTO_FRAME_MIN), room);
	if (n > room)
		return fail(req, PROTO_INTERNAL, overran[req->opcode], out, cap,
		    status);
	put_hdr(out, req, n);
	if (status != NULL)
		*status = PROTO_OK;
	return PROTO_FRAME_MIN + n;
}

static size_t
handle_time(const struct proto_req *req, const struct proto_ctx *ctx,
    uint8_t *out, size_t cap, enum proto_status *status)
{
	uint64_t ns;

	if (status != NULL)
		*status = PROTO_OK;
	if (cap < PROTO_FRAME_MIN + 8)
		return PROTO_FRAME_MIN + 8;
	ns = ctx->now_ns(ctx->arg);
	put_hdr(out, req, 8);
	proto_put_u32(out + PROTO_FRAME_MIN, (uint32_t)(ns >> 32));
	proto_put_u32(out + PROTO_FRAME_MIN + 4, (uint32_t)ns);
	return PROTO_FRAME_MIN + 8;
}

size_t
proto_resp_bound(const struct proto_req *req)
{
	size_t body;

	body = req->payload_len > text_max(req->opcode) ? req->payload_len
							: text_max(req->opcode);
	if (body > SIZE_MAX - PROTO_FRAME_MIN)
		return SIZE_MAX;
	return PROTO_FRAME_MIN + body;
}

/*
 * ctx may be NULL when only PING and ECHO are expected; INFO, STATS and
 * TIME then answer INTERNAL.  The version and flags are checked again so
 * that any req, decoded or not, gets a well-formed answer.
 */
size_t
proto_handle(const struct proto_req *req, const struct proto_ctx *ctx,
    uint8_t *out, size_t cap, enum proto_status *status)
{
	const char *nopayload;

	if (req->version != PROTO_VERSION)
		return fail(
		    req, PROTO_UNSUPPORTED_VERSION, NULL, out, cap, status);
	if (req->flags != 0)
		return fail(req, PROTO_BAD_REQUEST, "flags must be zero", out,
		    cap, status);

	switch (req->opcode) {
	case PROTO_OP_PING:
		if (req->payload_len != 0) {
			nopayload = "PING takes no payload";
			break;
		}
		if (status != NULL)
			*status = PROTO_OK;
		return proto_encode_resp(
		    out, cap, req->opcode, PROTO_OK, req->request_id, NULL, 0);
	case PROTO_OP_ECHO:
		if (status != NULL)
			*status = PROTO_OK;
		return proto_encode_resp(out, cap, req->opcode, PROTO_OK,
		    req->request_id, req->payload, req->payload_len);
	case PROTO_OP_INFO:
		if (req->payload_len != 0) {
			nopayload = "INFO takes no payload";
			break;
		}
		if (ctx == NULL || ctx->info == NULL)
			return fail(req, PROTO_INTERNAL, "INFO not available",
			    out, cap, status);
		return handle_text(req, ctx->info, ctx->arg, out, cap, status);
	case PROTO_OP_STATS:
		if (req->payload_len != 0) {
			nopayload = "STATS takes no payload";
			break;
		}
		if (ctx == NULL || ctx->stats == NULL)
			return fail(req, PROTO_INTERNAL, "STATS not available",
			    out, cap, status);
		return handle_text(req, ctx->stats, ctx->arg, out, cap, status);
	case PROTO_OP_TIME:
		if (req->payload_len != 0) {
			nopayload = "TIME takes no payload";
			break;
		}
		if (ctx == NULL || ctx->now_ns == NULL)
			return fail(req, PROTO_INTERNAL, "TIME not available",
			    out, cap, status);
		return handle_time(req, ctx, out, cap, status);
	case PROTO_OP_OPCODES:
		if (req->payload_len != 0) {
			nopayload = "OPCODES takes no payload";
			break;
		}
		if (ctx == NULL || ctx->opcodes == NULL)
			return fail(req, PROTO_INTERNAL,
			    "OPCODES not available", out, cap, status);
		return handle_text(
		    req, ctx->opcodes, ctx->arg, out, cap, status);
	default:
		/* 0x06-0x7f unassigned; 0x80-0xff: no module serves it. */
		return unknown_opcode(req, out, cap, status);
	}
	return fail(req, PROTO_BAD_REQUEST, nopayload, out, cap, status);
}

/*
 * Append one "name value\n" line, whole or not at all.  A name that is
 * empty or holds a space or newline, or a value that holds a newline,
 * would break the line format and is refused the same way.
 */
static size_t
kv_put(char *buf, size_t cap, size_t *off, const char *name, const char *val,
    size_t vlen)
{
	size_t nlen, room, n;
	char *p;

	if (buf == NULL || off == NULL || name == NULL || val == NULL ||
	    *off > cap)
		return 0;
	nlen = strlen(name);
	if (nlen == 0 || memchr(name, ' ', nlen) != NULL ||
	    memchr(name, '\n', nlen) != NULL || memchr(val, '\n', vlen) != NULL)
		return 0;
	room = cap - *off;
	if (nlen + 2 > room || vlen > room - nlen - 2)
		return 0;
	n = nlen + 1 + vlen + 1;
	p = buf + *off;
	memcpy(p, name, nlen);
	p[nlen] = ' ';
	memcpy(p + nlen + 1, val, vlen);
	p[n - 1] = '\n';
	*off += n;
	return n;
}

size_t
proto_kv_u64(
    char *buf, size_t cap, size_t *off, const char *name, uint64_t value)
{
	char digits[U64_DIGITS];

	return kv_put(buf, cap, off, name, digits, fmt_u64(digits, value));
}

size_t
proto_kv_str(
    char *buf, size_t cap, size_t *off, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	return kv_put(buf, cap, off, name, value, strlen(value));
}
