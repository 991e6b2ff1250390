/*
 * Handler processes, live: socketd runs tests/procs/testproc.py (each of
 * its handlers is one way a child behaves, well or badly) and these tests
 * check what clients see: answers back in each client's order whatever
 * order the children answer in, INTERNAL naming the child that exited,
 * restarts with back-off, TIMEOUT and the kill of a silent child,
 * garbage and unknown request ids, 1,000 pipelined requests over four
 * instances, a SIGHUP that replaces every child with nothing lost,
 * SIGTERM with requests in flight, the environment and the user the
 * children get, and configuration errors.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <pwd.h>
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

#define TP         0xc0
#define TP_ECHO    (TP + 0)
#define TP_DELAY   (TP + 1)
#define TP_CRASH   (TP + 2)
#define TP_HANG    (TP + 3)
#define TP_GARBAGE (TP + 4)
#define TP_BADID   (TP + 6)
#define TP_WHOAMI  (TP + 7)
#define TP_SAY     (TP + 8)

#define TESTPROC SOCKETD_SOURCE_DIR "/tests/procs/testproc.py"

static char extra_buf[4096];

/* One entry "tp" at 0xc0 with more settings, then more top-level ones. */
static struct h_daemon *
start(void **state, const char *entry, const char *more)
{
	struct h_opts o = {0};

	snprintf(extra_buf, sizeof(extra_buf),
	    "processes = (\n"
	    "  { name = \"tp\"; command = [ \"/usr/bin/python3\", \"%s\" ];\n"
	    "    opcode = 0xc0; %s }\n"
	    ");\n%s\n",
	    TESTPROC, entry != NULL ? entry : "", more != NULL ? more : "");
	o.extra = extra_buf;
	return h_start(T(state), &o);
}

static void
expect_has(int fd, uint8_t op, uint32_t id, const char *payload, uint16_t want,
    const char *has)
{
	char *p = h_call(fd, op, id, payload, want);

	if (has != NULL && strstr(p, has) == NULL)
		fail_msg("answer \"%s\" lacks \"%s\"", p, has);
	free(p);
}

/* Read the answer to id (already sent); its payload must contain has. */
static void
recv_has(int fd, uint8_t op, uint32_t id, uint16_t want, const char *has)
{
	struct h_frame f;

	h_expect_frame(fd, op, want, id, &f);
	if (has != NULL &&
	    (f.payload == NULL || strstr((char *)f.payload, has) == NULL))
		fail_msg("answer %u \"%s\" lacks \"%s\"", id,
		    f.payload ? (char *)f.payload : "", has);
	h_frame_free(&f);
}

/* The pid a whoami answer names ("uid pid FOO home"). */
static long
whoami_pid(int fd, uint32_t id)
{
	char *p = h_call(fd, TP_WHOAMI, id, NULL, PROTO_OK);
	long uid, pid;

	assert_int_equal(sscanf(p, "%ld %ld", &uid, &pid), 2);
	free(p);
	return pid;
}

static int
alive(long pid)
{
	char path[64], buf[512];
	FILE *f;
	char *rp;

	/* A zombie nobody reaps (PID 1 in a container) is gone too. */
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	rp = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (rp == NULL || (rp = strrchr(buf, ')')) == NULL)
		return 0;
	return rp[2] != 'Z';
}

static void
wait_up(void **state, struct h_daemon *d, uint64_t n)
{
	int64_t deadline = h_now_ms() + 10000;

	while (h_stat_of(T(state), d, "process_tp_instances_up") != n) {
		if (h_now_ms() > deadline)
			fail_msg("process_tp_instances_up never reached %llu",
			    (unsigned long long)n);
		h_sleep_ms(20);
	}
}

