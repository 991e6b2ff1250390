/*
 * Pub/sub, live (PROTOCOL-1.1 "Pub/sub"): delivery across workers,
 * wildcards and the $ rule, one MESSAGE per matching subscription, echo
 * and NO_ECHO (the PUBLISH answer first), per-publisher order with several
 * publishers, both barriers, every error status, both slow-consumer
 * policies (the publisher and the other subscribers unaffected), the ACL
 * and a reload that withdraws a permission, many subscribers, SIGTERM
 * with subscribers connected, a subscriber that resets, and pub/sub off.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
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

#define OP_SUB   0x10
#define OP_UNSUB 0x11
#define OP_PUB   0x12
#define OP_MSG   0x13
#define OP_NOTE  0x14

static struct h_daemon *
start(void **state, const char *extra)
{
	struct h_opts o = {0};
	static char buf[4096];

	snprintf(buf, sizeof(buf), "workers = 2;\n%s", extra ? extra : "");
	o.extra = buf;
	return h_start(T(state), &o);
}

static int
raw(void **state, const struct h_daemon *d)
{
	return h_raw(T(state), d);
}

static size_t
sub_payload(uint8_t *p, uint32_t id, uint8_t opts, const char *filter)
{
	size_t fl = strlen(filter);

	proto_put_u32(p, id);
	p[4] = opts;
	p[5] = 0;
	proto_put_u16(p + 6, (uint16_t)fl);
	memcpy(p + 8, filter, fl);
	return 8 + fl;
}

/* SUBSCRIBE and expect status st; returns the count (OK) or 0. */
static uint32_t
sub_st(int fd, uint32_t rid, uint32_t id, uint8_t opts, const char *filter,
    uint16_t st)
{
	uint8_t p[300];
	struct h_frame f;
	uint32_t n = 0;

	assert_int_equal(
	    h_send_req(fd, OP_SUB, rid, p, sub_payload(p, id, opts, filter)),
	    0);
	h_expect_frame(fd, OP_SUB, st, rid, &f);
	if (st == PROTO_OK) {
		assert_int_equal(f.payload_len, 4);
		n = proto_get_u32(f.payload);
	}
	h_frame_free(&f);
	return n;
}

static uint32_t
sub(int fd, uint32_t id, uint8_t opts, const char *filter)
{
	return sub_st(fd, id, id, opts, filter, PROTO_OK);
}

static size_t
pub_payload(uint8_t *p, const char *topic, const void *data, size_t dlen)
{
	size_t tl = strlen(topic);

	proto_put_u16(p, (uint16_t)tl);
	memcpy(p + 2, topic, tl);
	if (dlen > 0)
		memcpy(p + 2 + tl, data, dlen);
	return 2 + tl + dlen;
}

static int
send_pub(int fd, uint32_t rid, const char *topic, const void *data, size_t dlen)
{
	uint8_t *p = malloc(2 + strlen(topic) + dlen);
	int rc;

	assert_non_null(p);
	rc = h_send_req(fd, OP_PUB, rid, p, pub_payload(p, topic, data, dlen));
	free(p);
	return rc;
}

/* PUBLISH, expect OK; the receivers count. */
static uint32_t
pub(int fd, uint32_t rid, const char *topic, const char *data)
{
	struct h_frame f;
	uint32_t n;

	assert_int_equal(send_pub(fd, rid, topic, data, strlen(data)), 0);
	h_expect_frame(fd, OP_PUB, PROTO_OK, rid, &f);
	assert_int_equal(f.payload_len, 4);
	n = proto_get_u32(f.payload);
	h_frame_free(&f);
	return n;
}

struct msg {
	uint32_t sub_id, lost;
	char topic[256];
	uint8_t data[16384];
	size_t dlen;
};

/* The next frame must be a MESSAGE; fills m. */
static void
read_msg(int fd, struct msg *m)
{
	struct h_frame f;
	size_t tl;

	if (h_read_frame(fd, &f, H_IO_TIMEOUT) != 0)
		fail_msg("no MESSAGE: %s (length prefix %u)", strerror(errno),
		    f.len);
	if (f.opcode != OP_MSG || f.status != 0 || f.request_id != 0)
		fail_msg(
		    "expected a MESSAGE, got opcode 0x%02x status %u id %u",
		    f.opcode, f.status, f.request_id);
	assert_true(f.payload_len >= 10);
	m->sub_id = proto_get_u32(f.payload);
	m->lost = proto_get_u32(f.payload + 4);
	tl = proto_get_u16(f.payload + 8);
	assert_true(10 + tl <= f.payload_len && tl < sizeof(m->topic));
	memcpy(m->topic, f.payload + 10, tl);
	m->topic[tl] = '\0';
	m->dlen = f.payload_len - 10 - tl;
	assert_true(m->dlen <= sizeof(m->data));
	memcpy(m->data, f.payload + 10 + tl, m->dlen);
	h_frame_free(&f);
}

static void
expect_msg(int fd, uint32_t sub_id, const char *topic, const char *data)
{
	struct msg m;

	read_msg(fd, &m);
	assert_int_equal(m.sub_id, sub_id);
	assert_string_equal(m.topic, topic);
	assert_int_equal(m.dlen, strlen(data));
	assert_memory_equal(m.data, data, m.dlen);
}

/* Nothing but the PING answer arrives: no MESSAGE is pending. */
static void
expect_quiet(int fd, uint32_t rid)
{
	h_raw_ping(fd, rid);
}

