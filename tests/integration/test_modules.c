/*
 * Modules, live: the three handler kinds (examples/modules/hello and
 * tests/modules/testmod), answers in request order whatever mix served
 * them, the blocking pool's OVERLOADED, replies after the connection
 * closed or after TIMEOUT (dropped and counted), pushes, per-connection
 * state, reload, SIGTERM with work in progress, and every load error as a
 * clear start-up and `socketd -t` message.
 */
#include <sys/socket.h>
#include <sys/stat.h>

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

/* hello at 0x80; testmod at 0xa0 (see tests/modules/testmod.c). */
#define HELLO_UPPER 0x80
#define HELLO_SLEEP 0x81
#define HELLO_LATER 0x82
#define TM          0xa0
#define TM_ECHO     (TM + 0)
#define TM_NOREPLY  (TM + 1)
#define TM_HOLD     (TM + 2)
#define TM_RELEASE  (TM + 3)
#define TM_WHOAMI   (TM + 4)
#define TM_PUSH     (TM + 5)
#define TM_STATE    (TM + 6)
#define TM_BLOCK    (TM + 7)
#define TM_SPIN     (TM + 8)
#define TM_TWICE    (TM + 9)
#define TM_NOW      (TM + 10)
#define TM_LABEL    (TM + 11)
#define TM_NOTE     (TM + 12)

#define MODS_FMT                                                               \
	"module_dir = \"" SOCKETD_EXAMPLE_MODULE_DIR "\";\n"                   \
	"modules = (\n"                                                        \
	"  { name = \"hello\"; path = \"hello.so\"; opcode = 0x80; },\n"       \
	"  { name = \"testmod\"; path = \"" SOCKETD_TEST_MODULE_DIR            \
	"/testmod.so\"; opcode = 0xa0;\n"                                      \
	"    settings: { label = \"%s\"; refuse_reload = %s; }; }\n"           \
	");\n"                                                                 \
	"%s\n"

static char extra_buf[4096];

static const char *
mods(const char *label, const char *refuse, const char *more)
{
	snprintf(extra_buf, sizeof(extra_buf), MODS_FMT, label, refuse,
	    more != NULL ? more : "");
	return extra_buf;
}

static struct h_daemon *
start(void **state, const char *more)
{
	struct h_opts o = {0};

	o.extra = mods("a", "false", more);
	return h_start(T(state), &o);
}

static void
expect_str(int fd, uint8_t op, uint32_t id, const char *payload, uint16_t want,
    const char *answer)
{
	char *p = h_call(fd, op, id, payload, want);

	assert_string_equal(p, answer);
	free(p);
}

