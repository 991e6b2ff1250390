/*
 * The admin listeners, live: /metrics (exact Content-Type, every STATS
 * counter under its Prometheus name, histogram invariants, promtool),
 * the health routes, the agent line, the bounds (head size, request time,
 * connections), access rules; and the drain: /readyz and the agent while
 * draining, GOAWAY with its grace period for clients that know it and
 * the lingering close for those that do not.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <poll.h>

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define MODS                                                                   \
	"module_dir = \"" SOCKETD_EXAMPLE_MODULE_DIR "\";\n"                   \
	"modules = (\n"                                                        \
	"  { name = \"hello\"; path = \"hello.so\"; opcode = 0x80; },\n"       \
	"  { name = \"testmod\"; path = \"" SOCKETD_TEST_MODULE_DIR            \
	"/testmod.so\"; opcode = 0xa0;\n"                                      \
	"    settings: { label = \"a\"; refuse_reload = false; }; }\n"         \
	");\n"
#define TM_SPIN (0xa0 + 8)

/* Expect one frame and drop it. */
static void
expect(int fd, uint8_t op, uint16_t st, uint32_t id)
{
	struct h_frame f;

	h_expect_frame(fd, op, st, id, &f);
	h_frame_free(&f);
}

/*
 * Every histogram in body: bucket lines in le order, cumulative, +Inf
 * last and equal to _count.  Returns how many were checked.
 */
static int
check_histograms(const char *body)
{
	const char *p, *nl, *le;
	char series[256], prev_series[256] = "", key[512];
	double prev_le = -1, v, prev_v = 0;
	int n = 0, seen_inf = 1;

	for (p = body; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		if (*p == '#' || strstr(p, "_bucket{") == NULL ||
		    strstr(p, "_bucket{") > nl)
			continue;
		le = strstr(p, "le=\"");
		assert_non_null(le);
		/* The series without le: the name and the other labels. */
		snprintf(series, sizeof(series), "%.*s", (int)(le - p), p);
		v = strtod(strchr(le, '}') + 1, NULL);
		if (strcmp(series, prev_series) != 0) {
			assert_true(seen_inf); /* the last one ended in +Inf */
			snprintf(
			    prev_series, sizeof(prev_series), "%s", series);
			prev_le = -1;
			prev_v = 0;
			seen_inf = 0;
			n++;
		}
		assert_false(seen_inf); /* nothing after +Inf */
		if (strncmp(le, "le=\"+Inf\"", 9) == 0) {
			char name[200], labels[200];
			const char *b = strstr(series, "_bucket{");

			seen_inf = 1;
			snprintf(name, sizeof(name), "%.*s", (int)(b - series),
			    series);
			snprintf(labels, sizeof(labels), "%s", b + 8);
			if (labels[0] != '\0' &&
			    labels[strlen(labels) - 1] == ',')
				labels[strlen(labels) - 1] = '\0';
			if (labels[0] != '\0')
				snprintf(key, sizeof(key), "%s_count{%s}", name,
				    labels);
			else
				snprintf(key, sizeof(key), "%s_count", name);
			assert_true(h_sample(body, key) == v);
		} else {
			double l = strtod(le + 4, NULL);

			assert_true(l > prev_le);
			prev_le = l;
		}
		assert_true(v >= prev_v);
		prev_v = v;
	}
	assert_true(seen_inf);
	return n;
}

/*
 * The path of a program in PATH into buf, or 0 if there is none; in CI
 * (CI=true) its absence fails the test.
 */
static int
find_program(const char *name, char *buf, size_t len)
{
	char cmd[300];
	const char *ci = getenv("CI");
	FILE *p;

	snprintf(cmd, sizeof(cmd), "command -v %s 2>/dev/null", name);
	buf[0] = '\0';
	if ((p = popen(cmd, "r")) != NULL) {
		if (fgets(buf, (int)len, p) == NULL)
			buf[0] = '\0';
		(void)pclose(p);
	}
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0] == '/')
		return 1;
	if (ci != NULL && strcmp(ci, "true") == 0)
		fail_msg(
		    "%s is not installed; CI installs it (make deps)", name);
	print_message("SKIP part: %s is not installed (apt-get install "
		      "prometheus)\n",
	    name);
	return 0;
}

