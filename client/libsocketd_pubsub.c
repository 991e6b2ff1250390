/*
 * libsocketd_pubsub.c: pub/sub for the blocking client (protocol v1.1,
 * opcodes 0x10-0x14) and the push frames every blocking call may meet.
 *
 * Pushes are frames with status 0 and request_id 0 (libsocketd never
 * sends request_id 0, so an answer can never look like one).  sd_push
 * sorts them: GOAWAY marks the connection draining (the next request
 * reconnects, libsocketd.c); a MESSAGE for one of this client's
 * subscriptions is copied into a FIFO that socketd_next_message empties;
 * a NOTICE SLOW_CONSUMER or PERMISSIONS_CHANGED marks it closing (the
 * server closes next), SHUTDOWN draining.  Every push also goes to the
 * program's push handler, except the MESSAGEs that are queued.
 *
 * Subscriptions are remembered (id, filter, flags) and renewed on every
 * reconnect, so a GOAWAY costs a subscriber only the messages published
 * while it was away (delivery is at most once anyway).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <socketd/client.h>

#include "libsocketd_int.h"

#define NOTICE_SLOW_CONSUMER       1
#define NOTICE_SHUTDOWN            2
#define NOTICE_PERMISSIONS_CHANGED 3

/* A topic or filter's length: NULL, or why it is refused. */
static const char *
topic_problem(const char *topic)
{
	if (topic == NULL || *topic == '\0')
		return "empty topic";
	if (strlen(topic) > SD_TOPIC_MAX)
		return "topic longer than 255 bytes";
	return NULL;
}

int
sd_check_subscribe(char *err, const char *filter, unsigned flags)
{
	const char *why;

	if ((why = topic_problem(filter)) != NULL) {
		sdc_seterr(err, "subscribe: %s", why);
		return SOCKETD_E_INVALID;
	}
	if ((flags & ~SOCKETD_SUB_NO_ECHO) != 0) {
		sdc_seterr(err, "subscribe: unknown flags 0x%x", flags);
		return SOCKETD_E_INVALID;
	}
	return SOCKETD_E_OK;
}

int
sd_check_publish(char *err, const char *topic, const void *data, size_t len)
{
	const char *why;

	if ((why = topic_problem(topic)) != NULL) {
		sdc_seterr(err, "publish: %s", why);
		return SOCKETD_E_INVALID;
	}
	if (data == NULL && len > 0) {
		sdc_seterr(err, "publish: no data given for %zu bytes", len);
		return SOCKETD_E_INVALID;
	}
	return SOCKETD_E_OK;
}

size_t
sd_enc_subscribe(uint8_t *buf, size_t cap, uint32_t sub_id, const char *filter,
    unsigned flags)
{
	size_t n = strlen(filter);

	if (cap < 8 + n)
		return 0;
	proto_put_u32(buf, sub_id);
	buf[4] = (flags & SOCKETD_SUB_NO_ECHO) != 0 ? 1 : 0;
	buf[5] = 0;
	proto_put_u16(buf + 6, (uint16_t)n);
	memcpy(buf + 8, filter, n);
	return 8 + n;
}

int
sd_enc_publish(uint8_t **out, size_t *outlen, const char *topic, size_t tlen,
    const void *data, size_t len)
{
	uint8_t *p;

	*out = NULL;
	*outlen = 0;
	if (tlen > UINT16_MAX || len > SIZE_MAX - 3 - tlen ||
	    (p = malloc(2 + tlen + len + 1)) == NULL)
		return -1;
	proto_put_u16(p, (uint16_t)tlen);
	memcpy(p + 2, topic, tlen);
	if (len > 0)
		memcpy(p + 2 + tlen, data, len);
	*out = p;
	*outlen = 2 + tlen + len;
	return 0;
}