/* --- tests --- */

static void
test_wildcards_across_workers(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int s[4], p, i;
	struct msg m;

	for (i = 0; i < 4; i++)
		s[i] = raw(state, d); /* round-robin: both workers */
	p = raw(state, d);
	assert_int_equal(sub(s[0], 1, 0, "chat.lobby"), 1);
	assert_int_equal(sub(s[1], 1, 0, "chat.*"), 1);
	assert_int_equal(sub(s[2], 1, 0, "chat.>"), 1);
	assert_int_equal(sub(s[3], 1, 0, ">"), 1);
	assert_int_equal(sub(s[3], 2, 0, "*.lobby"), 2);
	assert_int_equal(sub(s[3], 3, 0, "$SYS.>"), 3);
	/* Five subscriptions match; s[3] gets two MESSAGEs. */
	assert_int_equal(pub(p, 10, "chat.lobby", "hi"), 5);
	expect_msg(s[0], 1, "chat.lobby", "hi");
	expect_msg(s[1], 1, "chat.lobby", "hi");
	expect_msg(s[2], 1, "chat.lobby", "hi");
	read_msg(s[3], &m);
	assert_true(m.sub_id == 1 || m.sub_id == 2);
	read_msg(s[3], &m);
	assert_true(m.sub_id == 1 || m.sub_id == 2);
	/* Deeper: only > and chat.>. */
	assert_int_equal(pub(p, 11, "chat.a.b", ""), 2);
	expect_msg(s[2], 1, "chat.a.b", "");
	expect_msg(s[3], 1, "chat.a.b", "");
	/* chat alone: only >. */
	assert_int_equal(pub(p, 12, "chat", "x"), 1);
	expect_msg(s[3], 1, "chat", "x");
	/* $ topics: clients may not publish; nothing reached $SYS.>. */
	sub_st(p, 13, 9, 0, "a..b", PROTO_INVALID_TOPIC);
	for (i = 0; i < 4; i++)
		expect_quiet(s[i], 100 + (uint32_t)i);
}

static void
test_echo_no_echo_answer_first(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int a = raw(state, d);
	struct h_frame f;
	uint8_t pl[64];

	assert_int_equal(sub(a, 1, 0, "me.x"), 1);
	assert_int_equal(sub(a, 2, 1, "me.*"), 2); /* NO_ECHO */
	/* The answer (receivers 1: the echo sub only) before the echo. */
	assert_int_equal(
	    h_send_req(a, OP_PUB, 7, pl, pub_payload(pl, "me.x", "e", 1)), 0);
	h_expect_frame(a, OP_PUB, PROTO_OK, 7, &f);
	assert_int_equal(proto_get_u32(f.payload), 1);
	h_frame_free(&f);
	expect_msg(a, 1, "me.x", "e");
	expect_quiet(a, 8);
	/* Another publisher reaches both. */
	assert_int_equal(pub(raw(state, d), 1, "me.x", "o"), 2);
	{
		struct msg m1, m2;

		read_msg(a, &m1);
		read_msg(a, &m2);
		assert_int_equal(m1.sub_id + m2.sub_id, 3); /* 1 and 2 */
		assert_string_equal(m2.topic, "me.x");
	}
}

