/*
 * fuzz_decode: the request frame decoder fed arbitrary byte streams split
 * at arbitrary points.
 *
 * Input layout:
 *   byte 0            max_frame: an index into max_frames[] below
 *   byte 1            n: the number of chunk sizes that follow (mod 32)
 *   bytes 2..2+n      chunk sizes, each byte b giving a chunk of b+1 bytes,
 *                     used in turn and cyclically; n = 0 means one byte
 *                     at a time
 *   the rest          the byte stream a client sends
 *
 * The stream is decoded twice: whole, straight from the input, and through
 * a model of the daemon's buffering (daemon/worker.c serve()): append a
 * chunk, call proto_decode_req until AGAIN, drop what was consumed, and
 * stop at TOO_LARGE.  The model's buffer is reallocated to the exact number
 * of bytes held before every round, so ASan sees any read past them.
 *
 * Invariants (any violation aborts):
 * - every result is what the wire format (docs/protocol.md) says it must
 *   be, checked against an independent reading of the bytes below;
 * - consumed never exceeds the bytes available; AGAIN and TOO_LARGE
 *   consume 0; TOO_LARGE leaves the request zeroed and ends the stream;
 * - the chunked decode yields the same sequence of results (status,
 *   header fields, stream offset, payload bytes) as the whole one, and
 *   leaves the same unconsumed tail;
 * - proto_decode_resp frames the same bytes the same way.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#include "fuzz.h"

static const size_t max_frames[] = {
    0,
    1,
    7,
    8,
    9,
    12,
    16,
    64,
    255,
    256,
    4096,
    65536,
    PROTO_DEFAULT_MAX,
    256u * 1024 * 1024,
    UINT32_MAX - 1,
    UINT32_MAX,
    SIZE_MAX,
};

#define NITEMS(a)  (sizeof(a) / sizeof((a)[0]))
#define MAX_SPLITS 32

/* One decoder result, with the payload as an offset into the stream. */
struct event {
	enum proto_status st;
	size_t at; /* stream offset of the frame */
	size_t consumed;
	struct proto_req req; /* payload pointer not kept */
	size_t payload_at;    /* stream offset of the payload, if any */
};

/*
 * What proto_decode_req must return for p[0..len), read from the wire
 * format without the decoder's code.  Fills *want (payload as a pointer
 * into p) and *consumed.
 */
