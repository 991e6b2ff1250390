/*
 * fuzz_dispatch: the request dispatcher, whole frames in, responses out.
 *
 * Input layout:
 *   byte 0    options: bits 0-1 the context (0 full, 1 NULL, 2 no
 *             callbacks, 3 INFO/STATS callbacks that claim more than
 *             they were given), bit 2 INFO/STATS fill all the room they
 *             get, bit 3 decode errors carry the frame's payload as
 *             their message (else the default message), bits 4-7 an
 *             index into max_frames[]
 *   byte 1    extra probes per frame, beyond what the daemon does:
 *             bit 0 proto_error() with every status (chosen by the
 *             opcode) and with req NULL (odd request_id); bit 1
 *             proto_handle() on a full-header frame the decoder refused;
 *             bit 2 the same answer again into exact-size buffers of the
 *             answer's length, one byte less, PROTO_FRAME_MIN, one byte
 *             less than that, and 0 bytes
 *   the rest  the bytes a client sends
 *
 * Like daemon/worker.c serve(): decode each frame, answer PROTO_OK with
 * proto_handle() into a buffer of exactly proto_resp_bound() bytes and a
 * decode error with proto_error() into PROTO_FRAME_MIN + PROTO_TEXT_MAX
 * bytes, stop after TOO_LARGE.  Every response is checked on its own, then
 * the concatenated response stream is decoded with proto_decode_resp() as
 * a client would.
 *
 * Invariants (any violation aborts):
 * - a response fits the buffer and writes nothing past its own end;
 * - it is a well-formed v1 response: version 1, the request's opcode and
 *   request_id (0 for a short header or TOO_LARGE, as decoded), a status
 *   in 0..7 equal to the one reported, and the status docs/protocol.md
 *   requires for that request;
 * - payloads: PING empty, ECHO the request's bytes, INFO/STATS the text
 *   the callback wrote, TIME the clock; an error's text is at most
 *   PROTO_TEXT_MAX bytes with no NUL, cut only before a UTF-8 sequence;
 * - one response per request, in request order, and nothing else;
 * - probes: any status, any req, even NULL or undecoded, gets a
 *   well-formed answer; a buffer of the exact length gives the same
 *   bytes; a shorter one gets the needed length back and nothing written
 *   (INFO/STATS: a shorter, still well-formed text, or nothing), never a
 *   byte past the end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#include "fuzz.h"

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))
#define FIXED_NS  UINT64_C(1700000000123456789)
#define CANARY    0xa5
#define ERR_CAP   (PROTO_FRAME_MIN + PROTO_TEXT_MAX)

#define PROBE_ERROR 0x01
#define PROBE_RAW   0x02
#define PROBE_TIGHT 0x04

enum ctx_mode {
	CTX_FULL = 0,
	CTX_NULL = 1,
	CTX_EMPTY = 2,   /* a ctx whose callbacks are all NULL */
	CTX_OVERRUN = 3, /* INFO/STATS return more than cap */
};

static const size_t max_frames[16] = {
    0,
    1,
    7,
    8,
    12,
    16,
    64,
    255,
    4096,
    PROTO_TEXT_MAX + PROTO_HDR_SIZE,
    8192,
    65536,
    PROTO_DEFAULT_MAX,
    256u * 1024 * 1024,
    UINT32_MAX,
    SIZE_MAX,
};

/* The fake daemon behind struct proto_ctx. */
struct fake {
	enum ctx_mode mode;
	int fill;
	uint64_t requests;
	char text[PROTO_LIST_MAX]; /* what the last callback wrote */
	size_t text_len;
};

/* What one response must look like in the final stream. */
struct rec {
	uint8_t opcode;
	uint16_t status;
	uint32_t request_id;
	size_t len;
};

static uint64_t
fake_now(void *arg)
{
	(void)arg;
	return FIXED_NS;
}