static void
test_handler_kinds(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int fd = h_raw(T(state), d);
	int64_t t0;
	size_t i;
	char *p;

	expect_str(fd, HELLO_UPPER, 1, "abc-XyZ 09", PROTO_OK, "ABC-XYZ 09");
	expect_str(fd, HELLO_UPPER, 2, "", PROTO_OK, "");
	/* Every byte value, at every alignment of the 8-byte steps. */
	for (i = 0; i < 8; i++) {
		uint8_t all[256 + 8];
		struct h_frame f;
		size_t k;

		for (k = 0; k < sizeof(all); k++)
			all[k] = (uint8_t)(k * 7 + i);
		assert_int_equal(h_send_req(fd, HELLO_UPPER, 100 + (uint32_t)i,
				     all + i, sizeof(all) - i),
		    0);
		h_expect_frame(
		    fd, HELLO_UPPER, PROTO_OK, 100 + (uint32_t)i, &f);
		assert_int_equal(f.payload_len, sizeof(all) - i);
		for (k = 0; k < f.payload_len; k++) {
			uint8_t b = all[i + k];

			assert_int_equal(
			    f.payload[k], b >= 'a' && b <= 'z' ? b - 32 : b);
		}
		h_frame_free(&f);
	}
	t0 = h_now_ms();
	expect_str(fd, HELLO_SLEEP, 3, "100", PROTO_OK, "");
	assert_true(h_now_ms() - t0 >= 100);
	t0 = h_now_ms();
	expect_str(fd, HELLO_LATER, 4, "100", PROTO_OK, "");
	assert_true(h_now_ms() - t0 >= 100);
	expect_str(fd, HELLO_LATER, 5, "0", PROTO_OK, "");
	p = h_call(fd, HELLO_SLEEP, 6, "60001", PROTO_BAD_REQUEST);
	assert_non_null(strstr(p, "0 to 60000"));
	free(p);
	free(h_call(fd, HELLO_LATER, 7, "-1", PROTO_BAD_REQUEST));
	free(h_call(fd, HELLO_LATER, 8, "", PROTO_BAD_REQUEST));
	free(h_call(fd, HELLO_SLEEP, 9, "1e3", PROTO_BAD_REQUEST));
	expect_str(fd, TM_NOW, 10, NULL, PROTO_OK, "now");
	/* A handler that returns without answering: INTERNAL, named. */
	p = h_call(fd, TM_NOREPLY, 11, NULL, PROTO_INTERNAL);
	assert_string_equal(
	    p, "handler testmod.noreply returned without answering");
	free(p);
	/* Answered twice: the first stands, the second is refused. */
	expect_str(fd, TM_TWICE, 12, NULL, PROTO_OK, "first");
	h_raw_ping(fd, 13);
	assert_true(h_log_wait(d, "testmod.twice replied twice", NULL, 2000));
	/* A push opcode is not a request; an unused module opcode unknown. */
	p = h_call(fd, TM_NOTE, 14, NULL, PROTO_BAD_REQUEST);
	assert_non_null(strstr(p, "push"));
	free(p);
	free(h_call(fd, TM_NOTE + 1, 15, NULL, PROTO_UNKNOWN_OPCODE));
	free(h_call(fd, 0x83, 16, NULL, PROTO_UNKNOWN_OPCODE));
	assert_int_equal(h_stat_of(T(state), d, "hello.upper_requests"), 10);
	assert_int_equal(h_stat_of(T(state), d, "hello.sleep_errors"), 2);
	assert_int_equal(h_stat_of(T(state), d, "testmod.noreply_errors"), 1);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_opcodes_and_info(void **state)
{
	static const char want[] =
	    "0x00 ping\n0x01 echo\n0x02 info\n0x03 stats\n0x04 time\n"
	    "0x05 opcodes\n0x06 goaway push\n0x10 pubsub.subscribe\n"
	    "0x11 pubsub.unsubscribe\n0x12 pubsub.publish\n"
	    "0x13 pubsub.message push\n0x14 pubsub.notice push\n"
	    "0x80 hello.upper\n0x81 hello.sleep\n"
	    "0x82 hello.later\n0xa0 testmod.echo\n0xa1 testmod.noreply\n"
	    "0xa2 testmod.hold\n0xa3 testmod.release\n0xa4 testmod.whoami\n"
	    "0xa5 testmod.push\n0xa6 testmod.state\n0xa7 testmod.block\n"
	    "0xa8 testmod.spin\n0xa9 testmod.twice\n0xaa testmod.now\n"
	    "0xab testmod.label\n0xac testmod.note push\n";
	struct h_daemon *d = start(state, NULL);
	int fd = h_raw(T(state), d);
	char *p;

	expect_str(fd, PROTO_OP_OPCODES, 1, NULL, PROTO_OK, want);
	p = h_call(fd, PROTO_OP_OPCODES, 2, "x", PROTO_BAD_REQUEST);
	free(p);
	p = h_call(fd, PROTO_OP_INFO, 3, NULL, PROTO_OK);
	assert_non_null(strstr(p, "\nprotocol_minor 1\n"));
	free(p);
	assert_int_equal(h_stop(d, 0), 0);
}

/* Pipelines mixing every kind: answers leave in request order. */
static void
test_pipeline_mixed_kinds_in_order(void **state)
{
	static const struct {
		uint8_t op;
		const char *payload, *answer;
		uint16_t status;
	} reqs[] = {
	    {HELLO_LATER, "150", "", PROTO_OK},
	    {HELLO_UPPER, "one", "ONE", PROTO_OK},
	    {HELLO_SLEEP, "80", "", PROTO_OK},
	    {PROTO_OP_ECHO, "two", "two", PROTO_OK},
	    {TM_ECHO, "three", "three", PROTO_OK},
	    {HELLO_LATER, "0", "", PROTO_OK},
	    {TM_BLOCK, "10", "done", PROTO_OK},
	    {HELLO_SLEEP, "x", NULL, PROTO_BAD_REQUEST},
	    {TM_NOW, NULL, "now", PROTO_OK},
	    {PROTO_OP_PING, NULL, "", PROTO_OK},
	    {HELLO_UPPER, "four", "FOUR", PROTO_OK},
	};
	struct h_daemon *d = start(state, NULL);
	int fd = h_raw(T(state), d);
	uint8_t *buf = NULL, *one;
	size_t len = 0, n, i;
	struct h_frame f;
	int round;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			one = h_req(reqs[i].op, (uint32_t)(100 * round + i + 1),
			    reqs[i].payload,
			    reqs[i].payload ? strlen(reqs[i].payload) : 0, &n);
			buf = realloc(buf, len + n);
			assert_non_null(buf);
			memcpy(buf + len, one, n);
			len += n;
			free(one);
		}
	}
	/* One write: the whole pipeline arrives in one or two reads. */
	assert_int_equal(h_send_all(fd, buf, len, 5000), 0);
	free(buf);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
			h_expect_frame(fd, reqs[i].op, reqs[i].status,
			    (uint32_t)(100 * round + i + 1), &f);
			if (reqs[i].answer != NULL)
				assert_string_equal(
				    (char *)f.payload, reqs[i].answer);
			h_frame_free(&f);
		}
	}
	assert_int_equal(h_stop(d, 0), 0);
}

