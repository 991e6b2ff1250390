/*
 * Unit tests for config/: loading, defaults, errors, diff and dump.
 *
 * Config files live in tests/data/cfg: valid-*.conf must load,
 * invalid-*.conf must fail, and each invalid case below names the line,
 * the key and a fragment of the message it expects.
 */

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cfg.h"

#define DATA_DIR    SOCKETD_TEST_DATA "/cfg"
#define DATA(name)  DATA_DIR "/" name
#define SAMPLE_PATH SOCKETD_TEST_DATA "/../../config/socketd.conf"
#define ENOENT_MSG  "cannot read file: No such file or directory"

static void
assert_str_equal_or_null(const char *a, const char *b)
{
	assert_true((a == NULL) == (b == NULL));
	if (a != NULL)
		assert_string_equal(a, b);
}

static void
assert_cfg_equal(const struct cfg *a, const struct cfg *b)
{
	size_t i;

	assert_int_equal(a->nlisten, b->nlisten);
	for (i = 0; i < a->nlisten; i++)
		assert_string_equal(a->listen[i], b->listen[i]);
	assert_int_equal(a->workers, b->workers);
	assert_int_equal(a->queue_size, b->queue_size);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->max_frame_size, b->max_frame_size);
	assert_int_equal(a->backlog, b->backlog);
	assert_int_equal(a->idle_ms, b->idle_ms);
	assert_int_equal(a->read_ms, b->read_ms);
	assert_int_equal(a->write_ms, b->write_ms);
	assert_int_equal(a->shutdown_ms, b->shutdown_ms);
	assert_int_equal(a->handshake_ms, b->handshake_ms);
	assert_int_equal(a->tcp_nodelay, b->tcp_nodelay);
	assert_int_equal(a->tcp_keepalive, b->tcp_keepalive);
	assert_int_equal(a->log_level, b->log_level);
	assert_int_equal(a->log_target, b->log_target);
	assert_int_equal(a->max_conn_per_source, b->max_conn_per_source);
	assert_int_equal(a->nallow, b->nallow);
	assert_int_equal(a->ndeny, b->ndeny);
	assert_memory_equal(
	    a->allow, b->allow, a->nallow * sizeof(a->allow[0]));
	assert_memory_equal(a->deny, b->deny, a->ndeny * sizeof(a->deny[0]));
	assert_true((a->user == NULL) == (b->user == NULL));
	if (a->user != NULL)
		assert_string_equal(a->user, b->user);
	assert_true((a->group == NULL) == (b->group == NULL));
	if (a->group != NULL)
		assert_string_equal(a->group, b->group);
	assert_true((a->pid_file == NULL) == (b->pid_file == NULL));
	if (a->pid_file != NULL)
		assert_string_equal(a->pid_file, b->pid_file);
	assert_str_equal_or_null(a->tls_certificate, b->tls_certificate);
	assert_str_equal_or_null(a->tls_key, b->tls_key);
	assert_str_equal_or_null(a->tls_ca, b->tls_ca);
	assert_int_equal(a->tls_verify_client, b->tls_verify_client);
	assert_int_equal(a->tls_min_version, b->tls_min_version);
	assert_int_equal(a->drain_ms, b->drain_ms);
	assert_int_equal(a->nadmin_listen, b->nadmin_listen);
	for (i = 0; i < a->nadmin_listen; i++)
		assert_string_equal(a->admin_listen[i], b->admin_listen[i]);
	assert_int_equal(a->nagent_listen, b->nagent_listen);
	for (i = 0; i < a->nagent_listen; i++)
		assert_string_equal(a->agent_listen[i], b->agent_listen[i]);
}

static void
assert_cfg_empty(const struct cfg *c)
{
	struct cfg zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(c, &zero, sizeof(zero));
}

static void
load_ok(const char *path, struct cfg *c)
{
	struct cfg_error err;
	int rc;

	rc = cfg_load(path, c, &err);
	if (rc != 0)
		print_error("unexpected error: %s\n", err.text);
	assert_int_equal(rc, 0);
}

/*
 * Load path, expect failure at file:line naming key with a message that
 * contains fragment, and the combined text "file:line: key: msg".
 * file is the file the error is in (path unless it is in an @include).
 */
static void
expect_error_in(const char *path, const char *file, int line, const char *key,
    const char *fragment)
{
	struct cfg_error err;
	struct cfg c;
	char text[1024];

	memset(&c, 0xa5, sizeof(c)); /* cfg_load must empty it */
	assert_int_equal(cfg_load(path, &c, &err), -1);
	assert_cfg_empty(&c);
	assert_string_equal(err.file, file);
	assert_int_equal(err.line, line);
	assert_string_equal(err.key, key);
	if (strstr(err.msg, fragment) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
	if (key[0] != '\0')
		snprintf(text, sizeof(text), "%s:%d: %s: %s", file, line, key,
		    err.msg);
	else
		snprintf(text, sizeof(text), "%s:%d: %s", file, line, err.msg);
	assert_string_equal(err.text, text);
}

static void
expect_error(const char *path, int line, const char *key, const char *fragment)
{
	expect_error_in(path, path, line, key, fragment);
}

/* Defaults and the sample file. */

static void
test_defaults_match_documented_values(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(cfg_defaults(&c, NULL), 0);
	assert_int_equal(c.nlisten, 2);
	assert_string_equal(c.listen[0], "127.0.0.1:7411");
	assert_string_equal(c.listen[1], "[::1]:7411");
	assert_null(c.listen[2]);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.queue_size, 1024);
	assert_int_equal(c.max_connections, 10000);
	assert_int_equal(c.max_frame_size, 1048576);
	assert_int_equal(c.backlog, 511);
	assert_int_equal(c.idle_ms, 60000);
	assert_int_equal(c.read_ms, 10000);
	assert_int_equal(c.write_ms, 10000);
	assert_int_equal(c.shutdown_ms, 10000);
	assert_int_equal(c.handshake_ms, 10000);
	assert_true(c.tcp_nodelay);
	assert_true(c.tcp_keepalive);
	assert_int_equal(c.log_level, CFG_LOG_INFO);
	assert_int_equal(c.log_target, CFG_LOG_STDERR);
	assert_null(c.tls_certificate);
	assert_null(c.tls_key);
	assert_null(c.tls_ca);
	assert_false(c.tls_verify_client);
	assert_int_equal(c.tls_min_version, CFG_TLS_1_2);
	assert_int_equal(cfg_tls_listeners(&c), 0);
	assert_int_equal(c.drain_ms, 0);
	assert_int_equal(c.nadmin_listen, 1);
	assert_string_equal(c.admin_listen[0], "127.0.0.1:9411");
	assert_int_equal(c.nagent_listen, 1);
	assert_string_equal(c.agent_listen[0], "127.0.0.1:9412");
	cfg_free(&c);
}