static size_t
fake_text(struct fake *f, const char *kind, char *buf, size_t cap)
{
	size_t off = 0;
	uint64_t i;

	if (f->fill) {
		/* Lines until the room is full: reaches PROTO_TEXT_MAX. */
		for (i = 0; proto_kv_u64(buf, cap, &off, kind, i) != 0; i++)
			continue;
	} else if (strcmp(kind, "info") == 0) {
		proto_kv_str(buf, cap, &off, "version", "0.1.0");
		proto_kv_u64(buf, cap, &off, "pid", 4242);
		proto_kv_u64(buf, cap, &off, "uptime_seconds", 17);
		proto_kv_u64(buf, cap, &off, "workers", 2);
	} else {
		proto_kv_u64(buf, cap, &off, "connections_current", 1);
		proto_kv_u64(buf, cap, &off, "connections_total", 1);
		proto_kv_u64(buf, cap, &off, "connections_rejected", 0);
		proto_kv_u64(buf, cap, &off, "requests_total", f->requests);
		proto_kv_u64(buf, cap, &off, "bytes_received", UINT64_MAX);
		proto_kv_u64(buf, cap, &off, "bytes_sent", 0);
	}
	FUZZ_CHECK(off <= cap);
	f->text_len = off <= sizeof(f->text) ? off : sizeof(f->text);
	memcpy(f->text, buf, f->text_len);
	if (f->mode == CTX_OVERRUN)
		return cap + 1;
	return off;
}

static size_t
fake_info(void *arg, char *buf, size_t cap)
{
	return fake_text(arg, "info", buf, cap);
}

static size_t
fake_stats(void *arg, char *buf, size_t cap)
{
	return fake_text(arg, "stats", buf, cap);
}

static size_t
fake_opcodes(void *arg, char *buf, size_t cap)
{
	return fake_text(arg, "opcodes", buf, cap);
}

/* The status docs/protocol.md requires for a request decoded as st. */
static uint16_t
expected_status(
    enum proto_status st, const struct proto_req *req, const struct fake *f)
{
	int have_ctx = f->mode != CTX_NULL && f->mode != CTX_EMPTY;

	if (st != PROTO_OK)
		return (uint16_t)st;
	switch (req->opcode) {
	case PROTO_OP_PING:
		return req->payload_len != 0 ? PROTO_BAD_REQUEST : PROTO_OK;
	case PROTO_OP_ECHO:
		return PROTO_OK;
	case PROTO_OP_INFO:
	case PROTO_OP_STATS:
	case PROTO_OP_OPCODES:
		if (req->payload_len != 0)
			return PROTO_BAD_REQUEST;
		if (!have_ctx || f->mode == CTX_OVERRUN)
			return PROTO_INTERNAL;
		return PROTO_OK;
	case PROTO_OP_TIME:
		if (req->payload_len != 0)
			return PROTO_BAD_REQUEST;
		return have_ctx ? PROTO_OK : PROTO_INTERNAL;
	default:
		return PROTO_UNKNOWN_OPCODE;
	}
}

/* An error text: msg cut at PROTO_TEXT_MAX before a UTF-8 sequence. */
static void
check_error_text(const struct proto_resp *r, const char *msg)
{
	size_t mlen, i;

	FUZZ_CHECK(r->payload_len <= PROTO_TEXT_MAX);
	FUZZ_CHECK(r->payload_len == 0 ||
	    memchr(r->payload, '\0', r->payload_len) == NULL);
	if (msg == NULL) {
		FUZZ_CHECK(r->payload_len > 0); /* a default message */
		return;
	}
	mlen = strlen(msg);
	FUZZ_CHECK(r->payload_len <= mlen);
	FUZZ_CHECK(r->payload_len == 0 ||
	    memcmp(r->payload, msg, r->payload_len) == 0);
	if (mlen <= PROTO_TEXT_MAX) {
		FUZZ_CHECK(r->payload_len == mlen);
		return;
	}
	/* Cut before a lead byte; everything up to the limit continues it. */
	FUZZ_CHECK(((unsigned char)msg[r->payload_len] & 0xc0) != 0x80 ||
	    r->payload_len == 0);
	for (i = r->payload_len + 1; i <= PROTO_TEXT_MAX; i++)
		FUZZ_CHECK(((unsigned char)msg[i] & 0xc0) == 0x80);
}

