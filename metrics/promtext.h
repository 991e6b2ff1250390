/*
 * promtext: the Prometheus text exposition format 0.0.4, written into a
 * growable buffer, and the request-duration histogram's buckets.
 *
 * Pure: no sockets, threads, locks or logging; it is unit-tested alone
 * (tests/unit/test_promtext.c).  Numbers are written with integer
 * arithmetic only, so the output never depends on the locale.
 *
 * Return convention: the writers never fail one by one; a buffer that ran
 * out of memory sets ->oom and ignores what follows, and the caller checks
 * ->oom once at the end.
 */
#ifndef SOCKETD_PROMTEXT_H
#define SOCKETD_PROMTEXT_H

#include <stddef.h>
#include <stdint.h>

/* The exact Content-Type of format 0.0.4. */
#define PT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct pt_buf {
	char *p; /* NUL-terminated text; owned */
	size_t len, cap;
	int oom;
};

void pt_init(struct pt_buf *b);
void pt_free(struct pt_buf *b);
void pt_printf(struct pt_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type" (help is escaped). */
void pt_family(
    struct pt_buf *b, const char *name, const char *type, const char *help);
/*
 * One sample: name{labels} value.  labels is the inside of the braces
 * ("a=\"x\",b=\"y\""), built with pt_label, or NULL / "" for none.
 */
void pt_u64(struct pt_buf *b, const char *name, const char *labels, uint64_t v);
/* A value given in nanoseconds (or any 1e-9 unit), written in seconds. */
void pt_nanos(
    struct pt_buf *b, const char *name, const char *labels, uint64_t ns);

/*
 * Append key="value" to the label string dst (NUL-terminated, capacity
 * cap), with a comma when dst is not empty and value escaped (\\, \",
 * \n).  Returns 0, or -1 if it did not fit (dst is then unchanged).
 */
int pt_label(char *dst, size_t cap, const char *key, const char *value);

/*
 * The histogram's upper bounds (seconds, inclusive, as Prometheus's le):
 * 10 us to 1 s, sub-millisecond resolution where socketd answers.
 */
#define PT_NBOUNDS 13
extern const uint64_t pt_bounds_ns[PT_NBOUNDS];
extern const char *const pt_bounds_le[PT_NBOUNDS];

/* The bucket of an observation: 0..PT_NBOUNDS-1, or PT_NBOUNDS (+Inf). */
static inline unsigned
pt_bucket(uint64_t ns)
{
	unsigned i = 0;

	while (i < PT_NBOUNDS && ns > pt_bounds_ns[i])
		i++;
	return i;
}

/*
 * A histogram's samples from per-bucket (not cumulative) counts
 * counts[0..PT_NBOUNDS] and the sum of the observations in ns: the
 * cumulative _bucket lines in le order, le="+Inf", _sum and _count.
 * _count is the total of the buckets, so that +Inf equals _count even
 * when the counts were read while others were adding to them.
 */
void pt_histogram(struct pt_buf *b, const char *name, const char *labels,
    const uint64_t counts[PT_NBOUNDS + 1], uint64_t sum_ns);

#endif /* SOCKETD_PROMTEXT_H */