static void
test_answers_in_client_order(void **state)
{
	struct h_daemon *d = start(state, "instances = 2;", NULL);
	int fd = h_raw(T(state), d);
	struct h_frame f;
	char *p;

	p = h_call(fd, PROTO_OP_OPCODES, 1, NULL, PROTO_OK);
	if (strstr(p, "0xc0 tp.echo\n") == NULL ||
	    strstr(p, "0xc8 tp.say\n") == NULL || strstr(p, "0xc5") != NULL)
		fail_msg("OPCODES: %s", p);
	free(p);
	/* The child answers 3 and 2 before 1; the client sees 1, 2, 3, 4. */
	assert_int_equal(h_send_req(fd, TP_DELAY, 1, "300", 3), 0);
	assert_int_equal(h_send_req(fd, TP_DELAY, 2, "100", 3), 0);
	assert_int_equal(h_send_req(fd, TP_ECHO, 3, "three", 5), 0);
	assert_int_equal(h_send_req(fd, TP_DELAY, 4, "0", 1), 0);
	h_expect_frame(fd, TP_DELAY, PROTO_OK, 1, &f);
	assert_memory_equal(f.payload, "300", 3);
	h_frame_free(&f);
	h_expect_frame(fd, TP_DELAY, PROTO_OK, 2, &f);
	h_frame_free(&f);
	h_expect_frame(fd, TP_ECHO, PROTO_OK, 3, &f);
	assert_memory_equal(f.payload, "three", 5);
	h_frame_free(&f);
	h_expect_frame(fd, TP_DELAY, PROTO_OK, 4, &f);
	h_frame_free(&f);
	/* Its stderr is in socketd's log, named. */
	expect_has(fd, TP_SAY, 5, "a line from the child", PROTO_OK, NULL);
	assert_true(h_log_wait(d, "tp[", "]: a line from the child", 5000) > 0);
	/* An offset the child does not serve is not served at all. */
	expect_has(fd, TP + 5, 6, NULL, PROTO_UNKNOWN_OPCODE, NULL);
	assert_int_equal(h_stat_of(T(state), d, "process_tp_instances_up"), 2);
	assert_true(h_stat_of(T(state), d, "process_tp_requests") >= 5);
}

/* The entry's figures on /metrics, named by the entry. */
static void
test_metrics(void **state)
{
	struct h_opts o = {0};
	struct h_daemon *d;
	struct h_http r;
	int fd;

	snprintf(extra_buf, sizeof(extra_buf),
	    "processes = (\n"
	    "  { name = \"tp\"; command = [ \"/usr/bin/python3\", \"%s\" ];\n"
	    "    opcode = 0xc0; instances = 2; }\n"
	    ");\n",
	    TESTPROC);
	o.extra = extra_buf;
	o.admin_port = h_free_port(0);
	d = h_start(T(state), &o);
	fd = h_raw(T(state), d);
	expect_has(fd, TP_ECHO, 1, "m", PROTO_OK, "m");
	expect_has(
	    fd, TP_CRASH, 2, "3", PROTO_INTERNAL, "exited with status 3");
	wait_up(state, d, 2);
	h_http_get(T(state), o.admin_port, "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(h_sample(r.body,
			"socketd_process_instances_up{process=\"tp\"}") == 2);
	assert_true(h_sample(r.body,
			"socketd_process_restarts_total{process=\"tp\"}") == 1);
	assert_true(h_sample(r.body,
			"socketd_process_requests_total{process=\"tp\"}") == 2);
	assert_true(h_sample(r.body,
			"socketd_process_errors_total{process=\"tp\"}") == 1);
	assert_true(
	    h_sample(r.body, "socketd_process_inflight{process=\"tp\"}") == 0);
	/* The opcodes by name, as for any handler. */
	assert_non_null(strstr(r.body, "opcode=\"tp.echo\""));
	h_http_free(&r);
}

static void
test_crash_restart_backoff(void **state)
{
	struct h_daemon *d =
	    start(state, "instances = 1; restart_delay = 0.3;", NULL);
	int fd = h_raw(T(state), d);
	long pid1, pid2;
	char want[96];

	pid1 = whoami_pid(fd, 1);
	/* Two in flight when it dies: both INTERNAL, naming it. */
	assert_int_equal(h_send_req(fd, TP_DELAY, 2, "5000", 4), 0);
	assert_int_equal(h_send_req(fd, TP_CRASH, 3, "7", 1), 0);
	snprintf(want, sizeof(want),
	    "handler process tp[%ld] exited with status 7", pid1);
	recv_has(fd, TP_DELAY, 2, PROTO_INTERNAL, want);
	recv_has(fd, TP_CRASH, 3, PROTO_INTERNAL, want);
	/* Nothing is up during its restart_delay: OVERLOADED, not a hang. */
	expect_has(fd, TP_ECHO, 4, "x", PROTO_OVERLOADED, "no instance");
	assert_true(h_log_wait(d, "restarting it in 0.3 s", NULL, 5000) > 0);
	wait_up(state, d, 1);
	pid2 = whoami_pid(fd, 5);
	assert_true(pid2 != pid1);
	/* Dying young again doubles the delay. */
	expect_has(
	    fd, TP_CRASH, 6, "1", PROTO_INTERNAL, "exited with status 1");
	if (h_log_wait(d, "restarting it in 0.6 s", NULL, 5000) <= 0) {
		h_log_dump(d);
		fail_msg("no doubled back-off in the log");
	}
	wait_up(state, d, 1);
	expect_has(fd, TP_ECHO, 7, "back", PROTO_OK, "back");
	assert_int_equal(h_stat_of(T(state), d, "process_tp_restarts"), 2);
}