static void
check_ok_payload(const struct proto_resp *r, const struct proto_req *req,
    const struct fake *f)
{
	uint8_t t[8];

	switch (req->opcode) {
	case PROTO_OP_PING:
		FUZZ_CHECK(r->payload_len == 0);
		break;
	case PROTO_OP_ECHO:
		FUZZ_CHECK(r->payload_len == req->payload_len);
		FUZZ_CHECK(r->payload_len == 0 ||
		    memcmp(r->payload, req->payload, r->payload_len) == 0);
		break;
	case PROTO_OP_INFO:
	case PROTO_OP_STATS:
	case PROTO_OP_OPCODES:
		FUZZ_CHECK(r->payload_len <= (req->opcode == PROTO_OP_INFO
						     ? PROTO_TEXT_MAX
						     : PROTO_LIST_MAX));
		FUZZ_CHECK(r->payload_len == f->text_len);
		FUZZ_CHECK(r->payload_len == 0 ||
		    memcmp(r->payload, f->text, r->payload_len) == 0);
		break;
	case PROTO_OP_TIME:
		proto_put_u32(t, (uint32_t)(FIXED_NS >> 32));
		proto_put_u32(t + 4, (uint32_t)FIXED_NS);
		FUZZ_CHECK(r->payload_len == 8);
		FUZZ_CHECK(memcmp(r->payload, t, 8) == 0);
		break;
	default:
		FUZZ_CHECK(!"OK for an opcode that has no handler");
	}
}

/*
 * Check one response frame out[0..n) to req, decoded as st from a frame of
 * req_len bytes (0 for TOO_LARGE).
 */
static void
check_response(const uint8_t *out, size_t n, size_t cap, enum proto_status st,
    const struct proto_req *req, size_t req_len, uint16_t sent, const char *msg,
    const struct fake *f)
{
	struct proto_resp r;
	char want[64];
	size_t used, i;

	FUZZ_CHECK(n >= PROTO_FRAME_MIN);
	FUZZ_CHECK(n <= cap);
	/* An overrunning INFO/STATS callback writes what it likes. */
	if (f->mode != CTX_OVERRUN ||
	    (req->opcode != PROTO_OP_INFO && req->opcode != PROTO_OP_STATS &&
		req->opcode != PROTO_OP_OPCODES))
		for (i = n; i < cap; i++)
			FUZZ_CHECK(out[i] == CANARY);

	FUZZ_CHECK(proto_decode_resp(out, n, SIZE_MAX, &r, &used) == PROTO_OK);
	FUZZ_CHECK(used == n);
	FUZZ_CHECK(r.version == PROTO_VERSION);
	FUZZ_CHECK(r.opcode == req->opcode);
	FUZZ_CHECK(r.request_id == req->request_id);
	if (req_len < PROTO_FRAME_MIN)
		FUZZ_CHECK(r.request_id == 0); /* short header or TOO_LARGE */
	FUZZ_CHECK(r.status <= PROTO_NOT_SUBSCRIBED);
	FUZZ_CHECK(r.status == sent);
	FUZZ_CHECK(r.status == expected_status(st, req, f));

	if (r.status == PROTO_OK) {
		check_ok_payload(&r, req, f);
		return;
	}
	check_error_text(&r, msg);
	/* The two messages formatted by hand rather than with stdio. */
	if (r.status == PROTO_UNKNOWN_OPCODE)
		snprintf(want, sizeof(want), "unknown opcode 0x%02x",
		    (unsigned)req->opcode);
	else if (r.status == PROTO_UNSUPPORTED_VERSION && msg == NULL)
		snprintf(want, sizeof(want), "unsupported protocol version %u",
		    (unsigned)req->version);
	else
		return;
	FUZZ_CHECK(r.payload_len == strlen(want));
	FUZZ_CHECK(memcmp(r.payload, want, r.payload_len) == 0);
}

