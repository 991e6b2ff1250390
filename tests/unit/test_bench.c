/*
 * test_bench: option parsing of socketd-cli bench (bench_parse): the
 * defaults, every option in short and long form, -t as threads, the
 * interplay of -n, -d, --warmup, --op and --size, and strict rejection of
 * malformed numbers.  Parsing twice in one process must work (the second
 * getopt pass resets optind).
 */
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bench.h"
#include "proto.h"

#define MAXARGS 32

/* Parse "bench" + the NULL-terminated words; 0 or -1 (err filled). */
static int
parse_words(struct bench_opts *o, char *err, size_t errlen, ...)
{
	char *argv[MAXARGS + 2];
	const char *w;
	va_list ap;
	int argc = 0, rv, i;

	argv[argc++] = strdup("bench");
	va_start(ap, errlen);
	while ((w = va_arg(ap, const char *)) != NULL) {
		assert_true(argc < MAXARGS);
		argv[argc++] = strdup(w);
	}
	va_end(ap);
	argv[argc] = NULL;
	for (i = 0; i < argc; i++)
		assert_non_null(argv[i]);
	err[0] = '\0';
	rv = bench_parse(
	    argc, argv, "example.net", "7411", 5000, o, err, errlen);
	/* o->host may point into argv: keep a copy the test can read. */
	if (rv == 0 && o->host != NULL && strcmp(o->host, "example.net") != 0)
		o->host = strcmp(o->host, "::1") == 0 ? "::1" : "other";
	for (i = 0; i < argc; i++)
		free(argv[i]);
	return rv;
}

#define PARSE(o, err, ...)                                                     \
	parse_words((o), (err), sizeof(err), __VA_ARGS__, (const char *)NULL)

static void
test_defaults(void **state)
{
	struct bench_opts o;
	char err[256];

	(void)state;
	assert_int_equal(
	    parse_words(&o, err, sizeof(err), (const char *)NULL), 0);
	assert_string_equal(o.host, "example.net");
	assert_string_equal(o.port, "7411");
	assert_int_equal(o.timeout_ms, 5000);
	assert_int_equal(o.connections, BENCH_DEFAULT_CONNS);
	assert_int_equal(o.requests, 0);
	assert_true(o.duration_s == BENCH_DEFAULT_SECONDS);
	assert_true(o.warmup_s == 1.0);
	assert_int_equal(o.pipeline, 1);
	assert_int_equal(o.threads, 1);
	assert_int_equal(o.opcode, PROTO_OP_PING);
	assert_int_equal(o.size, 0);
	assert_int_equal(o.json, 0);
	assert_int_equal(o.help, 0);
}

static void
test_short_options(void **state)
{
	struct bench_opts o;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&o, err, "-H", "::1", "-p", "9000", "-c",
			     "10000", "-d", "2.5", "-P", "16", "-t", "4"),
	    0);
	assert_string_equal(o.host, "::1");
	assert_string_equal(o.port, "9000");
	assert_int_equal(o.connections, 10000);
	assert_true(o.duration_s == 2.5);
	assert_int_equal(o.pipeline, 16);
	assert_int_equal(o.threads, 4); /* -t is threads after bench */
	assert_int_equal(o.timeout_ms, 5000);
	assert_true(o.warmup_s == 1.0);
}

static void
test_long_options(void **state)
{
	struct bench_opts o;
	char err[256];

	(void)state;
	assert_int_equal(
	    PARSE(&o, err, "--host", "h", "--port", "1", "--connections", "3",
		"--requests", "500", "--pipeline", "2", "--threads", "2",
		"--op", "echo", "--size", "0", "--warmup", "0.25", "--json"),
	    0);
	assert_string_equal(o.host, "other");
	assert_string_equal(o.port, "1");
	assert_int_equal(o.connections, 3);
	assert_int_equal(o.requests, 500);
	assert_true(o.duration_s == 0);
	assert_int_equal(o.pipeline, 2);
	assert_int_equal(o.threads, 2);
	assert_int_equal(o.opcode, PROTO_OP_ECHO);
	assert_int_equal(o.size, 0);
	assert_true(o.warmup_s == 0.25);
	assert_int_equal(o.json, 1);
}

static void
test_modes(void **state)
{
	struct bench_opts o;
	char err[256];

	(void)state;
	/* -n: no warmup by default, no duration. */
	assert_int_equal(PARSE(&o, err, "-n", "1000"), 0);
	assert_int_equal(o.requests, 1000);
	assert_true(o.duration_s == 0);
	assert_true(o.warmup_s == 0);
	/* An explicit warmup is kept. */
	assert_int_equal(PARSE(&o, err, "-n", "1000", "--warmup", "2"), 0);
	assert_true(o.warmup_s == 2);
	assert_int_equal(PARSE(&o, err, "-d", "3", "--warmup", "0"), 0);
	assert_true(o.duration_s == 3);
	assert_true(o.warmup_s == 0);
	/* echo: 64 bytes unless told. */
	assert_int_equal(PARSE(&o, err, "--op", "echo"), 0);
	assert_int_equal(o.size, BENCH_DEFAULT_SIZE);
	assert_int_equal(
	    PARSE(&o, err, "--op", "echo", "--size", "1048568"), 0);
	assert_int_equal(o.size, 1048568);
	assert_int_equal(PARSE(&o, err, "--op", "time"), 0);
	assert_int_equal(o.opcode, PROTO_OP_TIME);
	assert_int_equal(o.size, 0);
	assert_int_equal(PARSE(&o, err, "--op", "info"), 0);
	assert_int_equal(o.opcode, PROTO_OP_INFO);
	assert_int_equal(PARSE(&o, err, "--op", "stats"), 0);
	assert_int_equal(o.opcode, PROTO_OP_STATS);
	assert_int_equal(PARSE(&o, err, "-h"), 0);
	assert_int_equal(o.help, 1);
	assert_int_equal(PARSE(&o, err, "--help"), 0);
	assert_int_equal(o.help, 1);
}