static void
test_hang_timeout_kill(void **state)
{
	struct h_daemon *d = start(state, "instances = 1; restart_delay = 0.1;",
	    "timeouts: { handler = 0.3; };");
	int fd = h_raw(T(state), d);
	int64_t t0 = h_now_ms();
	long pid = whoami_pid(fd, 1);
	char want[96];

	expect_has(fd, TP_HANG, 2, NULL, PROTO_TIMEOUT, "timeouts.handler");
	assert_true(h_now_ms() - t0 >= 300);
	/* Still silent at twice the limit: killed and restarted. */
	snprintf(want, sizeof(want), "tp[%ld] did not answer", pid);
	assert_true(h_log_wait(d, want, "killed", 5000) > 0);
	wait_up(state, d, 1);
	assert_true(whoami_pid(fd, 3) != pid);
	assert_true(h_stat_of(T(state), d, "process_tp_timeouts") >= 1);
	assert_int_equal(h_stat_of(T(state), d, "process_tp_restarts"), 1);
}

/* Killed with requests unread in its socket: the reset is not the news. */
static void
test_killed_child(void **state)
{
	struct h_daemon *d =
	    start(state, "instances = 1; restart_delay = 0.1;", NULL);
	int fd = h_raw(T(state), d);
	long pid = whoami_pid(fd, 1);
	char want[96];

	assert_int_equal(h_send_req(fd, TP_HANG, 2, NULL, 0), 0);
	h_sleep_ms(100); /* it sleeps in hang; the next one stays unread */
	assert_int_equal(h_send_req(fd, TP_ECHO, 3, "x", 1), 0);
	h_sleep_ms(100);
	assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
	snprintf(want, sizeof(want),
	    "handler process tp[%ld] was killed by signal 9", pid);
	recv_has(fd, TP_HANG, 2, PROTO_INTERNAL, want);
	recv_has(fd, TP_ECHO, 3, PROTO_INTERNAL, want);
	wait_up(state, d, 1);
	expect_has(fd, TP_ECHO, 4, "again", PROTO_OK, "again");
}

static void
test_garbage_and_unknown_id(void **state)
{
	struct h_daemon *d =
	    start(state, "instances = 1; restart_delay = 0.1;", NULL);
	int fd = h_raw(T(state), d);

	expect_has(fd, TP_GARBAGE, 1, NULL, PROTO_INTERNAL, "malformed frame");
	wait_up(state, d, 1);
	expect_has(fd, TP_ECHO, 2, "ok", PROTO_OK, "ok");
	expect_has(
	    fd, TP_BADID, 3, NULL, PROTO_INTERNAL, "which it was not sent");
	wait_up(state, d, 1);
	expect_has(fd, TP_ECHO, 4, "still ok", PROTO_OK, "still ok");
	assert_int_equal(h_stat_of(T(state), d, "process_tp_restarts"), 2);
}

#define NPIPE 1000