/* Append p[0..n) to the growing buffer *buf of *len bytes. */
static int
append(uint8_t **buf, size_t *len, const uint8_t *p, size_t n)
{
	uint8_t *nb;

	if ((nb = realloc(*buf, *len + n)) == NULL)
		return -1;
	memcpy(nb + *len, p, n);
	*buf = nb;
	*len += n;
	return 0;
}

/* Answer a frame decoded as st, as the daemon does. */
static size_t
respond(enum proto_status st, const struct proto_req *req,
    const struct proto_ctx *ctx, const char *msg, uint8_t *out, size_t cap,
    enum proto_status *sent)
{
	if (st == PROTO_OK)
		return proto_handle(req, ctx, out, cap, sent);
	*sent = st;
	return proto_error(req, st, msg, out, cap);
}

static int
all_canary(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != CANARY)
			return 0;
	return 1;
}

/* A whole, well-formed response frame p[0..n). */
static void
check_frame(const uint8_t *p, size_t n)
{
	struct proto_resp r;
	size_t used;

	FUZZ_CHECK(proto_decode_resp(p, n, SIZE_MAX, &r, &used) == PROTO_OK);
	FUZZ_CHECK(used == n);
	FUZZ_CHECK(r.status <= PROTO_NOT_SUBSCRIBED);
}

/*
 * The answer full[0..n) again, into exact-size buffers of n bytes and
 * less.  Only INFO/STATS may answer a short buffer (with less text);
 * everything else returns the length it needs and writes nothing.
 */
static void
probe_tight(enum proto_status st, const struct proto_req *req,
    const struct proto_ctx *ctx, const char *msg, const uint8_t *full, size_t n)
{
	const size_t caps[] = {
	    n, n - 1, PROTO_FRAME_MIN, PROTO_FRAME_MIN - 1, 0};
	enum proto_status sent;
	uint8_t *buf;
	size_t i, c, r;
	int text;

	text = st == PROTO_OK &&
	    (req->opcode == PROTO_OP_INFO || req->opcode == PROTO_OP_STATS ||
		req->opcode == PROTO_OP_OPCODES);
	for (i = 0; i < NITEMS(caps); i++) {
		if ((c = caps[i]) > n || (i > 0 && c == n))
			continue;
		if ((buf = malloc(c != 0 ? c : 1)) == NULL)
			return;
		memset(buf, CANARY, c);
		r = respond(st, req, ctx, msg, buf, c, &sent);
		if (c == n) {
			FUZZ_CHECK(r == n);
			FUZZ_CHECK(memcmp(buf, full, n) == 0);
		} else if (!text) {
			FUZZ_CHECK(r == n);
			FUZZ_CHECK(all_canary(buf, c));
		} else if (r <= c) {
			check_frame(buf, r);
		}
		free(buf);
	}
}

/*
 * proto_error() with any status, the one chosen by the opcode (8 is not a
 * wire status), and req or NULL, with the default message.
 */