static void
test_load_sample_file_equals_defaults(void **state)
{
	struct cfg def, c;

	(void)state;
	assert_int_equal(cfg_defaults(&def, NULL), 0);
	load_ok(SAMPLE_PATH, &c);
	assert_cfg_equal(&c, &def);
	cfg_free(&c);
	cfg_free(&def);
}

static void
test_load_empty_file_gives_defaults(void **state)
{
	struct cfg def, c;

	(void)state;
	assert_int_equal(cfg_defaults(&def, NULL), 0);
	load_ok(DATA("valid-empty.conf"), &c);
	assert_cfg_equal(&c, &def);
	cfg_free(&c);
	cfg_free(&def);
}

/* Valid files. */

static void
test_load_full_file_sets_every_key(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(DATA("valid-full.conf"), &c);
	assert_int_equal(c.nlisten, 6);
	assert_string_equal(c.listen[0], "0.0.0.0:8080"); /* from "*:8080" */
	assert_string_equal(c.listen[1], "[::]:8080");
	assert_string_equal(c.listen[2], "10.0.0.1:9000");
	assert_string_equal(c.listen[3], "localhost:7411");
	assert_string_equal(c.listen[4], "[fe80::1%eth0]:7412");
	assert_string_equal(c.listen[5], "tls://0.0.0.0:8443");
	assert_int_equal(c.workers, 8);
	assert_int_equal(c.queue_size, 4096);
	assert_int_equal(c.max_connections, CFG_CONN_MAX);
	assert_int_equal(c.max_frame_size, CFG_FRAME_MAX);
	assert_int_equal(c.backlog, 1024);
	assert_int_equal(c.idle_ms, 0);
	assert_int_equal(c.read_ms, 2500);
	assert_int_equal(c.write_ms, 86400000);
	assert_int_equal(c.shutdown_ms, 1);
	assert_int_equal(c.handshake_ms, 0);
	assert_false(c.tcp_nodelay);
	assert_false(c.tcp_keepalive);
	assert_int_equal(c.log_level, CFG_LOG_DEBUG);
	assert_int_equal(c.log_target, CFG_LOG_SYSLOG);
	assert_string_equal(c.tls_certificate, "/etc/socketd/cert.pem");
	assert_string_equal(c.tls_key, "/etc/socketd/key.pem");
	assert_string_equal(c.tls_ca, "/etc/socketd/clients.pem");
	assert_true(c.tls_verify_client);
	assert_int_equal(c.tls_min_version, CFG_TLS_1_3);
	cfg_free(&c);
}

static void
test_load_partial_group_keeps_other_defaults(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(DATA("valid-partial.conf"), &c);
	assert_int_equal(c.idle_ms, 5000);
	assert_int_equal(c.read_ms, 10000);
	assert_int_equal(c.write_ms, 10000);
	assert_int_equal(c.shutdown_ms, 10000);
	assert_int_equal(c.log_level, CFG_LOG_WARNING);
	assert_int_equal(c.log_target, CFG_LOG_STDERR);
	assert_true(c.tcp_nodelay);
	assert_int_equal(c.nlisten, 2);
	cfg_free(&c);
}

static void
test_load_timeout_decimal_rounds_to_nearest_ms(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(DATA("valid-timeouts-decimal.conf"), &c);
	assert_int_equal(c.idle_ms, 500);          /* 0.5 */
	assert_int_equal(c.read_ms, 2001);         /* 2.0006 */
	assert_int_equal(c.write_ms, 2);           /* 0.0016 */
	assert_int_equal(c.shutdown_ms, 86400000); /* 86400.0 */
	cfg_free(&c);
}

static void
test_load_include_is_relative_to_file_not_cwd(void **state)
{
	struct cfg c;
	int here;

	(void)state;
	here = open(".", O_RDONLY | O_DIRECTORY);
	assert_true(here >= 0);

	/* Absolute path, run from elsewhere. */
	assert_int_equal(chdir("/"), 0);
	load_ok(DATA("valid-include.conf"), &c);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.idle_ms, 7000);
	cfg_free(&c);

	/* Relative path with no directory part. */
	assert_int_equal(chdir(DATA_DIR), 0);
	load_ok("valid-include.conf", &c);
	assert_int_equal(c.idle_ms, 7000);
	cfg_free(&c);

	assert_int_equal(fchdir(here), 0);
	close(here);
}

/* Every file named valid-* loads; every file named invalid-* fails. */
static void
test_data_files_match_their_names(void **state)
{
	struct cfg_error err;
	struct dirent *de;
	struct cfg c;
	char path[1024];
	DIR *d;
	int nvalid = 0, ninvalid = 0, rc;

	(void)state;
	d = opendir(DATA_DIR);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "valid-", 6) != 0 &&
		    strncmp(de->d_name, "invalid-", 8) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", DATA_DIR, de->d_name);
		rc = cfg_load(path, &c, &err);
		if (de->d_name[0] == 'v') {
			if (rc != 0)
				fail_msg("%s: %s", de->d_name, err.text);
			cfg_free(&c);
			nvalid++;
		} else {
			if (rc != -1)
				fail_msg("%s loaded", de->d_name);
			assert_true(err.line > 0);
			ninvalid++;
		}
	}
	closedir(d);
	assert_true(nvalid >= 5);
	assert_true(ninvalid >= 30);
}

/* Unknown keys and wrong types. */

static void
test_load_unknown_top_level_key_reports_line(void **state)
{
	(void)state;
	expect_error(
	    DATA("invalid-unknown-key.conf"), 3, "wrokers", "unknown setting");
}

static void
test_load_unknown_nested_key_reports_dotted_name(void **state)
{
	(void)state;
	expect_error(DATA("invalid-unknown-nested-key.conf"), 4,
	    "timeouts.idel", "unknown setting");
}

static void
test_load_string_for_integer_is_type_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-type-workers-string.conf"), 1, "workers",
	    "must be an integer from 0 to 1024");
}

static void
test_load_float_for_integer_is_type_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-type-queue-size-float.conf"), 3,
	    "queue_size", "must be an integer from 1 to 1048576");
}

static void
test_load_scalar_for_group_is_type_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-type-timeouts-not-group.conf"), 2,
	    "timeouts", "expected a group");
}

static void
test_load_integer_for_boolean_is_type_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-type-nodelay-int.conf"), 3, "tcp.nodelay",
	    "must be true or false");
}

static void
test_load_string_for_timeout_is_type_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-timeout-string.conf"), 1, "timeouts.idle",
	    "must be a number of seconds from 0 to 86400");
}

/* Ranges. */

