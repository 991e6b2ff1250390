/*
 * test_hist: the log-linear latency histogram (client/hist.c): bucket
 * bounds and precision, percentiles on known distributions, merging,
 * capping at the maximum, the empty histogram and the coarse rows.
 */
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "hist.h"

static int
setup(void **state)
{
	struct hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	hist_init(h);
	*state = h;
	return 0;
}

static int
teardown(void **state)
{
	free(*state);
	return 0;
}

static struct hist *
new_hist(void)
{
	struct hist *h = malloc(sizeof(*h));

	assert_non_null(h);
	hist_init(h);
	return h;
}

/* v <= got <= v * (1 + 1/HIST_SUB): the promised precision. */
static void
assert_close_above(uint64_t got, uint64_t v)
{
	if (got < v || (double)(got - v) > (double)v / HIST_SUB)
		fail_msg("%llu is not within 1/%u above %llu",
		    (unsigned long long)got, HIST_SUB, (unsigned long long)v);
}

static void
test_exact_small(void **state)
{
	uint64_t v;

	(void)state;
	for (v = 0; v < 2 * HIST_SUB; v++) {
		assert_int_equal(hist_bucket_of(v), v);
		assert_int_equal(hist_bucket_lo(v), v);
		assert_int_equal(hist_bucket_hi(v), v);
	}
}

static void
test_buckets_contiguous(void **state)
{
	size_t i;

	(void)state;
	assert_int_equal(hist_bucket_lo(0), 0);
	assert_true(hist_bucket_hi(HIST_NBUCKETS - 1) == UINT64_MAX);
	assert_int_equal(hist_bucket_of(UINT64_MAX), HIST_NBUCKETS - 1);
	for (i = 0; i < HIST_NBUCKETS; i++) {
		assert_true(hist_bucket_lo(i) <= hist_bucket_hi(i));
		assert_int_equal(hist_bucket_of(hist_bucket_lo(i)), i);
		assert_int_equal(hist_bucket_of(hist_bucket_hi(i)), i);
		if (i + 1 < HIST_NBUCKETS)
			assert_true(
			    hist_bucket_hi(i) + 1 == hist_bucket_lo(i + 1));
	}
}

/* 100 ns to 10 s: every bucket is at most 1/128 (0.79 %) wide. */
static void
test_precision(void **state)
{
	uint64_t v, lo, hi, d;
	double x, worst = 0, rel;
	size_t b;

	(void)state;
	for (x = 100; x <= 1e10; x *= 1.0007) {
		for (d = 0; d < 3; d++) {
			v = (uint64_t)x + d;
			b = hist_bucket_of(v);
			lo = hist_bucket_lo(b);
			hi = hist_bucket_hi(b);
			assert_true(lo <= v && v <= hi);
			/* The reported bound (hi) is never > 1% off. */
			rel = (double)(hi - v) / (double)v;
			assert_true(rel < 0.01);
			/* Nor is any other value of the bucket. */
			rel = (double)(hi - lo) / (double)lo;
			assert_true(rel <= 1.0 / HIST_SUB);
			if (rel > worst)
				worst = rel;
		}
	}
	/* The bound is reached: the buckets are not finer than claimed. */
	assert_true(worst > 0.9 / HIST_SUB);
}

static void
test_empty(void **state)
{
	struct hist *h = *state, *h2 = new_hist();
	struct hist_row rows[4];

	assert_int_equal(h->count, 0);
	assert_int_equal(h->max, 0);
	assert_true(h->min == UINT64_MAX);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 99.9), 0);
	assert_int_equal(hist_percentile(h, 100), 0);
	assert_true(hist_mean(h) == 0.0);
	assert_int_equal(hist_rows(h, rows, 4), 0);
	/* Merging empty histograms leaves them empty. */
	hist_merge(h, h2);
	assert_memory_equal(h, h2, sizeof(*h));
	hist_record_n(h, 5, 0);
	assert_memory_equal(h, h2, sizeof(*h));
	free(h2);
}

static void
test_percentile_exact_values(void **state)
{
	struct hist *h = *state;
	uint64_t v;

	/* 1..200 are all in exact buckets: the true order statistics. */
	for (v = 1; v <= 200; v++)
		hist_record(h, v);
	assert_int_equal(hist_percentile(h, 0), 1);
	assert_int_equal(hist_percentile(h, 50), 100);
	assert_int_equal(hist_percentile(h, 90), 180);
	assert_int_equal(hist_percentile(h, 99), 198);
	assert_int_equal(hist_percentile(h, 99.5), 199);
	assert_int_equal(hist_percentile(h, 99.9), 200); /* rank 199.8 */
	assert_int_equal(hist_percentile(h, 100), 200);
	assert_true(hist_mean(h) == 100.5);
}

/* Ranks are exact: 99.9 % of 1000 is 999, not 1000 (no float slop). */
static void
test_percentile_rank(void **state)
{
	struct hist *h = *state;
	uint64_t v;

	for (v = 1; v <= 1000; v++)
		hist_record(h, v);
	/* 999 sits in the bucket [996, 999]. */
	assert_int_equal(hist_percentile(h, 99.9), 999);
	assert_int_equal(hist_percentile(h, 100), 1000);
	assert_close_above(hist_percentile(h, 50), 500);
	assert_close_above(hist_percentile(h, 99), 990);
}