static void
probe_error(const struct proto_req *req)
{
	const struct proto_req *rq = (req->request_id & 1) ? NULL : req;
	enum proto_status st;
	struct proto_resp r;
	uint8_t *buf;
	uint16_t want_st;
	size_t n, used;
	char want[64];

	st = req->opcode % 9 == 8 ? PROTO_AGAIN
				  : (enum proto_status)(req->opcode % 9);
	want_st = st == PROTO_AGAIN ? PROTO_INTERNAL : (uint16_t)st;
	if ((buf = malloc(ERR_CAP)) == NULL)
		return;
	n = proto_error(rq, st, NULL, buf, ERR_CAP);
	FUZZ_CHECK(n >= PROTO_FRAME_MIN && n <= ERR_CAP);
	FUZZ_CHECK(proto_decode_resp(buf, n, SIZE_MAX, &r, &used) == PROTO_OK);
	FUZZ_CHECK(used == n);
	FUZZ_CHECK(r.status == want_st);
	FUZZ_CHECK(r.opcode == (rq != NULL ? rq->opcode : 0));
	FUZZ_CHECK(r.request_id == (rq != NULL ? rq->request_id : 0));
	FUZZ_CHECK(r.payload_len > 0 && r.payload_len <= PROTO_TEXT_MAX);
	FUZZ_CHECK(memchr(r.payload, '\0', r.payload_len) == NULL);
	want[0] = '\0';
	if (want_st == PROTO_UNKNOWN_OPCODE)
		snprintf(want, sizeof(want), "unknown opcode 0x%02x",
		    rq != NULL ? (unsigned)rq->opcode : 0u);
	else if (want_st == PROTO_UNSUPPORTED_VERSION && rq != NULL)
		snprintf(want, sizeof(want), "unsupported protocol version %u",
		    (unsigned)rq->version);
	if (want[0] != '\0') {
		FUZZ_CHECK(r.payload_len == strlen(want));
		FUZZ_CHECK(memcmp(r.payload, want, r.payload_len) == 0);
	}
	free(buf);
}

/*
 * proto_handle() on a frame the decoder refused although its header is
 * whole (bad version, non-zero flags): it must refuse it the same way.
 */
static void
probe_raw(enum proto_status st, const struct proto_req *req,
    const struct proto_ctx *ctx)
{
	enum proto_status sent = PROTO_AGAIN;
	struct proto_resp r;
	uint8_t *buf;
	size_t cap, n, used;

	cap = proto_resp_bound(req);
	if ((buf = malloc(cap)) == NULL)
		return;
	n = proto_handle(req, ctx, buf, cap, &sent);
	FUZZ_CHECK(n >= PROTO_FRAME_MIN && n <= cap);
	FUZZ_CHECK(sent == st);
	FUZZ_CHECK(proto_decode_resp(buf, n, SIZE_MAX, &r, &used) == PROTO_OK);
	FUZZ_CHECK(used == n);
	FUZZ_CHECK(r.status == st);
	FUZZ_CHECK(r.opcode == req->opcode);
	FUZZ_CHECK(r.request_id == req->request_id);
	FUZZ_CHECK(r.payload_len > 0 && r.payload_len <= PROTO_TEXT_MAX);
	free(buf);
}

/*
 * Answer one decoded frame (req_len bytes, 0 for TOO_LARGE), check the
 * answer, run the probes asked for; append the answer to the stream.
 * Returns the response length or 0 (out of memory).
 */
static size_t
answer(enum proto_status st, const struct proto_req *req, size_t req_len,
    const struct proto_ctx *ctx, struct fake *f, int payload_msg,
    unsigned probes, uint8_t **stream, size_t *slen, struct rec *rec)
{
	enum proto_status sent = PROTO_AGAIN; /* proto_handle must set it */
	char *msg = NULL;
	uint8_t *out;
	size_t need, n;

	need = st == PROTO_OK ? proto_resp_bound(req) : ERR_CAP;
	if (st == PROTO_OK)
		FUZZ_CHECK(need >= PROTO_FRAME_MIN + req->payload_len);
	if ((out = malloc(need)) == NULL)
		return 0;
	memset(out, CANARY, need);
	if (st != PROTO_OK && payload_msg && req->payload != NULL &&
	    (msg = malloc(req->payload_len + 1)) != NULL) {
		if (req->payload_len != 0)
			memcpy(msg, req->payload, req->payload_len);
		msg[req->payload_len] = '\0';
	}
	f->text_len = 0;
	n = respond(st, req, ctx, msg, out, need, &sent);
	check_response(out, n, need, st, req, req_len, (uint16_t)sent, msg, f);
	rec->opcode = req->opcode;
	rec->status = (uint16_t)sent;
	rec->request_id = req->request_id;
	rec->len = n;

	if (probes & PROBE_TIGHT)
		probe_tight(st, req, ctx, msg, out, n);
	if (probes & PROBE_ERROR)
		probe_error(req);
	if ((probes & PROBE_RAW) && req_len >= PROTO_FRAME_MIN &&
	    (st == PROTO_UNSUPPORTED_VERSION || st == PROTO_BAD_REQUEST))
		probe_raw(st, req, ctx);

	if (append(stream, slen, out, n) == -1)
		n = 0;
	free(msg);
	free(out);
	return n;
}

