/*
 * client/top.c: the /metrics parser and the interval quantile that
 * socketd-cli top shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "top.h"

static const char before[] =
    "# HELP socketd_requests_total x\n"
    "# TYPE socketd_requests_total counter\n"
    "socketd_requests_total{opcode=\"ping\",status=\"ok\"} 100\n"
    "socketd_requests_total{opcode=\"echo\",status=\"ok\"} 10\n"
    "socketd_requests_total{opcode=\"echo\",status=\"bad_request\"} 1\n"
    "socketd_connections_active 3\n"
    "socketd_request_duration_seconds_bucket{opcode=\"ping\",le=\"0.0001\"} "
    "90\n"
    "socketd_request_duration_seconds_bucket{opcode=\"ping\",le=\"0.001\"} "
    "100\n"
    "socketd_request_duration_seconds_bucket{opcode=\"ping\",le=\"+Inf\"} 100\n"
    "socketd_request_duration_seconds_bucket{opcode=\"echo\",le=\"0.0001\"} "
    "11\n"
    "socketd_request_duration_seconds_bucket{opcode=\"echo\",le=\"0.001\"} 11\n"
    "socketd_request_duration_seconds_bucket{opcode=\"echo\",le=\"+Inf\"} 11\n";

/* 1000 more pings: 980 under 0.1 ms, 15 under 1 ms, 5 slower. */
static const char after[] =
    "socketd_requests_total{opcode=\"ping\",status=\"ok\"} 1100\n"
    "socketd_requests_total{opcode=\"echo\",status=\"ok\"} 10\n"
    "socketd_requests_total{opcode=\"echo\",status=\"bad_request\"} 1\n"
    "socketd_connections_active 4\n"
    "socketd_request_duration_seconds_bucket{opcode=\"ping\",le=\"0.0001\"} "
    "1070\n"
    "socketd_request_duration_seconds_bucket{opcode=\"ping\",le=\"0.001\"} "
    "1095\n"
    "socketd_request_duration_seconds_bucket{opcode=\"ping\",le=\"+Inf\"} "
    "1100\n"
    "socketd_request_duration_seconds_bucket{opcode=\"echo\",le=\"0.0001\"} "
    "11\n"
    "socketd_request_duration_seconds_bucket{opcode=\"echo\",le=\"0.001\"} 11\n"
    "socketd_request_duration_seconds_bucket{opcode=\"echo\",le=\"+Inf\"} 11\n";

static void
test_parse_and_sum(void **state)
{
	struct top_sample s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(top_parse(&s, before, strlen(before)), 0);
	assert_int_equal(s.n, 10); /* comments skipped */
	assert_true(top_get(&s, "socketd_connections_active") == 3);
	assert_true(top_sum(&s, "socketd_requests_total", NULL) == 111);
	assert_true(
	    top_sum(&s, "socketd_requests_total", "opcode=\"echo\"") == 11);
	assert_true(
	    top_sum(&s, "socketd_requests_total", "status=\"ok\"") == 110);
	/* A prefix of another name is not that name. */
	assert_true(top_sum(&s, "socketd_requests", NULL) == 0);
	assert_true(top_get(&s, "nope") == -1);
	top_sample_free(&s);
}

static void
test_quantile_of_the_interval(void **state)
{
	struct top_sample a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(top_parse(&a, before, strlen(before)), 0);
	assert_int_equal(top_parse(&b, after, strlen(after)), 0);
	/* 98 % under 0.1 ms: p50 there, p99 in the 1 ms bucket. */
	assert_true(top_quantile(&a, &b, "socketd_request_duration_seconds",
			0.5) == 0.0001);
	assert_true(top_quantile(&a, &b, "socketd_request_duration_seconds",
			0.99) == 0.001);
	/* 0.999 of 1000 falls past the last finite bound. */
	assert_true(top_quantile(&a, &b, "socketd_request_duration_seconds",
			0.999) >= 1e300);
	/* Nothing observed between a sample and itself. */
	assert_true(top_quantile(&b, &b, "socketd_request_duration_seconds",
			0.99) == -1);
	top_sample_free(&a);
	top_sample_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_and_sum),
	    cmocka_unit_test(test_quantile_of_the_interval),
	};

	return cmocka_run_group_tests_name("top", tests, NULL, NULL);
}