/* handler_threads 1, handler_queue 1: the third waits for nobody. */
static void
test_pool_saturation_overloaded(void **state)
{
	struct h_daemon *d = start(state,
	    "handler_threads = 1;\n"
	    "handler_queue = 1;");
	int a = h_raw(T(state), d), b = h_raw(T(state), d);
	struct h_frame f;
	int64_t t0;
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);

	/* The thread takes the first; the second waits in the queue. */
	assert_int_equal(h_send_req(a, TM_BLOCK, 1, "600", 3), 0);
	assert_int_equal(h_stat_wait(c, "testmod_running", 1, 3000), 1);
	assert_int_equal(h_send_req(a, TM_BLOCK, 2, "600", 3), 0);
	assert_int_equal(h_stat_wait(c, "handler_queue_depth", 1, 3000), 1);
	assert_int_equal(h_send_req(b, TM_BLOCK, 3, "10", 2), 0);
	/* b's request found the queue full: answered at once. */
	t0 = h_now_ms();
	h_expect_frame(b, TM_BLOCK, PROTO_OVERLOADED, 3, &f);
	assert_non_null(strstr((char *)f.payload, "handler queue full"));
	h_frame_free(&f);
	assert_true(h_now_ms() - t0 < 300);
	/* b goes on being served meanwhile. */
	h_raw_ping(b, 4);
	expect_str(b, HELLO_UPPER, 5, "b", PROTO_OK, "B");
	/* a's two are answered, in order. */
	h_expect_frame(a, TM_BLOCK, PROTO_OK, 1, &f);
	h_frame_free(&f);
	h_expect_frame(a, TM_BLOCK, PROTO_OK, 2, &f);
	h_frame_free(&f);
	assert_int_equal(h_stat_of(T(state), d, "handler_overloaded"), 1);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_reply_after_close_is_dropped(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int a = h_raw(T(state), d), b = h_raw(T(state), d);
	struct sdc *c;

	assert_int_equal(h_send_req(a, TM_HOLD, 1, NULL, 0), 0);
	assert_int_equal(h_send_req(a, TM_HOLD, 2, NULL, 0), 0);
	c = h_sdc(T(state), "127.0.0.1", d->port);
	assert_int_equal(h_stat_wait(c, "testmod_held", 2, 3000), 2);
	/*
	 * A reset, not a FIN: a half-closed client still gets its answers
	 * (socketd keeps the connection until they are sent).
	 */
	h_close_reset(T(state), a);
	/* The connection is gone before the module answers. */
	assert_int_equal(h_stat_wait(c, "connections_current", 2, 3000), 2);
	expect_str(b, TM_RELEASE, 3, NULL, PROTO_OK, "released 2 gone 2");
	assert_int_equal(h_stat_wait(c, "replies_dropped", 2, 3000), 2);
	h_raw_ping(b, 4);
	assert_int_equal(h_stop(d, 0), 0);
}