static void
test_errors_and_limits(void **state)
{
	struct h_daemon *d = start(state,
	    "max_frame_size = 1024;\npubsub: { max_subscriptions = 3; };\n");
	int a = raw(state, d);
	static uint8_t big[1100];
	uint8_t pl[64];
	struct h_frame f;
	char *p;
	size_t n;

	/* SUBSCRIBE: short, length mismatch, sub_id 0, bits, syntax. */
	assert_int_equal(h_send_req(a, OP_SUB, 101, "\0\0\0\1\0\0\0", 7), 0);
	h_expect_frame(a, OP_SUB, PROTO_BAD_REQUEST, 101, &f);
	h_frame_free(&f);
	n = sub_payload(pl, 1, 0, "a.b");
	assert_int_equal(h_send_req(a, OP_SUB, 102, pl, n - 1), 0);
	h_expect_frame(a, OP_SUB, PROTO_BAD_REQUEST, 102, &f);
	h_frame_free(&f);
	sub_st(a, 103, 0, 0, "a.b", PROTO_BAD_REQUEST);
	sub_st(a, 104, 1, 2, "a.b", PROTO_BAD_REQUEST);
	sub_st(a, 105, 1, 0, "", PROTO_INVALID_TOPIC);
	sub_st(a, 106, 1, 0, "a.>.b", PROTO_INVALID_TOPIC);
	sub_st(a, 107, 1, 0, "a*", PROTO_INVALID_TOPIC);
	assert_int_equal(sub(a, 1, 0, "a.b"), 1);
	sub_st(a, 108, 1, 0, "a.c", PROTO_BAD_REQUEST); /* duplicate id */
	assert_int_equal(sub(a, 2, 0, "a.c"), 2);
	assert_int_equal(sub(a, 3, 0, "a.d"), 3);
	sub_st(a, 4, 4, 0, "a.e", PROTO_LIMIT_EXCEEDED);
	/* UNSUBSCRIBE: unknown id, bad length, one, then all. */
	assert_int_equal(h_send_req(a, OP_UNSUB, 5, "\0\0\0\x09", 4), 0);
	h_expect_frame(a, OP_UNSUB, PROTO_NOT_SUBSCRIBED, 5, &f);
	h_frame_free(&f);
	assert_int_equal(h_send_req(a, OP_UNSUB, 6, "\0\0\1", 3), 0);
	h_expect_frame(a, OP_UNSUB, PROTO_BAD_REQUEST, 6, &f);
	h_frame_free(&f);
	assert_int_equal(h_send_req(a, OP_UNSUB, 7, "\0\0\0\2", 4), 0);
	h_expect_frame(a, OP_UNSUB, PROTO_OK, 7, &f);
	assert_int_equal(proto_get_u32(f.payload), 2);
	h_frame_free(&f);
	assert_int_equal(h_send_req(a, OP_UNSUB, 8, "\0\0\0\0", 4), 0);
	h_expect_frame(a, OP_UNSUB, PROTO_OK, 8, &f);
	assert_int_equal(proto_get_u32(f.payload), 0);
	h_frame_free(&f);
	assert_int_equal(pub(a, 9, "a.b", "x"), 0);
	/* PUBLISH: bad lengths, wildcards, $, too large for a MESSAGE. */
	assert_int_equal(h_send_req(a, OP_PUB, 10, "\0", 1), 0);
	h_expect_frame(a, OP_PUB, PROTO_BAD_REQUEST, 10, &f);
	h_frame_free(&f);
	assert_int_equal(h_send_req(a, OP_PUB, 11,
			     "\0\x09"
			     "ab",
			     4),
	    0);
	h_expect_frame(a, OP_PUB, PROTO_BAD_REQUEST, 11, &f);
	h_frame_free(&f);
	assert_int_equal(send_pub(a, 12, "a.*", "", 0), 0);
	h_expect_frame(a, OP_PUB, PROTO_INVALID_TOPIC, 12, &f);
	h_frame_free(&f);
	assert_int_equal(send_pub(a, 13, "$SYS.x", "", 0), 0);
	h_expect_frame(a, OP_PUB, PROTO_FORBIDDEN, 13, &f);
	h_frame_free(&f);
	/* 1024 - 8 header = 1016 payload; topic+data must be <= 1006. */
	assert_int_equal(send_pub(a, 14, "t", big, 1005), 0);
	h_expect_frame(a, OP_PUB, PROTO_OK, 14, &f);
	h_frame_free(&f);
	assert_int_equal(send_pub(a, 15, "t", big, 1006), 0);
	h_expect_frame(a, OP_PUB, PROTO_LIMIT_EXCEEDED, 15, &f);
	p = (char *)f.payload;
	assert_non_null(strstr(p, "max_frame_size"));
	h_frame_free(&f);
	/* A push opcode as a request. */
	assert_int_equal(h_send_req(a, OP_MSG, 16, NULL, 0), 0);
	h_expect_frame(a, OP_MSG, PROTO_BAD_REQUEST, 16, &f);
	h_frame_free(&f);
	/* INFO and STATS lines. */
	assert_int_equal(h_send_req(a, PROTO_OP_INFO, 17, NULL, 0), 0);
	h_expect_frame(a, PROTO_OP_INFO, PROTO_OK, 17, &f);
	p = (char *)f.payload;
	assert_non_null(strstr(p, "pubsub_max_subscriptions 3\n"));
	assert_non_null(strstr(p, "pubsub_max_pending 4194304\n"));
	assert_non_null(strstr(p, "pubsub_slow_consumer disconnect\n"));
	h_frame_free(&f);
	assert_int_equal(h_stat_of(T(state), d, "pubsub_publish_total"), 2);
	assert_int_equal(h_stat_of(T(state), d, "pubsub_denied_total"), 1);
	assert_int_equal(
	    h_stat_of(T(state), d, "pubsub_subscriptions_current"), 0);
}

/* --- order with several publishers --- */

#define NPUB 3
#define NMSG 3000

struct pubarg {
	int fd;
	int id;
	int rc;
};

static void *
publisher(void *arg)
{
	struct pubarg *a = arg;
	uint8_t data[8];
	struct h_frame f;
	int i;

	for (i = 0; i < NMSG; i++) {
		proto_put_u32(data, (uint32_t)a->id);
		proto_put_u32(data + 4, (uint32_t)i);
		if (send_pub(a->fd, (uint32_t)i + 1, "ord.t", data, 8) != 0) {
			a->rc = -1;
			return NULL;
		}
		/* Read answers as we go, a window of 64. */
		if (i >= 64 && h_read_frame(a->fd, &f, 10000) == 0)
			h_frame_free(&f);
	}
	for (i = 0; i < 64 && i < NMSG; i++)
		if (h_read_frame(a->fd, &f, 10000) == 0)
			h_frame_free(&f);
	a->rc = 0;
	return NULL;
}

static void
test_order_several_publishers(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int s[2], i, k;
	uint32_t next[2][NPUB];
	struct pubarg pa[NPUB];
	pthread_t th[NPUB];
	struct msg m;

	for (k = 0; k < 2; k++) {
		s[k] = raw(state, d);
		assert_int_equal(sub(s[k], 5, 0, "ord.*"), 1);
	}
	memset(next, 0, sizeof(next));
	for (i = 0; i < NPUB; i++) {
		pa[i].fd = raw(state, d);
		pa[i].id = i;
		pa[i].rc = -2;
		assert_int_equal(
		    pthread_create(&th[i], NULL, publisher, &pa[i]), 0);
	}
	/* Read every message on both subscribers: in order per publisher. */
	for (i = 0; i < NPUB * NMSG; i++)
		for (k = 0; k < 2; k++) {
			uint32_t p, seq;

			read_msg(s[k], &m);
			assert_int_equal(m.dlen, 8);
			p = proto_get_u32(m.data);
			seq = proto_get_u32(m.data + 4);
			assert_true(p < NPUB);
			if (seq != next[k][p])
				fail_msg("subscriber %d: publisher %u seq %u, "
					 "expected %u",
				    k, p, seq, next[k][p]);
			next[k][p]++;
		}
	for (i = 0; i < NPUB; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(pa[i].rc, 0);
	}
	expect_quiet(s[0], 1);
}