static void
test_percentile_uniform(void **state)
{
	struct hist *h = *state;
	uint64_t v;

	/* 10 us to 1 s in steps of 10 us: 100000 values. */
	for (v = 1; v <= 100000; v++)
		hist_record(h, v * 10000);
	assert_int_equal(h->count, 100000);
	assert_int_equal(h->min, 10000);
	assert_int_equal(h->max, 1000000000);
	assert_close_above(hist_percentile(h, 50), 500000000);
	assert_close_above(hist_percentile(h, 90), 900000000);
	assert_close_above(hist_percentile(h, 99), 990000000);
	assert_close_above(hist_percentile(h, 99.9), 999000000);
	assert_int_equal(hist_percentile(h, 100), 1000000000);
	assert_true(hist_mean(h) == 500005000.0);
}

static void
test_percentile_bimodal(void **state)
{
	struct hist *h = *state;

	/* 99 % fast (1 us), 1 % slow (5 ms). */
	hist_record_n(h, 1000, 990);
	hist_record_n(h, 5000000, 10);
	assert_close_above(hist_percentile(h, 50), 1000);
	assert_close_above(hist_percentile(h, 90), 1000);
	assert_close_above(hist_percentile(h, 99), 1000);
	/* The slow mode's bucket is wider than 5 ms; capped at the max. */
	assert_int_equal(hist_percentile(h, 99.1), 5000000);
	assert_int_equal(hist_percentile(h, 99.9), 5000000);
	assert_int_equal(h->max, 5000000);
	assert_true(hist_mean(h) == 50990.0);
}

static void
test_max_capping(void **state)
{
	struct hist *h = *state;
	const uint64_t v = 1000003; /* in a bucket 4096 wide */

	assert_true(hist_bucket_hi(hist_bucket_of(v)) > v);
	hist_record(h, v);
	assert_int_equal(hist_percentile(h, 50), v);
	assert_int_equal(hist_percentile(h, 99.9), v);
	assert_int_equal(hist_percentile(h, 100), v);
	assert_true(hist_mean(h) == (double)v);
}

static void
test_merge(void **state)
{
	struct hist *all = *state, *a = new_hist(), *b = new_hist();
	struct hist *copy = new_hist();
	uint64_t v;

	for (v = 1; v < 300000; v += 7) {
		hist_record((v & 1) ? a : b, v * 13);
		hist_record(all, v * 13);
	}
	hist_record(b, 123456789012ull);
	hist_record(all, 123456789012ull);

	hist_merge(copy, a); /* into an empty one: a copy */
	assert_memory_equal(copy, a, sizeof(*a));
	hist_merge(a, b);
	assert_memory_equal(a, all, sizeof(*a));
	assert_int_equal(a->min, 13);
	assert_int_equal(a->max, 123456789012ull);
	assert_int_equal(hist_percentile(a, 99.9), hist_percentile(all, 99.9));
	free(a);
	free(b);
	free(copy);
}

static void
check_rows(const struct hist *h, size_t max_rows)
{
	struct hist_row rows[64];
	uint64_t sum = 0;
	size_t n, i;

	assert_true(max_rows <= 64);
	n = hist_rows(h, rows, max_rows);
	assert_true(n >= 1 && n <= max_rows);
	assert_int_equal(rows[0].lo, h->min);
	assert_int_equal(rows[n - 1].hi, h->max);
	for (i = 0; i < n; i++) {
		assert_true(rows[i].lo <= rows[i].hi);
		if (i + 1 < n)
			assert_true(rows[i].hi + 1 == rows[i + 1].lo);
		sum += rows[i].count;
	}
	assert_int_equal(sum, h->count);
}

static void
test_rows(void **state)
{
	struct hist *h = *state;
	struct hist_row rows[20];
	uint64_t v;
	size_t n, i;

	/* Few distinct buckets: one row each. */
	for (v = 10; v <= 15; v++)
		hist_record_n(h, v, v);
	n = hist_rows(h, rows, 20);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++) {
		assert_int_equal(rows[i].lo, 10 + i);
		assert_int_equal(rows[i].count, 10 + i);
	}
	check_rows(h, 20);
	check_rows(h, 1);

	/* 20 us to 20 ms: log-spaced, each row ~1.41x the previous. */
	hist_init(h);
	for (v = 20000; v <= 20000000; v += 997)
		hist_record(h, v);
	check_rows(h, 20);
	n = hist_rows(h, rows, 20);
	assert_int_equal(n, 20);
	for (i = 1; i + 1 < n; i++) {
		double r = (double)rows[i].hi / (double)rows[i].lo;

		assert_true(r > 1.3 && r < 1.5);
	}
	check_rows(h, 7);
}

/* The extremes of uint64_t: nothing overflows. */
static void
test_extremes(void **state)
{
	struct hist *h = *state;

	hist_record(h, 0);
	hist_record(h, UINT64_MAX);
	hist_record(h, UINT64_MAX - 1);
	assert_int_equal(h->count, 3);
	assert_true(h->sum == UINT64_MAX); /* saturated */
	assert_int_equal(hist_percentile(h, 0), 0);
	assert_true(hist_percentile(h, 100) == UINT64_MAX);
	assert_true(hist_percentile(h, 50) >= UINT64_MAX - 1);
	assert_int_equal(hist_percentile(h, -5), 0);
	assert_true(hist_percentile(h, 250) == UINT64_MAX);
	check_rows(h, 20);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_small),
	    cmocka_unit_test(test_buckets_contiguous),
	    cmocka_unit_test(test_precision),
	    cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_percentile_exact_values, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_percentile_rank, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_percentile_uniform, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_percentile_bimodal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_capping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_extremes, setup, teardown),
	};

	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
