/*
 * Unit tests for metrics/promtext: the text format's lines, label
 * escaping, and the histogram invariants that promtool does not check
 * (buckets in le order and cumulative, +Inf equal to _count, _sum).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "promtext.h"

/* The parsed lines of one histogram. */
struct parsed {
	double le[PT_NBOUNDS + 1];
	int inf[PT_NBOUNDS + 1];
	unsigned long long cum[PT_NBOUNDS + 1];
	size_t nbuckets;
	unsigned long long count;
	char sum[64];
	int have_sum, have_count;
};

/*
 * Parse name's lines out of text (labels ignored except le), asserting
 * the order: every _bucket, then _sum, then _count.
 */
static void
parse_histogram(const char *text, const char *name, struct parsed *h)
{
	char prefix[128], le[32], one[512];
	const char *text_line, *nl, *line;
	size_t plen;

	memset(h, 0, sizeof(*h));
	snprintf(prefix, sizeof(prefix), "%s_", name);
	plen = strlen(prefix);
	for (text_line = text; *text_line != '\0'; text_line = nl + 1) {
		nl = strchr(text_line, '\n');
		assert_non_null(nl); /* every line ends in \n */
		assert_true((size_t)(nl - text_line) < sizeof(one));
		memcpy(one, text_line, (size_t)(nl - text_line));
		one[nl - text_line] = '\0';
		line = one;
		if (strncmp(line, prefix, plen) != 0)
			continue;
		if (strncmp(line + plen, "bucket{", 7) == 0) {
			const char *p = strstr(line, "le=\"");
			const char *q;

			assert_false(h->have_sum || h->have_count);
			assert_non_null(p);
			p += 4;
			q = strchr(p, '"');
			assert_non_null(q);
			assert_true((size_t)(q - p) < sizeof(le));
			memcpy(le, p, (size_t)(q - p));
			le[q - p] = '\0';
			assert_true(h->nbuckets <= PT_NBOUNDS);
			h->inf[h->nbuckets] = strcmp(le, "+Inf") == 0;
			h->le[h->nbuckets] =
			    h->inf[h->nbuckets] ? 0 : strtod(le, NULL);
			assert_int_equal(sscanf(strchr(q, '}') + 1, " %llu",
					     &h->cum[h->nbuckets]),
			    1);
			h->nbuckets++;
		} else if (strncmp(line + plen, "sum", 3) == 0) {
			assert_false(h->have_count);
			assert_int_equal(
			    sscanf(strrchr(line, ' ') + 1, "%63s", h->sum), 1);
			h->have_sum = 1;
		} else if (strncmp(line + plen, "count", 5) == 0) {
			assert_int_equal(
			    sscanf(strrchr(line, ' ') + 1, "%llu", &h->count),
			    1);
			h->have_count = 1;
		}
	}
}

/* What promtool does not check. */
static void
assert_histogram_invariants(const struct parsed *h)
{
	size_t i;

	assert_int_equal(h->nbuckets, PT_NBOUNDS + 1);
	assert_true(h->have_sum);
	assert_true(h->have_count);
	for (i = 0; i + 1 < h->nbuckets; i++) {
		assert_false(h->inf[i]);
		if (i > 0)
			assert_true(h->le[i] > h->le[i - 1]);
		assert_true(h->cum[i] <= h->cum[i + 1]);
	}
	assert_true(h->inf[h->nbuckets - 1]);
	assert_int_equal(h->cum[h->nbuckets - 1], h->count);
}

static void
test_bucket_bounds_are_inclusive(void **state)
{
	unsigned i;

	(void)state;
	assert_int_equal(pt_bucket(0), 0);
	for (i = 0; i < PT_NBOUNDS; i++) {
		assert_int_equal(pt_bucket(pt_bounds_ns[i]), i);
		assert_int_equal(pt_bucket(pt_bounds_ns[i] + 1), i + 1);
		/* The le strings say the same bounds as the ns table. */
		assert_int_equal(
		    (uint64_t)(strtod(pt_bounds_le[i], NULL) * 1e9 + 0.5),
		    pt_bounds_ns[i]);
	}
	assert_int_equal(pt_bucket(UINT64_MAX), PT_NBOUNDS);
	/* Sub-millisecond resolution: several bounds below 1 ms. */
	assert_true(pt_bounds_ns[5] < 1000000);
}

