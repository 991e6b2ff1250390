/*
 * metrics: what /metrics shows (docs/operations.md lists every metric).
 *
 * On the request path each worker owns a struct wmetrics and updates it
 * with single-writer relaxed stores (STAT_ADD, as struct wstats): answers
 * by opcode and status, and a request-duration histogram per opcode.
 * Only the admin thread reads them, with relaxed loads, when it is
 * scraped.  No lock and no locked instruction is on the request path.
 *
 * The duration of a request runs from the moment its worker starts on
 * the batch of input that holds it (one clock read per batch) until its
 * answer is queued for sending: for built-in requests answered in one
 * batch one more clock read at the end of the batch covers all of them,
 * so a pipeline of 16 PINGs costs two clock reads, not 32.
 */
#ifndef SOCKETD_METRICS_H
#define SOCKETD_METRICS_H

#include <stdint.h>
#include <time.h>

#include "promtext.h"
#include "server.h"

#define MET_OPS        257 /* opcodes, then frames the decoder refused */
#define MET_OP_INVALID 256
#define MET_NSTATUS    15 /* statuses 0..13; 14: any other */

struct wmetrics {
	uint64_t req[MET_OPS][MET_NSTATUS]; /* answers, by opcode, status */
	uint64_t hist[256][PT_NBOUNDS + 1]; /* durations, per bucket */
	uint64_t hist_sum_ns[256];
	uint64_t inflight; /* module requests in progress (+/-) */
};

static inline uint64_t
met_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* One answer with status st to a request for opcode op (or INVALID). */
static inline void
met_count(struct wmetrics *m, unsigned op, unsigned st)
{
	if (st >= MET_NSTATUS)
		st = MET_NSTATUS - 1;
	STAT_ADD(m->req[op][st], 1);
}

/* One request of opcode op that took ns. */
static inline void
met_observe(struct wmetrics *m, uint8_t op, uint64_t ns)
{
	STAT_ADD(m->hist[op][pt_bucket(ns)], 1);
	STAT_ADD(m->hist_sum_ns[op], ns);
}

/* A batch: n requests of opcodes ops[] that all started at t0. */
void met_batch(struct wmetrics *m, const uint8_t *ops, unsigned n, uint64_t t0);

/*
 * The /metrics body: every STATS counter under its Prometheus name, the
 * per-opcode counters and histograms, health, build and process metrics.
 * Any thread; 0, or -1 when out of memory.
 */
int metrics_text(struct server *s, struct pt_buf *b);

#endif /* SOCKETD_METRICS_H */