static struct h_daemon *
start_admin(void **state, const char *extra)
{
	struct h_opts o = {0};

	o.extra = extra;
	o.admin_port = h_free_port(0);
	o.agent_port = h_free_port(0);
	while (o.agent_port == o.admin_port)
		o.agent_port = h_free_port(0);
	return h_start(T(state), &o);
}

/* The admin and agent ports are in the config the harness wrote. */
static int
conf_port(const struct h_daemon *d, const char *key)
{
	char *text, *p;
	FILE *f = fopen(d->conf, "r");
	size_t n;
	int port = -1;

	assert_non_null(f);
	text = calloc(1, 65536);
	assert_non_null(text);
	n = fread(text, 1, 65535, f);
	fclose(f);
	text[n] = '\0';
	if ((p = strstr(text, key)) != NULL &&
	    (p = strstr(p, "127.0.0.1:")) != NULL)
		port = atoi(p + 10);
	free(text);
	assert_true(port > 0);
	return port;
}

static int
admin_port_of(const struct h_daemon *d)
{
	return conf_port(d, "admin: { listen");
}

static int
agent_port_of(const struct h_daemon *d)
{
	return conf_port(d, "agent_listen");
}

/* The agent's line: connect, read to EOF. */
static void
agent_line(struct h_ctx *t, const struct h_daemon *d, char *buf, size_t len)
{
	size_t got = 0;
	int fd = h_connect(t, "127.0.0.1", agent_port_of(d), 2000);

	assert_true(fd >= 0);
	memset(buf, 0, len);
	(void)h_recv_exact(fd, buf, len - 1, 3000, &got);
	assert_int_equal(errno, EPIPE); /* the line, then EOF */
	buf[got] = '\0';
	h_close(t, fd);
}

static void
test_metrics_format_and_request_counters(void **state)
{
	struct h_daemon *d = start_admin(state, MODS);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);
	struct h_http r;
	char path[512], cmd[800], prog[256];
	int fd, i, n;
	FILE *f;

	for (i = 0; i < 5; i++)
		h_ping(c);
	fd = h_raw(T(state), d);
	h_raw_ping(fd, 7);
	/* An unknown opcode, a push opcode, a module call. */
	assert_int_equal(h_send_req(fd, 0x7e, 8, NULL, 0), 0);
	expect(fd, 0x7e, PROTO_UNKNOWN_OPCODE, 8);
	assert_int_equal(h_send_req(fd, PROTO_OP_GOAWAY, 9, NULL, 0), 0);
	expect(fd, PROTO_OP_GOAWAY, PROTO_BAD_REQUEST, 9);
	assert_int_equal(h_send_req(fd, 0x80, 10, "abc", 3), 0);
	expect(fd, 0x80, PROTO_OK, 10);

	h_http_get(T(state), admin_port_of(d), "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(
	    strstr(r.head, "\r\nContent-Type: " CONTENT_TYPE "\r\n"));
	assert_true(r.body_len > 0 && r.body[r.body_len - 1] == '\n');
	assert_true(
	    h_sample(r.body,
		"socketd_requests_total{opcode=\"ping\",status=\"ok\"}") == 6);
	assert_true(h_sample(r.body,
			"socketd_requests_total{opcode=\"unknown\",status="
			"\"unknown_opcode\"}") == 1);
	assert_true(h_sample(r.body,
			"socketd_requests_total{opcode=\"goaway\",status="
			"\"bad_request\"}") == 1);
	assert_true(h_sample(r.body,
			"socketd_requests_total{opcode=\"hello.upper\",status="
			"\"ok\"}") == 1);
	assert_true(h_sample(r.body,
			"socketd_request_duration_seconds_count{opcode="
			"\"ping\"}") == 6);
	assert_true(h_sample(r.body,
			"socketd_request_duration_seconds_count{opcode="
			"\"hello.upper\"}") == 1);
	/* Sub-millisecond: a loopback PING is answered well under 1 ms. */
	assert_true(h_sample(r.body,
			"socketd_request_duration_seconds_bucket{opcode="
			"\"ping\",le=\"0.001\"}") >= 5);
	assert_true(h_sample(r.body,
			"socketd_build_info{version=\"" SOCKETD_VERSION
			"\",protocol=\"1.1\",module_abi=\"1.0\"}") == 1);
	assert_true(h_sample(r.body, "socketd_ready") == 1);
	assert_true(h_sample(r.body, "socketd_draining") == 0);
	assert_true(h_sample(r.body, "process_open_fds") > 5);
	assert_true(h_sample(r.body, "process_resident_memory_bytes") > 1e5);
	assert_true(h_sample(r.body, "process_start_time_seconds") > 1.6e9);
	n = check_histograms(r.body);
	/* Six built-ins, 3 pub/sub requests, 3 hello, 12 testmod, unknown. */
	assert_int_equal(n, 6 + 3 + 3 + 12 + 1);

	if (find_program("promtool", prog, sizeof(prog))) {
		struct h_run pr;
		char sh[] = "/bin/sh", dash_c[] = "-c";
		char *argv[] = {sh, dash_c, cmd, NULL};

		snprintf(
		    path, sizeof(path), "%s/metrics.txt", h_scratch(T(state)));
		f = fopen(path, "w");
		assert_non_null(f);
		assert_int_equal(fwrite(r.body, 1, r.body_len, f), r.body_len);
		fclose(f);
		snprintf(cmd, sizeof(cmd), "%s check metrics < %s", prog, path);
		h_run(argv, 20000, &pr);
		if (pr.status != 0)
			print_message("promtool: %s%s\n", pr.out, pr.err);
		assert_int_equal(pr.status, 0);
		assert_string_equal(pr.out, "");
		assert_string_equal(pr.err, "");
		print_message("promtool check metrics: clean (%zu bytes, %d "
			      "histograms)\n",
		    r.body_len, n);
	}
	h_http_free(&r);
	assert_int_equal(h_stop(d, 0), 0);
}