/* --- barriers --- */

struct flood {
	int fd;
	int stop; /* atomic */
	int sent; /* read after the join */
};

static void *
flooder(void *arg)
{
	struct flood *fl = arg;
	struct h_frame f;

	while (!__atomic_load_n(&fl->stop, __ATOMIC_ACQUIRE)) {
		if (send_pub(fl->fd, 1, "bar.x", "z", 1) != 0 ||
		    h_read_frame(fl->fd, &f, 5000) != 0)
			break;
		h_frame_free(&f);
		fl->sent++;
	}
	return NULL;
}

static void
test_barriers(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int s = raw(state, d), p = raw(state, d), i, got;
	struct flood fl = {0};
	struct h_frame f;
	pthread_t th;
	char topic[32];

	/* Subscribe barrier: a PUBLISH sent after the answer reaches it. */
	for (i = 0; i < 200; i++) {
		snprintf(topic, sizeof(topic), "sb.%d", i);
		assert_int_equal(sub(s, (uint32_t)i + 1, 0, topic), 1);
		assert_int_equal(pub(p, (uint32_t)i + 1, topic, "x"), 1);
		expect_msg(s, (uint32_t)i + 1, topic, "x");
		assert_int_equal(h_send_req(s, OP_UNSUB, 1, "\0\0\0\0", 4), 0);
		h_expect_frame(s, OP_UNSUB, PROTO_OK, 1, &f);
		h_frame_free(&f);
	}
	/* Unsubscribe barrier under a flood from another connection. */
	fl.fd = p;
	assert_int_equal(pthread_create(&th, NULL, flooder, &fl), 0);
	for (i = 0; i < 50; i++) {
		uint8_t pl[32];

		assert_int_equal(h_send_req(s, OP_SUB, 1000, pl,
				     sub_payload(pl, 77, 0, "bar.*")),
		    0);
		h_expect_frame(s, OP_SUB, PROTO_OK, 1000, &f);
		h_frame_free(&f);
		h_sleep_ms(2);
		assert_int_equal(
		    h_send_req(s, OP_UNSUB, 1001, "\0\0\0\x4d", 4), 0);
		/* MESSAGEs for 77 may come until the answer, none after. */
		for (got = 0;;) {
			assert_int_equal(h_read_frame(s, &f, 5000), 0);
			if (f.opcode == OP_UNSUB) {
				assert_int_equal(f.status, PROTO_OK);
				assert_int_equal(f.request_id, 1001);
				h_frame_free(&f);
				break;
			}
			assert_int_equal(f.opcode, OP_MSG);
			got++;
			h_frame_free(&f);
		}
		expect_quiet(s, 2000 + (uint32_t)i);
	}
	__atomic_store_n(&fl.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_true(fl.sent > 0);
}

/* --- slow consumers --- */

/*
 * A subscriber with a 4 KiB receive buffer, set before connect(2) (set
 * after, the window already offered shrinks and loopback crawls through
 * retransmissions).
 */
static int
slow_sub(void **state, const struct h_daemon *d)
{
	struct sockaddr_in sin;
	int fd, small = 4096;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	h_track(T(state), fd);
	assert_int_equal(
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)d->port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(sub(fd, 1, 0, "slow.t"), 1);
	return fd;
}

static void
run_slow(void **state, const char *policy)
{
	char extra[200];
	struct h_daemon *d;
	int slow, ok, p, i, disc;
	static uint8_t data[8192];
	struct h_frame f;
	struct msg m;

	snprintf(extra, sizeof(extra),
	    "timeouts: { write = 60; };\n"
	    "pubsub: { max_pending = 65536; slow_consumer = \"%s\"; };\n",
	    policy);
	disc = strcmp(policy, "disconnect") == 0;
	d = start(state, extra);
	slow = slow_sub(state, d);
	ok = raw(state, d);
	assert_int_equal(sub(ok, 1, 0, "slow.t"), 1);
	p = raw(state, d);
	/* 2000 x 8 KiB: beyond 64 KiB + a loopback send buffer (4 MiB). */
	for (i = 0; i < 2000; i++) {
		data[0] = (uint8_t)i;
		assert_int_equal(
		    send_pub(p, (uint32_t)i + 1, "slow.t", data, sizeof(data)),
		    0);
		h_expect_frame(p, OP_PUB, PROTO_OK, (uint32_t)i + 1, &f);
		h_frame_free(&f);
		/* The healthy subscriber reads as it goes: gets them all. */
		read_msg(ok, &m);
		assert_int_equal(m.data[0], (uint8_t)i);
		assert_int_equal(m.lost, 0);
		/*
		 * disconnect: once cut, the slow subscriber has a second to
		 * read its NOTICE; stop here so that a slow machine (ASan,
		 * other load) still reads it in time.
		 */
		if (disc && i % 16 == 15 &&
		    h_log_count(d, "slow consumer: peer=127.0.0.1", NULL) > 0)
			break;
	}
	assert_true(
	    h_stat_of(T(state), d, "pubsub_messages_dropped_total") > 0);
	if (disc) {
		int notice = 0;

		assert_int_equal(
		    h_stat_of(T(state), d, "pubsub_slow_consumers_total"), 1);
		assert_true(h_log_wait(d, "slow consumer: peer=127.0.0.1",
		    "pubsub.max_pending", 2000));
		/* Now read: MESSAGEs, then the NOTICE, then the end. */
		for (;;) {
			if (h_read_frame(slow, &f, 5000) != 0)
				break;
			if (f.opcode == OP_NOTE) {
				assert_int_equal(proto_get_u16(f.payload), 1);
				notice = 1;
			}
			h_frame_free(&f);
		}
		/* Closed within a second of the cut, whatever was left. */
		assert_true(errno == EPIPE || errno == ECONNRESET);
		assert_int_equal(notice, 1);
	} else {
		uint32_t lost = 0;
		int n = 0;

		/* Still open: everything it reads, up to "last", shows the
		 * loss in the lost fields. */
		assert_int_equal(pub(p, 5000, "slow.t", "last"), 2);
		for (;;) {
			read_msg(slow, &m);
			lost += m.lost;
			n++;
			if (m.dlen == 4 && memcmp(m.data, "last", 4) == 0)
				break;
		}
		assert_true(lost > 0);
		assert_int_equal((uint32_t)n + lost, 2001);
		assert_int_equal(
		    h_stat_of(T(state), d, "pubsub_slow_consumers_total"), 0);
	}
}

static void
test_slow_consumer_disconnect(void **state)
{
	run_slow(state, "disconnect");
}

static void
test_slow_consumer_drop(void **state)
{
	run_slow(state, "drop");
}

/*
 * Read slow's frames until its NOTICE; the MESSAGE bytes before it.  The
 * NOTICE must be SLOW_CONSUMER and the stream must end right after it.
 */
static size_t
read_until_notice(int slow)
{
	struct h_frame f;
	size_t bytes = 0;
	int notice = 0;

	while (!notice) {
		if (h_read_frame(slow, &f, 5000) != 0)
			fail_msg("no NOTICE after %zu bytes of MESSAGEs: %s",
			    bytes, strerror(errno));
		if (f.opcode == OP_NOTE) {
			assert_int_equal(proto_get_u16(f.payload), 1);
			notice = 1;
		} else {
			assert_int_equal(f.opcode, OP_MSG);
			bytes += PROTO_LEN_SIZE + f.len;
		}
		h_frame_free(&f);
	}
	assert_int_equal(h_wait_eof(slow, 5000, NULL), H_EOF);
	return bytes;
}

/*
 * disconnect discards what is queued: with max_pending (16 MiB) far above
 * what the kernel can hold toward the peer (tcp_wmem's maximum plus its
 * 4 KiB receive buffer), the MESSAGEs that arrive before the NOTICE are
 * what the kernel held, not the 16 MiB queue behind them.  Publishes are
 * pipelined so that the reading starts within the cut's last second.
 */
static void
test_slow_consumer_discards_queue(void **state)
{
	static uint8_t data[16384];
	struct h_daemon *d;
	unsigned long wmem[3] = {0, 0, 4194304};
	struct h_frame f;
	size_t got;
	FILE *fp;
	int slow, p, i;

	if ((fp = fopen("/proc/sys/net/ipv4/tcp_wmem", "r")) != NULL) {
		if (fscanf(fp, "%lu %lu %lu", &wmem[0], &wmem[1], &wmem[2]) !=
		    3)
			wmem[2] = 4194304;
		fclose(fp);
	}
	d = start(state,
	    "timeouts: { write = 60; };\n"
	    "pubsub: { max_pending = 16777216; };\n");
	slow = slow_sub(state, d);
	p = raw(state, d);
	/* 1600 x 16 KiB = 25 MiB: beyond max_pending + the kernel's share. */
	for (i = 0; i < 1600; i++)
		assert_int_equal(
		    send_pub(p, (uint32_t)i + 1, "slow.t", data, sizeof(data)),
		    0);
	assert_true(h_log_wait(
	    d, "slow consumer: peer=127.0.0.1", "reason=pending", 5000));
	got = read_until_notice(slow);
	print_message("MESSAGE bytes before the NOTICE: %zu (tcp_wmem max "
		      "%lu)\n",
	    got, wmem[2]);
	assert_true(got <= wmem[2] + (1u << 20));
	for (i = 0; i < 1600; i++) {
		h_expect_frame(p, OP_PUB, PROTO_OK, (uint32_t)i + 1, &f);
		h_frame_free(&f);
	}
	assert_int_equal(
	    h_stat_of(T(state), d, "pubsub_slow_consumers_total"), 1);
	assert_true(
	    h_stat_of(T(state), d, "pubsub_messages_dropped_total") > 256);
}

/*
 * A subscriber that falls behind, well within max_pending, and then reads:
 * past PSUB_REFQ_AT of output its MESSAGEs queue as references, encoded as
 * the socket drains.  It gets every one, in order, none lost; and its
 * UNSUBSCRIBE sent with megabytes queued is answered after all of them
 * (the unsubscribe barrier), nothing after.  Under either policy.
 */
static void
run_backlog(void **state, const char *policy)
{
	static uint8_t data[8192];
	enum { N = 1200 }; /* 9.6 MB: beyond the kernel's share (4 MiB) */
	char extra[200];
	struct h_daemon *d;
	struct h_frame f;
	struct msg m;
	uint64_t pend = 0;
	int slow, p, i, waited;

	snprintf(extra, sizeof(extra),
	    "timeouts: { write = 60; };\n"
	    "pubsub: { max_pending = 33554432; slow_consumer = \"%s\"; };\n",
	    policy);
	d = start(state, extra);
	slow = slow_sub(state, d);
	p = raw(state, d);
	for (i = 0; i < N; i++) {
		proto_put_u32(data, (uint32_t)i);
		assert_int_equal(
		    send_pub(p, (uint32_t)i + 1, "slow.t", data, sizeof(data)),
		    0);
	}
	for (i = 0; i < N; i++) {
		h_expect_frame(p, OP_PUB, PROTO_OK, (uint32_t)i + 1, &f);
		assert_int_equal(proto_get_u32(f.payload), 1);
		h_frame_free(&f);
	}
	/* Wait until the server holds megabytes toward it (the gauge). */
	for (waited = 0; waited < 5000; waited += 50) {
		pend = h_stat_of(T(state), d, "pubsub_pending_bytes_current");
		if (pend >= (2u << 20))
			break;
		h_sleep_ms(50);
	}
	print_message("pending toward the subscriber: %llu bytes\n",
	    (unsigned long long)pend);
	assert_true(pend >= (2u << 20));
	assert_int_equal(h_send_req(slow, OP_UNSUB, 7, "\0\0\0\1", 4), 0);
	for (i = 0; i < N; i++) {
		read_msg(slow, &m);
		assert_int_equal(m.sub_id, 1);
		assert_int_equal(m.lost, 0);
		assert_int_equal(m.dlen, sizeof(data));
		if (proto_get_u32(m.data) != (uint32_t)i)
			fail_msg(
			    "MESSAGE %d carries %u", i, proto_get_u32(m.data));
	}
	h_expect_frame(slow, OP_UNSUB, PROTO_OK, 7, &f);
	h_frame_free(&f);
	expect_quiet(slow, 8);
	assert_int_equal(pub(p, 5000, "slow.t", "after"), 0);
	expect_quiet(slow, 9);
	assert_int_equal(
	    h_stat_of(T(state), d, "pubsub_messages_dropped_total"), 0);
	assert_int_equal(
	    h_stat_of(T(state), d, "pubsub_slow_consumers_total"), 0);
}

static void
test_backlog_disconnect(void **state)
{
	run_backlog(state, "disconnect");
}

static void
test_backlog_drop(void **state)
{
	run_backlog(state, "drop");
}

/*
 * A write stall (timeouts.write with the socket taking nothing) is a slow
 * consumer too, well below max_pending.  disconnect: the queue is
 * discarded, NOTICE, close.  drop: the connection stays and MESSAGEs are
 * dropped while it stalls; the next one it gets carries the count.
 */
static void
run_stall(void **state, const char *policy)
{
	static uint8_t data[16384];
	char extra[200];
	struct h_daemon *d;
	struct h_frame f;
	struct msg m;
	size_t got;
	int slow, p, i, n;
	uint32_t lost = 0;

	snprintf(extra, sizeof(extra),
	    "timeouts: { write = 1; };\n"
	    "pubsub: { max_pending = 16777216; slow_consumer = \"%s\"; };\n",
	    policy);
	d = start(state, extra);
	slow = slow_sub(state, d);
	p = raw(state, d);
	/* 400 x 16 KiB = 6.4 MiB: more than the kernel holds, < max_pending */
	for (i = 0; i < 400; i++) {
		proto_put_u16(data, (uint16_t)i);
		assert_int_equal(
		    send_pub(p, (uint32_t)i + 1, "slow.t", data, sizeof(data)),
		    0);
		h_expect_frame(p, OP_PUB, PROTO_OK, (uint32_t)i + 1, &f);
		h_frame_free(&f);
	}
	if (strcmp(policy, "disconnect") == 0) {
		assert_true(h_log_wait(
		    d, "slow consumer: peer=127.0.0.1", "reason=stall", 4000));
		got = read_until_notice(slow);
		assert_true(got + (1u << 20) < 400 * sizeof(data));
		assert_int_equal(
		    h_stat_of(T(state), d, "pubsub_slow_consumers_total"), 1);
		assert_int_equal(h_stat_of(T(state), d, "timeouts_write"), 0);
		return;
	}
	/* Past the stall: "gone" is dropped, then reading resumes. */
	usleep(1500 * 1000);
	assert_int_equal(pub(p, 1000, "slow.t", "gone"), 1);
	for (n = 0; n < 400; n++) {
		read_msg(slow, &m);
		lost += m.lost;
		assert_int_equal(m.dlen, sizeof(data));
		assert_int_equal(proto_get_u16(m.data), n);
	}
	assert_int_equal(lost, 0);
	assert_int_equal(pub(p, 1001, "slow.t", "last"), 1);
	read_msg(slow, &m);
	assert_int_equal(m.dlen, 4);
	assert_memory_equal(m.data, "last", 4);
	assert_int_equal(m.lost, 1);
	assert_int_equal(
	    h_stat_of(T(state), d, "pubsub_slow_consumers_total"), 0);
}

static void
test_write_stall_disconnect(void **state)
{
	run_stall(state, "disconnect");
}

static void
test_write_stall_drop(void **state)
{
	run_stall(state, "drop");
}

/* --- permissions --- */

static const char acl_a[] =
    "pubsub: { acl = ( { peer = \"127.0.0.0/8\"; publish = [ \"chat.>\" ];\n"
    "  subscribe = [ \"chat.>\", \"news.*\" ];\n"
    "  deny_subscribe = [ \"chat.secret\" ]; } ); };\n";
static const char acl_b[] =
    "pubsub: { acl = ( { peer = \"127.0.0.0/8\"; publish = [ \"chat.>\" ];\n"
    "  subscribe = [ \"chat.>\" ]; } ); };\n";

static void
test_acl_and_reload(void **state)
{
	struct h_daemon *d = start(state, acl_a);
	int a = raw(state, d), b = raw(state, d);
	struct h_opts o = {0};
	struct h_frame f;
	char buf[512];

	sub_st(a, 1, 1, 0, ">", PROTO_FORBIDDEN);       /* not covered */
	sub_st(a, 2, 1, 0, "chat.*", PROTO_FORBIDDEN);  /* overlaps deny */
	sub_st(a, 3, 1, 0, "audit.x", PROTO_FORBIDDEN); /* no allow */
	assert_int_equal(sub(a, 4, 0, "news.sport"), 1);
	assert_int_equal(sub(b, 5, 0, "chat.room.>"), 1);
	assert_int_equal(send_pub(b, 6, "news.sport", "x", 1), 0);
	h_expect_frame(b, OP_PUB, PROTO_FORBIDDEN, 6, &f);
	h_frame_free(&f);
	assert_int_equal(pub(a, 7, "chat.room.1", "hey"), 1);
	expect_msg(b, 5, "chat.room.1", "hey");
	assert_int_equal(h_stat_of(T(state), d, "pubsub_denied_total"), 4);
	/* news.* withdrawn: a is told and closed; b keeps going. */
	snprintf(buf, sizeof(buf), "workers = 2;\n%s", acl_b);
	o.extra = buf;
	h_write_config(d, &o);
	h_signal(d, SIGHUP);
	assert_int_equal(h_read_frame(a, &f, 5000), 0);
	assert_int_equal(f.opcode, OP_NOTE);
	assert_int_equal(proto_get_u16(f.payload), 3);
	assert_non_null(strstr((char *)f.payload + 2, "news.sport"));
	h_frame_free(&f);
	assert_int_equal(h_wait_eof(a, 5000, NULL), H_EOF);
	assert_int_equal(pub(b, 8, "chat.room.2", "still"), 1);
	expect_msg(b, 5, "chat.room.2", "still");
}

static void
test_bad_acl_refused_by_t(void **state)
{
	char path[512], *argv[5];
	struct h_run *r = malloc(sizeof(*r));

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/bad.conf", h_scratch(T(state)));
	h_write_file(path,
	    "pubsub: { acl = ( { peer = \"10.0.0.0/8\";\n"
	    "  publish = [ \"a.>.b\" ]; } ); };\n");
	argv[0] = (char *)SOCKETD_BIN;
	argv[1] = (char *)"-t";
	argv[2] = (char *)"-c";
	argv[3] = path;
	argv[4] = NULL;
	h_run(argv, 10000, r);
	assert_int_not_equal(r->status, 0);
	assert_non_null(strstr(r->err, "bad.conf:2: pubsub.acl[0].publish"));
	assert_non_null(strstr(r->err, "'>' must be the last token"));
	free(r);
}

/* --- many subscribers, shutdown, resets, off --- */

static void
test_many_subscribers(void **state)
{
	enum { NS = 200, NM = 50 };
	struct h_daemon *d = start(state, NULL);
	static int s[NS];
	char data[16];
	int i, k, p;

	for (i = 0; i < NS; i++) {
		s[i] = raw(state, d);
		assert_int_equal(sub(s[i], 1, 0, "room.big"), 1);
	}
	p = raw(state, d);
	for (k = 0; k < NM; k++) {
		snprintf(data, sizeof(data), "m%d", k);
		assert_int_equal(pub(p, (uint32_t)k + 1, "room.big", data), NS);
	}
	for (i = 0; i < NS; i++)
		for (k = 0; k < NM; k++) {
			snprintf(data, sizeof(data), "m%d", k);
			expect_msg(s[i], 1, "room.big", data);
		}
	assert_int_equal(
	    h_stat_of(T(state), d, "pubsub_messages_delivered_total"), NS * NM);
	assert_true(h_stat_of(T(state), d, "pubsub_inbox_batches_total") > 0);
}

static void
test_sigterm_notice(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int s = raw(state, d);
	struct h_frame f;

	assert_int_equal(sub(s, 1, 0, "x"), 1);
	h_signal(d, SIGTERM);
	assert_int_equal(h_read_frame(s, &f, 5000), 0);
	assert_int_equal(f.opcode, OP_NOTE);
	assert_int_equal(proto_get_u16(f.payload), 2);
	h_frame_free(&f);
	assert_int_equal(h_wait_eof(s, 5000, NULL), H_EOF);
	assert_int_equal(h_wait_exit(d, 10000), 0);
}

static void
test_subscriber_resets_mid_stream(void **state)
{
	struct h_daemon *d = start(state, NULL);
	int s = raw(state, d), ok = raw(state, d), p = raw(state, d), i;
	static uint8_t data[1500];

	assert_int_equal(sub(s, 1, 0, "r.t"), 1);
	assert_int_equal(sub(ok, 1, 0, "r.t"), 1);
	for (i = 0; i < 300; i++) {
		struct h_frame f;

		if (i == 100)
			h_close_reset(T(state), s);
		assert_int_equal(
		    send_pub(p, (uint32_t)i + 1, "r.t", data, sizeof(data)), 0);
		h_expect_frame(p, OP_PUB, PROTO_OK, (uint32_t)i + 1, &f);
		h_frame_free(&f);
		{
			struct msg m;

			read_msg(ok, &m);
		}
	}
	h_ping(h_sdc(T(state), "127.0.0.1", d->port));
	assert_int_equal(h_stat_wait(h_sdc(T(state), "127.0.0.1", d->port),
			     "pubsub_subscriptions_current", 1, 3000),
	    1);
}

/* --- socketd-cli subscribe and publish --- */

struct cli_run {
	char *argv[10];
	struct h_run r;
};

static void *
cli_thread(void *arg)
{
	struct cli_run *c = arg;

	h_run(c->argv, 20000, &c->r);
	return NULL;
}

static void
test_cli_subscribe_publish(void **state)
{
	struct h_daemon *d = start(state, NULL);
	struct cli_run *s = calloc(1, sizeof(*s)), *p = calloc(1, sizeof(*p));
	char port[16];
	pthread_t th;

	assert_true(s != NULL && p != NULL);
	snprintf(port, sizeof(port), "%d", d->port);
	s->argv[0] = (char *)SOCKETD_CLI;
	s->argv[1] = (char *)"-p";
	s->argv[2] = port;
	s->argv[3] = (char *)"subscribe";
	s->argv[4] = (char *)"cli.>";
	s->argv[5] = (char *)"--count";
	s->argv[6] = (char *)"2";
	assert_int_equal(pthread_create(&th, NULL, cli_thread, s), 0);
	assert_int_equal(h_stat_wait(h_sdc(T(state), "127.0.0.1", d->port),
			     "pubsub_subscriptions_current", 1, 5000),
	    1);
	memcpy(p->argv, s->argv, 3 * sizeof(char *));
	p->argv[3] = (char *)"publish";
	p->argv[4] = (char *)"cli.a";
	p->argv[5] = (char *)"two words";
	h_run(p->argv, 10000, &p->r);
	assert_int_equal(p->r.status, 0);
	assert_string_equal(p->r.out, "1\n");
	p->argv[4] = (char *)"cli.b";
	p->argv[5] = (char *)"line\nbreak";
	h_run(p->argv, 10000, &p->r);
	assert_string_equal(p->r.out, "1\n");
	/* Errors: a wildcard topic is INVALID_TOPIC, exit 1. */
	p->argv[4] = (char *)"cli.*";
	h_run(p->argv, 10000, &p->r);
	assert_int_equal(p->r.status, 1);
	assert_non_null(strstr(p->r.err, "INVALID_TOPIC"));
	pthread_join(th, NULL);
	assert_int_equal(s->r.status, 0);
	assert_string_equal(s->r.out, "cli.a two words\ncli.b line\\nbreak\n");
	assert_non_null(strstr(s->r.err, "subscribed to cli.>"));
	free(s);
	free(p);
}

/* bench --help, with or without --op publish, documents the publish options. */
static void
test_cli_bench_help(void **state)
{
	static const char *const opts[] = {"--publishers", "--subscribers",
	    "--topics", "--size", "--rate", "--duration"};
	char *argv[6] = {(char *)SOCKETD_CLI, (char *)"bench", (char *)"--help",
	    NULL, NULL, NULL};
	struct h_run r;
	size_t i;
	int pass;

	(void)state;
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			argv[2] = (char *)"--op";
			argv[3] = (char *)"publish";
			argv[4] = (char *)"--help";
		}
		h_run(argv, 10000, &r);
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, "bench --op publish"));
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (strstr(r.out, opts[i]) == NULL)
				fail_msg("bench%s --help: no %s",
				    pass ? " --op publish" : "", opts[i]);
	}
}