static void
test_load_workers_above_max_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-workers.conf"), 1, "workers",
	    "must be an integer from 0 to 1024");
}

static void
test_load_negative_workers_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-workers-negative.conf"), 1, "workers",
	    "must be an integer from 0 to 1024");
}

static void
test_load_queue_size_zero_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-queue-size.conf"), 2, "queue_size",
	    "must be an integer from 1 to 1048576");
}

static void
test_load_too_big_int64_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-max-connections-int64.conf"), 2,
	    "max_connections", "must be an integer from 1 to 10000000");
}

static void
test_load_max_frame_size_below_min_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-max-frame-size.conf"), 1,
	    "max_frame_size", "must be an integer from 8 to 268435456");
}

static void
test_load_max_frame_size_above_max_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-max-frame-size-high.conf"), 1,
	    "max_frame_size", "must be an integer from 8 to 268435456");
}

static void
test_load_backlog_above_max_is_range_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-range-backlog.conf"), 1, "backlog",
	    "must be an integer from 1 to 65535");
}

/* Timeouts. */

static void
test_load_negative_timeout_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-timeout-negative.conf"), 2, "timeouts.read",
	    "must be a number of seconds from 0 to 86400");
}

static void
test_load_negative_decimal_timeout_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-timeout-negative-decimal.conf"), 1,
	    "timeouts.write", "must be a number of seconds from 0 to 86400");
}

static void
test_load_timeout_above_one_day_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-timeout-too-big.conf"), 1, "timeouts.idle",
	    "must be a number of seconds from 0 to 86400");
}

static void
test_load_timeout_below_one_ms_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-timeout-below-1ms.conf"), 1,
	    "timeouts.shutdown", "at least 0.001 seconds");
}

/* listen. */

static void
test_load_listen_without_port_is_error(void **state)
{
	(void)state;
	/* The line of the bad element, not of "listen". */
	expect_error(DATA("invalid-listen-no-port.conf"), 2, "listen",
	    "\"127.0.0.1\": missing port");
}

static void
test_load_listen_port_zero_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-port-zero.conf"), 1, "listen",
	    "\"127.0.0.1:0\": port must be a number from 1 to 65535");
}

static void
test_load_listen_port_70000_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-port-too-big.conf"), 1, "listen",
	    "\"127.0.0.1:70000\": port must be a number from 1 to 65535");
}

static void
test_load_listen_ipv6_without_brackets_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-v6-no-brackets.conf"), 2, "listen",
	    "needs brackets");
}

static void
test_load_listen_empty_list_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-empty.conf"), 1, "listen",
	    "expected at least one address");
}

static void
test_load_listen_non_string_element_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-non-string.conf"), 2, "listen",
	    "expected a list of strings");
}

static void
test_load_listen_plain_string_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-not-list.conf"), 1, "listen",
	    "expected a list of strings");
}

static void
test_load_listen_empty_host_is_error(void **state)
{
	(void)state;
	expect_error(
	    DATA("invalid-listen-empty-host.conf"), 1, "listen", "empty host");
}

static void
test_load_listen_duplicate_after_star_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-duplicate.conf"), 1, "listen",
	    "\"0.0.0.0:7411\": listed twice");
}

static void
test_load_listen_more_than_max_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-too-many.conf"), 1, "listen",
	    "at most 16 addresses");
}

/* log. */

static void
test_load_bad_log_level_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-log-level.conf"), 3, "log.level",
	    "must be \"error\", \"warning\", \"info\" or \"debug\"");
}

static void
test_load_bad_log_target_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-log-target.conf"), 1, "log.target",
	    "must be \"stderr\" or \"syslog\"");
}

/* Parse and I/O errors. */

static void
test_load_syntax_error_reports_line(void **state)
{
	(void)state;
	expect_error(DATA("invalid-syntax.conf"), 3, "", "syntax error");
}

static void
test_load_trailing_comma_is_syntax_error(void **state)
{
	(void)state;
	expect_error(
	    DATA("invalid-syntax-trailing-comma.conf"), 1, "", "syntax error");
}

static void
test_load_duplicate_key_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-duplicate-key.conf"), 2, "",
	    "duplicate setting name");
}

static void
test_load_error_in_include_names_included_file(void **state)
{
	(void)state;
	expect_error_in(DATA("invalid-include-error.conf"),
	    DATA("part-bad.inc"), 3, "tcp.nodelay", "must be true or false");
}

static void
test_load_missing_file_reports_strerror(void **state)
{
	struct cfg_error err;
	struct cfg c;

	(void)state;
	assert_int_equal(cfg_load(DATA("no-such-file.conf"), &c, &err), -1);
	assert_cfg_empty(&c);
	assert_string_equal(
	    err.text, DATA("no-such-file.conf") ": " ENOENT_MSG);
	assert_string_equal(err.file, DATA("no-such-file.conf"));
	assert_int_equal(err.line, 0);
	assert_string_equal(err.key, "");
}

static void
test_load_directory_reports_is_a_directory(void **state)
{
	struct cfg_error err;
	struct cfg c;

	(void)state;
	assert_int_equal(cfg_load(DATA_DIR, &c, &err), -1);
	assert_string_equal(
	    err.text, DATA_DIR ": cannot read file: Is a directory");
}

static void
test_load_accepts_null_error_pointer(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(cfg_load(DATA("invalid-syntax.conf"), &c, NULL), -1);
	assert_cfg_empty(&c);
}

/* diff_restart. */