/* STATS key -> the series that carries it ("" : checked by pattern). */
static const struct {
	const char *stat, *series;
	int compare; /* values must match (the key cannot move meanwhile) */
} map[] = {
    {"connections_current", "socketd_connections_active", 0},
    {"connections_total", "socketd_connections_total", 0},
    {"connections_accepted", "socketd_connections_accepted_total", 0},
    {"connections_rejected", "", 1},
    {"rejected_max_connections",
	"socketd_connections_rejected_total{reason=\"max_connections\"}", 1},
    {"rejected_no_descriptors",
	"socketd_connections_rejected_total{reason=\"no_descriptors\"}", 1},
    {"rejected_denied", "socketd_connections_rejected_total{reason=\"denied\"}",
	1},
    {"rejected_per_source",
	"socketd_connections_rejected_total{reason=\"per_source\"}", 1},
    {"rejected_dropped", "socketd_connections_rejected_unanswered_total", 1},
    {"sources_current", "socketd_sources_active", 0},
    {"requests_total", "socketd_requests_received_total", 0},
    {"bytes_received", "socketd_received_bytes_total", 0},
    {"bytes_sent", "socketd_sent_bytes_total", 0},
    {"errors_bad_request",
	"socketd_protocol_errors_total{error=\"bad_request\"}", 1},
    {"errors_unknown_opcode",
	"socketd_protocol_errors_total{error=\"unknown_opcode\"}", 1},
    {"errors_unsupported_version",
	"socketd_protocol_errors_total{error=\"unsupported_version\"}", 1},
    {"errors_too_large", "socketd_protocol_errors_total{error=\"too_large\"}",
	1},
    {"connections_reset", "socketd_connections_reset_total", 1},
    {"timeouts_idle", "socketd_timeouts_total{timeout=\"idle\"}", 1},
    {"timeouts_read", "socketd_timeouts_total{timeout=\"read\"}", 1},
    {"timeouts_write", "socketd_timeouts_total{timeout=\"write\"}", 1},
    {"timeouts_shutdown", "socketd_timeouts_total{timeout=\"shutdown\"}", 1},
    {"output_throttled", "socketd_output_throttled_total", 1},
    {"tls_handshakes", "socketd_tls_handshakes_total{result=\"ok\"}", 1},
    {"tls_handshake_failures",
	"socketd_tls_handshakes_total{result=\"failed\"}", 1},
    {"tls_handshake_timeouts",
	"socketd_tls_handshakes_total{result=\"timeout\"}", 1},
    {"queue_depth", "socketd_handoff_queue_length", 0},
    {"queue_high_water", "socketd_handoff_queue_high_water", 0},
    {"queue_full", "socketd_handoff_queue_full_total", 1},
    {"accept_paused_now", "socketd_accept_paused", 1},
    {"accept_paused_no_descriptors",
	"socketd_accept_pauses_total{reason=\"no_descriptors\"}", 1},
    {"accept_paused_queue_full",
	"socketd_accept_pauses_total{reason=\"queue_full\"}", 1},
    {"accept_paused_ms", "socketd_accept_paused_seconds_total", 0},
    {"accept_errors", "socketd_accept_errors_total", 1},
    {"reloads", "socketd_config_reloads_total{result=\"success\"}", 1},
    {"reload_failures", "socketd_config_reloads_total{result=\"failure\"}", 1},
    {"uptime_seconds", "process_start_time_seconds", 0},
    {"handler_queue_depth", "socketd_handler_queue_length", 0},
    {"handler_overloaded", "socketd_handler_overloaded_total", 1},
    {"handler_timeouts", "socketd_timeouts_total{timeout=\"handler\"}", 1},
    {"handler_slow", "socketd_handler_slow_total", 1},
    {"replies_dropped", "socketd_handler_replies_dropped_total", 1},
    {"pushes", "socketd_pushes_total{result=\"sent\"}", 1},
    {"pushes_dropped", "socketd_pushes_total{result=\"dropped\"}", 1},
    {"pubsub_subscriptions_current", "socketd_pubsub_subscriptions", 1},
    {"pubsub_publish_total", "socketd_pubsub_published_total", 1},
    {"pubsub_messages_delivered_total",
	"socketd_pubsub_messages_total{result=\"delivered\"}", 1},
    {"pubsub_messages_dropped_total",
	"socketd_pubsub_messages_total{result=\"dropped\"}", 1},
    {"pubsub_slow_consumers_total", "socketd_pubsub_slow_consumers_total", 1},
    {"pubsub_denied_total", "socketd_pubsub_denied_total", 1},
    {"pubsub_pending_bytes_current", "socketd_pubsub_pending_bytes", 0},
    {"pubsub_cross_worker_messages_total",
	"socketd_pubsub_cross_worker_messages_total", 1},
    {"pubsub_inbox_batches_total", "socketd_pubsub_inbox_batches_total", 1},
    {"pubsub_publisher_pauses_total", "socketd_pubsub_publisher_pauses_total",
	1},
    {"pubsub_permission_closes_total", "socketd_pubsub_permission_closes_total",
	1},
};