static void
test_pipeline_four_instances(void **state)
{
	struct h_daemon *d = start(state, "instances = 4;", NULL);
	int fd = h_raw(T(state), d);
	long pids[(NPIPE + 2) / 3];
	char buf[32];
	struct h_frame f;
	size_t i, j, distinct = 0;

	wait_up(state, d, 4);
	for (i = 0; i < NPIPE; i++) {
		int n = snprintf(buf, sizeof(buf), "req %zu", i);

		assert_int_equal(
		    h_send_req(fd, i % 3 == 0 ? TP_WHOAMI : TP_ECHO,
			(uint32_t)i + 1, buf, (size_t)n),
		    0);
	}
	for (i = 0; i < NPIPE; i++) {
		h_expect_frame(fd, i % 3 == 0 ? TP_WHOAMI : TP_ECHO, PROTO_OK,
		    (uint32_t)i + 1, &f);
		if (i % 3 == 0) {
			long uid;

			assert_int_equal(sscanf((char *)f.payload, "%ld %ld",
					     &uid, &pids[i / 3]),
			    2);
		} else {
			snprintf(buf, sizeof(buf), "req %zu", i);
			assert_int_equal(f.payload_len, strlen(buf));
			assert_memory_equal(f.payload, buf, f.payload_len);
		}
		h_frame_free(&f);
	}
	for (i = 0; i < (NPIPE + 2) / 3; i++) {
		for (j = 0; j < i && pids[j] != pids[i]; j++)
			;
		distinct += j == i;
	}
	/*
	 * Spread by fewest in flight, ties in turn: more than one child
	 * served them.  WHOAMI is every third request, a period prime to
	 * the 4 instances: every fourth, taking turns could send each
	 * WHOAMI to the same child.
	 */
	assert_true(distinct >= 2);
	assert_int_equal(h_stat_of(T(state), d, "process_tp_errors"), 0);
}

static void
test_reload_loses_nothing(void **state)
{
	struct h_daemon *d =
	    start(state, "instances = 2; env = { FOO = \"one\"; };", NULL);
	int fd = h_raw(T(state), d);
	long before[2];
	char *p, buf[32];
	struct h_frame f;
	uint32_t id = 10;
	int64_t t0;
	int round, n, k;

	wait_up(state, d, 2);
	p = h_call(fd, TP_WHOAMI, 1, NULL, PROTO_OK);
	/* A clean environment plus env: FOO, no HOME. */
	if (strstr(p, " one False") == NULL)
		fail_msg("whoami: %s", p);
	free(p);
	before[0] = whoami_pid(fd, 2);
	/* The entry's new env is what the new children get. */
	snprintf(extra_buf, sizeof(extra_buf),
	    "processes = (\n"
	    "  { name = \"tp\"; command = [ \"/usr/bin/python3\", \"%s\" ];\n"
	    "    opcode = 0xc0; instances = 2; env = { FOO = \"two\"; }; }\n"
	    ");\n",
	    TESTPROC);
	{
		struct h_opts o = {0};

		o.extra = extra_buf;
		h_write_config(d, &o);
	}
	t0 = h_now_ms();
	h_signal(d, SIGHUP);
	/* Windows of 50 pipelined requests until both children are new. */
	for (round = 0; round < 400; round++) {
		for (k = 0; k < 50; k++) {
			n = snprintf(buf, sizeof(buf), "r%u", id + (uint32_t)k);
			assert_int_equal(h_send_req(fd, TP_ECHO,
					     id + (uint32_t)k, buf, (size_t)n),
			    0);
		}
		for (k = 0; k < 50; k++) {
			h_expect_frame(
			    fd, TP_ECHO, PROTO_OK, id + (uint32_t)k, &f);
			h_frame_free(&f);
		}
		id += 50;
		/* STATS names the entry while the reload replaces it. */
		assert_true(h_stat_of(T(state), d, "process_tp_requests") > 0);
		if (h_log_count(d, "(replaced)", NULL) >= 2)
			break;
		assert_true(h_now_ms() - t0 < 15000);
	}
	assert_int_equal(h_log_count(d, "(replaced)", NULL), 2);
	p = h_call(fd, TP_WHOAMI, 3, NULL, PROTO_OK);
	if (strstr(p, " two False") == NULL)
		fail_msg("whoami after reload: %s", p);
	free(p);
	assert_true(whoami_pid(fd, 4) != before[0]);
	assert_false(alive(before[0]));
	assert_int_equal(h_stat_of(T(state), d, "process_tp_errors"), 0);
	(void)before[1];
}

static void
test_sigterm_answers_in_flight(void **state)
{
	struct h_daemon *d = start(state, "instances = 1;", NULL);
	int fd = h_raw(T(state), d);
	long pid = whoami_pid(fd, 1);

	assert_int_equal(h_send_req(fd, TP_DELAY, 2, "400", 3), 0);
	assert_int_equal(h_send_req(fd, TP_DELAY, 3, "200", 3), 0);
	assert_int_equal(h_send_req(fd, TP_ECHO, 4, "z", 1), 0);
	h_sleep_ms(100);
	h_signal(d, SIGTERM);
	recv_has(fd, TP_DELAY, 2, PROTO_OK, "400");
	recv_has(fd, TP_DELAY, 3, PROTO_OK, "200");
	recv_has(fd, TP_ECHO, 4, PROTO_OK, "z");
	assert_int_equal(h_wait_exit(d, 10000), 0);
	assert_false(alive(pid));
}

