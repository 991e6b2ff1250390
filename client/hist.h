/*
 * hist: a log-linear histogram of unsigned 64-bit values (latencies in
 * nanoseconds for socketd-cli bench).
 *
 * Pure: no I/O, no clock, no allocation, no globals.  The caller owns the
 * struct (about 58 KiB: allocate it, do not put it on a small stack).
 *
 * Buckets: every power of two [2^e, 2^(e+1)) with e >= HIST_SUB_BITS is
 * split into HIST_SUB equal sub-buckets; values below 2 * HIST_SUB (256)
 * get one bucket each, so they are exact.  A bucket's width is at most
 * 1/HIST_SUB (0.79 %) of its lowest value, hence of any value in it.  The
 * whole uint64_t range is covered: no value is clamped.
 *
 * Percentiles are reported as the upper bound of the bucket holding the
 * value of that rank, capped at the true maximum: never below the true
 * value, never more than 0.79 % above it, and exact for the maximum.
 */
#ifndef SOCKETD_HIST_H
#define SOCKETD_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS) /* sub-buckets per octave */
#define HIST_NBUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min; /* UINT64_MAX while empty */
	uint64_t max; /* 0 while empty */
	uint64_t sum; /* saturates at UINT64_MAX */
	uint64_t buckets[HIST_NBUCKETS];
};

/* One row of a coarse view: count values lie in [lo, hi] (inclusive). */
struct hist_row {
	uint64_t lo;
	uint64_t hi;
	uint64_t count;
};

/* Make h empty. */
void hist_init(struct hist *h);

/* Record value v once, or n times. */
void hist_record(struct hist *h, uint64_t v);
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);

/* Add every value recorded in src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The bucket holding v, and the lowest and highest values of bucket i. */
size_t hist_bucket_of(uint64_t v);
uint64_t hist_bucket_lo(size_t i);
uint64_t hist_bucket_hi(size_t i);

/*
 * The value at percentile pct (0 to 100; 99.9 for p99.9): the upper bound
 * of the bucket holding the value of rank ceil(count * pct / 100) (at
 * least 1), capped at the maximum.  pct is taken to 1e-4 (rounded), so
 * 99.9 means exactly 999/1000.  0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double pct);

/* The arithmetic mean (0 for an empty histogram). */
double hist_mean(const struct hist *h);

/*
 * A coarse view for printing: at most nrows rows of about equal width on a
 * log scale, covering [min, max] contiguously (row k+1 starts one past the
 * end of row k; the first starts at min, the last ends at max), with row
 * boundaries on bucket boundaries so that each value is in exactly one
 * row.  Rows may be empty.  Returns the number of rows written (0 for an
 * empty histogram or nrows 0).
 */
size_t hist_rows(const struct hist *h, struct hist_row *rows, size_t nrows);

#endif /* SOCKETD_HIST_H */