static void
test_histogram_is_cumulative_and_inf_equals_count(void **state)
{
	uint64_t counts[PT_NBOUNDS + 1] = {0}, sum = 0, ns, seed = 12345;
	struct pt_buf b;
	struct parsed h;
	unsigned i, n = 5000;
	char want[64];

	(void)state;
	for (i = 0; i < n; i++) {
		/* Spread over 1 ns .. ~4 s, a few exactly on a bound. */
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		ns = (seed >> 33) % 4000000000ULL;
		if (i % 97 == 0)
			ns = pt_bounds_ns[i % PT_NBOUNDS];
		counts[pt_bucket(ns)]++;
		sum += ns;
	}
	pt_init(&b);
	pt_family(&b, "x_seconds", "histogram", "A test.");
	pt_histogram(&b, "x_seconds", "opcode=\"ping\"", counts, sum);
	assert_false(b.oom);
	parse_histogram(b.p, "x_seconds", &h);
	assert_histogram_invariants(&h);
	assert_int_equal(h.count, n);
	snprintf(want, sizeof(want), "%llu.%09llu",
	    (unsigned long long)(sum / 1000000000u),
	    (unsigned long long)(sum % 1000000000u));
	assert_string_equal(h.sum, want);
	/* Every bucket line carries the other labels before le. */
	assert_non_null(
	    strstr(b.p, "x_seconds_bucket{opcode=\"ping\",le=\"0.00001\"} "));
	assert_non_null(strstr(b.p, "x_seconds_count{opcode=\"ping\"} 5000\n"));
	pt_free(&b);
}

static void
test_empty_histogram_has_every_line(void **state)
{
	uint64_t counts[PT_NBOUNDS + 1] = {0};
	struct pt_buf b;
	struct parsed h;

	(void)state;
	pt_init(&b);
	pt_histogram(&b, "y_seconds", NULL, counts, 0);
	parse_histogram(b.p, "y_seconds", &h);
	assert_histogram_invariants(&h);
	assert_int_equal(h.count, 0);
	assert_string_equal(h.sum, "0.000000000");
	assert_non_null(strstr(b.p, "y_seconds_bucket{le=\"+Inf\"} 0\n"));
	assert_non_null(strstr(b.p, "y_seconds_sum 0.000000000\n"));
	pt_free(&b);
}

static void
test_family_and_samples(void **state)
{
	struct pt_buf b;

	(void)state;
	pt_init(&b);
	pt_family(&b, "a_total", "counter", "Back\\slash and\nnewline.");
	pt_u64(&b, "a_total", NULL, 18446744073709551615ULL);
	pt_u64(&b, "a_total", "", 0);
	pt_nanos(&b, "b_seconds", "k=\"v\"", 1500000001ULL);
	assert_false(b.oom);
	assert_string_equal(b.p,
	    "# HELP a_total Back\\\\slash and\\nnewline.\n"
	    "# TYPE a_total counter\n"
	    "a_total 18446744073709551615\n"
	    "a_total 0\n"
	    "b_seconds{k=\"v\"} 1.500000001\n");
	pt_free(&b);
}

static void
test_label_escapes_and_bounds(void **state)
{
	char l[64] = "";

	(void)state;
	assert_int_equal(pt_label(l, sizeof(l), "opcode", "ping"), 0);
	assert_int_equal(pt_label(l, sizeof(l), "x", "a\"b\\c\nd"), 0);
	assert_string_equal(l, "opcode=\"ping\",x=\"a\\\"b\\\\c\\nd\"");
	/* Too long: refused, and the string is left as it was. */
	assert_int_equal(pt_label(l, sizeof(l), "long",
			     "0123456789012345678901234567890123456789"),
	    -1);
	assert_string_equal(l, "opcode=\"ping\",x=\"a\\\"b\\\\c\\nd\"");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_bounds_are_inclusive),
	    cmocka_unit_test(test_histogram_is_cumulative_and_inf_equals_count),
	    cmocka_unit_test(test_empty_histogram_has_every_line),
	    cmocka_unit_test(test_family_and_samples),
	    cmocka_unit_test(test_label_escapes_and_bounds),
	};

	return cmocka_run_group_tests_name("promtext", tests, NULL, NULL);
}