static enum proto_status
oracle(const uint8_t *p, size_t len, size_t max_frame, struct proto_req *want,
    size_t *consumed)
{
	uint32_t l;

	memset(want, 0, sizeof(*want));
	*consumed = 0;
	if (len < 4)
		return PROTO_AGAIN;
	l = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    p[3];
	if ((uint64_t)l > (uint64_t)max_frame)
		return PROTO_TOO_LARGE;
	if ((uint64_t)len < 4 + (uint64_t)l)
		return PROTO_AGAIN;
	*consumed = 4 + (size_t)l;
	if (l >= 1)
		want->version = p[4];
	if (l >= 2)
		want->opcode = p[5];
	if (l >= 4)
		want->flags = (uint16_t)(p[6] << 8 | p[7]);
	if (l < 8)
		return PROTO_BAD_REQUEST;
	want->request_id = (uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 |
	    (uint32_t)p[10] << 8 | p[11];
	want->payload = p + 12;
	want->payload_len = l - 8;
	if (want->version != 1)
		return PROTO_UNSUPPORTED_VERSION;
	if (want->flags != 0)
		return PROTO_BAD_REQUEST;
	return PROTO_OK;
}

static int
same_req(const struct proto_req *a, const struct proto_req *b)
{
	return a->version == b->version && a->opcode == b->opcode &&
	    a->flags == b->flags && a->request_id == b->request_id &&
	    a->payload == b->payload && a->payload_len == b->payload_len;
}

/*
 * Decode one frame from p[0..len) and check the result against the oracle
 * and the decoder's contract.  Returns the status; *req and *consumed as
 * from proto_decode_req.
 */
static enum proto_status
decode_checked(const uint8_t *p, size_t len, size_t max_frame,
    struct proto_req *req, size_t *consumed)
{
	struct proto_req want;
	enum proto_status st, wst;
	size_t wused;

	*consumed = (size_t)-1;
	st = proto_decode_req(p, len, max_frame, req, consumed);
	wst = oracle(p, len, max_frame, &want, &wused);

	FUZZ_CHECK(*consumed <= len);
	FUZZ_CHECK(st == wst);
	FUZZ_CHECK(*consumed == wused);
	switch (st) {
	case PROTO_AGAIN:
		FUZZ_CHECK(*consumed == 0);
		break;
	case PROTO_TOO_LARGE:
		FUZZ_CHECK(*consumed == 0);
		FUZZ_CHECK(same_req(req, &want)); /* zeroed */
		break;
	case PROTO_OK:
	case PROTO_BAD_REQUEST:
	case PROTO_UNSUPPORTED_VERSION:
		FUZZ_CHECK(*consumed >= PROTO_LEN_SIZE);
		FUZZ_CHECK(same_req(req, &want));
		if (req->payload != NULL)
			FUZZ_CHECK(
			    req->payload + req->payload_len == p + *consumed);
		break;
	default:
		FUZZ_CHECK(!"unexpected decoder status");
	}
	return st;
}

/* The response decoder must frame the same bytes the same way. */
static void
check_resp_framing(const uint8_t *p, size_t len, size_t max_frame,
    enum proto_status st, const struct proto_req *req, size_t used)
{
	struct proto_resp resp;
	enum proto_status rst;
	size_t rused = (size_t)-1;

	rst = proto_decode_resp(p, len, max_frame, &resp, &rused);
	FUZZ_CHECK(rused <= len);
	if (st == PROTO_AGAIN || st == PROTO_TOO_LARGE) {
		FUZZ_CHECK(rst == st);
		FUZZ_CHECK(rused == 0);
		return;
	}
	FUZZ_CHECK(resp.version == req->version);
	FUZZ_CHECK(resp.opcode == req->opcode);
	FUZZ_CHECK(resp.status == req->flags);
	FUZZ_CHECK(resp.request_id == req->request_id);
	FUZZ_CHECK(resp.payload == req->payload);
	FUZZ_CHECK(resp.payload_len == req->payload_len);
	if (used < PROTO_FRAME_MIN) {
		/* A short body: a broken server, nothing consumed. */
		FUZZ_CHECK(rst == PROTO_BAD_REQUEST);
		FUZZ_CHECK(rused == 0);
		return;
	}
	FUZZ_CHECK(rused == used);
	FUZZ_CHECK(rst ==
	    (req->version == PROTO_VERSION ? PROTO_OK
					   : PROTO_UNSUPPORTED_VERSION));
}

/* Decode s[0..len) in one go; return the number of events recorded. */
static size_t
decode_whole(const uint8_t *s, size_t len, size_t max_frame, struct event *ev,
    size_t cap, size_t *tail_at)
{
	struct proto_req req;
	enum proto_status st;
	size_t off = 0, n = 0, used;

	for (;;) {
		st = decode_checked(s + off, len - off, max_frame, &req, &used);
		check_resp_framing(
		    s + off, len - off, max_frame, st, &req, used);
		if (st == PROTO_AGAIN)
			break;
		FUZZ_CHECK(n < cap);
		ev[n].st = st;
		ev[n].at = off;
		ev[n].consumed = used;
		ev[n].req = req;
		ev[n].req.payload = NULL;
		ev[n].payload_at =
		    req.payload != NULL ? (size_t)(req.payload - s) : 0;
		n++;
		if (st == PROTO_TOO_LARGE)
			break;
		off += used;
	}
	*tail_at = off;
	return n;
}

/* Compare a chunked result with the whole decode's event. */
static void
check_event(const struct event *e, enum proto_status st,
    const struct proto_req *req, size_t used, size_t at, const uint8_t *frame,
    const uint8_t *s)
{
	FUZZ_CHECK(st == e->st);
	FUZZ_CHECK(at == e->at);
	FUZZ_CHECK(used == e->consumed);
	FUZZ_CHECK(req->version == e->req.version);
	FUZZ_CHECK(req->opcode == e->req.opcode);
	FUZZ_CHECK(req->flags == e->req.flags);
	FUZZ_CHECK(req->request_id == e->req.request_id);
	FUZZ_CHECK(req->payload_len == e->req.payload_len);
	if (req->payload == NULL) {
		FUZZ_CHECK(e->payload_at == 0);
		return;
	}
	FUZZ_CHECK(req->payload == frame + PROTO_FRAME_MIN);
	FUZZ_CHECK(e->payload_at == at + PROTO_FRAME_MIN);
	FUZZ_CHECK(req->payload_len == 0 ||
	    memcmp(req->payload, s + e->payload_at, req->payload_len) == 0);
}

/*
 * The daemon's buffering: chunks appended to a buffer of exactly the bytes
 * held, decoded until AGAIN, consumed bytes dropped from the front.
 */
static void
decode_chunked(const uint8_t *s, size_t len, size_t max_frame,
    const uint8_t *splits, size_t nsplits, const struct event *ev, size_t nev,
    size_t tail_at)
{
	struct proto_req req;
	enum proto_status st;
	uint8_t *buf = NULL, *nbuf;
	size_t have = 0, pos = 0, base = 0, k = 0, i = 0, off, used, c;
	int stopped = 0;

	while (pos < len && !stopped) {
		c = nsplits == 0 ? 1 : (size_t)splits[i++ % nsplits] + 1;
		if (c > len - pos)
			c = len - pos;
		if ((nbuf = realloc(buf, have + c)) == NULL) {
			free(buf);
			return; /* out of memory: not the decoder's fault */
		}
		buf = nbuf;
		memcpy(buf + have, s + pos, c);
		have += c;
		pos += c;

		off = 0;
		for (;;) {
			st = decode_checked(
			    buf + off, have - off, max_frame, &req, &used);
			if (st == PROTO_AGAIN)
				break;
			FUZZ_CHECK(k < nev);
			check_event(
			    &ev[k], st, &req, used, base + off, buf + off, s);
			k++;
			if (st == PROTO_TOO_LARGE) {
				stopped = 1;
				break;
			}
			off += used;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		base += off;
	}
	free(buf);

	FUZZ_CHECK(k == nev);
	FUZZ_CHECK(base == tail_at);
	if (!stopped)
		FUZZ_CHECK(base + have == len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *splits, *s;
	struct event *ev;
	size_t max_frame, nsplits, len, cap, nev, tail_at;

	if (size < 2)
		return 0;
	max_frame = max_frames[data[0] % NITEMS(max_frames)];
	nsplits = data[1] % MAX_SPLITS;
	if (size - 2 < nsplits)
		return 0;
	splits = data + 2;
	s = splits + nsplits;
	len = size - 2 - nsplits;

	/* Every result but AGAIN needs a 4-byte prefix of its own. */
	cap = len / PROTO_LEN_SIZE + 1;
	if ((ev = calloc(cap, sizeof(*ev))) == NULL)
		return 0;
	nev = decode_whole(s, len, max_frame, ev, cap, &tail_at);
	FUZZ_CHECK(tail_at <= len);
	decode_chunked(s, len, max_frame, splits, nsplits, ev, nev, tail_at);
	free(ev);
	return 0;
}
