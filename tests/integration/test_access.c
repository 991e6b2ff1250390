/*
 * Access control and the per-source limit: DENIED before a byte is read,
 * deny wins, reloads apply, BUSY past max_connections_per_source.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

#define BOTH "[ \"127.0.0.1:PORT\", \"[::1]:PORT\" ]"

static int
raw(struct h_ctx *t, const char *host, int port)
{
	int fd = h_connect(t, host, port, H_IO_TIMEOUT);

	if (fd == -1)
		fail_msg("connect %s: %s", host, strerror(errno));
	return fd;
}

static void
test_denied_peer_gets_denied_frame_before_reading(void **state)
{
	static const struct h_opts o = {.listen = BOTH,
	    .extra = "access: { allow = [ \"::1/128\", \"10.0.0.0/8\" ]; };",
	    .probe_host = "::1",
	    .need_v6 = 1};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *v6 = h_sdc_settled_on(T(state), d, "::1");
	uint64_t before;
	int fd;

	before = h_stat(v6, "requests_total");
	fd = raw(T(state), "127.0.0.1", d->port);
	/* A request already sent must not be answered: only DENIED. */
	assert_int_equal(h_send_req(fd, PROTO_OP_PING, 7, NULL, 0), 0);
	h_expect_refusal(fd, PROTO_DENIED, "access denied");
	h_close(T(state), fd);
	assert_int_equal(h_stat(v6, "rejected_denied"), 1);
	assert_int_equal(h_stat(v6, "connections_rejected"), 1);
	/* Only the three STATS calls were answered, not the PING. */
	assert_int_equal(h_stat(v6, "requests_total"), before + 3);
	h_ping(h_sdc(T(state), "::1", d->port));
}

static void
test_deny_wins_over_allow(void **state)
{
	static const struct h_opts o = {.listen = BOTH,
	    .extra = "access: { allow = [ \"127.0.0.0/8\", \"::1\" ];\n"
		     "deny = [ \"127.0.0.1/32\" ]; };",
	    .probe_host = "::1",
	    .need_v6 = 1};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *v6 = h_sdc_settled_on(T(state), d, "::1");
	int fd;

	fd = raw(T(state), "127.0.0.1", d->port);
	h_expect_refusal(fd, PROTO_DENIED, "access denied");
	h_ping(v6);
	assert_int_equal(h_stat(v6, "rejected_denied"), 1);
}

static void
test_reload_changes_access(void **state)
{
	static const struct h_opts open = {
	    .listen = BOTH, .level = "info", .probe_host = "::1", .need_v6 = 1};
	static const struct h_opts closed = {.listen = BOTH,
	    .level = "info",
	    .extra = "access: { deny = [ \"127.0.0.0/8\" ]; };",
	    .need_v6 = 1};
	struct h_daemon *d = h_start(T(state), &open);
	struct sdc *v6 = h_sdc_settled_on(T(state), d, "::1");
	struct sdc *v4 = h_sdc(T(state), "127.0.0.1", d->port);
	int fd;

	h_ping(v4);
	h_write_config(d, &closed);
	h_signal(d, SIGHUP);
	if (!h_log_wait(d, "reloaded", NULL, 5000))
		fail_msg("no \"reloaded\" in the log 5 s after SIGHUP");
	/* New connections are refused; the open one keeps working. */
	fd = raw(T(state), "127.0.0.1", d->port);
	h_expect_refusal(fd, PROTO_DENIED, "access denied");
	h_ping(v4);
	h_ping(v6);

	h_write_config(d, &open);
	h_signal(d, SIGHUP);
	assert_int_equal(h_stat_wait(v6, "reloads", 2, 5000), 2);
	h_ping(h_sdc(T(state), "127.0.0.1", d->port));
}

static void
test_per_source_limit(void **state)
{
	static const struct h_opts o = {.listen = BOTH,
	    .extra = "max_connections_per_source = 2;",
	    .probe_host = "::1",
	    .need_v6 = 1};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *v6 = h_sdc_settled_on(T(state), d, "::1");
	struct sdc *a, *b;
	int fd;

	a = h_sdc(T(state), "127.0.0.1", d->port);
	b = h_sdc(T(state), "127.0.0.1", d->port);
	h_ping(a);
	h_ping(b);
	fd = raw(T(state), "127.0.0.1", d->port);
	h_expect_refusal(fd, PROTO_BUSY,
	    "max_connections_per_source (2) reached for this address");
	h_close(T(state), fd);
	/* Another address is counted on its own. */
	h_ping(h_sdc(T(state), "::1", d->port));
	assert_int_equal(h_stat(v6, "rejected_per_source"), 1);
	assert_int_equal(h_stat(v6, "sources_current"), 2);

	/* Once one closes, the address has room again. */
	h_sdc_close(T(state), a);
	assert_int_equal(h_stat_wait(v6, "connections_current", 3, 5000), 3);
	h_ping(h_sdc(T(state), "127.0.0.1", d->port));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_denied_peer_gets_denied_frame_before_reading, h_setup,
		h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_deny_wins_over_allow, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_changes_access, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_per_source_limit, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_access", tests, h_group_setup, NULL);
}