static void
test_diff_restart_identical_is_zero(void **state)
{
	struct cfg a, b;
	char buf[128];

	(void)state;
	assert_int_equal(cfg_defaults(&a, NULL), 0);
	assert_int_equal(cfg_defaults(&b, NULL), 0);
	strcpy(buf, "junk");
	assert_int_equal(cfg_diff_restart(&a, &b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	cfg_free(&a);
	cfg_free(&b);
}

static void
test_diff_restart_lists_restart_only_keys(void **state)
{
	struct cfg a, b;
	char buf[128];

	(void)state;
	assert_int_equal(cfg_defaults(&a, NULL), 0);
	load_ok(DATA("valid-full.conf"), &b);
	assert_int_equal(cfg_diff_restart(&a, &b, buf, sizeof(buf)), 5);
	assert_string_equal(
	    buf, "listen, workers, queue_size, backlog, log.target");
	cfg_free(&a);
	cfg_free(&b);
}

static void
test_diff_restart_ignores_live_settings(void **state)
{
	struct cfg a, b;
	char buf[128];

	(void)state;
	assert_int_equal(cfg_defaults(&a, NULL), 0);
	assert_int_equal(cfg_defaults(&b, NULL), 0);
	b.max_connections = 5;
	b.max_frame_size = 64;
	b.idle_ms = 1;
	b.read_ms = 2;
	b.write_ms = 3;
	b.shutdown_ms = 4;
	b.handshake_ms = 5;
	b.tcp_nodelay = 0;
	b.tcp_keepalive = 0;
	b.log_level = CFG_LOG_DEBUG;
	/* Certificates are reloaded: no restart. */
	b.tls_certificate = strdup("/etc/new.pem");
	b.tls_verify_client = 1;
	b.tls_min_version = CFG_TLS_1_3;
	assert_int_equal(cfg_diff_restart(&a, &b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	cfg_free(&a);
	cfg_free(&b);
}

static void
test_diff_restart_listen_order_does_not_matter(void **state)
{
	struct cfg a, b;
	char *t;

	(void)state;
	assert_int_equal(cfg_defaults(&a, NULL), 0);
	assert_int_equal(cfg_defaults(&b, NULL), 0);
	t = b.listen[0];
	b.listen[0] = b.listen[1];
	b.listen[1] = t;
	assert_int_equal(cfg_diff_restart(&a, &b, NULL, 0), 0);

	/* One address fewer is a change. */
	free(b.listen[1]);
	b.listen[1] = NULL;
	b.nlisten = 1;
	assert_int_equal(cfg_diff_restart(&a, &b, NULL, 0), 1);
	cfg_free(&a);
	cfg_free(&b);
}

static void
test_diff_restart_short_buffer_is_truncated_not_overrun(void **state)
{
	struct cfg a, b;
	char buf[10];

	(void)state;
	assert_int_equal(cfg_defaults(&a, NULL), 0);
	assert_int_equal(cfg_defaults(&b, NULL), 0);
	b.workers = 4;
	b.queue_size = 8;
	b.backlog = 16;
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(cfg_diff_restart(&a, &b, buf, sizeof(buf)), 3);
	assert_true(memchr(buf, '\0', sizeof(buf)) != NULL);
	assert_int_equal(strncmp(buf, "workers, ", 9), 0);
	cfg_free(&a);
	cfg_free(&b);
}

/* user, group, pid_file and the key list. */

static void assert_dump_round_trips(const struct cfg *c);

static void
test_load_process_keys_sets_strings(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(DATA("valid-process.conf"), &c);
	assert_string_equal(c.user, "socketd");
	assert_string_equal(c.group, "nogroup");
	assert_string_equal(c.pid_file, "/run/socketd/socketd.pid");
	assert_dump_round_trips(&c);
	cfg_free(&c);
	assert_null(c.user);
}

static void
test_load_number_for_user_is_type_error(void **state)
{
	(void)state;
	expect_error(
	    DATA("invalid-user-type.conf"), 3, "user", "must be a string");
}

static void
test_copy_and_diff_cover_process_keys(void **state)
{
	struct cfg a, b;
	char names[128];

	(void)state;
	load_ok(DATA("valid-process.conf"), &a);
	assert_int_equal(cfg_copy(&b, &a), 0);
	assert_ptr_not_equal(a.user, b.user);
	assert_string_equal(b.pid_file, a.pid_file);
	assert_int_equal(cfg_diff_restart(&a, &b, names, sizeof(names)), 0);
	free(b.user);
	b.user = NULL;
	assert_int_equal(cfg_diff_restart(&a, &b, names, sizeof(names)), 1);
	assert_string_equal(names, "user");
	cfg_free(&a);
	cfg_free(&b);
}

/* The admin listeners and timeouts.drain. */

static void
load_text(const char *text, struct cfg *c, struct cfg_error *err, int *rc)
{
	char path[] = "/tmp/socketd-test-cfg.XXXXXX";
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	*rc = cfg_load(path, c, err);
	unlink(path);
}

static void
test_load_admin_lists_and_drain(void **state)
{
	struct cfg c;
	struct cfg_error err;
	int rc;

	(void)state;
	load_text("admin: { listen = [ \"127.0.0.1:19411\", \"[::1]:19411\" ];"
		  " agent_listen = [ \"*:19412\" ]; };\n"
		  "timeouts: { drain = 2.5; };\n",
	    &c, &err, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(c.nadmin_listen, 2);
	assert_string_equal(c.admin_listen[0], "127.0.0.1:19411");
	assert_string_equal(c.admin_listen[1], "[::1]:19411");
	assert_int_equal(c.nagent_listen, 1);
	assert_string_equal(c.agent_listen[0], "0.0.0.0:19412");
	assert_int_equal(c.drain_ms, 2500);
	cfg_free(&c);
}

static void
test_load_admin_empty_lists_turn_listeners_off(void **state)
{
	struct cfg c;
	struct cfg_error err;
	int rc;

	(void)state;
	load_text(
	    "admin: { listen = [ ]; agent_listen = [ ]; };\n", &c, &err, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(c.nadmin_listen, 0);
	assert_null(c.admin_listen[0]);
	assert_int_equal(c.nagent_listen, 0);
	assert_null(c.agent_listen[0]);
	cfg_free(&c);
}

static void
expect_text_error(const char *text, const char *key, const char *fragment)
{
	struct cfg c;
	struct cfg_error err;
	int rc;

	memset(&c, 0xa5, sizeof(c));
	load_text(text, &c, &err, &rc);
	assert_int_equal(rc, -1);
	assert_cfg_empty(&c);
	assert_string_equal(err.key, key);
	assert_int_equal(err.line, 1);
	if (strstr(err.msg, fragment) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
}

static void
test_load_admin_bad_lists_are_errors(void **state)
{
	(void)state;
	expect_text_error("admin: { listen = [ \"tls://127.0.0.1:1\" ]; };",
	    "admin.listen", "no scheme here");
	expect_text_error("admin: { listen = [ \"127.0.0.1\" ]; };",
	    "admin.listen", "missing port");
	expect_text_error("admin: { agent_listen = [ \"a:1\", \"b:1\", "
			  "\"c:1\", \"d:1\", \"e:1\" ]; };",
	    "admin.agent_listen", "at most 4 addresses");
	expect_text_error("admin: { agent_listen = [ \"a:1\", \"a:1\" ]; };",
	    "admin.agent_listen", "listed twice");
	expect_text_error("admin: { listen = \"127.0.0.1:1\"; };",
	    "admin.listen", "expected a list of strings");
	expect_text_error(
	    "admin: { metrics = true; };", "admin.metrics", "unknown setting");
	expect_text_error("timeouts: { drain = -1; };", "timeouts.drain",
	    "must be a number of seconds");
}

static void
test_diff_restart_names_admin_lists(void **state)
{
	struct cfg a, b;
	char names[256];

	(void)state;
	assert_int_equal(cfg_defaults(&a, NULL), 0);
	assert_int_equal(cfg_copy(&b, &a), 0);
	assert_int_equal(cfg_diff_restart(&a, &b, names, sizeof(names)), 0);
	free(b.agent_listen[0]);
	b.agent_listen[0] = NULL;
	b.nagent_listen = 0;
	b.drain_ms = 5000; /* reload: not listed */
	assert_int_equal(cfg_diff_restart(&a, &b, names, sizeof(names)), 1);
	assert_string_equal(names, "admin.agent_listen");
	cfg_free(&a);
	cfg_free(&b);
}

/* The processes list: values, defaults, a deep copy, names with modules. */
static void
test_load_processes(void **state)
{
	struct cfg c, d;
	struct cfg_error err;
	int rc;

	(void)state;
	load_text("processes = (\n"
		  "  { name = \"py\"; command = [ \"/usr/bin/python3\", "
		  "\"/srv/h.py\", \"-v\" ];\n"
		  "    opcode = 0xa0; instances = 4; max_inflight = 8;\n"
		  "    user = \"nobody\"; restart_delay = 0.25;\n"
		  "    env = { FOO = \"bar\"; LANG = \"C.UTF-8\"; }; },\n"
		  "  { name = \"two\"; command = [ \"/bin/cat\" ]; "
		  "opcode = 0xb0; }\n"
		  ");\n",
	    &c, &err, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(c.nprocs, 2);
	assert_string_equal(c.procs[0].name, "py");
	assert_int_equal(c.procs[0].argc, 3);
	assert_string_equal(c.procs[0].argv[2], "-v");
	assert_null(c.procs[0].argv[3]);
	assert_int_equal(c.procs[0].opcode, 0xa0);
	assert_int_equal(c.procs[0].instances, 4);
	assert_int_equal(c.procs[0].max_inflight, 8);
	assert_string_equal(c.procs[0].user, "nobody");
	assert_int_equal(c.procs[0].restart_delay_ms, 250);
	assert_int_equal(c.procs[0].nenv, 2);
	assert_string_equal(c.procs[0].env[0], "FOO=bar");
	assert_string_equal(c.procs[0].env[1], "LANG=C.UTF-8");
	assert_null(c.procs[0].env[2]);
	/* Defaults. */
	assert_int_equal(c.procs[1].instances, 1);
	assert_int_equal(c.procs[1].max_inflight, 32);
	assert_int_equal(c.procs[1].restart_delay_ms, 1000);
	assert_null(c.procs[1].user);
	assert_int_equal(c.procs[1].nenv, 0);
	/* A deep copy outlives the original. */
	memset(&d, 0, sizeof(d));
	assert_int_equal(cfg_copy(&d, &c), 0);
	cfg_free(&c);
	assert_int_equal(d.nprocs, 2);
	assert_string_equal(d.procs[0].argv[1], "/srv/h.py");
	assert_string_equal(d.procs[0].env[1], "LANG=C.UTF-8");
	cfg_free(&d);

	load_text("modules = ( { name = \"x\"; path = \"x.so\"; "
		  "opcode = 0x80; } );\n"
		  "processes = ( { name = \"x\"; command = [ \"/bin/cat\" ]; "
		  "opcode = 0xa0; } );\n",
	    &c, &err, &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(err.msg, "\"x\" is also a module's name");
	load_text("processes = ( { name = \"p\"; command = [ \"/bin/cat\" ]; "
		  "opcode = 0xa0; restart_delay = 61; } );\n",
	    &c, &err, &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(err.key, "processes.p.restart_delay");
	load_text("processes = ( { name = \"p\"; command = [ ]; "
		  "opcode = 0xa0; } );\n",
	    &c, &err, &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(err.key, "processes.p.command");
	load_text("processes = ( { name = \"p\"; command = [ \"/bin/cat\" ]; "
		  "opcode = 0xa0; }, { name = \"p\"; command = "
		  "[ \"/bin/cat\" ]; opcode = 0xb0; } );\n",
	    &c, &err, &rc);
	assert_int_equal(rc, -1);
	assert_string_equal(err.msg, "process \"p\" is listed twice");
}

static void
test_key_list_names_every_setting(void **state)
{
	static const char *const want[] = {"listen", "workers", "queue_size",
	    "max_connections", "max_frame_size", "backlog", "timeouts",
	    "timeouts.idle", "timeouts.read", "timeouts.write",
	    "timeouts.shutdown", "timeouts.handshake", "timeouts.handler",
	    "timeouts.drain", "tcp", "tcp.nodelay", "tcp.keepalive", "log",
	    "log.level", "log.target", "max_connections_per_source", "access",
	    "access.allow", "access.deny", "tls", "tls.certificate", "tls.key",
	    "tls.ca", "tls.verify_client", "tls.min_version", "user", "group",
	    "pid_file", "modules", "processes", "module_dir", "handler_threads",
	    "handler_queue", "max_inflight", "admin", "admin.listen",
	    "admin.agent_listen", "pubsub", "pubsub.enabled",
	    "pubsub.max_subscriptions", "pubsub.max_pending",
	    "pubsub.slow_consumer", "pubsub.acl"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_non_null(cfg_key_at(i));
		assert_string_equal(cfg_key_at(i), want[i]);
	}
	assert_null(cfg_key_at(i));
}

static void
test_load_include_of_directory_is_error_not_exit(void **state)
{
	(void)state;
	/* libconfig 1.5 itself would exit(2) in its scanner. */
	expect_error(DATA("invalid-include-directory.conf"), 3, "",
	    "@include \".\": not a regular file");
}

/* Access control. */

static int
allows(const struct cfg *c, const char *addr)
{
	struct cfg_cidr a;

	assert_int_equal(cfg_cidr_parse(addr, &a), 0);
	assert_true(a.prefix == (a.v6 ? 128u : 32u));
	return cfg_access_allows(c, a.v6, a.addr);
}

static void
test_access_lists_allow_deny_and_mapped(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(DATA("valid-access.conf"), &c);
	assert_int_equal(c.max_conn_per_source, 4);
	assert_int_equal(c.nallow, 4);
	assert_int_equal(c.ndeny, 2);
	assert_true(allows(&c, "127.0.0.1"));
	assert_true(allows(&c, "127.255.0.9"));
	assert_true(allows(&c, "::1"));
	assert_true(allows(&c, "10.2.3.4"));
	assert_true(allows(&c, "2001:db8:ffff::1"));
	/* Deny wins over a wider allow. */
	assert_false(allows(&c, "10.1.2.3"));
	assert_false(allows(&c, "192.0.2.7"));
	/* Not listed at all. */
	assert_false(allows(&c, "192.0.2.8"));
	assert_false(allows(&c, "::2"));
	assert_false(allows(&c, "2001:db9::1"));
	/* IPv4-mapped IPv6 peers are judged as IPv4. */
	assert_true(allows(&c, "::ffff:127.0.0.1"));
	assert_false(allows(&c, "::ffff:10.1.0.1"));
	assert_dump_round_trips(&c);
	cfg_free(&c);
}

static void
test_access_empty_allow_allows_all_but_deny(void **state)
{
	struct cfg c;
	struct cfg_error err;

	(void)state;
	assert_int_equal(cfg_defaults(&c, &err), 0);
	assert_true(allows(&c, "203.0.113.5"));
	assert_int_equal(cfg_cidr_parse("203.0.113.0/24", &c.deny[0]), 0);
	c.ndeny = 1;
	assert_false(allows(&c, "203.0.113.5"));
	assert_true(allows(&c, "203.0.114.5"));
	/* Prefix bits that are not whole bytes. */
	assert_int_equal(cfg_cidr_parse("198.51.100.128/25", &c.deny[0]), 0);
	assert_false(allows(&c, "198.51.100.200"));
	assert_true(allows(&c, "198.51.100.127"));
	assert_int_equal(cfg_cidr_parse("0.0.0.0/0", &c.deny[0]), 0);
	assert_false(allows(&c, "1.2.3.4"));
	assert_true(allows(&c, "::1")); /* /0 of IPv4 is not IPv6 */
	cfg_free(&c);
}

static void
test_cidr_parse_rejects_bad_networks(void **state)
{
	static const char *const bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33",
	    "::/129", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0", "example.com",
	    "[::1]/128", "1.2.3.4/ 8"};
	struct cfg_cidr a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cfg_cidr_parse(bad[i], &a) == 0)
			fail_msg("\"%s\" was accepted", bad[i]);
}

static void
test_load_bad_cidr_reports_element_line(void **state)
{
	(void)state;
	expect_error(DATA("invalid-access-cidr.conf"), 4, "access.allow",
	    "\"10.0.0.0/33\": not an IPv4 or IPv6 address");
}

static void
test_load_unknown_access_key_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-access-unknown.conf"), 2, "access.alow",
	    "unknown setting");
}

/* Pub/sub. */

static void
test_load_pubsub_settings_and_acl(void **state)
{
	struct cfg c, d;
	char names[128], dump[8192];

	(void)state;
	load_ok(DATA("valid-pubsub.conf"), &c);
	assert_int_equal(c.pubsub_enabled, 1);
	assert_int_equal(c.pubsub_max_subs, 16);
	assert_int_equal(c.pubsub_max_pending, 65536);
	assert_int_equal(c.pubsub_slow_drop, 1);
	assert_int_equal(c.pubsub_nacl, 2);
	assert_true(c.pubsub_acl[0].has_peer);
	assert_int_equal(c.pubsub_acl[0].peer.prefix, 8);
	assert_null(c.pubsub_acl[0].tls_cn);
	assert_int_equal(c.pubsub_acl[0].npat[CFG_PS_PUBLISH], 1);
	assert_string_equal(c.pubsub_acl[0].pat[CFG_PS_SUBSCRIBE][0], "chat.>");
	assert_int_equal(c.pubsub_acl[0].npat[CFG_PS_DENY_PUBLISH], 0);
	assert_string_equal(c.pubsub_acl[1].tls_cn, "alice");
	assert_string_equal(
	    c.pubsub_acl[1].pat[CFG_PS_DENY_SUBSCRIBE][0], "audit.>");
	assert_int_equal(c.pubsub_acl[1].line, 10);
	/* A copy is deep and equal; enabled is a restart setting. */
	assert_int_equal(cfg_copy(&d, &c), 0);
	assert_ptr_not_equal(d.pubsub_acl, c.pubsub_acl);
	assert_string_equal(d.pubsub_acl[1].pat[CFG_PS_PUBLISH][0], ">");
	assert_int_equal(cfg_diff_restart(&c, &d, names, sizeof(names)), 0);
	d.pubsub_enabled = 0;
	assert_int_equal(cfg_diff_restart(&c, &d, names, sizeof(names)), 1);
	assert_string_equal(names, "pubsub.enabled");
	/* The dump names the rules. */
	assert_int_equal(cfg_dump(&c, dump, sizeof(dump)), 0);
	assert_non_null(strstr(dump, "slow_consumer = \"drop\""));
	assert_non_null(strstr(dump, "tls_cn = \"alice\""));
	assert_non_null(strstr(dump, "peer = \"10.0.0.0/8\""));
	cfg_free(&c);
	cfg_free(&d);
	/* The defaults serve pub/sub. */
	assert_int_equal(cfg_defaults(&c, NULL), 0);
	assert_int_equal(c.pubsub_enabled, 1);
	assert_int_equal(c.pubsub_max_subs, 1024);
	assert_int_equal(c.pubsub_max_pending, 4194304);
	assert_int_equal(c.pubsub_slow_drop, 0);
	cfg_free(&c);
}

static void
test_load_pubsub_errors_name_line(void **state)
{
	(void)state;
	expect_error(DATA("invalid-pubsub-filter.conf"), 4,
	    "pubsub.acl[0].deny_subscribe",
	    "\"a.>.b\": not a valid filter: '>' must be the last token");
	expect_error(
	    DATA("invalid-pubsub-rule.conf"), 4, "pubsub.acl[0]", "needs peer");
	expect_error(DATA("invalid-pubsub-slow.conf"), 1,
	    "pubsub.slow_consumer", "disconnect");
}

/* TLS. */

static void
test_load_tls_listeners_and_settings(void **state)
{
	struct cfg c, d;
	char names[128];
	int tls;

	(void)state;
	load_ok(DATA("valid-tls.conf"), &c);
	assert_int_equal(c.nlisten, 3);
	assert_string_equal(c.listen[0], "127.0.0.1:7411");
	assert_string_equal(c.listen[1], "tls://0.0.0.0:7412");
	assert_string_equal(c.listen[2], "tls://[::1]:7412");
	assert_int_equal(cfg_tls_listeners(&c), 2);
	assert_string_equal(cfg_listen_addr(c.listen[1], &tls), "0.0.0.0:7412");
	assert_true(tls);
	assert_string_equal(
	    cfg_listen_addr(c.listen[0], &tls), "127.0.0.1:7411");
	assert_false(tls);
	assert_string_equal(c.tls_certificate, "/etc/ssl/certs/socketd.pem");
	assert_string_equal(c.tls_key, "/etc/ssl/private/socketd.key");
	assert_string_equal(c.tls_ca, "/etc/ssl/certs/clients-ca.pem");
	assert_true(c.tls_verify_client);
	assert_int_equal(c.tls_min_version, CFG_TLS_1_3);
	assert_int_equal(c.handshake_ms, 2500);
	assert_dump_round_trips(&c);

	/* Copies are deep; turning a listener into TLS needs a restart. */
	assert_int_equal(cfg_copy(&d, &c), 0);
	assert_ptr_not_equal(d.tls_key, c.tls_key);
	assert_string_equal(d.tls_ca, c.tls_ca);
	free(d.listen[0]);
	d.listen[0] = strdup("tls://127.0.0.1:7411");
	assert_int_equal(cfg_diff_restart(&c, &d, names, sizeof(names)), 1);
	assert_string_equal(names, "listen");
	cfg_free(&d);
	cfg_free(&c);

	/* Certificates without a tls:// listener are not an error. */
	load_ok(DATA("valid-tls-no-listener.conf"), &c);
	assert_int_equal(cfg_tls_listeners(&c), 0);
	assert_null(c.tls_key);
	cfg_free(&c);
}

static void
test_load_tls_listener_without_certificate_is_error(void **state)
{
	(void)state;
	/* Reported at the listener that needs it, named by the setting. */
	expect_error(DATA("invalid-tls-no-certificate.conf"), 3,
	    "tls.certificate",
	    "not set, and listen \"tls://127.0.0.1:7412\" needs it");
}

static void
test_load_tls_listener_without_key_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-tls-no-key.conf"), 1, "tls.key",
	    "not set, and listen \"tls://*:7412\" needs it");
}

static void
test_load_tls_verify_client_without_ca_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-tls-verify-no-ca.conf"), 4,
	    "tls.verify_client", "needs tls.ca");
}

static void
test_load_tls_bad_min_version_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-tls-min-version.conf"), 2, "tls.min_version",
	    "must be \"1.2\" or \"1.3\"");
}

static void
test_load_tls_unknown_key_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-tls-unknown-key.conf"), 2, "tls.cert",
	    "unknown setting");
}