int
sd_parse_message(
    const uint8_t *p, size_t n, struct socketd_message *m, char *topic_copy)
{
	size_t tl;

	if (n < 10)
		return -1;
	tl = proto_get_u16(p + 8);
	if (tl == 0 || tl > SD_TOPIC_MAX || n - 10 < tl)
		return -1;
	m->sub_id = proto_get_u32(p);
	m->lost = proto_get_u32(p + 4);
	memcpy(topic_copy, p + 10, tl);
	topic_copy[tl] = '\0';
	m->topic = topic_copy;
	m->topic_len = tl;
	m->data = p + 10 + tl;
	m->len = n - 10 - tl;
	return 0;
}

static struct sd_sub *
find_sub(struct socketd_client *c, uint32_t id)
{
	size_t i;

	for (i = 0; i < c->n_subs; i++)
		if (c->subs[i].id == id)
			return &c->subs[i];
	return NULL;
}

/* Queue a copy of a MESSAGE (payload p[0..n)) for socketd_next_message. */
static void
queue_message(struct socketd_client *c, const uint8_t *p, size_t n)
{
	struct socketd_message m;
	char topic[SD_TOPIC_MAX + 1];
	struct sd_msg *q;

	if (sd_parse_message(p, n, &m, topic) == -1)
		return; /* malformed: ignored as a push we cannot read */
	if (find_sub(c, m.sub_id) == NULL)
		return; /* after its unsubscribe, or not ours */
	if (c->mq_len >= SD_MSG_QUEUE_MAX ||
	    (q = malloc(sizeof(*q) + m.topic_len + 1 + m.len)) == NULL) {
		c->mq_lost += 1 + m.lost;
		return;
	}
	q->next = NULL;
	q->m = m;
	memcpy(q->data, topic, m.topic_len + 1);
	if (m.len > 0)
		memcpy(q->data + m.topic_len + 1, m.data, m.len);
	q->m.topic = (const char *)q->data;
	q->m.data = q->data + m.topic_len + 1;
	q->m.lost += c->mq_lost;
	c->mq_lost = 0;
	if (c->mq_tail != NULL)
		c->mq_tail->next = q;
	else
		c->mq_head = q;
	c->mq_tail = q;
	c->mq_len++;
}

static void
forget_subs(struct socketd_client *c)
{
	size_t i;

	for (i = 0; i < c->n_subs; i++)
		free(c->subs[i].filter);
	c->n_subs = 0;
}

void
sd_push(struct socketd_client *c, const struct proto_resp *r)
{
	unsigned reason;

	switch (r->opcode) {
	case SOCKETD_OP_GOAWAY:
		c->draining = 1;
		break;
	case SOCKETD_OP_PUBSUB_MESSAGE:
		if (r->payload_len >= 4 &&
		    find_sub(c, proto_get_u32(r->payload)) != NULL) {
			queue_message(c, r->payload, r->payload_len);
			return;
		}
		break;
	case SOCKETD_OP_PUBSUB_NOTICE:
		if (r->payload_len < 2)
			break;
		reason = proto_get_u16(r->payload);
		if (reason == NOTICE_SHUTDOWN)
			c->draining = 1;
		else if (reason == NOTICE_SLOW_CONSUMER ||
		    reason == NOTICE_PERMISSIONS_CHANGED) {
			/* Closed next, subscriptions gone: not renewed. */
			c->closing = 1;
			forget_subs(c);
			(void)snprintf(c->notice, sizeof(c->notice),
			    "the server closed the connection: %s: %.*s",
			    reason == NOTICE_SLOW_CONSUMER
				? "slow consumer"
				: "permissions changed",
			    (int)(r->payload_len - 2 > 200
				    ? 200
				    : r->payload_len - 2),
			    (const char *)r->payload + 2);
		}
		break;
	default:
		break;
	}
	if (c->push_fn != NULL) {
		c->in_push = 1;
		c->push_fn(c->push_arg, r->opcode, r->payload, r->payload_len);
		c->in_push = 0;
	}
}