/* A client that half-closes after its requests still gets the answers. */
static void
test_half_close_waits_for_answers(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int a = h_raw(T(state), d);
	struct h_frame f;

	assert_int_equal(h_send_req(a, HELLO_LATER, 1, "200", 3), 0);
	assert_int_equal(h_send_req(a, HELLO_UPPER, 2, "x", 1), 0);
	assert_int_equal(shutdown(a, SHUT_WR), 0);
	h_expect_frame(a, HELLO_LATER, PROTO_OK, 1, &f);
	h_frame_free(&f);
	h_expect_frame(a, HELLO_UPPER, PROTO_OK, 2, &f);
	h_frame_free(&f);
	assert_int_equal(h_wait_eof(a, 3000, NULL), H_EOF);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_timeout_then_late_reply(void **state)
{
	struct h_daemon *d = start(state, "timeouts: { handler = 0.3; };");
	int a = h_raw(T(state), d), b = h_raw(T(state), d);
	struct h_frame f;
	int64_t t0 = h_now_ms();

	assert_int_equal(h_send_req(a, TM_HOLD, 1, NULL, 0), 0);
	assert_int_equal(h_send_req(a, TM_ECHO, 2, "behind", 6), 0);
	h_expect_frame(a, TM_HOLD, PROTO_TIMEOUT, 1, &f);
	assert_true(h_now_ms() - t0 >= 300);
	assert_non_null(strstr((char *)f.payload,
	    "testmod.hold did not answer within timeouts.handler"));
	h_frame_free(&f);
	/* The answer queued behind it goes out right after. */
	h_expect_frame(a, TM_ECHO, PROTO_OK, 2, &f);
	h_frame_free(&f);
	/* The module answers late: dropped, counted, never sent. */
	expect_str(b, TM_RELEASE, 3, NULL, PROTO_OK, "released 1 gone 1");
	h_raw_ping(a, 4);
	assert_int_equal(h_stat_of(T(state), d, "handler_timeouts"), 1);
	assert_int_equal(h_stat_of(T(state), d, "replies_dropped"), 1);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_push_to_another_connection(void **state)
{
	struct h_daemon *d = start(state, "max_frame_size = 65536;");
	int a = h_raw(T(state), d), b = h_raw(T(state), d);
	char req[64], *who;
	unsigned long long id;
	struct h_frame f;

	who = h_call(a, TM_WHOAMI, 1, NULL, PROTO_OK);
	assert_int_equal(sscanf(who, "%llu", &id), 1);
	assert_non_null(strstr(who, " inet 127.0.0.1 "));
	assert_non_null(strstr(who, " -")); /* no TLS subject */
	free(who);
	snprintf(req, sizeof(req), "%llu hello a", id);
	expect_str(b, TM_PUSH, 2, req, PROTO_OK, "OK");
	/* The push: status 0, request_id 0, the push opcode. */
	assert_int_equal(h_read_frame(a, &f, 3000), 0);
	assert_int_equal(f.opcode, TM_NOTE);
	assert_int_equal(f.status, 0);
	assert_int_equal(f.request_id, 0);
	assert_string_equal((char *)f.payload, "hello a");
	h_frame_free(&f);
	/* To itself, between two answers. */
	expect_str(a, TM_PUSH, 3, req, PROTO_OK, "OK");
	assert_int_equal(h_read_frame(a, &f, 3000), 0);
	assert_int_equal(f.opcode, TM_NOTE);
	h_frame_free(&f);
	/* More than a frame can carry (max_frame_size 65536 here). */
	expect_str(a, TM_PUSH, 30, "1 *65529", PROTO_OK, "EINVAL");
	snprintf(req, sizeof(req), "%llu *65528", id);
	expect_str(a, TM_PUSH, 31, req, PROTO_OK, "OK");
	assert_int_equal(h_read_frame(a, &f, 3000), 0);
	assert_int_equal(f.opcode, TM_NOTE);
	assert_int_equal(f.payload_len, 65528);
	h_frame_free(&f);
	snprintf(req, sizeof(req), "%llu hello a", id);
	/* Gone: a clear result, never a crash. */
	h_close(T(state), a);
	assert_int_equal(h_stat_wait(h_sdc(T(state), "127.0.0.1", d->port),
			     "connections_current", 2, 3000),
	    2);
	expect_str(b, TM_PUSH, 4, req, PROTO_OK, "EGONE");
	expect_str(b, TM_PUSH, 5, "0 x", PROTO_OK, "EGONE");
	expect_str(b, TM_PUSH, 6, "18446744073709551615 x", PROTO_OK, "EGONE");
	assert_int_equal(h_stat_of(T(state), d, "pushes"), 3);
	assert_int_equal(h_stop(d, 0), 0);
}

/* A connection that does not read: pushes stop at the limit, SD_EFULL. */
static void
test_push_limit_efull(void **state)
{
	struct h_daemon *d = start(state, "max_frame_size = 65536;");
	int a = h_raw(T(state), d), b = h_raw(T(state), d);
	char req[64], *who, *res;
	unsigned long long id;
	int i, ok = 0, full = 0;

	who = h_call(a, TM_WHOAMI, 1, NULL, PROTO_OK);
	assert_int_equal(sscanf(who, "%llu", &id), 1);
	free(who);
	/* a reads nothing from here on; 400 x 64 KiB is far past 4 MiB. */
	snprintf(req, sizeof(req), "%llu *65000", id);
	for (i = 0; i < 400 && !full; i++) {
		res = h_call(b, TM_PUSH, 10 + (uint32_t)i, req, PROTO_OK);
		if (strcmp(res, "OK") == 0)
			ok++;
		else if (strcmp(res, "EFULL") == 0)
			full = 1;
		else
			fail_msg("push %d: %s", i, res);
		free(res);
	}
	assert_true(full);
	/* At least the 4 MiB limit went through before the refusal. */
	assert_true(ok >= (4 << 20) / 65012);
	/* b is unaffected. */
	h_raw_ping(b, 999);
	/*
	 * a never reads its megabytes: a SIGTERM would wait for them until
	 * timeouts.shutdown, so it goes first.
	 */
	h_close_reset(T(state), a);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_conn_state_and_close_hook(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int a = h_raw(T(state), d), b = h_raw(T(state), d);

	expect_str(a, TM_STATE, 1, NULL, PROTO_OK, "1");
	expect_str(a, TM_STATE, 2, NULL, PROTO_OK, "2");
	expect_str(b, TM_STATE, 3, NULL, PROTO_OK, "1");
	expect_str(a, TM_STATE, 4, NULL, PROTO_OK, "3");
	h_close(T(state), a);
	assert_int_equal(h_stat_wait(h_sdc(T(state), "127.0.0.1", d->port),
			     "testmod_closed", 1, 3000),
	    1);
	/* The blocking kind has no connection state: testmod checks. */
	expect_str(b, TM_BLOCK, 5, "0", PROTO_OK, "done");
	assert_int_equal(h_stop(d, 0), 0);
}

/* max_inflight 2: reading pauses until an answer goes out. */
static void
test_max_inflight_pauses_reading(void **state)
{
	struct h_daemon *d = start(state, "max_inflight = 2;");
	int a = h_raw(T(state), d), b = h_raw(T(state), d);
	struct sdc *c = h_sdc(T(state), "127.0.0.1", d->port);
	struct h_frame f;
	uint32_t id;

	for (id = 1; id <= 4; id++)
		assert_int_equal(h_send_req(a, TM_HOLD, id, NULL, 0), 0);
	h_raw_ping(b, 50);
	assert_int_equal(h_stat_wait(c, "testmod_held", 2, 3000), 2);
	h_sleep_ms(100);
	assert_int_equal(h_stat(c, "testmod_held"), 2); /* not 4 */
	expect_str(b, TM_RELEASE, 51, NULL, PROTO_OK, "released 2 gone 0");
	h_expect_frame(a, TM_HOLD, PROTO_OK, 1, &f);
	h_frame_free(&f);
	h_expect_frame(a, TM_HOLD, PROTO_OK, 2, &f);
	h_frame_free(&f);
	/* Reading resumed: the other two arrived. */
	assert_int_equal(h_stat_wait(c, "testmod_held", 2, 3000), 2);
	expect_str(b, TM_RELEASE, 52, NULL, PROTO_OK, "released 2 gone 0");
	h_expect_frame(a, TM_HOLD, PROTO_OK, 3, &f);
	h_frame_free(&f);
	h_expect_frame(a, TM_HOLD, PROTO_OK, 4, &f);
	h_frame_free(&f);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_slow_sync_handler_logged(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int fd = h_raw(T(state), d);

	expect_str(fd, TM_SPIN, 1, "150", PROTO_OK, "spun");
	assert_true(h_log_wait(
	    d, "handler testmod.spin held worker", "must not block", 2000));
	assert_int_equal(h_stat_of(T(state), d, "handler_slow"), 1);
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_reload_settings(void **state)
{
	struct h_opts o = {0};
	struct h_daemon *d;
	int fd, greeted;

	o.extra = mods("a", "false", NULL);
	d = h_start(T(state), &o);
	fd = h_raw(T(state), d);
	expect_str(fd, TM_LABEL, 1, NULL, PROTO_OK, "a");
	o.extra = mods("b", "false", NULL);
	h_write_config(d, &o);
	h_signal(d, SIGHUP);
	assert_true(h_log_wait(d, "reloaded", NULL, 3000));
	expect_str(fd, TM_LABEL, 2, NULL, PROTO_OK, "b");
	/* The module refuses: it keeps "b", the reload failed. */
	o.extra = mods("c", "true", NULL);
	h_write_config(d, &o);
	h_signal(d, SIGHUP);
	assert_true(h_log_wait(d, "reload failed",
	    "module testmod refused its new settings: refuse_reload is set",
	    3000));
	expect_str(fd, TM_LABEL, 3, NULL, PROTO_OK, "b");
	/* A bad value fails it before any module sees it: hello too. */
	greeted = h_log_count(d, "greeting is now", NULL);
	o.extra = mods(
	    "this label is far longer than thirty-two bytes", "false", NULL);
	h_write_config(d, &o);
	h_signal(d, SIGHUP);
	assert_true(h_log_wait(
	    d, "reload failed", "modules.testmod.settings.label", 3000));
	assert_int_equal(h_log_count(d, "greeting is now", NULL), greeted);
	expect_str(fd, TM_LABEL, 4, NULL, PROTO_OK, "b");
	assert_int_equal(h_stat_of(T(state), d, "reload_failures"), 2);
	/* Changing the list needs a restart. */
	o.extra = "module_dir = \"" SOCKETD_EXAMPLE_MODULE_DIR "\";\n"
		  "modules = ( { name = \"hello\"; path = \"hello.so\"; "
		  "opcode = 0x90; } );";
	h_write_config(d, &o);
	h_signal(d, SIGHUP);
	assert_true(h_log_wait(d, "modules", "needs a restart", 3000));
	expect_str(fd, TM_LABEL, 5, NULL, PROTO_OK, "b");
	assert_int_equal(h_stop(d, 0), 0);
}

static void
test_sigterm_answers_work_in_progress(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int fd = h_raw(T(state), d);
	struct h_frame f;

	assert_int_equal(h_send_req(fd, HELLO_LATER, 1, "300", 3), 0);
	assert_int_equal(h_send_req(fd, HELLO_SLEEP, 2, "300", 3), 0);
	assert_int_equal(h_send_req(fd, HELLO_UPPER, 3, "z", 1), 0);
	h_sleep_ms(50);
	h_signal(d, SIGTERM);
	h_expect_frame(fd, HELLO_LATER, PROTO_OK, 1, &f);
	h_frame_free(&f);
	h_expect_frame(fd, HELLO_SLEEP, PROTO_OK, 2, &f);
	h_frame_free(&f);
	h_expect_frame(fd, HELLO_UPPER, PROTO_OK, 3, &f);
	h_frame_free(&f);
	assert_int_equal(h_wait_exit(d, 5000), 0);
}

/* `socketd -t` and start-up on a config; the output is checked. */
static void
check_config(void **state, const char *text, int want_status, const char *want1,
    const char *want2)
{
	char path[512], *argv[5];
	struct h_run *r = malloc(sizeof(*r));

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/check.conf", h_scratch(T(state)));
	h_write_file(path, text);
	argv[0] = (char *)SOCKETD_BIN;
	argv[1] = (char *)"-t";
	argv[2] = (char *)"-c";
	argv[3] = path;
	argv[4] = NULL;
	h_run(argv, 10000, r);
	if (r->status != want_status ||
	    (want1 != NULL && strstr(r->err, want1) == NULL) ||
	    (want2 != NULL && strstr(r->err, want2) == NULL))
		fail_msg("socketd -t: status %d, stderr: %s (wanted %d, "
			 "\"%s\", \"%s\")",
		    r->status, r->err, want_status, want1 ? want1 : "",
		    want2 ? want2 : "");
	free(r);
}

#define ONE_MOD(path, opcode, settings)                                        \
	"listen = [ \"127.0.0.1:1\" ];\nmodules = (\n  { name = \"testmod\"; " \
	"path = \"" path "\"; opcode = " opcode "; " settings " }\n);\n"
#define TMDIR SOCKETD_TEST_MODULE_DIR

static void
test_load_errors_named(void **state)
{
	char text[1024], wdir[512], cmd[4096];

	check_config(
	    state, ONE_MOD(TMDIR "/testmod.so", "0xa0", ""), 0, NULL, NULL);
	check_config(state, ONE_MOD(TMDIR "/none.so", "0xa0", ""), 1,
	    "check.conf:3: modules.testmod:", "none.so: No such file");
	check_config(state, ONE_MOD(TMDIR "/testmod_badabi.so", "0xa0", ""), 1,
	    "check.conf:3: modules.testmod:",
	    "module testmod was built for module ABI 99.0; this socketd "
	    "provides ABI 1.0");
	check_config(state, ONE_MOD(TMDIR "/testmod_nosym.so", "0xa0", ""), 1,
	    "modules.testmod:", "no socketd_module symbol");
	check_config(state, ONE_MOD(TMDIR "/testmod.so", "0x7f", ""), 1,
	    "check.conf:3: modules.testmod.opcode:",
	    "must be an opcode from 0x80 to 0xff");
	check_config(state, ONE_MOD(TMDIR "/testmod.so", "0xf8", ""), 1,
	    "modules.testmod:", "run past 0xff");
	/* Settings: type, range, unknown name; each with its own line. */
	check_config(state,
	    ONE_MOD(TMDIR "/testmod.so", "0xa0",
		"settings: {\n limit = 5;\n limit_x = 1; };"),
	    1,
	    "check.conf:5: modules.testmod.settings.limit_x: unknown "
	    "setting (module testmod has fail_init, refuse_reload, "
	    "label, limit, ratio)",
	    NULL);
	check_config(state,
	    ONE_MOD(
		TMDIR "/testmod.so", "0xa0", "settings: {\n limit = 500; };"),
	    1,
	    "check.conf:4: modules.testmod.settings.limit: must be an "
	    "integer from 1 to 100",
	    NULL);
	check_config(state,
	    ONE_MOD(
		TMDIR "/testmod.so", "0xa0", "settings: {\n limit = \"5\"; };"),
	    1, "modules.testmod.settings.limit: must be an integer", NULL);
	check_config(state,
	    ONE_MOD(
		TMDIR "/testmod.so", "0xa0", "settings: {\n ratio = 1.5; };"),
	    1, "modules.testmod.settings.ratio: must be a number from 0 to 1",
	    NULL);
	check_config(state, ONE_MOD(TMDIR "/testmod_baddefault.so", "0xa0", ""),
	    1, "modules.testmod:",
	    "setting broken: default \"500\" is outside its range 1 to 100");
	check_config(state, ONE_MOD(TMDIR "/testmod_longname.so", "0xa0", ""),
	    1,
	    "modules.testmod:", "is longer than the 64 bytes OPCODES allows");
	/* The name must be the module's own. */
	snprintf(text, sizeof(text),
	    "modules = ( { name = \"other\"; path = \"%s/testmod.so\"; "
	    "opcode = 0x90; } );\n",
	    TMDIR);
	check_config(
	    state, text, 1, "holds module \"testmod\", not \"other\"", NULL);
	/* Overlapping opcodes. */
	snprintf(text, sizeof(text),
	    "module_dir = \"%s\";\nmodules = (\n"
	    "  { name = \"hello\"; path = \"hello.so\"; opcode = 0x80; },\n"
	    "  { name = \"testmod\"; path = \"%s/testmod.so\"; opcode = "
	    "0x82; }\n);\n",
	    SOCKETD_EXAMPLE_MODULE_DIR, TMDIR);
	check_config(state, text, 1, "check.conf:4: modules.testmod:",
	    "opcode 0x82 (testmod.echo) is taken by hello.later");
	/* A group- or world-writable module, or directory, is refused. */
	snprintf(wdir, sizeof(wdir), "%s/w", h_scratch(T(state)));
	assert_int_equal(mkdir(wdir, 0755), 0);
	snprintf(cmd, sizeof(cmd),
	    "cp %s/testmod.so %s/ && chmod 0666 %s/testmod.so", TMDIR, wdir,
	    wdir);
	assert_int_equal(system(cmd), 0);
	snprintf(text, sizeof(text),
	    "modules = ( { name = \"testmod\"; path = \"%s/testmod.so\"; "
	    "opcode = 0xa0; } );\n",
	    wdir);
	check_config(
	    state, text, 1, "writable by everyone", "refusing to load it");
	assert_int_equal(chmod(wdir, 0777), 0);
	snprintf(cmd, sizeof(cmd), "chmod 0644 %s/testmod.so", wdir);
	assert_int_equal(system(cmd), 0);
	check_config(state, text, 1, "is writable by everyone",
	    "refusing to load modules from it");
	assert_int_equal(chmod(wdir, 0755), 0);
	check_config(state, text, 0, NULL, NULL);
	/* Any directory up the path counts, not only the module's own. */
	snprintf(cmd, sizeof(cmd),
	    "mkdir -p %s/g/sub && chmod 0775 %s/g && chmod 0755 %s/g/sub && "
	    "cp %s/testmod.so %s/g/sub/",
	    wdir, wdir, wdir, TMDIR, wdir);
	assert_int_equal(system(cmd), 0);
	snprintf(text, sizeof(text),
	    "modules = ( { name = \"testmod\"; path = \"%s/g/sub/testmod.so\"; "
	    "opcode = 0xa0; } );\n",
	    wdir);
	check_config(state, text, 1, "/g is writable by its group",
	    "refusing to load modules from it");
	/* Owned by someone else (only root can make such a file). */
	if (geteuid() == 0) {
		snprintf(cmd, sizeof(cmd),
		    "chmod 0755 %s/g && chown 12345 %s/g/sub/testmod.so", wdir,
		    wdir);
		assert_int_equal(system(cmd), 0);
		check_config(state, text, 1, "owned by uid 12345",
		    "neither root nor socketd's user");
	}
}

/* init() failing stops start-up with the module's own message. */
static void
test_init_failure_stops_startup(void **state)
{
	struct h_opts o = {0};
	struct h_daemon *d;

	o.extra = "modules = ( { name = \"testmod\"; path = \"" TMDIR
		  "/testmod.so\"; opcode = 0xa0; settings: { fail_init = "
		  "true; }; } );";
	d = h_spawn(T(state), &o);
	assert_int_equal(h_wait_exit(d, 5000), 1);
	assert_true(h_log_count(d, "modules.testmod: module testmod",
			"init failed: fail_init is set") == 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_handler_kinds, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_opcodes_and_info, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pipeline_mixed_kinds_in_order, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_pool_saturation_overloaded, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reply_after_close_is_dropped, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_half_close_waits_for_answers, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_timeout_then_late_reply, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_push_to_another_connection, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_push_limit_efull, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_conn_state_and_close_hook, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_max_inflight_pauses_reading, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_slow_sync_handler_logged, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reload_settings, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_sigterm_answers_work_in_progress, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_load_errors_named, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_init_failure_stops_startup, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_modules", tests, h_group_setup, NULL);
}
