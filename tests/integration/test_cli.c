/*
 * socketd-cli against a running daemon, a closed port, a listener that
 * never answers and a server at max_connections.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

/* socketd-cli -p port [-t timeout] args... (at most 3), bounded by 10 s. */
static struct h_run *
cli(int port, const char *timeout, const char *a1, const char *a2,
    const char *a3)
{
	struct h_run *r = malloc(sizeof(*r));
	char p[16];
	char *argv[10];
	int n = 0;

	assert_non_null(r);
	snprintf(p, sizeof(p), "%d", port);
	argv[n++] = (char *)SOCKETD_CLI;
	argv[n++] = (char *)"-p";
	argv[n++] = p;
	if (timeout != NULL) {
		argv[n++] = (char *)"--timeout";
		argv[n++] = (char *)timeout;
	}
	argv[n++] = (char *)a1;
	if (a1 != NULL)
		argv[n++] = (char *)a2;
	if (a1 != NULL && a2 != NULL)
		argv[n++] = (char *)a3;
	argv[n] = NULL;
	h_run(argv, 10000, r);
	return r;
}

static void
expect_status(const struct h_run *r, int status, const char *what)
{
	if (r->status != status)
		fail_msg("socketd-cli %s: exit %d, expected %d\nstdout: %s\n"
			 "stderr: %s",
		    what, r->status, status, r->out, r->err);
}

static void
test_cli_commands(void **state)
{
	static const struct h_opts o = {.extra = "workers = 2;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct h_run *r;
	char want[128];
	struct tm tm;
	time_t when, now;
	int n = 0;

	r = cli(d->port, NULL, "ping", NULL, NULL);
	expect_status(r, 0, "ping");
	snprintf(want, sizeof(want), "PONG from 127.0.0.1:%d in ", d->port);
	assert_memory_equal(r->out, want, strlen(want));
	assert_string_equal(r->out + strlen(r->out) - 4, " ms\n");
	assert_string_equal(r->err, "");
	free(r);

	r = cli(d->port, NULL, "echo", "hello,", "world");
	expect_status(r, 0, "echo");
	assert_string_equal(r->out, "hello, world\n");
	free(r);

	r = cli(d->port, NULL, "time", NULL, NULL);
	expect_status(r, 0, "time");
	/* 2026-11-21T12:34:56.123456789Z */
	memset(&tm, 0, sizeof(tm));
	if (sscanf(r->out, "%4d-%2d-%2dT%2d:%2d:%2d.%*9[0-9]Z%n", &tm.tm_year,
		&tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
		&n) != 6 ||
	    n != 30 || r->out[4] != '-' || r->out[10] != 'T' ||
	    strcmp(r->out + n, "\n") != 0)
		fail_msg("time printed \"%s\"", r->out);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	when = timegm(&tm);
	now = time(NULL);
	if (when < now - 10 || when > now + 10)
		fail_msg("time printed \"%s\", %ld s away from ours", r->out,
		    (long)(when - now));
	free(r);

	r = cli(d->port, NULL, "info", NULL, NULL);
	expect_status(r, 0, "info");
	assert_non_null(strstr(r->out, "version " SOCKETD_VERSION "\n"));
	snprintf(want, sizeof(want), "\npid %ld\n", (long)d->pid);
	assert_non_null(strstr(r->out, want));
	assert_non_null(strstr(r->out, "\nworkers 2\n"));
	free(r);

	r = cli(d->port, NULL, "stats", NULL, NULL);
	expect_status(r, 0, "stats");
	assert_memory_equal(r->out, "connections_current ", 20);
	assert_non_null(strstr(r->out, "\nrequests_total "));
	assert_string_equal(r->out + strlen(r->out) - 1, "\n");
	free(r);

	/* The long option --timeout, with a value. */
	r = cli(d->port, "2", "ping", NULL, NULL);
	expect_status(r, 0, "--timeout 2 ping");
	free(r);
}

static void
test_cli_refused(void **state)
{
	int port = h_free_port(0);
	struct h_run *r;

	(void)state;
	r = cli(port, NULL, "ping", NULL, NULL);
	expect_status(r, 3, "ping on a closed port");
	if (strstr(r->err, "refused") == NULL)
		fail_msg("stderr \"%s\" lacks \"refused\"", r->err);
	assert_string_equal(r->out, "");
	free(r);
}

static void
test_cli_timeout(void **state)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct h_run *r;
	int fd;

	/* Connections complete in the backlog; nobody ever answers. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	h_track(T(state), fd);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);

	r = cli(ntohs(sin.sin_port), "0.5", "ping", NULL, NULL);
	expect_status(r, 3, "--timeout 0.5 ping on a silent listener");
	if (strstr(r->err, "timed out") == NULL)
		fail_msg("stderr \"%s\" lacks \"timed out\"", r->err);
	if (r->elapsed_ms > 2000)
		fail_msg("--timeout 0.5 took %ld ms", r->elapsed_ms);
	free(r);
}

static void
test_cli_usage(void **state)
{
	struct h_run *r;

	(void)state;
	r = cli(7411, NULL, "frobnicate", NULL, NULL);
	expect_status(r, 2, "frobnicate");
	assert_non_null(strstr(r->err, "unknown command 'frobnicate'"));
	assert_string_equal(r->out, "");
	free(r);
	r = cli(7411, NULL, "ping", "extra", NULL);
	expect_status(r, 2, "ping extra");
	free(r);
	r = cli(7411, NULL, "echo", NULL, NULL);
	expect_status(r, 2, "echo without text");
	free(r);
	r = cli(7411, "-1", "ping", NULL, NULL);
	expect_status(r, 2, "--timeout -1");
	free(r);
	r = cli(7411, NULL, NULL, NULL, NULL);
	expect_status(r, 2, "without a command");
	free(r);
}

static void
test_cli_busy(void **state)
{
	static const struct h_opts o = {.extra = "max_connections = 1;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc_settled(T(state), d);
	struct h_run *r;

	r = cli(d->port, NULL, "ping", NULL, NULL);
	expect_status(r, 1, "ping at max_connections");
	if (strstr(r->err, "BUSY") == NULL)
		fail_msg("stderr \"%s\" lacks \"BUSY\"", r->err);
	assert_non_null(strstr(r->err, "max_connections (1) reached"));
	assert_string_equal(r->out, "");
	free(r);
	h_ping(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_cli_commands, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_cli_refused, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_cli_timeout, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_cli_usage, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_busy, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_cli", tests, h_group_setup, NULL);
}