static void
drop_messages(struct socketd_client *c, uint32_t sub_id)
{
	struct sd_msg **pp = &c->mq_head, *q;

	c->mq_tail = NULL;
	while ((q = *pp) != NULL) {
		if (sub_id == 0 || q->m.sub_id == sub_id) {
			*pp = q->next;
			free(q);
			c->mq_len--;
		} else {
			c->mq_tail = q;
			pp = &q->next;
		}
	}
}

void
sd_pubsub_free(struct socketd_client *c)
{

	drop_messages(c, 0);
	free(c->cur);
	c->cur = NULL;
	forget_subs(c);
	free(c->subs);
	c->subs = NULL;
	c->n_subs = 0;
	c->subs_cap = 0;
}

static int
send_subscribe(struct socketd_client *c, const struct sd_sub *s)
{
	uint8_t buf[8 + SD_TOPIC_MAX];
	struct proto_resp r;
	size_t n;

	n = sd_enc_subscribe(buf, sizeof(buf), s->id, s->filter, s->flags);
	return sd_call_ok(
	    c, SOCKETD_OP_PUBSUB_SUBSCRIBE, buf, n, &r, "subscribe");
}

int
sd_resubscribe(struct socketd_client *c)
{
	size_t i;
	int rv = SOCKETD_E_OK;

	c->resubscribing = 1;
	for (i = 0; i < c->n_subs && rv == SOCKETD_E_OK; i++)
		if (c->subs[i].live) /* not one whose SUBSCRIBE is on its way */
			rv = send_subscribe(c, &c->subs[i]);
	c->resubscribing = 0;
	return rv;
}

int
socketd_subscribe(struct socketd_client *c, const char *filter, unsigned flags,
    uint32_t *sub_id)
{
	struct sd_sub s, *ns;
	size_t ncap;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = sd_check_subscribe(c->err, filter, flags)) != 0)
		return rv;
	if (c->n_subs == c->subs_cap) {
		ncap = c->subs_cap == 0 ? 4 : c->subs_cap * 2;
		if ((ns = realloc(c->subs, ncap * sizeof(*ns))) == NULL)
			return sd_fail(c, SOCKETD_E_NOMEM, "out of memory");
		c->subs = ns;
		c->subs_cap = ncap;
	}
	if (++c->next_sub_id == 0)
		c->next_sub_id = 1;
	s.id = c->next_sub_id;
	s.flags = flags;
	s.live = 0;
	if ((s.filter = strdup(filter)) == NULL)
		return sd_fail(c, SOCKETD_E_NOMEM, "out of memory");
	/* Known before the answer: its first MESSAGE may come right after. */
	c->subs[c->n_subs++] = s;
	if ((rv = send_subscribe(c, &s)) != 0) {
		ns = find_sub(c, s.id);
		if (ns != NULL) {
			free(ns->filter);
			*ns = c->subs[--c->n_subs];
		}
		return rv;
	}
	if ((ns = find_sub(c, s.id)) != NULL)
		ns->live = 1;
	if (sub_id != NULL)
		*sub_id = s.id;
	return SOCKETD_E_OK;
}

int
socketd_unsubscribe(struct socketd_client *c, uint32_t sub_id)
{
	struct proto_resp r;
	struct sd_sub *s;
	uint8_t buf[4];
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	proto_put_u32(buf, sub_id);
	rv = sd_call_ok(
	    c, SOCKETD_OP_PUBSUB_UNSUBSCRIBE, buf, 4, &r, "unsubscribe");
	if (rv != SOCKETD_E_OK && rv != SOCKETD_E_SERVER)
		return rv;
	/* Gone on the server either way (NOT_SUBSCRIBED): forget it. */
	if (sub_id == 0) {
		forget_subs(c);
	} else if ((s = find_sub(c, sub_id)) != NULL) {
		free(s->filter);
		*s = c->subs[--c->n_subs];
	}
	drop_messages(c, sub_id);
	return rv;
}

