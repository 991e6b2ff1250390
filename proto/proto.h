/*
 * proto: socketd protocol v1, the frame codec and the request handlers.
 *
 * Pure functions over caller-owned buffers.  This module never touches a
 * socket, a thread, a lock, a clock or a log: everything it needs from the
 * outside world arrives as values or callbacks in struct proto_ctx, so every
 * function here is deterministic and unit-testable.
 *
 * Return convention: functions that can fail return enum proto_status (or a
 * size, documented per function).  Nothing here allocates memory.
 *
 * Wire format (docs/protocol.md is the full contract):
 *   frame    = length u32 BE | body[length]
 *   request  = version u8 | opcode u8 | flags u16 BE | request_id u32 BE |
 * payload response = version u8 | opcode u8 | status u16 BE | request_id u32 BE
 * | payload
 */
#ifndef SOCKETD_PROTO_H
#define SOCKETD_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION   1
#define PROTO_LEN_SIZE  4 /* the length prefix */
#define PROTO_HDR_SIZE  8 /* version, opcode, flags/status, request_id */
#define PROTO_FRAME_MIN (PROTO_LEN_SIZE + PROTO_HDR_SIZE)
#define PROTO_TEXT_MAX  4096 /* bound on INFO and error payloads */
#define PROTO_MINOR     1    /* protocol v1.1: INFO protocol_minor */
/* Bound on STATS and OPCODES payloads (256 opcodes of 75 bytes fit). */
#define PROTO_LIST_MAX    32768
#define PROTO_DEFAULT_MAX 1048576

enum proto_opcode {
	PROTO_OP_PING = 0x00,
	PROTO_OP_ECHO = 0x01,
	PROTO_OP_INFO = 0x02,
	PROTO_OP_STATS = 0x03,
	PROTO_OP_TIME = 0x04,
	PROTO_OP_OPCODES = 0x05, /* v1.1: the opcodes served, one per line */
	PROTO_OP_GOAWAY = 0x06,  /* v1.1 push: grace_ms u32, reason */
	PROTO_OP_MODULE_FIRST = 0x80, /* 0x80-0xff: loadable modules */
};

enum proto_status {
	PROTO_OK = 0,
	PROTO_UNKNOWN_OPCODE = 1,
	PROTO_BAD_REQUEST = 2,
	PROTO_TOO_LARGE = 3,
	PROTO_BUSY = 4,
	PROTO_INTERNAL = 5,
	PROTO_UNSUPPORTED_VERSION = 6,
	PROTO_DENIED = 7,
	/* Protocol v1.1; the connection stays open for all of them. */
	PROTO_TIMEOUT = 8,        /* a handler did not answer in time */
	PROTO_OVERLOADED = 9,     /* the blocking-handler queue is full */
	PROTO_INVALID_TOPIC = 10, /* pub/sub topic or filter syntax */
	PROTO_FORBIDDEN = 11,     /* pub/sub permissions */
	PROTO_LIMIT_EXCEEDED = 12,
	PROTO_NOT_SUBSCRIBED = 13,
	/* Decoder results, never sent on the wire. */
	PROTO_AGAIN = 0x100, /* more bytes are needed */
};

/* A decoded request: a view into the caller's buffer. */
struct proto_req {
	uint8_t version;
	uint8_t opcode;
	uint16_t flags;
	uint32_t request_id;
	const uint8_t *payload; /* borrowed from the input buffer */
	size_t payload_len;
};

/* A decoded response (client side): a view into the caller's buffer. */
struct proto_resp {
	uint8_t version;
	uint8_t opcode;
	uint16_t status;
	uint32_t request_id;
	const uint8_t *payload; /* borrowed from the input buffer */
	size_t payload_len;
};