/*
 * Whether a user with no rights but "others" can read path: every
 * directory up to it searchable by others, the file readable by them (a
 * build in a mkdtemp directory, as dpkg-buildpackage's, is not).
 */
static int
others_can_read(const char *path)
{
	char buf[4096], *slash;
	struct stat st;

	if (stat(path, &st) != 0 || !(st.st_mode & S_IROTH))
		return 0;
	snprintf(buf, sizeof(buf), "%s", path);
	while ((slash = strrchr(buf, '/')) != NULL && slash != buf) {
		*slash = '\0';
		if (stat(buf, &st) != 0 || !(st.st_mode & S_IXOTH))
			return 0;
	}
	return 1;
}

static void
test_runs_as_user(void **state)
{
	struct passwd *pw;
	struct h_daemon *d;
	char entry[128], *p;
	long uid, pid;
	int fd;

	/* Root to switch users; nobody must be able to read the script. */
	if (geteuid() != 0 || !others_can_read(TESTPROC) ||
	    (pw = getpwnam("nobody")) == NULL) {
		skip();
		return;
	}
	snprintf(entry, sizeof(entry), "user = \"nobody\";");
	d = start(state, entry, NULL);
	fd = h_raw(T(state), d);
	p = h_call(fd, TP_WHOAMI, 1, NULL, PROTO_OK);
	assert_int_equal(sscanf(p, "%ld %ld", &uid, &pid), 2);
	assert_int_equal(uid, (long)pw->pw_uid);
	free(p);
}

/* `socketd -t` or a start on text: status and stderr checked. */
static void
check(void **state, int test, const char *text, int want_status,
    const char *want1, const char *want2)
{
	char path[512], *argv[5];
	struct h_run *r = malloc(sizeof(*r));
	int i = 0;

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/check.conf", h_scratch(T(state)));
	h_write_file(path, text);
	argv[i++] = (char *)SOCKETD_BIN;
	if (test)
		argv[i++] = (char *)"-t";
	argv[i++] = (char *)"-c";
	argv[i++] = path;
	argv[i] = NULL;
	h_run(argv, 15000, r);
	if (r->status != want_status ||
	    (want1 != NULL && strstr(r->err, want1) == NULL) ||
	    (want2 != NULL && strstr(r->err, want2) == NULL))
		fail_msg("socketd%s: status %d, stderr: %s (wanted %d, "
			 "\"%s\", \"%s\")",
		    test ? " -t" : "", r->status, r->err, want_status,
		    want1 ? want1 : "", want2 ? want2 : "");
	free(r);
}

#define CONF(entry)                                                            \
	"listen = [ \"127.0.0.1:1\" ];\nadmin: { listen = []; agent_listen = " \
	"[]; };\nprocesses = (\n  { name = \"tp\"; " entry " }\n);\n"

static void
test_config_errors(void **state)
{
	check(state, 1,
	    CONF("command = [\"/usr/bin/python3\", \"" TESTPROC
		 "\"]; opcode = 0xc0;"),
	    0, NULL, NULL);
	check(state, 1, CONF("command = [\"python3\"]; opcode = 0xc0;"), 1,
	    "check.conf:4: processes.tp.command:", "must be an absolute path");
	check(state, 1, CONF("command = [\"/nonexistent/h\"]; opcode = 0xc0;"),
	    1, "processes.tp.command: /nonexistent/h:", "No such file");
	check(state, 1, CONF("command = [\"/bin/true\"]; opcode = 0x10;"), 1,
	    "processes.tp.opcode:", "from 0x80 to 0xff");
	check(state, 1,
	    CONF("command = [\"/bin/true\"]; opcode = 0xc0; "
		 "instances = 0;"),
	    1, "processes.tp.instances:", "from 1 to 64");
	check(state, 1,
	    CONF("command = [\"/bin/true\"]; opcode = 0xc0; "
		 "colour = 1;"),
	    1, "processes.tp.colour:", "unknown setting");
	check(state, 1, CONF("command = [\"/bin/true\"];"), 1,
	    "processes.tp:", "missing opcode");
	check(state, 1,
	    CONF("command = [\"/bin/true\"]; opcode = 0xc0; "
		 "env = { 9X = \"a\"; };"),
	    1, "check.conf:", NULL);
	check(state, 1,
	    CONF("command = [\"/bin/true\"]; opcode = 0xc0; "
		 "user = \"no_such_user_here\";"),
	    1, "processes.tp.user:", "no such user");
	/* Starting: a program that exits before answering OPCODES. */
	check(state, 0, CONF("command = [\"/bin/false\"]; opcode = 0xc0;"), 1,
	    "processes.tp: the first instance did not answer OPCODES",
	    "exited with status 1");
	/* One that answers something else: cat sends OPCODES back. */
	check(state, 0, CONF("command = [\"/bin/cat\"]; opcode = 0xc0;"), 1,
	    "processes.tp: the first instance did not answer OPCODES",
	    "serves no handlers");
}