int
socketd_publish(struct socketd_client *c, const char *topic, const void *data,
    size_t len, uint32_t *receivers)
{
	struct proto_resp r;
	uint8_t *buf;
	size_t n;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = sd_check_publish(c->err, topic, data, len)) != 0)
		return rv;
	if (sd_enc_publish(&buf, &n, topic, strlen(topic), data, len) == -1)
		return sd_fail(c, SOCKETD_E_NOMEM, "out of memory");
	rv = sd_call_ok(c, SOCKETD_OP_PUBSUB_PUBLISH, buf, n, &r, "publish");
	free(buf);
	if (rv != 0)
		return rv;
	if (r.payload_len != 4) {
		(void)sd_fail(c, 0,
		    "publish: server answered %zu bytes, expected 4",
		    r.payload_len);
		return sd_fail_conn(c, EPROTO);
	}
	if (receivers != NULL)
		*receivers = proto_get_u32(r.payload);
	return SOCKETD_E_OK;
}

int64_t
sd_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take the head of the queue into c->cur. */
static int
take_message(struct socketd_client *c, const struct socketd_message **m)
{
	struct sd_msg *q = c->mq_head;

	c->mq_head = q->next;
	if (c->mq_head == NULL)
		c->mq_tail = NULL;
	c->mq_len--;
	c->cur = q;
	*m = &q->m;
	return SOCKETD_E_OK;
}

int
socketd_next_message(
    struct socketd_client *c, int timeout_ms, const struct socketd_message **m)
{
	struct proto_resp r;
	char why[SDC_ERRLEN];
	int64_t deadline;
	int rv, e, reconnected = 0;

	if (c == NULL || m == NULL)
		return SOCKETD_E_INVALID;
	*m = NULL;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	free(c->cur);
	c->cur = NULL;
	if (c->mq_head != NULL)
		return take_message(c, m);
	if (timeout_ms < -1)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "invalid timeout %d ms: expected -1, 0 or more",
		    timeout_ms);
	if (c->conn.fd < 0)
		return sd_fail(c, SOCKETD_E_NOT_CONNECTED, "not connected");
	if (c->q_len > 0)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "%zu pipelined answer(s) pending: read them with "
		    "socketd_recv first",
		    c->q_len);
	/* 0: one look without waiting (a deadline already reached). */
	deadline = timeout_ms < 0 ? -1 : sd_now_ms() + timeout_ms;
	for (;;) {
		if (c->draining && !c->closing) {
			if (reconnected++ > 0 || (rv = sd_reconnect(c)) != 0)
				return rv != 0 ? rv
					       : sd_fail(c, SOCKETD_E_CLOSED,
						     "connection drained "
						     "twice");
			c->err[0] = '\0';
		}
		if (sdc_recv_until(&c->conn, &r, deadline, c->err) == -1) {
			e = errno;
			if (e == ETIMEDOUT)
				return sd_fail(c, SOCKETD_E_TIMEOUT,
				    "no message within %d ms", timeout_ms);
			/* Closed at a boundary after GOAWAY: reconnect. */
			if (e == ECONNRESET && c->conn.buf_len == 0 &&
			    c->draining && !c->closing) {
				sdc_close(&c->conn);
				continue;
			}
			if (c->closing) {
				(void)snprintf(
				    why, sizeof(why), "%s", c->notice);
				rv = sd_fail_conn(c, e);
				return sd_fail(c, rv, "%s", why);
			}
			return sd_fail_conn(c, e);
		}
		if (r.request_id != 0 || r.status != PROTO_OK) {
			(void)sd_fail(c, 0,
			    "server sent an answer (request_id %" PRIu32
			    ", status %s) when none was due",
			    r.request_id, socketd_status_name(r.status));
			return sd_fail_conn(c, EPROTO);
		}
		sd_push(c, &r);
		if (c->mq_head != NULL)
			return take_message(c, m);
	}
}