/*
 * Decode one request frame from the front of buf[0..len).
 *
 * Returns:
 *   PROTO_AGAIN        the frame is not complete; *consumed is 0.  Keep the
 *                      bytes and call again with more.
 *   PROTO_OK           *req describes one well-formed v1 request header and
 *                      *consumed is the whole frame.  Opcode and payload are
 *                      not judged here: proto_handle() does that.
 *   PROTO_BAD_REQUEST  body shorter than the header (request_id 0) or
 *                      non-zero flags; *consumed is the whole frame, *req
 *                      holds what could be read.  Answer and go on.
 *   PROTO_UNSUPPORTED_VERSION  version byte != 1; whole frame consumed.
 *   PROTO_TOO_LARGE    the length prefix exceeds max_frame; *consumed is 0
 *                      and *req is zeroed.  Answer, then close: the stream
 *                      cannot be resynchronised.
 * Only the 4-byte prefix is needed to detect TOO_LARGE.
 */
enum proto_status proto_decode_req(const uint8_t *buf, size_t len,
    size_t max_frame, struct proto_req *req, size_t *consumed);

/*
 * Decode one response frame (client side); same conventions as
 * proto_decode_req, but a short body is PROTO_BAD_REQUEST with *consumed 0
 * (a broken server: the caller gives up on the connection).
 */
enum proto_status proto_decode_resp(const uint8_t *buf, size_t len,
    size_t max_frame, struct proto_resp *resp, size_t *consumed);

/*
 * Encode a frame into dst[0..cap).  Return the full length of the frame
 * (prefix included); if that is more than cap nothing is written, as with
 * snprintf.  The payload may be NULL when payload_len is 0.
 */
size_t proto_encode_req(uint8_t *dst, size_t cap, uint8_t opcode,
    uint32_t request_id, const void *payload, size_t payload_len);
size_t proto_encode_resp(uint8_t *dst, size_t cap, uint8_t opcode,
    uint16_t status, uint32_t request_id, const void *payload,
    size_t payload_len);

/* A short English name for a status ("OK", "TOO_LARGE", ...). */
const char *proto_status_str(unsigned status);
/* A lower-case name for an opcode ("ping", ...) or NULL if unknown. */
const char *proto_opcode_str(unsigned opcode);

/* Big-endian helpers shared by the codec, the client and the tests. */
static inline uint32_t
proto_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint16_t
proto_get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline void
proto_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
proto_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/*
 * Handlers.
 *
 * struct proto_ctx carries what handlers need from outside.  The text
 * callbacks write "name value\n" lines into buf[0..cap) (use proto_kv_*)
 * and return the number of bytes written (never more than cap).
 */
struct proto_ctx {
	uint64_t (*now_ns)(void *arg); /* wall clock, ns since the epoch */
	size_t (*info)(void *arg, char *buf, size_t cap);
	size_t (*stats)(void *arg, char *buf, size_t cap);
	/* OPCODES: "0xNN name[ push]\n" lines, at most PROTO_LIST_MAX. */
	size_t (*opcodes)(void *arg, char *buf, size_t cap);
	void *arg;
};

/* The room proto_handle() needs in its output buffer for this request. */
size_t proto_resp_bound(const struct proto_req *req);

/*
 * Handle one decoded request (PROTO_OK from proto_decode_req) and write the
 * whole response frame into out[0..cap), cap >= proto_resp_bound(req).
 * Returns the frame length.  *status (may be NULL) receives the status sent.
 */
size_t proto_handle(const struct proto_req *req, const struct proto_ctx *ctx,
    uint8_t *out, size_t cap, enum proto_status *status);

/*
 * Write the error response for a decoder error (BAD_REQUEST,
 * UNSUPPORTED_VERSION, TOO_LARGE) or for BUSY/DENIED/INTERNAL, with a short
 * message as payload.  req may be NULL (opcode and request_id 0).  cap >=
 * PROTO_FRAME_MIN + PROTO_TEXT_MAX always suffices.  Returns the frame
 * length.
 */
size_t proto_error(const struct proto_req *req, enum proto_status status,
    const char *msg, uint8_t *out, size_t cap);

/* Append "name value\n" to buf at *off, never past cap; return bytes added. */
size_t proto_kv_u64(
    char *buf, size_t cap, size_t *off, const char *name, uint64_t value);
size_t proto_kv_str(
    char *buf, size_t cap, size_t *off, const char *name, const char *value);

#endif /* SOCKETD_PROTO_H */