static void
test_load_listen_unknown_scheme_is_error(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-scheme.conf"), 1, "listen",
	    "\"ssl://127.0.0.1:7412\": unknown scheme \"ssl://\"");
}

static void
test_load_listen_tls_same_address_as_plain_is_error(void **state)
{
	(void)state;
	/* One address cannot be bound twice, with or without TLS. */
	expect_error(DATA("invalid-listen-tls-duplicate.conf"), 2, "listen",
	    "\"tls://0.0.0.0:7411\": listed twice");
}

static void
test_load_listen_tls_address_is_checked(void **state)
{
	(void)state;
	expect_error(DATA("invalid-listen-tls-no-port.conf"), 1, "listen",
	    "\"tls://[::1]\": missing port");
}

static void
test_tls_names_and_listen_addr(void **state)
{
	int tls = -1;

	(void)state;
	assert_string_equal(cfg_tls_version_str(CFG_TLS_1_2), "1.2");
	assert_string_equal(cfg_tls_version_str(CFG_TLS_1_3), "1.3");
	assert_string_equal(
	    cfg_tls_version_str((enum cfg_tls_version)9), "unknown");
	assert_string_equal(cfg_listen_addr("tls://[::]:1", &tls), "[::]:1");
	assert_int_equal(tls, 1);
	assert_string_equal(cfg_listen_addr("tls:/x:1", &tls), "tls:/x:1");
	assert_int_equal(tls, 0);
	assert_string_equal(cfg_listen_addr("TLS://x:1", NULL), "TLS://x:1");
}