/* A child that answers another list than the first is stopped. */
static void
test_other_list_stopped(void **state)
{
	char entry[1024], flag[512];
	struct h_daemon *d;
	int fd;

	snprintf(flag, sizeof(flag), "%s/extra", h_scratch(T(state)));
	snprintf(entry, sizeof(entry),
	    "instances = 1; restart_delay = 0.1; env = { TESTPROC_EXTRA = "
	    "\"%s\"; };",
	    flag);
	d = start(state, entry, NULL);
	fd = h_raw(T(state), d);
	h_write_file(flag, "1");
	expect_has(fd, TP_CRASH, 1, "1", PROTO_INTERNAL, "exited");
	assert_true(h_log_wait(d, "serves other handlers than the first", NULL,
			5000) > 0);
	unlink(flag);
	wait_up(state, d, 1);
	expect_has(fd, TP_ECHO, 2, "same list", PROTO_OK, "same list");
}

/* The shipped examples, in Python, Perl and on the Python package. */
static void
test_examples(void **state)
{
	struct h_opts o = {0};
	struct h_daemon *d;
	char *p;
	int fd, i;

	snprintf(extra_buf, sizeof(extra_buf),
	    "processes = (\n"
	    "  { name = \"py\"; command = [ \"/usr/bin/python3\", \"%s\" ];"
	    " opcode = 0xa0; instances = 2; },\n"
	    "  { name = \"perl\"; command = [ \"/usr/bin/perl\", \"%s\" ];"
	    " opcode = 0xb0; },\n"
	    "  { name = \"pkg\"; command = [ \"/usr/bin/python3\", \"%s\" ];"
	    " opcode = 0xc0; env = { PYTHONPATH = \"%s\"; }; }\n"
	    ");\n",
	    SOCKETD_SOURCE_DIR "/examples/processes/upper.py",
	    SOCKETD_SOURCE_DIR "/examples/processes/upper.pl",
	    SOCKETD_SOURCE_DIR "/examples/processes/hello_pkg.py",
	    SOCKETD_SOURCE_DIR "/python/src");
	o.extra = extra_buf;
	d = h_start(T(state), &o);
	fd = h_raw(T(state), d);
	p = h_call(fd, PROTO_OP_OPCODES, 1, NULL, PROTO_OK);
	if (strstr(p, "0xa0 py.upper\n0xa1 py.reverse\n") == NULL ||
	    strstr(p, "0xb0 perl.upper\n0xb1 perl.reverse\n") == NULL ||
	    strstr(p, "0xc0 pkg.upper\n0xc1 pkg.reverse\n") == NULL)
		fail_msg("OPCODES: %s", p);
	free(p);
	for (i = 0; i < 3; i++) {
		uint8_t base = (uint8_t)(0xa0 + 0x10 * i);

		expect_has(
		    fd, base, 10, "Hello, world", PROTO_OK, "HELLO, WORLD");
		expect_has(fd, base + 1, 11, "abc", PROTO_OK, "cba");
		expect_has(fd, base, 12, "", PROTO_OK, NULL);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_answers_in_client_order, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_crash_restart_backoff, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_hang_timeout_kill, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_killed_child, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_garbage_and_unknown_id, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pipeline_four_instances, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_loses_nothing, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_sigterm_answers_in_flight, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_runs_as_user, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_config_errors, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_other_list_stopped, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_examples, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, h_group_setup, NULL);
}