static void
test_disabled(void **state)
{
	struct h_daemon *d = start(state, "pubsub: { enabled = false; };\n");
	int a = raw(state, d);
	uint8_t p[32];
	struct h_frame f;

	assert_int_equal(
	    h_send_req(a, OP_SUB, 1, p, sub_payload(p, 1, 0, "a")), 0);
	h_expect_frame(a, OP_SUB, PROTO_UNKNOWN_OPCODE, 1, &f);
	h_frame_free(&f);
	assert_int_equal(h_send_req(a, PROTO_OP_OPCODES, 2, NULL, 0), 0);
	h_expect_frame(a, PROTO_OP_OPCODES, PROTO_OK, 2, &f);
	assert_null(strstr((char *)f.payload, "pubsub"));
	h_frame_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_wildcards_across_workers, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_echo_no_echo_answer_first, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_errors_and_limits, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_order_several_publishers, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_barriers, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_slow_consumer_disconnect, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_slow_consumer_drop, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_slow_consumer_discards_queue, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_backlog_disconnect, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_backlog_drop, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_write_stall_disconnect, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_write_stall_drop, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_acl_and_reload, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_bad_acl_refused_by_t, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_many_subscribers, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_sigterm_notice, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_subscriber_resets_mid_stream, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_cli_subscribe_publish, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_cli_bench_help, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_disabled, h_setup, h_teardown),
	};

	return cmocka_run_group_tests(tests, h_group_setup, NULL);
}