/* dump. */

/* Dump c, write it to a temporary file, load it back, compare. */
static void
assert_dump_round_trips(const struct cfg *c)
{
	struct cfg back;
	char dir[] = "/tmp/test_cfg.XXXXXX";
	char path[sizeof(dir) + 16];
	char buf[4096];
	FILE *f;

	assert_int_equal(cfg_dump(c, buf, sizeof(buf)), 0);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/dump.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(buf, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);

	load_ok(path, &back);
	assert_cfg_equal(&back, c);
	cfg_free(&back);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_dump_round_trip_defaults(void **state)
{
	struct cfg c;

	(void)state;
	assert_int_equal(cfg_defaults(&c, NULL), 0);
	assert_dump_round_trips(&c);
	cfg_free(&c);
}

static void
test_dump_round_trip_full_file(void **state)
{
	struct cfg c;

	(void)state;
	load_ok(DATA("valid-full.conf"), &c);
	assert_dump_round_trips(&c);
	cfg_free(&c);
}

static void
test_dump_round_trip_millisecond_timeouts(void **state)
{
	struct cfg c;
	char buf[4096];

	(void)state;
	load_ok(DATA("valid-timeouts-decimal.conf"), &c);
	assert_dump_round_trips(&c);
	assert_int_equal(cfg_dump(&c, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "idle = 0.500;"));
	assert_non_null(strstr(buf, "read = 2.001;"));
	cfg_free(&c);
}

static void
test_dump_short_buffer_fails_terminated(void **state)
{
	struct cfg c;
	char buf[16];

	(void)state;
	assert_int_equal(cfg_defaults(&c, NULL), 0);
	assert_int_equal(cfg_dump(&c, buf, sizeof(buf)), -1);
	assert_true(memchr(buf, '\0', sizeof(buf)) != NULL);
	cfg_free(&c);
}

/* free, copy, names. */

static void
test_free_twice_and_on_zeroed_struct_is_safe(void **state)
{
	struct cfg c;

	(void)state;
	memset(&c, 0, sizeof(c));
	cfg_free(&c);
	assert_int_equal(cfg_defaults(&c, NULL), 0);
	cfg_free(&c);
	cfg_free(&c);
	assert_cfg_empty(&c);
	cfg_free(NULL);
}

static void
test_copy_is_deep_and_equal(void **state)
{
	struct cfg a, b;

	(void)state;
	load_ok(DATA("valid-full.conf"), &a);
	assert_int_equal(cfg_copy(&b, &a), 0);
	assert_cfg_equal(&a, &b);
	assert_ptr_not_equal(a.listen[0], b.listen[0]);
	cfg_free(&a);
	assert_string_equal(b.listen[0], "0.0.0.0:8080");
	cfg_free(&b);
}

static void
test_level_and_target_names(void **state)
{
	(void)state;
	assert_string_equal(cfg_log_level_str(CFG_LOG_ERROR), "error");
	assert_string_equal(cfg_log_level_str(CFG_LOG_WARNING), "warning");
	assert_string_equal(cfg_log_level_str(CFG_LOG_INFO), "info");
	assert_string_equal(cfg_log_level_str(CFG_LOG_DEBUG), "debug");
	assert_string_equal(
	    cfg_log_level_str((enum cfg_log_level)42), "unknown");
	assert_string_equal(cfg_log_target_str(CFG_LOG_STDERR), "stderr");
	assert_string_equal(cfg_log_target_str(CFG_LOG_SYSLOG), "syslog");
	assert_string_equal(
	    cfg_log_target_str((enum cfg_log_target)7), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_match_documented_values),
	    cmocka_unit_test(test_load_sample_file_equals_defaults),
	    cmocka_unit_test(test_load_empty_file_gives_defaults),
	    cmocka_unit_test(test_load_full_file_sets_every_key),
	    cmocka_unit_test(test_load_partial_group_keeps_other_defaults),
	    cmocka_unit_test(test_load_timeout_decimal_rounds_to_nearest_ms),
	    cmocka_unit_test(test_load_include_is_relative_to_file_not_cwd),
	    cmocka_unit_test(test_data_files_match_their_names),
	    cmocka_unit_test(test_load_unknown_top_level_key_reports_line),
	    cmocka_unit_test(test_load_unknown_nested_key_reports_dotted_name),
	    cmocka_unit_test(test_load_string_for_integer_is_type_error),
	    cmocka_unit_test(test_load_float_for_integer_is_type_error),
	    cmocka_unit_test(test_load_scalar_for_group_is_type_error),
	    cmocka_unit_test(test_load_integer_for_boolean_is_type_error),
	    cmocka_unit_test(test_load_string_for_timeout_is_type_error),
	    cmocka_unit_test(test_load_workers_above_max_is_range_error),
	    cmocka_unit_test(test_load_negative_workers_is_range_error),
	    cmocka_unit_test(test_load_queue_size_zero_is_range_error),
	    cmocka_unit_test(test_load_too_big_int64_is_range_error),
	    cmocka_unit_test(test_load_max_frame_size_below_min_is_range_error),
	    cmocka_unit_test(test_load_max_frame_size_above_max_is_range_error),
	    cmocka_unit_test(test_load_backlog_above_max_is_range_error),
	    cmocka_unit_test(test_load_negative_timeout_is_error),
	    cmocka_unit_test(test_load_negative_decimal_timeout_is_error),
	    cmocka_unit_test(test_load_timeout_above_one_day_is_error),
	    cmocka_unit_test(test_load_timeout_below_one_ms_is_error),
	    cmocka_unit_test(test_load_listen_without_port_is_error),
	    cmocka_unit_test(test_load_listen_port_zero_is_error),
	    cmocka_unit_test(test_load_listen_port_70000_is_error),
	    cmocka_unit_test(test_load_listen_ipv6_without_brackets_is_error),
	    cmocka_unit_test(test_load_listen_empty_list_is_error),
	    cmocka_unit_test(test_load_listen_non_string_element_is_error),
	    cmocka_unit_test(test_load_listen_plain_string_is_error),
	    cmocka_unit_test(test_load_listen_empty_host_is_error),
	    cmocka_unit_test(test_load_listen_duplicate_after_star_is_error),
	    cmocka_unit_test(test_load_listen_more_than_max_is_error),
	    cmocka_unit_test(test_load_bad_log_level_is_error),
	    cmocka_unit_test(test_load_bad_log_target_is_error),
	    cmocka_unit_test(test_load_syntax_error_reports_line),
	    cmocka_unit_test(test_load_trailing_comma_is_syntax_error),
	    cmocka_unit_test(test_load_duplicate_key_is_error),
	    cmocka_unit_test(test_load_error_in_include_names_included_file),
	    cmocka_unit_test(test_load_missing_file_reports_strerror),
	    cmocka_unit_test(test_load_directory_reports_is_a_directory),
	    cmocka_unit_test(test_load_accepts_null_error_pointer),
	    cmocka_unit_test(test_diff_restart_identical_is_zero),
	    cmocka_unit_test(test_diff_restart_lists_restart_only_keys),
	    cmocka_unit_test(test_diff_restart_ignores_live_settings),
	    cmocka_unit_test(test_diff_restart_listen_order_does_not_matter),
	    cmocka_unit_test(
		test_diff_restart_short_buffer_is_truncated_not_overrun),
	    cmocka_unit_test(test_load_process_keys_sets_strings),
	    cmocka_unit_test(test_load_number_for_user_is_type_error),
	    cmocka_unit_test(test_copy_and_diff_cover_process_keys),
	    cmocka_unit_test(test_key_list_names_every_setting),
	    cmocka_unit_test(test_load_processes),
	    cmocka_unit_test(test_load_admin_lists_and_drain),
	    cmocka_unit_test(test_load_admin_empty_lists_turn_listeners_off),
	    cmocka_unit_test(test_load_admin_bad_lists_are_errors),
	    cmocka_unit_test(test_diff_restart_names_admin_lists),
	    cmocka_unit_test(test_load_include_of_directory_is_error_not_exit),
	    cmocka_unit_test(test_access_lists_allow_deny_and_mapped),
	    cmocka_unit_test(test_access_empty_allow_allows_all_but_deny),
	    cmocka_unit_test(test_cidr_parse_rejects_bad_networks),
	    cmocka_unit_test(test_load_bad_cidr_reports_element_line),
	    cmocka_unit_test(test_load_unknown_access_key_is_error),
	    cmocka_unit_test(test_load_pubsub_settings_and_acl),
	    cmocka_unit_test(test_load_pubsub_errors_name_line),
	    cmocka_unit_test(test_load_tls_listeners_and_settings),
	    cmocka_unit_test(
		test_load_tls_listener_without_certificate_is_error),
	    cmocka_unit_test(test_load_tls_listener_without_key_is_error),
	    cmocka_unit_test(test_load_tls_verify_client_without_ca_is_error),
	    cmocka_unit_test(test_load_tls_bad_min_version_is_error),
	    cmocka_unit_test(test_load_tls_unknown_key_is_error),
	    cmocka_unit_test(test_load_listen_unknown_scheme_is_error),
	    cmocka_unit_test(
		test_load_listen_tls_same_address_as_plain_is_error),
	    cmocka_unit_test(test_load_listen_tls_address_is_checked),
	    cmocka_unit_test(test_tls_names_and_listen_addr),
	    cmocka_unit_test(test_dump_round_trip_defaults),
	    cmocka_unit_test(test_dump_round_trip_full_file),
	    cmocka_unit_test(test_dump_round_trip_millisecond_timeouts),
	    cmocka_unit_test(test_dump_short_buffer_fails_terminated),
	    cmocka_unit_test(test_free_twice_and_on_zeroed_struct_is_safe),
	    cmocka_unit_test(test_copy_is_deep_and_equal),
	    cmocka_unit_test(test_level_and_target_names),
	};

	return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
