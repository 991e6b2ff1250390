/*
 * hist.c: the log-linear histogram (see hist.h).
 *
 * Bucket index of v (S = HIST_SUB_BITS):
 *   v < 2^S:  v itself;
 *   else:     e = the index of v's highest set bit (S..63), shift = e - S,
 *             index = (e - S + 1) * 2^S + (v >> shift) - 2^S.
 * Octave e therefore holds 2^S buckets of width 2^shift, whose lowest value
 * is at least 2^e: the relative width is at most 2^-S.  For e = S the width
 * is 1, so the first 2 * 2^S values are exact and the two formulas agree.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "hist.h"

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static unsigned
top_bit(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

size_t
hist_bucket_of(uint64_t v)
{
	unsigned e, shift;

	if (v < HIST_SUB)
		return (size_t)v;
	e = top_bit(v);
	shift = e - HIST_SUB_BITS;
	return (size_t)(e - HIST_SUB_BITS + 1) * HIST_SUB +
	    (size_t)(v >> shift) - HIST_SUB;
}

uint64_t
hist_bucket_lo(size_t i)
{
	size_t group, sub;

	if (i >= HIST_NBUCKETS)
		i = HIST_NBUCKETS - 1;
	group = i >> HIST_SUB_BITS;
	sub = i & (HIST_SUB - 1);
	if (group == 0)
		return (uint64_t)sub;
	return ((uint64_t)HIST_SUB + sub) << (group - 1);
}

uint64_t
hist_bucket_hi(size_t i)
{
	size_t group;

	if (i >= HIST_NBUCKETS)
		i = HIST_NBUCKETS - 1;
	group = i >> HIST_SUB_BITS;
	if (group <= 1)
		return hist_bucket_lo(i);
	/* The last bucket ends at UINT64_MAX exactly: no overflow. */
	return hist_bucket_lo(i) + (((uint64_t)1 << (group - 1)) - 1);
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
	if (a != 0 && b > UINT64_MAX / a)
		return UINT64_MAX;
	return a * b;
}

void
hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
	if (n == 0)
		return;
	h->buckets[hist_bucket_of(v)] += n;
	h->count += n;
	h->sum = sat_add(h->sum, sat_mul(v, n));
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void
hist_record(struct hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	size_t i;

	if (src->count == 0)
		return;
	for (i = 0; i < HIST_NBUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum = sat_add(dst->sum, src->sum);
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* ceil(count * ppm / 10^6) without overflow: count = a * 10^6 + b. */
static uint64_t
rank_of(uint64_t count, uint64_t ppm)
{
	uint64_t a = count / 1000000u, b = count % 1000000u;

	return a * ppm + (b * ppm + 999999u) / 1000000u;
}

uint64_t
hist_percentile(const struct hist *h, double pct)
{
	uint64_t ppm, rank, seen, hi;
	size_t i;

	if (h->count == 0)
		return 0;
	if (!(pct > 0)) /* also NaN */
		pct = 0;
	if (pct > 100)
		pct = 100;
	/* Parts per million, rounded: 99.9 is exactly 999000. */
	ppm = (uint64_t)llround(pct * 10000.0);
	rank = rank_of(h->count, ppm);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	seen = 0;
	for (i = hist_bucket_of(h->min); i < HIST_NBUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank)
			break;
	}
	if (i >= HIST_NBUCKETS)
		return h->max; /* not reached while count is consistent */
	hi = hist_bucket_hi(i);
	return hi < h->max ? hi : h->max;
}

double
hist_mean(const struct hist *h)
{
	if (h->count == 0)
		return 0;
	return (double)h->sum / (double)h->count;
}

size_t
hist_rows(const struct hist *h, struct hist_row *rows, size_t nrows)
{
	size_t first, last, start, next, n, k, i;
	double lo, hi, b;

	if (h->count == 0 || nrows == 0)
		return 0;
	first = hist_bucket_of(h->min);
	last = hist_bucket_of(h->max);

	n = 0;
	start = first;
	if (last - first + 1 <= nrows) {
		/* Few buckets: one row each. */
		for (i = first; i <= last; i++) {
			rows[n].lo = hist_bucket_lo(i);
			rows[n].hi = hist_bucket_hi(i);
			rows[n].count = h->buckets[i];
			n++;
		}
	} else {
		lo = (double)hist_bucket_lo(first);
		if (lo < 1)
			lo = 1;
		hi = (double)hist_bucket_hi(last) + 1;
		for (k = 1; k <= nrows; k++) {
			/* The row ends where the next one starts. */
			if (k == nrows) {
				next = last + 1;
			} else {
				b = ceil(lo *
				    pow(hi / lo, (double)k / (double)nrows));
				next = b >= 18446744073709551615.0
				    ? last + 1
				    : hist_bucket_of((uint64_t)b);
				if (next > last + 1)
					next = last + 1;
				if (next <= start)
					continue; /* narrower than a bucket */
			}
			rows[n].lo = hist_bucket_lo(start);
			rows[n].hi = hist_bucket_hi(next - 1);
			rows[n].count = 0;
			for (i = start; i < next; i++)
				rows[n].count += h->buckets[i];
			n++;
			start = next;
			if (start > last)
				break;
		}
	}
	rows[0].lo = h->min;
	rows[n - 1].hi = h->max;
	return n;
}