static void
expect_bad(const char *a, const char *b, const char *c, const char *want)
{
	struct bench_opts o;
	char err[256];
	int rv;

	rv = parse_words(&o, err, sizeof(err), a, b, c, (const char *)NULL);
	if (rv != -1)
		fail_msg("bench %s %s %s: accepted", a, b ? b : "", c ? c : "");
	if (strstr(err, want) == NULL)
		fail_msg("bench %s %s: message '%s' lacks '%s'", a, b ? b : "",
		    err, want);
}

static void
test_rejects(void **state)
{
	(void)state;
	expect_bad("-c", "0", NULL, "connection count");
	expect_bad("-c", "1000001", NULL, "connection count");
	expect_bad("-c", "-1", NULL, "connection count");
	expect_bad("-c", "+1", NULL, "connection count");
	expect_bad("-c", " 1", NULL, "connection count");
	expect_bad("-c", "1 ", NULL, "connection count");
	expect_bad("-c", "0x10", NULL, "connection count");
	expect_bad("-c", "1e3", NULL, "connection count");
	expect_bad("-c", "", NULL, "connection count");
	expect_bad("-c", "99999999999999999999999", NULL, "connection count");
	expect_bad("-n", "0", NULL, "request count");
	expect_bad("-n", "1000000000001", NULL, "request count");
	expect_bad("-n", "10k", NULL, "request count");
	expect_bad("-d", "0", NULL, "duration");
	expect_bad("-d", "-1", NULL, "duration");
	expect_bad("-d", "1e2", NULL, "duration");
	expect_bad("-d", "inf", NULL, "duration");
	expect_bad("-d", "nan", NULL, "duration");
	expect_bad("-d", ".", NULL, "duration");
	expect_bad("-d", "1.2.3", NULL, "duration");
	expect_bad("-d", "86400.5", NULL, "duration");
	expect_bad("-d", "0.0001", NULL, "duration");
	expect_bad("-P", "0", NULL, "pipeline");
	expect_bad("-P", "4097", NULL, "pipeline");
	expect_bad("-t", "0", NULL, "thread count");
	expect_bad("-t", "257", NULL, "thread count");
	expect_bad("-t", "0.5", NULL, "thread count");
	expect_bad("--op", "Pong!", NULL, "operation");
	expect_bad("--op", "0x1g", NULL, "operation");
	expect_bad("--op", "", NULL, "operation");
	expect_bad("--op", "ECHO", NULL, "operation");
	expect_bad("--size", "1048569", NULL, "size");
	expect_bad("--size", "-1", NULL, "size");
	expect_bad("--op", "ping", "--size", "option --size needs");
	expect_bad("--warmup", "-0.5", NULL, "warmup");
	expect_bad("--warmup", "3601", NULL, "warmup");
	expect_bad("-p", "0", NULL, "port");
	expect_bad("-p", "65536", NULL, "port");
	expect_bad("-p", "http", NULL, "port");
	expect_bad("-H", "", NULL, "empty host");
	expect_bad("-c", NULL, NULL, "option -c needs an argument");
	expect_bad("--threads", NULL, NULL, "option --threads needs");
	expect_bad("--nope", NULL, NULL, "unknown option --nope");
	expect_bad("-x", NULL, NULL, "unknown option -x");
	expect_bad("--json=1", NULL, NULL, "unknown option");
	expect_bad("stray", NULL, NULL, "unexpected argument 'stray'");
	expect_bad("-c", "2", "stray", "unexpected argument 'stray'");
}

static void
test_conflicts(void **state)
{
	struct bench_opts o;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&o, err, "-n", "5", "-d", "5"), -1);
	assert_non_null(strstr(err, "exclude"));
	assert_int_equal(PARSE(&o, err, "--size", "8"), -1);
	assert_non_null(strstr(err, "--op echo only"));
	assert_int_equal(PARSE(&o, err, "--size", "8", "--op", "ping"), -1);
	assert_int_equal(PARSE(&o, err, "--size", "8", "--op", "echo"), 0);
	assert_int_equal(o.size, 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_short_options),
	    cmocka_unit_test(test_long_options),
	    cmocka_unit_test(test_modes),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_conflicts),
	};

	return cmocka_run_group_tests_name("bench", tests, NULL, NULL);
}