static void
test_every_stats_counter_has_a_metric(void **state)
{
	struct h_daemon *d = start_admin(state, MODS);
	struct sdc *c;
	struct proto_resp resp;
	char err[SDC_ERRLEN], *stats, *line, *nl, *sp, series[300];
	struct h_http r;
	size_t i, n = 0;
	double v, rej;
	int fd;

	fd = h_raw(T(state), d);
	/* Make some of the quiet counters move. */
	assert_int_equal(h_send_req(fd, 0x7e, 1, NULL, 0), 0);
	expect(fd, 0x7e, PROTO_UNKNOWN_OPCODE, 1);
	assert_int_equal(h_send_req(fd, 0xac, 2, NULL, 0), 0);
	expect(fd, 0xac, PROTO_BAD_REQUEST, 2);
	h_signal(d, SIGHUP);
	assert_true(h_log_wait(d, "reloaded", NULL, 5000));

	c = h_sdc(T(state), "127.0.0.1", d->port);
	assert_int_equal(sdc_call(c, PROTO_OP_STATS, NULL, 0, &resp, err), 0);
	stats = strndup((const char *)resp.payload, resp.payload_len);
	assert_non_null(stats);
	h_http_get(T(state), admin_port_of(d), "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(h_sample(r.body,
			"socketd_config_reloads_total{result="
			"\"success\"}") == 1);
	assert_true(h_sample(r.body,
			"socketd_protocol_errors_total{error="
			"\"unknown_opcode\"}") == 1);
	for (line = stats; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		sp = strchr(line, ' ');
		assert_non_null(sp);
		*sp = '\0';
		v = strtod(sp + 1, NULL);
		n++;
		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(map[i].stat, line) == 0)
				break;
		if (i < sizeof(map) / sizeof(map[0])) {
			if (map[i].series[0] == '\0') {
				/* connections_rejected: the sum of reasons */
				rej = h_sample(r.body, map[4].series) +
				    h_sample(r.body, map[5].series) +
				    h_sample(r.body, map[6].series) +
				    h_sample(r.body, map[7].series);
				assert_true(rej == v);
				continue;
			}
			if (h_sample(r.body, map[i].series) < 0)
				fail_msg("STATS %s: no %s in /metrics", line,
				    map[i].series);
			if (map[i].compare &&
			    h_sample(r.body, map[i].series) != v)
				fail_msg("STATS %s %g, /metrics %s %g", line, v,
				    map[i].series,
				    h_sample(r.body, map[i].series));
			continue;
		}
		/* A module handler's X_requests and X_errors. */
		if ((sp = strrchr(line, '_')) != NULL &&
		    (strcmp(sp, "_requests") == 0 ||
			strcmp(sp, "_errors") == 0)) {
			*sp = '\0';
			snprintf(series, sizeof(series),
			    "socketd_request_duration_seconds_count{opcode="
			    "\"%s\"}",
			    line);
			if (h_sample(r.body, series) < 0)
				fail_msg("STATS %s_*: no %s", line, series);
			continue;
		}
		/* A module's own stats line: MODULE_name. */
		if (strncmp(line, "testmod_", 8) == 0 ||
		    strncmp(line, "hello_", 6) == 0) {
			sp = strchr(line, '_');
			*sp = '\0';
			snprintf(series, sizeof(series),
			    "socketd_module_stat{module=\"%s\",name=\"%s\"}",
			    line, sp + 1);
			if (h_sample(r.body, series) != v)
				fail_msg("STATS %s_%s %g: %s is %g", line,
				    sp + 1, v, series,
				    h_sample(r.body, series));
			continue;
		}
		fail_msg("STATS %s has no Prometheus name: add it to "
			 "metrics.c, docs/operations.md and this table",
		    line);
	}
	print_message("%zu STATS lines, each found in /metrics\n", n);
	assert_true(n > 40);
	free(stats);
	h_http_free(&r);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_health_routes_errors_and_agent(void **state)
{
	struct h_daemon *d = start_admin(state, NULL);
	int port = admin_port_of(d);
	char big[10000], line[64];
	struct h_http r;

	h_http_get(T(state), port, "/livez", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	h_http_free(&r);
	h_http_get(T(state), port, "/healthz", &r);
	assert_int_equal(r.status, 200);
	h_http_free(&r);
	h_http_get(T(state), port, "/readyz?verbose", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	h_http_free(&r);
	h_http_get(T(state), port, "/metricsx", &r);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "not found: /metricsx"));
	h_http_free(&r);
	h_http_get(T(state), port, "/", &r);
	assert_int_equal(r.status, 404);
	h_http_free(&r);
	h_http_raw(T(state), port, "POST /metrics HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strstr(r.head, "\r\nAllow: GET"));
	h_http_free(&r);
	h_http_raw(T(state), port, "HEAD /metrics HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.status, 405);
	h_http_free(&r);
	h_http_raw(T(state), port, "hello there\r\n\r\n", &r);
	assert_int_equal(r.status, 400);
	h_http_free(&r);
	h_http_raw(T(state), port, "GET metrics HTTP/1.1\r\n\r\n", &r);
	assert_int_equal(r.status, 400);
	h_http_free(&r);
	/* A head over 8 KiB: 431, not a crash or a hang. */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	h_http_raw(T(state), port, big, &r);
	assert_int_equal(r.status, 431);
	h_http_free(&r);
	agent_line(T(state), d, line, sizeof(line));
	assert_string_equal(line, "up ready\n");
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_admin_bounds_time_and_connections(void **state)
{
	struct h_daemon *d = start_admin(state, NULL);
	int port = admin_port_of(d), fds[64], fd, i;
	int64_t t0, dt;
	struct h_http r;

	/* Half a request: closed after 5 s, not held forever. */
	fd = h_connect(T(state), "127.0.0.1", port, 2000);
	assert_true(fd >= 0);
	assert_int_equal(h_send_all(fd, "GET /metr", 9, 1000), 0);
	t0 = h_now_ms();
	assert_int_equal(h_wait_eof(fd, 8000, NULL), H_EOF);
	dt = h_now_ms() - t0;
	print_message("half a request closed after %lld ms\n", (long long)dt);
	assert_true(dt >= 4500 && dt <= 7000);
	h_close(T(state), fd);

	/* 64 idle admin connections; the 65th is closed at once. */
	for (i = 0; i < 64; i++) {
		fds[i] = h_connect(T(state), "127.0.0.1", port, 2000);
		assert_true(fds[i] >= 0);
	}
	h_sleep_ms(200);
	fd = h_connect(T(state), "127.0.0.1", port, 2000);
	assert_true(fd >= 0);
	t0 = h_now_ms();
	assert_int_equal(h_wait_eof(fd, 2000, NULL), H_EOF);
	assert_true(h_now_ms() - t0 < 1000);
	h_close(T(state), fd);
	for (i = 0; i < 64; i++)
		h_close(T(state), fds[i]);
	/* Room again. */
	h_sleep_ms(200);
	h_http_get(T(state), port, "/livez", &r);
	assert_int_equal(r.status, 200);
	h_http_free(&r);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_access_rules_apply_to_admin(void **state)
{
	struct h_daemon *d =
	    start_admin(state, "access: { deny = [ \"127.0.0.0/8\" ]; };");
	enum h_eof e;
	int fd;

	fd = h_connect(T(state), "127.0.0.1", admin_port_of(d), 2000);
	assert_true(fd >= 0);
	(void)h_send_all(fd, "GET /metrics HTTP/1.1\r\n\r\n", 25, 1000);
	/* Closed without a byte of answer (reset: the request is unread). */
	e = h_wait_eof(fd, 2000, NULL);
	assert_true(e == H_EOF || e == H_RESET);
	h_close(T(state), fd);
	fd = h_connect(T(state), "127.0.0.1", agent_port_of(d), 2000);
	assert_true(fd >= 0);
	assert_int_equal(h_wait_eof(fd, 2000, NULL), H_EOF);
	h_close(T(state), fd);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_admin_port_in_use_stops_startup(void **state)
{
	struct h_opts o = {0};
	struct h_daemon *d;

	/* A first daemon holds the admin port; a second cannot start. */
	o.admin_port = h_free_port(0);
	(void)h_start(T(state), &o);
	d = h_spawn(T(state), &o);
	assert_int_equal(h_wait_exit(d, 5000), 1);
	if (h_log_count(
		d, "admin.listen 127.0.0.1:", "Address already in use") != 1) {
		h_log_dump(d);
		fail();
	}
}

static void
test_livez_reports_a_stalled_worker(void **state)
{
	struct h_daemon *d;
	int fd, port, i, status = 0;
	struct h_http r;
	char line[64];

	/*
	 * The 5 s stall threshold against a 6.5 s spin is a wall-clock
	 * race under memcheck's 20-50x slowdown: the plain, ASan and TSan
	 * runs check it.
	 */
	if (getenv("SOCKETD_IT_VALGRIND") != NULL)
		skip();
	d = start_admin(state, MODS "workers = 1;\n");
	fd = h_raw(T(state), d);
	port = admin_port_of(d);

	/* testmod.spin busy-waits on the only worker for 6.5 s. */
	assert_int_equal(h_send_req(fd, TM_SPIN, 1, "6500", 4), 0);
	h_sleep_ms(5800);
	h_http_get(T(state), port, "/livez", &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "[-]worker 0: event loop stalled for"));
	h_http_free(&r);
	h_http_get(T(state), port, "/readyz", &r);
	assert_int_equal(r.status, 503);
	h_http_free(&r);
	agent_line(T(state), d, line, sizeof(line));
	assert_string_equal(line, "down\n");
	expect(fd, TM_SPIN, PROTO_OK, 1);
	/* Live again once the loop turns (the answer leaves just before). */
	for (i = 0; i < 20; i++) {
		h_http_get(T(state), port, "/livez", &r);
		status = r.status;
		h_http_free(&r);
		if (status == 200)
			break;
		h_sleep_ms(100);
	}
	assert_int_equal(status, 200);
	assert_int_equal(h_stop(d, 0), 0);
}

/* A GOAWAY frame off fd: grace_ms and the reason. */
static void
expect_goaway(int fd, int timeout_ms, uint32_t grace)
{
	struct h_frame f;

	assert_int_equal(h_read_frame(fd, &f, timeout_ms), 0);
	assert_int_equal(f.opcode, PROTO_OP_GOAWAY);
	assert_int_equal(f.status, PROTO_OK);
	assert_int_equal(f.request_id, 0);
	assert_true(f.payload_len > 4);
	assert_int_equal(proto_get_u32(f.payload), grace);
	assert_string_equal((char *)f.payload + 4, "socketd is stopping");
	h_frame_free(&f);
}

static void
test_drain_readyz_agent_then_goaway(void **state)
{
	struct h_daemon *d =
	    start_admin(state, "timeouts: { drain = 1.5; shutdown = 4; };");
	int port = admin_port_of(d), fd, fd2;
	int64_t t0, t_goaway;
	struct h_http r;
	char line[64];

	fd = h_raw(T(state), d);
	h_raw_ping(fd, 1);
	t0 = h_now_ms();
	h_signal(d, SIGTERM);
	assert_true(h_log_wait(d, "draining for 1.5 s", NULL, 2000));
	/* Not ready at once, but still serving and accepting. */
	h_http_get(T(state), port, "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_non_null(strstr(r.body, "[-]draining"));
	h_http_free(&r);
	h_http_get(T(state), port, "/livez", &r);
	assert_int_equal(r.status, 200);
	h_http_free(&r);
	h_http_get(T(state), port, "/metrics", &r);
	assert_true(h_sample(r.body, "socketd_draining") == 1);
	assert_true(h_sample(r.body, "socketd_ready") == 0);
	h_http_free(&r);
	agent_line(T(state), d, line, sizeof(line));
	assert_string_equal(line, "drain\n");
	h_raw_ping(fd, 2);
	fd2 = h_raw(T(state), d);
	h_raw_ping(fd2, 1);
	assert_true(h_now_ms() - t0 < 1500);

	/* Then GOAWAY, grace = half of timeouts.shutdown. */
	expect_goaway(fd, 3000, 2000);
	t_goaway = h_now_ms() - t0;
	expect_goaway(fd2, 1000, 2000);
	print_message("GOAWAY %lld ms after SIGTERM\n", (long long)t_goaway);
	assert_true(t_goaway >= 1400 && t_goaway < 2500);
	/* Still served in the grace period; no longer accepting. */
	h_raw_ping(fd, 3);
	assert_true(h_connect(T(state), "127.0.0.1", d->port, 500) < 0);
	/* A client that knows GOAWAY closes: the daemon exits at once. */
	h_close(T(state), fd);
	h_close(T(state), fd2);
	assert_int_equal(h_wait_exit(d, 2000), 0);
	print_message(
	    "exited %lld ms after SIGTERM\n", (long long)(h_now_ms() - t0));
	assert_true(h_log_count(d, "stopped", NULL) == 1);
}

static void
test_goaway_unaware_client_gets_lingering_close(void **state)
{
	struct h_daemon *d =
	    start_admin(state, "timeouts: { drain = 0.3; shutdown = 2; };");
	int fd = h_raw(T(state), d);
	int64_t t0, dt;

	h_raw_ping(fd, 1);
	t0 = h_now_ms();
	h_signal(d, SIGTERM);
	expect_goaway(fd, 2000, 1000);
	/* It goes on sending; answered until the grace period ends. */
	h_raw_ping(fd, 2);
	assert_int_equal(h_wait_eof(fd, 4000, NULL), H_EOF);
	dt = h_now_ms() - t0;
	print_message("EOF %lld ms after SIGTERM (drain 0.3 + grace 1.0)\n",
	    (long long)dt);
	assert_true(dt >= 1200 && dt < 2600);
	h_close(T(state), fd);
	assert_int_equal(h_wait_exit(d, 3000), 0);
}

static void
test_drain_zero_sends_no_goaway(void **state)
{
	struct h_daemon *d = start_admin(state, NULL);
	int fd = h_raw(T(state), d);
	struct h_http r;

	h_raw_ping(fd, 1);
	h_http_get(T(state), admin_port_of(d), "/metrics", &r);
	assert_true(h_sample(r.body, "socketd_goaway_sent_total") == 0);
	h_http_free(&r);
	h_signal(d, SIGTERM);
	/* Today's drain: answered what was received, then EOF, no frame. */
	assert_int_equal(h_wait_eof(fd, 3000, NULL), H_EOF);
	assert_int_equal(h_wait_exit(d, 3000), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_metrics_format_and_request_counters, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_every_stats_counter_has_a_metric, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_health_routes_errors_and_agent, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_admin_bounds_time_and_connections, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_access_rules_apply_to_admin, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_admin_port_in_use_stops_startup, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_livez_reports_a_stalled_worker, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_drain_readyz_agent_then_goaway, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_goaway_unaware_client_gets_lingering_close, h_setup,
		h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_drain_zero_sends_no_goaway, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name("admin", tests, h_group_setup, NULL);
}