/* Read the response stream back as a client: one per request, in order. */
static void
check_stream(
    const uint8_t *stream, size_t slen, const struct rec *rec, size_t nrec)
{
	struct proto_resp r;
	uint8_t *copy;
	size_t off = 0, used, i;

	/* An exact-size copy, so that ASan sees any read past the end. */
	if ((copy = malloc(slen != 0 ? slen : 1)) == NULL)
		return;
	if (slen != 0)
		memcpy(copy, stream, slen);
	for (i = 0; i < nrec; i++) {
		FUZZ_CHECK(proto_decode_resp(copy + off, slen - off, SIZE_MAX,
			       &r, &used) == PROTO_OK);
		FUZZ_CHECK(used == rec[i].len);
		FUZZ_CHECK(r.opcode == rec[i].opcode);
		FUZZ_CHECK(r.status == rec[i].status);
		FUZZ_CHECK(r.request_id == rec[i].request_id);
		off += used;
	}
	FUZZ_CHECK(off == slen);
	FUZZ_CHECK(proto_decode_resp(copy + off, 0, SIZE_MAX, &r, &used) ==
	    PROTO_AGAIN);
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_ctx ctx, *ctxp = &ctx;
	struct fake f;
	struct proto_req req;
	enum proto_status st;
	struct rec *rec;
	const uint8_t *s;
	uint8_t *stream = NULL;
	size_t len, off = 0, used, max_frame, nrec = 0, cap, slen = 0;
	unsigned probes;
	int payload_msg;

	if (size < 2)
		return 0;
	memset(&f, 0, sizeof(f));
	f.mode = (enum ctx_mode)(data[0] & 3);
	f.fill = (data[0] >> 2) & 1;
	payload_msg = (data[0] >> 3) & 1;
	max_frame = max_frames[data[0] >> 4];
	probes = data[1];
	s = data + 2;
	len = size - 2;

	memset(&ctx, 0, sizeof(ctx));
	ctx.arg = &f;
	if (f.mode == CTX_NULL)
		ctxp = NULL;
	else if (f.mode != CTX_EMPTY) {
		ctx.now_ns = fake_now;
		ctx.info = fake_info;
		ctx.stats = fake_stats;
		ctx.opcodes = fake_opcodes;
	}

	cap = len / PROTO_LEN_SIZE + 1;
	if ((rec = calloc(cap, sizeof(*rec))) == NULL)
		return 0;
	while (off < len) {
		st = proto_decode_req(
		    s + off, len - off, max_frame, &req, &used);
		if (st == PROTO_AGAIN)
			break;
		FUZZ_CHECK(nrec < cap);
		if (answer(st, &req, used, ctxp, &f, payload_msg, probes,
			&stream, &slen, &rec[nrec]) == 0)
			goto out; /* out of memory */
		nrec++;
		f.requests++;
		if (st == PROTO_TOO_LARGE)
			break; /* the daemon answers, then closes */
		off += used;
	}
	check_stream(stream, slen, rec, nrec);
out:
	free(stream);
	free(rec);
	return 0;
}
