/*
 * Pub/sub on the workers (psub.h has the design, the threads and locks).
 */
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "log.h"
#include "psub.h"
#include "pubsub.h"
#include "server.h"
#include "tls.h"
#include "worker.h"

/* One published message, shared by the workers it goes to. */
struct psub_msg {
	int refs; /* atomic: destination workers yet to deliver it */
	uint32_t tlen;
	uint64_t pub; /* the publishing connection's id (NO_ECHO) */
	size_t dlen;
	size_t cost; /* counted in each destination's inq */
	/*
	 * The whole MESSAGE frame, encoded once with sub_id and lost 0: a
	 * delivery copies it and patches those two (msg_encode).
	 */
	uint8_t frame[];
};

#define MSG_TOPIC(m) ((const char *)(m)->frame + PUBSUB_MSG_OVERHEAD)

/* References to messages for one destination worker. */
struct psub_batch {
	struct inbox_msg m; /* first: INBOX_PUBSUB */
	uint32_t n, cap;
	uint64_t bytes;
	struct psub_msg *v[];
};

struct psub_conn;

struct psub_sub {
	struct pubsub_entry e; /* first: the worker's trie */
	struct psub_conn *pc;
	struct psub_sub *next; /* the connection's list */
	uint32_t id;
	uint16_t flen;
	uint8_t opts;
	char filter[]; /* allocated from offsetof, not sizeof (padded) */
};

enum { W_NONE = 0, W_PAUSED, W_CUT };

/* A MESSAGE not yet encoded: behind a connection's full output. */
struct psub_ref {
	struct psub_msg *m; /* holds one of m->refs */
	uint32_t id;        /* the subscription */
	uint32_t lost;      /* drop policy: the count it carries */
};

/*
 * MESSAGEs queued as references once a connection's output holds
 * PSUB_REFQ_AT bytes (v[head .. head + n)), encoded as it drains.  Apart
 * from struct psub_conn: most subscribers never need one.
 */
struct psub_rq {
	uint32_t head, n, cap;
	uint64_t bytes; /* their frames' bytes, counted as pending */
	struct psub_ref v[];
};

/*
 * One per connection that used pub/sub, so kept to 88 bytes (a 96-byte
 * malloc chunk; bench/pubsub-mem.py): the flags share a word with nsubs
 * (max_subscriptions is at most 1,000,000 < 2^24) and the deadline keeps
 * the low 32 bits of w->now (compared modulo 2^32: 49 days of range).
 */
struct psub_conn {
	struct conn_ext *x;
	struct psub_sub *subs;
	uint32_t nsubs : 24;
	uint32_t cut : 1; /* no more MESSAGEs: closing */
	uint32_t dirty : 1;
	uint32_t watch : 2; /* W_*: on the worker's watch list */
	uint32_t cn_done : 1;
	uint32_t touched : 1; /* delivered to since the last gauge pass */
	uint32_t
	    stalled : 1;   /* drop policy: no write progress; drop MESSAGEs */
	uint32_t noecho;   /* how many subscriptions are NO_ECHO */
	uint32_t lost;     /* drop policy: owed to the next MESSAGE */
	uint32_t deadline; /* W_CUT: close by then (w->now, low bits) */
	struct psub_conn *anext, *aprev; /* the worker's psub connections */
	struct psub_conn *wnext, *wprev; /* the watch list */
	struct psub_conn *dnext;         /* dirty, during one delivery */
	char *cn; /* TLS client CN once asked; NULL: not yet or none */
	/* Made the first time its output reaches PSUB_REFQ_AT; or NULL. */
	struct psub_rq *rq;
};

// NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding)
struct psub_w {
	struct pubsub_trie trie;
	struct psub_batch **out; /* per destination, being filled */
	struct psub_conn *all;
	struct psub_conn *watch;
	struct psub_conn *dirty;
	uint32_t *counts;            /* scratch: nworkers */
	struct pubsub_cache *rcache; /* registry answers by topic (gen) */
	struct pubsub_cache *dcache; /* own matches by topic (lgen) */
	uint64_t lgen;               /* bumped at each change of the trie */
	uint64_t acl_gen;
	uint64_t next_gauge;
	struct log_ratelimit rl;
	struct psub_stats st;
	uint64_t inq __attribute__((aligned(64))); /* atomic; others add */
};

struct psub {
	pthread_rwlock_t mu; /* the registry */
	struct pubsub_reg *reg;
	uint64_t gen; /* atomic: bumped under mu (write) at each change */
	unsigned n;
	struct psub_w *w;
	const struct sd_api *api;
};

static struct psub *g_ps;

static struct psub_w *
pw_of(const struct worker *w)
{
	return &g_ps->w[w->index];
}

/* --- answers --- */

static void
answer(struct sd_req *r, unsigned st, const char *msg)
{
	g_ps->api->reply(r, st, msg, msg != NULL ? strlen(msg) : 0);
}

static void
answer_u32(struct sd_req *r, uint32_t v)
{
	uint8_t b[4];

	proto_put_u32(b, v);
	g_ps->api->reply(r, PROTO_OK, b, sizeof(b));
}

static void
answer_err(struct sd_req *r, enum pubsub_err e, const char *what)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "%s: %s", what, pubsub_err_str(e));
	answer(r,
	    pubsub_err_is_topic(e) ? PROTO_INVALID_TOPIC : PROTO_BAD_REQUEST,
	    msg);
}

/* --- connections --- */

static struct psub_conn *
pc_get(struct worker *w, struct conn_ext *x)
{
	struct psub_w *p = pw_of(w);
	struct psub_conn *pc = x->ps;

	if (pc != NULL)
		return pc;
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return NULL;
	pc->x = x;
	pc->anext = p->all;
	if (p->all != NULL)
		p->all->aprev = pc;
	p->all = pc;
	x->ps = pc;
	return pc;
}

static void
watch_add(struct psub_w *p, struct psub_conn *pc, int kind)
{
	if (pc->watch != W_NONE) {
		pc->watch = (uint8_t)(kind > pc->watch ? kind : pc->watch);
		return;
	}
	pc->watch = (uint8_t)kind;
	pc->wprev = NULL;
	pc->wnext = p->watch;
	if (p->watch != NULL)
		p->watch->wprev = pc;
	p->watch = pc;
}

static void
watch_del(struct psub_w *p, struct psub_conn *pc)
{
	if (pc->watch == W_NONE)
		return;
	if (pc->wprev != NULL)
		pc->wprev->wnext = pc->wnext;
	else
		p->watch = pc->wnext;
	if (pc->wnext != NULL)
		pc->wnext->wprev = pc->wprev;
	pc->wnext = pc->wprev = NULL;
	pc->watch = W_NONE;
}

/* The CN of a verified client certificate, "" when none. */
static const char *
pc_cn(struct psub_conn *pc)
{
	struct conn *c = pc->x->c;
	char subj[512], *p, *e;

	if (pc->cn_done)
		return pc->cn != NULL ? pc->cn : "";
	pc->cn_done = 1;
	if (!(c->flags & CONN_TLS) || c->io_ctx == NULL ||
	    tls_conn_subject(c->io_ctx, subj, sizeof(subj)) != 0)
		return "";
	for (p = subj; (p = strstr(p, "CN=")) != NULL; p += 3)
		if (p == subj || p[-1] == '/' || p[-1] == ',' || p[-1] == ' ')
			break;
	if (p == NULL)
		return "";
	p += 3;
	for (e = p; *e != '\0' && *e != '/' && *e != ','; e++)
		;
	pc->cn = strndup(p, (size_t)(e - p)); /* NULL: "" (no match) */
	return pc->cn != NULL ? pc->cn : "";
}

/*
 * Whether the rules let pc publish to topic (sub 0) or subscribe to
 * filter (sub 1).  No rules: yes.  Deny wins; a subscribe must be covered
 * by one allow filter and overlap no deny filter.
 */
static int
permitted(const struct cfg *cf, struct psub_conn *pc, int sub, const char *s,
    size_t len)
{
	enum cfg_ps_list al = sub ? CFG_PS_SUBSCRIBE : CFG_PS_PUBLISH;
	enum cfg_ps_list dl = sub ? CFG_PS_DENY_SUBSCRIBE : CFG_PS_DENY_PUBLISH;
	const char *cn = NULL;
	size_t i, j;
	int ok = 0;

	if (cf->pubsub_nacl == 0)
		return 1;
	for (i = 0; i < cf->pubsub_nacl; i++) {
		const struct cfg_psacl *r = &cf->pubsub_acl[i];
		int applies = 0;

		if (r->has_peer && cfg_cidr_contains(&r->peer, pc->x->c->src))
			applies = 1;
		if (!applies && r->tls_cn != NULL) {
			if (cn == NULL)
				cn = pc_cn(pc);
			applies = cn[0] != '\0' && strcmp(cn, r->tls_cn) == 0;
		}
		if (!applies)
			continue;
		for (j = 0; j < r->npat[dl]; j++) {
			const char *d = r->pat[dl][j];

			if (sub ? pubsub_overlaps(d, strlen(d), s, len)
				: pubsub_match(d, strlen(d), s, len))
				return 0;
		}
		for (j = 0; j < r->npat[al] && !ok; j++) {
			const char *a = r->pat[al][j];

			ok = sub ? pubsub_covers(a, strlen(a), s, len)
				 : pubsub_match(a, strlen(a), s, len);
		}
	}
	return ok;
}

/* --- output --- */

static void
msg_put(struct psub_msg *m)
{
	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(m);
}

static size_t
msg_frame_len(const struct psub_msg *m)
{
	return PUBSUB_MSG_OVERHEAD + m->tlen + m->dlen;
}

/* The MESSAGE frame (n bytes) of m for subscription id into p. */
static void
msg_encode(
    uint8_t *p, size_t n, const struct psub_msg *m, uint32_t id, uint32_t lost)
{
	memcpy(p, m->frame, n);
	proto_put_u32(p + PROTO_FRAME_MIN, id); /* pubsub_msg_head()'s order */
	proto_put_u32(p + PROTO_FRAME_MIN + 4, lost);
}

/*
 * Room for n bytes at the end of c's output: its own buffer (the worker's
 * scratch buffer is empty outside serve()), or a queued slot when answers
 * are waiting (a push goes behind them: the PUBLISH answer stays first).
 */
static uint8_t *
out_room(struct worker *w, struct conn *c, size_t n, int *slot)
{
	/* dispatch_queued(c), without the call: this runs per delivery. */
	*slot = c->ext != NULL && c->ext->qhead != NULL;
	if (*slot)
		return dispatch_slot(w, c, n);
	if (conn_out_reserve(c, n) != 0)
		return NULL;
	return c->out + c->out_off + c->out_len;
}

static void
out_commit(struct worker *w, struct conn *c, size_t n, int slot)
{
	if (slot)
		dispatch_slot_commit(w, c, n);
	else
		c->out_len += (uint32_t)n;
}

static int
rq_any(const struct psub_conn *pc)
{
	return pc->rq != NULL && pc->rq->n > 0;
}

static uint64_t
rq_bytes(const struct psub_conn *pc)
{
	return pc->rq != NULL ? pc->rq->bytes : 0;
}

/* Queue a reference to m for subscription id behind pc's output. */
static int
rq_push(struct psub_conn *pc, struct psub_msg *m, uint32_t id, uint32_t lost)
{
	struct psub_rq *q = pc->rq, *nq;
	struct psub_ref *r;
	uint32_t ncap;

	if (q == NULL || q->head + q->n == q->cap) {
		if (q != NULL && q->head > 0 && q->head >= q->n) {
			memmove(q->v, q->v + q->head, q->n * sizeof(q->v[0]));
			q->head = 0;
		} else {
			ncap = q != NULL ? q->cap * 2 : 256;
			if ((q != NULL && ncap < q->cap) ||
			    (nq = realloc(q,
				 sizeof(*q) + ncap * sizeof(q->v[0]))) == NULL)
				return -1;
			if (q == NULL) {
				nq->head = nq->n = 0;
				nq->bytes = 0;
			}
			nq->cap = ncap;
			pc->rq = q = nq;
		}
	}
	r = &q->v[q->head + q->n++];
	r->m = m;
	r->id = id;
	r->lost = lost;
	q->bytes += msg_frame_len(m);
	__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Drop every queued reference; how many there were. */
static uint32_t
rq_release(struct psub_conn *pc)
{
	struct psub_rq *q = pc->rq;
	uint32_t i, n;

	if (q == NULL)
		return 0;
	for (i = 0, n = q->n; i < n; i++)
		msg_put(q->v[q->head + i].m);
	q->head = q->n = 0;
	q->bytes = 0;
	return n;
}

/*
 * Encode queued references into c's output, oldest first, until it holds
 * `upto` bytes (0: all of them).  Through out_room(): behind answers still
 * waiting in order, as a MESSAGE made at delivery would have gone.
 */
static void
rq_spill(struct worker *w, struct psub_conn *pc, size_t upto)
{
	struct conn *c = pc->x->c;
	struct psub_rq *q = pc->rq;
	struct psub_ref *r;
	uint8_t *p;
	size_t n;
	int slot;

	if (q == NULL)
		return;
	while (q->n > 0 && (upto == 0 || c->out_len < upto)) {
		r = &q->v[q->head];
		n = msg_frame_len(r->m);
		if ((p = out_room(w, c, n, &slot)) == NULL) {
			rq_release(pc); /* out of memory: the rest is lost */
			return;
		}
		msg_encode(p, n, r->m, r->id, r->lost);
		out_commit(w, c, n, slot);
		msg_put(r->m);
		q->head++;
		q->n--;
		q->bytes -= n;
		if (slot && upto != 0)
			break; /* one at a time behind waiting answers */
	}
	if (q->n == 0)
		q->head = 0;
}

void
psub_refill(struct worker *w, struct conn *c)
{
	struct psub_conn *pc;

	if (g_ps == NULL || c->ext == NULL || (pc = c->ext->ps) == NULL ||
	    !rq_any(pc) || pc->cut)
		return;
	rq_spill(w, pc, PSUB_REFQ_AT);
}

static void
mark_dirty(struct psub_w *p, struct psub_conn *pc)
{
	if (pc->dirty)
		return;
	pc->dirty = 1;
	pc->dnext = p->dirty;
	p->dirty = pc;
}

static void drop_subs(struct worker *w, struct psub_conn *pc);

/*
 * Write every connection touched since the last call, once each; drop the
 * subscriptions of those cut meanwhile (not during a trie walk).
 */
static void
settle_dirty(struct worker *w)
{
	struct psub_w *p = pw_of(w);
	struct psub_conn *pc, *nx;

	pc = p->dirty;
	p->dirty = NULL;
	for (; pc != NULL; pc = nx) {
		nx = pc->dnext;
		pc->dirty = 0;
		if (pc->cut)
			drop_subs(w, pc);
		(void)worker_settle(w, pc->x->c); /* may free pc */
	}
}

static int
notice(
    struct worker *w, struct psub_conn *pc, unsigned reason, const char *text)
{
	struct conn *c = pc->x->c;
	uint8_t pay[256], *p;
	size_t n, len;
	int slot;

	len = pubsub_encode_notice(pay, sizeof(pay), reason, text);
	if (len > sizeof(pay))
		return -1;
	rq_spill(w, pc, 0); /* the MESSAGEs before it first */
	n = PROTO_FRAME_MIN + len;
	if ((p = out_room(w, c, n, &slot)) == NULL)
		return -1;
	proto_encode_resp(p, n, PUBSUB_OP_NOTICE, PROTO_OK, 0, pay, len);
	out_commit(w, c, n, slot);
	mark_dirty(pw_of(w), pc);
	return 0;
}

/*
 * Stop pc for good: NOTICE (reason), no more input or MESSAGEs, closed once
 * the output drains or PSUB_CUT_MS from now.
 */
static void
cut(struct worker *w, struct psub_conn *pc, unsigned reason, const char *text)
{
	struct psub_w *p = pw_of(w);

	if (pc->cut)
		return;
	pc->cut = 1; /* its subscriptions go in settle_dirty() */
	(void)notice(w, pc, reason, text);
	pc->x->c->flags |= CONN_CLOSE;
	pc->deadline = (uint32_t)(w->now + PSUB_CUT_MS);
	watch_add(p, pc, W_CUT);
	mark_dirty(p, pc);
}

/* Milliseconds until a cut connection's deadline; <= 0: it is past. */
static int32_t
cut_left(const struct worker *w, const struct psub_conn *pc)
{
	return (int32_t)(pc->deadline - (uint32_t)w->now);
}

static const char *
peer_str(const struct conn *c, char *buf, size_t len)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const char *s;

	if (memcmp(c->src, mapped, sizeof(mapped)) == 0)
		s = inet_ntop(AF_INET, c->src + 12, buf, (socklen_t)len);
	else
		s = inet_ntop(AF_INET6, c->src, buf, (socklen_t)len);
	return s != NULL ? s : "?";
}

struct deliver {
	struct worker *w;
	struct psub_w *p;
	struct psub_msg *m;
	uint32_t max_pending;
	uint32_t write_ms;
	int drop;
};

/*
 * Whether c's socket has taken no byte for timeouts.write although output
 * waits (flush() restamps t_write on progress for subscribers).
 */
static int
stalled(const struct worker *w, const struct conn *c, uint32_t write_ms)
{
	return (c->flags & CONN_IN_WR) && write_ms > 0 &&
	    w->now >= c->t_write + write_ms;
}

/*
 * The disconnect policy: what is queued toward pc is discarded (but the
 * frame in progress, and for TLS the record OpenSSL may be holding),
 * NOTICE SLOW_CONSUMER goes next, and the connection closes once that is
 * out or PSUB_CUT_MS from now.
 */
static void
slow_consumer(struct worker *w, struct psub_conn *pc, int stall)
{
	struct psub_w *p = pw_of(w);
	const struct cfg *cf = &w->sc->c;
	struct conn *c = pc->x->c;
	uint64_t suppressed = 0;
	size_t pending = c->out_len + rq_bytes(pc);
	unsigned frames;
	char peer[64], why[80];

	if (pc->cut)
		return;
	STAT_ADD(p->st.slow, 1);
	if (log_ratelimit(&p->rl, w->now, 10000, &suppressed)) {
		if (stall)
			snprintf(why, sizeof(why),
			    "stall (no byte written for timeouts.write %u ms)",
			    cf->write_ms);
		else
			snprintf(why, sizeof(why),
			    "pending (pubsub.max_pending %u)",
			    cf->pubsub_max_pending);
		log_warnx("slow consumer: peer=%s:%u conn=%d pending=%zu "
			  "subs=%u reason=%s; disconnecting it%s",
		    peer_str(c, peer, sizeof(peer)), c->port, c->fd, pending,
		    pc->nsubs, why,
		    suppressed ? " (and more since the last message)" : "");
	}
	(void)conn_out_discard(
	    c, (c->flags & CONN_TLS) ? PSUB_TLS_RECORD : 0, &frames);
	STAT_ADD(p->st.dropped, frames + rq_release(pc));
	cut(w, pc, PUBSUB_NOTICE_SLOW_CONSUMER,
	    stall ? "slow consumer: no byte written for timeouts.write; "
		    "closing"
		  : "slow consumer: more than pubsub.max_pending bytes "
		    "queued; closing");
}

int
psub_stall(struct worker *w, struct conn *c)
{
	struct psub_conn *pc;

	if (g_ps == NULL || !psub_holds(c))
		return 0;
	pc = c->ext->ps;
	if (pc->cut)
		return 0; /* its last second is over too */
	if (w->sc->c.pubsub_slow_drop) {
		pc->stalled = 1; /* MESSAGEs dropped until it writes again */
		return 1;
	}
	slow_consumer(w, pc, 1); /* psub_tick() writes the NOTICE */
	return 1;
}

static void
deliver_one(struct pubsub_entry *e, void *arg)
{
	struct psub_sub *s = (struct psub_sub *)e;
	struct deliver *d = arg;
	struct psub_conn *pc = s->pc;
	struct conn *c = pc->x->c;
	struct psub_msg *m = d->m;
	size_t n = msg_frame_len(m), pending;
	uint8_t *p;
	int slot;

	if ((s->opts & PUBSUB_OPT_NO_ECHO) && pc->x->id == m->pub)
		return;
	if (pc->cut || (c->flags & (CONN_LINGER | CONN_CLOSE | CONN_DRAIN))) {
		STAT_ADD(d->p->st.dropped, 1);
		return;
	}
	pending = c->out_len + rq_bytes(pc);
	if ((pending > 0 && pending + n > d->max_pending) || pc->stalled ||
	    stalled(d->w, c, d->write_ms)) {
		STAT_ADD(d->p->st.dropped, 1);
		if (d->drop)
			pc->lost++;
		else
			slow_consumer(d->w, pc, pending + n <= d->max_pending);
		return;
	}
	if (c->out_len >= PSUB_REFQ_AT || rq_any(pc)) {
		/*
		 * The socket is behind: keep a reference, not a copy, so that
		 * a subscriber that stopped reading costs no copying and no
		 * fresh memory per message (the slow-consumer case).
		 */
		if (rq_push(pc, m, s->id, pc->lost) != 0) {
			STAT_ADD(d->p->st.dropped, 1);
			pc->lost++;
			return;
		}
	} else if ((p = out_room(d->w, c, n, &slot)) != NULL) {
		msg_encode(p, n, m, s->id, pc->lost);
		out_commit(d->w, c, n, slot);
	} else {
		STAT_ADD(d->p->st.dropped, 1);
		pc->lost++;
		return;
	}
	/* A stream: keep the output buffer between batches (psub_tick). */
	c->flags |= CONN_KEEP_OUT;
	pc->touched = 1;
	pc->lost = 0;
	STAT_ADD(d->p->st.delivered, 1);
	mark_dirty(d->p, pc);
}

/* A cached match: the subscriptions on this worker a topic reaches. */
struct dmatch {
	uint32_t n;
	struct psub_sub *v[PSUB_DMATCH_MAX];
};

struct drec {
	struct deliver *d;
	uint32_t n;
	struct psub_sub *v[PSUB_DMATCH_MAX];
};

static void
deliver_rec(struct pubsub_entry *e, void *arg)
{
	struct drec *r = arg;

	if (r->n < PSUB_DMATCH_MAX)
		r->v[r->n] = (struct psub_sub *)e;
	r->n++;
	deliver_one(e, r->d);
}

/*
 * Deliver d->m to every matching subscription on this worker.  The trie
 * is walked once per topic and trie change: the matches of up to
 * PSUB_DMATCH_MAX subscriptions are cached by topic (wider fan-outs pay
 * one walk per message over many deliveries anyway).  The cached
 * pointers stay valid while lgen stands: freeing a subscription bumps it,
 * and nothing frees one during a batch (cut connections lose theirs in
 * settle_dirty()).
 */
static void
deliver_match(struct deliver *d)
{
	struct psub_w *p = d->p;
	const char *t = MSG_TOPIC(d->m);
	struct dmatch *dm;
	struct drec r;
	uint32_t i;

	if ((dm = pubsub_cache_get(p->dcache, t, d->m->tlen, p->lgen)) !=
	    NULL) {
		for (i = 0; i < dm->n; i++)
			deliver_one(&dm->v[i]->e, d);
		return;
	}
	r.d = d;
	r.n = 0;
	pubsub_trie_match(&p->trie, t, d->m->tlen, deliver_rec, &r);
	if (r.n <= PSUB_DMATCH_MAX &&
	    (dm = pubsub_cache_put(p->dcache, t, d->m->tlen, p->lgen)) !=
		NULL) {
		dm->n = r.n;
		// NOLINTNEXTLINE(bugprone-sizeof-expression)
		memcpy(dm->v, r.v, r.n * sizeof(r.v[0]));
	}
}

/*
 * Deliver a batch on w and free it.  The touched connections are written
 * by psub_tick(), after the loop iteration's events: a write that fails
 * closes the connection, and an event for it may still be waiting in the
 * same epoll batch.
 */
static void
deliver_batch(struct worker *w, struct psub_batch *b)
{
	struct psub_w *p = pw_of(w);
	struct deliver d;
	uint32_t i;

	d.w = w;
	d.p = p;
	d.max_pending = w->sc->c.pubsub_max_pending;
	d.drop = w->sc->c.pubsub_slow_drop;
	d.write_ms = w->sc->c.write_ms;
	for (i = 0; i < b->n; i++) {
		d.m = b->v[i];
		deliver_match(&d);
		msg_put(b->v[i]);
	}
	__atomic_fetch_sub(&p->inq, b->bytes, __ATOMIC_RELEASE);
	free(b);
}

void
psub_inbox(struct worker *w, struct inbox_msg *m)
{
	deliver_batch(w, (struct psub_batch *)m);
}

void
psub_free_msg(struct inbox_msg *m)
{
	struct psub_batch *b = (struct psub_batch *)m;
	uint32_t i;

	for (i = 0; i < b->n; i++)
		msg_put(b->v[i]);
	free(b);
}

/* --- routing --- */

static void
flush_one(struct worker *w, unsigned dest)
{
	struct psub_w *p = pw_of(w);
	struct psub_batch *b = p->out[dest];

	if (b == NULL || b->n == 0)
		return;
	p->out[dest] = NULL;
	/* Counted per batch, not per message: the line is shared. */
	__atomic_fetch_add(&g_ps->w[dest].inq, b->bytes, __ATOMIC_RELAXED);
	if (dest == w->index) {
		deliver_batch(w, b);
		return;
	}
	b->m.kind = INBOX_PUBSUB;
	STAT_ADD(p->st.batches, 1);
	inbox_put(&w->srv->workers[dest].inbox, &b->m);
}

/* Append m for dest; 0 or -1 (out of memory). */
static int
route(struct worker *w, unsigned dest, struct psub_msg *m)
{
	struct psub_w *p = pw_of(w);
	struct psub_batch *b = p->out[dest], *nb;
	uint32_t ncap;

	if (b == NULL || b->n == b->cap) {
		ncap = b == NULL ? 16 : b->cap * 2;
		// NOLINTNEXTLINE(bugprone-sizeof-expression)
		if ((nb = realloc(b, sizeof(*b) + ncap * sizeof(b->v[0]))) ==
		    NULL)
			return -1;
		if (b == NULL) {
			nb->n = 0;
			nb->bytes = 0;
		}
		nb->cap = ncap;
		p->out[dest] = b = nb;
	}
	b->v[b->n++] = m;
	b->bytes += m->cost;
	if (dest != w->index) {
		STAT_ADD(p->st.cross, 1);
		if (b->n >= PSUB_BATCH_MAX || b->bytes >= PSUB_BATCH_BYTES)
			flush_one(w, dest);
	}
	return 0;
}

/*
 * p->counts: the matching subscriptions per worker.  From this worker's
 * cache when the registry has not changed since (no lock, no trie walk),
 * else from the registry under its read lock, then cached.
 */
static void
route_counts(struct psub_w *p, const char *t, size_t tlen)
{
	size_t sz = g_ps->n * sizeof(p->counts[0]);
	uint64_t gen = __atomic_load_n(&g_ps->gen, __ATOMIC_ACQUIRE);
	void *v;

	if ((v = pubsub_cache_get(p->rcache, t, tlen, gen)) != NULL) {
		memcpy(p->counts, v, sz);
		return;
	}
	memset(p->counts, 0, sz);
	pthread_rwlock_rdlock(&g_ps->mu);
	gen = __atomic_load_n(&g_ps->gen, __ATOMIC_RELAXED);
	pubsub_reg_match(g_ps->reg, t, tlen, p->counts);
	pthread_rwlock_unlock(&g_ps->mu);
	if ((v = pubsub_cache_put(p->rcache, t, tlen, gen)) != NULL)
		memcpy(v, p->counts, sz);
}

/* pc's own NO_ECHO subscriptions that match topic t. */
static uint32_t
own_noecho(const struct psub_conn *pc, const char *t, size_t tlen)
{
	const struct psub_sub *s;
	uint32_t n = 0;

	for (s = pc->subs; s != NULL; s = s->next)
		if ((s->opts & PUBSUB_OPT_NO_ECHO) &&
		    pubsub_match(s->filter, s->flen, t, tlen))
			n++;
	return n;
}

static int
inbox_full(void)
{
	unsigned i;

	for (i = 0; i < g_ps->n; i++)
		if (__atomic_load_n(&g_ps->w[i].inq, __ATOMIC_RELAXED) >
		    PSUB_INBOX_HIGH)
			return 1;
	return 0;
}

static void
op_publish(struct sd_req *r)
{
	struct worker *w = r->w;
	struct psub_w *p = pw_of(w);
	const struct cfg *cf = &w->sc->c;
	struct pubsub_pub_req pr;
	struct psub_conn *pc;
	struct psub_msg *m;
	enum pubsub_err e;
	uint64_t receivers = 0;
	unsigned i, ndest = 0;
	char msg[160];

	if ((e = pubsub_parse_publish(r->payload, r->payload_len, &pr)) !=
	    PUBSUB_OK) {
		answer_err(r, e, "publish");
		return;
	}
	if (pr.topic_len + pr.data_len + 18 > cf->max_frame_size) {
		snprintf(msg, sizeof(msg),
		    "topic and data (%zu bytes) exceed max_frame_size - 18 "
		    "(%lu): the MESSAGE would not fit a frame",
		    pr.topic_len + pr.data_len,
		    (unsigned long)(cf->max_frame_size > 18
			    ? cf->max_frame_size - 18
			    : 0));
		answer(r, PROTO_LIMIT_EXCEEDED, msg);
		return;
	}
	if ((pc = pc_get(w, r->x)) == NULL) {
		answer(r, PROTO_INTERNAL, "out of memory");
		return;
	}
	if (pubsub_topic_reserved(pr.topic, pr.topic_len) ||
	    !permitted(cf, pc, 0, pr.topic, pr.topic_len)) {
		STAT_ADD(p->st.denied, 1);
		snprintf(msg, sizeof(msg),
		    "publishing to %.*s is not allowed%s", (int)pr.topic_len,
		    pr.topic,
		    pubsub_topic_reserved(pr.topic, pr.topic_len)
			? " ($ topics are the server's)"
			: "");
		answer(r, PROTO_FORBIDDEN, msg);
		return;
	}
	route_counts(p, pr.topic, pr.topic_len);
	/* Our own worker's count is exact: less this connection's NO_ECHO. */
	if (pc->noecho > 0 && p->counts[w->index] > 0)
		p->counts[w->index] -= own_noecho(pc, pr.topic, pr.topic_len);
	for (i = 0; i < g_ps->n; i++) {
		receivers += p->counts[i];
		ndest += p->counts[i] > 0;
	}
	STAT_ADD(p->st.publish, 1);
	if (ndest > 0) {
		size_t n = PUBSUB_MSG_OVERHEAD + pr.topic_len + pr.data_len;

		if ((m = malloc(sizeof(*m) + n)) == NULL) {
			answer(r, PROTO_INTERNAL, "out of memory");
			return;
		}
		m->refs = (int)ndest;
		m->tlen = (uint32_t)pr.topic_len;
		m->dlen = pr.data_len;
		m->pub = r->x->id;
		m->cost = sizeof(*m) + n;
		proto_put_u32(m->frame, (uint32_t)(n - PROTO_LEN_SIZE));
		m->frame[4] = PROTO_VERSION;
		m->frame[5] = PUBSUB_OP_MESSAGE;
		proto_put_u16(m->frame + 6, PROTO_OK);
		proto_put_u32(m->frame + 8, 0);
		pubsub_msg_head(m->frame + PROTO_FRAME_MIN, 0, 0, pr.topic_len);
		memcpy(m->frame + PUBSUB_MSG_OVERHEAD, pr.topic, pr.topic_len);
		if (pr.data_len > 0)
			memcpy(m->frame + PUBSUB_MSG_OVERHEAD + pr.topic_len,
			    pr.data, pr.data_len);
		/*
		 * m holds one reference per destination still to be routed,
		 * so it outlives this loop whatever the other workers do
		 * with theirs (the analyzer cannot see the count).
		 */
		// NOLINTBEGIN(clang-analyzer-unix.Malloc)
		for (i = 0; i < g_ps->n; i++)
			if (p->counts[i] > 0 && route(w, i, m) != 0)
				msg_put(m); /* that worker misses it */
	}
	answer_u32(
	    r, receivers > UINT32_MAX ? UINT32_MAX : (uint32_t)receivers);
	// NOLINTEND(clang-analyzer-unix.Malloc)
	/* Fan-out piling up somewhere: stop reading this publisher. */
	if (inbox_full()) {
		r->x->c->flags |= CONN_HELD;
		if (pc->watch == W_NONE)
			STAT_ADD(p->st.pauses, 1);
		watch_add(p, pc, W_PAUSED);
	}
}

/* --- subscriptions --- */

static struct psub_sub *
find_sub(struct psub_conn *pc, uint32_t id, struct psub_sub ***prev)
{
	struct psub_sub **pp;

	for (pp = &pc->subs; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			if (prev != NULL)
				*prev = pp;
			return *pp;
		}
	return NULL;
}

/* Unlink s (its registry count is dropped by the caller, locked). */
static void
sub_free(struct worker *w, struct psub_conn *pc, struct psub_sub *s)
{
	pubsub_trie_remove(&pw_of(w)->trie, &s->e);
	pw_of(w)->lgen++; /* the cached matches may hold s */
	pc->nsubs--;
	pc->noecho -= (s->opts & PUBSUB_OPT_NO_ECHO) != 0;
	STAT_ADD(pw_of(w)->st.subs, (uint64_t)-1);
	free(s);
}

static void
drop_subs(struct worker *w, struct psub_conn *pc)
{
	struct psub_sub *s, *nx;

	if (pc->subs == NULL)
		return;
	pthread_rwlock_wrlock(&g_ps->mu);
	for (s = pc->subs; s != NULL; s = s->next)
		pubsub_reg_del(g_ps->reg, s->filter, s->flen, w->index);
	__atomic_add_fetch(&g_ps->gen, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&g_ps->mu);
	for (s = pc->subs; s != NULL; s = nx) {
		nx = s->next;
		sub_free(w, pc, s);
	}
	pc->subs = NULL;
}

static void
op_subscribe(struct sd_req *r)
{
	struct worker *w = r->w;
	struct psub_w *p = pw_of(w);
	const struct cfg *cf = &w->sc->c;
	struct pubsub_sub_req sr;
	struct psub_conn *pc;
	struct psub_sub *s;
	enum pubsub_err e;
	char msg[400];
	int rc;

	if ((e = pubsub_parse_subscribe(r->payload, r->payload_len, &sr)) !=
	    PUBSUB_OK) {
		answer_err(r, e, "subscribe");
		return;
	}
	if ((pc = pc_get(w, r->x)) == NULL) {
		answer(r, PROTO_INTERNAL, "out of memory");
		return;
	}
	if (find_sub(pc, sr.sub_id, NULL) != NULL) {
		snprintf(msg, sizeof(msg),
		    "sub_id %u is already in use on this connection",
		    sr.sub_id);
		answer(r, PROTO_BAD_REQUEST, msg);
		return;
	}
	if (pc->nsubs >= cf->pubsub_max_subs) {
		snprintf(msg, sizeof(msg),
		    "this connection holds %u subscriptions "
		    "(pubsub.max_subscriptions)",
		    pc->nsubs);
		answer(r, PROTO_LIMIT_EXCEEDED, msg);
		return;
	}
	if (!permitted(cf, pc, 1, sr.filter, sr.filter_len)) {
		STAT_ADD(p->st.denied, 1);
		snprintf(msg, sizeof(msg), "subscribing to %.*s is not allowed",
		    (int)sr.filter_len, sr.filter);
		answer(r, PROTO_FORBIDDEN, msg);
		return;
	}
	if ((s = calloc(1,
		 offsetof(struct psub_sub, filter) + sr.filter_len)) == NULL) {
		answer(r, PROTO_INTERNAL, "out of memory");
		return;
	}
	s->pc = pc;
	s->id = sr.sub_id;
	s->opts = sr.options;
	s->flen = (uint16_t)sr.filter_len;
	memcpy(s->filter, sr.filter, sr.filter_len);
	if (pubsub_trie_insert(&p->trie, s->filter, s->flen, &s->e) != 0) {
		free(s);
		answer(r, PROTO_INTERNAL, "out of memory");
		return;
	}
	p->lgen++;
	/* Visible to every publisher before the answer: the barrier. */
	pthread_rwlock_wrlock(&g_ps->mu);
	rc = pubsub_reg_add(g_ps->reg, s->filter, s->flen, w->index);
	__atomic_add_fetch(&g_ps->gen, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&g_ps->mu);
	if (rc != 0) {
		pubsub_trie_remove(&p->trie, &s->e);
		p->lgen++;
		free(s);
		answer(r, PROTO_INTERNAL, "out of memory");
		return;
	}
	s->next = pc->subs;
	pc->subs = s;
	pc->nsubs++;
	pc->noecho += (s->opts & PUBSUB_OPT_NO_ECHO) != 0;
	STAT_ADD(p->st.subs, 1);
	answer_u32(r, pc->nsubs);
}

static void
op_unsubscribe(struct sd_req *r)
{
	struct worker *w = r->w;
	struct psub_conn *pc = r->x->ps;
	struct psub_sub *s, **prev;
	enum pubsub_err e;
	uint32_t id;
	char msg[80];

	if ((e = pubsub_parse_unsubscribe(r->payload, r->payload_len, &id)) !=
	    PUBSUB_OK) {
		answer_err(r, e, "unsubscribe");
		return;
	}
	if (pc != NULL)
		rq_spill(w, pc, 0); /* the barrier: its MESSAGEs go first */
	if (id == 0) {
		if (pc != NULL)
			drop_subs(w, pc);
		answer_u32(r, 0);
		return;
	}
	if (pc == NULL || (s = find_sub(pc, id, &prev)) == NULL) {
		snprintf(msg, sizeof(msg),
		    "no subscription %u on this connection", id);
		answer(r, PROTO_NOT_SUBSCRIBED, msg);
		return;
	}
	*prev = s->next;
	pthread_rwlock_wrlock(&g_ps->mu);
	pubsub_reg_del(g_ps->reg, s->filter, s->flen, w->index);
	__atomic_add_fetch(&g_ps->gen, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&g_ps->mu);
	sub_free(w, pc, s);
	answer_u32(r, pc->nsubs);
}

/* --- worker hooks --- */

void
psub_conn_close(struct worker *w, struct conn *c)
{
	struct psub_w *p;
	struct psub_conn *pc;

	if (g_ps == NULL || c->ext == NULL || (pc = c->ext->ps) == NULL)
		return;
	p = pw_of(w);
	drop_subs(w, pc);
	watch_del(p, pc);
	if (pc->dirty) {
		struct psub_conn **pp;

		for (pp = &p->dirty; *pp != NULL; pp = &(*pp)->dnext)
			if (*pp == pc) {
				*pp = pc->dnext;
				break;
			}
	}
	if (pc->aprev != NULL)
		pc->aprev->anext = pc->anext;
	else
		p->all = pc->anext;
	if (pc->anext != NULL)
		pc->anext->aprev = pc->aprev;
	c->ext->ps = NULL;
	STAT_ADD(p->st.dropped, rq_release(pc));
	free(pc->rq);
	free(pc->cn);
	free(pc);
}

int
psub_holds(const struct conn *c)
{
	return c->ext != NULL && c->ext->ps != NULL && c->ext->ps->nsubs > 0;
}

int
psub_wrote(struct conn *c)
{
	if (c->ext == NULL || c->ext->ps == NULL)
		return 0;
	c->ext->ps->stalled = 0;
	return c->ext->ps->nsubs > 0;
}

int
psub_timeout(struct worker *w, int timeout)
{
	struct psub_w *p;
	struct psub_conn *pc;
	int t = timeout;
	unsigned i;

	if (g_ps == NULL)
		return timeout;
	p = pw_of(w);
	if (p->dirty != NULL)
		return 0; /* output to write (a stall's NOTICE) */
	for (i = 0; i < g_ps->n; i++)
		if (p->out[i] != NULL)
			return 0; /* batches to send */
	for (pc = p->watch; pc != NULL; pc = pc->wnext) {
		int d = 1; /* paused: poll the inboxes each millisecond */

		if (pc->watch == W_CUT)
			d = cut_left(w, pc) > 0 ? cut_left(w, pc) + 1 : 0;
		if (t < 0 || d < t)
			t = d;
	}
	return t;
}

/* Subscriptions the reloaded rules no longer allow: tell and close. */
static void
recheck_acl(struct worker *w)
{
	struct psub_w *p = pw_of(w);
	const struct cfg *cf = &w->sc->c;
	struct psub_conn *pc, *nx;
	struct psub_sub *s;
	char msg[400];

	for (pc = p->all; pc != NULL; pc = nx) {
		nx = pc->anext;
		for (s = pc->subs; s != NULL; s = s->next)
			if (!permitted(cf, pc, 1, s->filter, s->flen))
				break;
		if (s == NULL)
			continue;
		STAT_ADD(p->st.revoked, 1);
		snprintf(msg, sizeof(msg),
		    "subscription %u to %.*s is no longer allowed; closing",
		    s->id, (int)s->flen, s->filter);
		log_info("connection %d: %s", pc->x->c->fd, msg);
		cut(w, pc, PUBSUB_NOTICE_PERMISSIONS_CHANGED, msg);
	}
	settle_dirty(w);
}

void
psub_tick(struct worker *w)
{
	struct psub_w *p;
	struct psub_conn *pc, *nx;
	uint64_t pend;
	unsigned i;
	int low = -1;

	if (g_ps == NULL)
		return;
	p = pw_of(w);
	for (i = 0; i < g_ps->n; i++)
		flush_one(w, i);
	settle_dirty(w); /* the inbox's batches and our own */
	if (p->acl_gen != w->gen) {
		p->acl_gen = w->gen;
		recheck_acl(w);
	}
	for (pc = p->watch; pc != NULL; pc = nx) {
		struct conn *c = pc->x->c;

		nx = pc->wnext;
		if (pc->watch == W_CUT) {
			if (cut_left(w, pc) <= 0)
				worker_close(w, c); /* frees pc */
			continue;
		}
		if (low < 0) {
			low = 1;
			for (i = 0; i < g_ps->n && low; i++)
				low = __atomic_load_n(&g_ps->w[i].inq,
					  __ATOMIC_ACQUIRE) < PSUB_INBOX_LOW;
		}
		if (!low)
			break;
		watch_del(p, pc);
		c->flags &= ~(uint32_t)CONN_HELD;
		(void)worker_serve_buffered(w, c);
	}
	if (w->now >= p->next_gauge) {
		p->next_gauge = w->now + 100;
		for (pend = 0, pc = p->all; pc != NULL; pc = pc->anext) {
			struct conn *c = pc->x->c;

			pend += c->out_len + rq_bytes(pc);
			if (rq_any(pc) && c->out_len == 0 && !pc->cut) {
				/* Nothing left to write that would refill. */
				rq_spill(w, pc, PSUB_REFQ_AT);
				mark_dirty(p, pc);
			}
			/* The stream stopped: give the kept buffer back. */
			if (!pc->touched && (c->flags & CONN_KEEP_OUT)) {
				c->flags &= ~(uint32_t)CONN_KEEP_OUT;
				if (c->out_len == 0) {
					free(c->out);
					c->out = NULL;
					c->out_off = c->out_cap = 0;
				}
			}
			pc->touched = 0;
		}
		STAT_SET(p->st.pending, pend);
	}
}

void
psub_drain(struct worker *w)
{
	struct psub_w *p;
	struct psub_conn *pc;

	if (g_ps == NULL)
		return;
	p = pw_of(w);
	for (pc = p->all; pc != NULL; pc = pc->anext)
		if (pc->nsubs > 0 && !pc->cut)
			(void)notice(w, pc, PUBSUB_NOTICE_SHUTDOWN,
			    "server shutting down");
	/* drain_conn() writes them; forget the marks. */
	while ((pc = p->dirty) != NULL) {
		p->dirty = pc->dnext;
		pc->dirty = 0;
	}
}

/* --- set-up --- */

void
psub_ops(struct modreg *r)
{
	static const struct {
		uint8_t op, kind;
		sd_handler_fn *fn;
		const char *name;
	} tab[] = {
	    {PUBSUB_OP_SUBSCRIBE, OP_SYNC, op_subscribe, "pubsub.subscribe"},
	    {PUBSUB_OP_UNSUBSCRIBE, OP_SYNC, op_unsubscribe,
		"pubsub.unsubscribe"},
	    {PUBSUB_OP_PUBLISH, OP_SYNC, op_publish, "pubsub.publish"},
	    {PUBSUB_OP_MESSAGE, OP_PUSH, NULL, "pubsub.message"},
	    {PUBSUB_OP_NOTICE, OP_PUSH, NULL, "pubsub.notice"},
	};
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		struct op *o = &r->ops[tab[i].op];

		o->kind = tab[i].kind;
		o->fn = tab[i].fn;
		o->mod = NULL;
		snprintf(o->name, sizeof(o->name), "%s", tab[i].name);
	}
}

/*
 * A topic cache of up to PSUB_CACHE_SLOTS topics within PSUB_CACHE_BYTES
 * (the registry answer holds a count per worker: with many workers, fewer
 * topics), but never fewer than 16.
 */
static struct pubsub_cache *
cache_new(size_t vsize)
{
	size_t n = pubsub_cache_fit(PSUB_CACHE_BYTES, vsize);

	if (n > PSUB_CACHE_SLOTS)
		n = PSUB_CACHE_SLOTS;
	return pubsub_cache_new(n < 16 ? 16 : n, vsize);
}

int
psub_init(struct server *srv)
{
	struct psub *ps;
	unsigned i;

	if ((ps = calloc(1, sizeof(*ps))) == NULL)
		return -1;
	ps->n = srv->nworkers;
	ps->gen = 1; /* 0 would be the cache's "empty" */
	ps->api = dispatch_api(srv);
	if ((errno = pthread_rwlock_init(&ps->mu, NULL)) != 0) {
		free(ps);
		return -1;
	}
	ps->reg = pubsub_reg_new(ps->n);
	ps->w = aligned_alloc(64, ((ps->n * sizeof(*ps->w) + 63) / 64) * 64);
	if (ps->reg == NULL || ps->w == NULL)
		goto nomem;
	memset(ps->w, 0, ps->n * sizeof(*ps->w));
	for (i = 0; i < ps->n; i++) {
		pubsub_trie_init(&ps->w[i].trie);
		// NOLINTNEXTLINE(bugprone-sizeof-expression)
		ps->w[i].out = calloc(ps->n, sizeof(ps->w[i].out[0]));
		ps->w[i].counts = calloc(ps->n, sizeof(ps->w[i].counts[0]));
		ps->w[i].rcache = cache_new(ps->n * sizeof(ps->w[i].counts[0]));
		ps->w[i].dcache = cache_new(sizeof(struct dmatch));
		ps->w[i].lgen = 1;
		if (ps->w[i].out == NULL || ps->w[i].counts == NULL ||
		    ps->w[i].rcache == NULL || ps->w[i].dcache == NULL)
			goto nomem;
	}
	srv->ps = ps;
	g_ps = ps;
	return 0;
nomem:
	srv->ps = ps;
	g_ps = ps;
	psub_fini(srv);
	errno = ENOMEM;
	return -1;
}

void
psub_fini(struct server *srv)
{
	struct psub *ps = srv->ps;
	unsigned i, j;

	if (ps == NULL)
		return;
	for (i = 0; ps->w != NULL && i < ps->n; i++) {
		for (j = 0; ps->w[i].out != NULL && j < ps->n; j++)
			if (ps->w[i].out[j] != NULL)
				psub_free_msg(&ps->w[i].out[j]->m);
		free(ps->w[i].out);
		free(ps->w[i].counts);
		pubsub_cache_free(ps->w[i].rcache);
		pubsub_cache_free(ps->w[i].dcache);
		/* Connections are closed: the trie holds nothing. */
		pubsub_trie_fini(&ps->w[i].trie);
	}
	free(ps->w);
	pubsub_reg_free(ps->reg);
	pthread_rwlock_destroy(&ps->mu);
	free(ps);
	srv->ps = NULL;
	g_ps = NULL;
}

/* --- STATS and INFO --- */

void
psub_stats_text(struct server *s, char *buf, size_t cap, size_t *off)
{
	struct psub_stats t;

	if (psub_totals(s, &t) != 0)
		return;
#define KV(name, v) proto_kv_u64(buf, cap, off, name, v)
	KV("pubsub_subscriptions_current", t.subs);
	KV("pubsub_publish_total", t.publish);
	KV("pubsub_messages_delivered_total", t.delivered);
	KV("pubsub_messages_dropped_total", t.dropped);
	KV("pubsub_slow_consumers_total", t.slow);
	KV("pubsub_denied_total", t.denied);
	KV("pubsub_pending_bytes_current", t.pending);
	KV("pubsub_cross_worker_messages_total", t.cross);
	KV("pubsub_inbox_batches_total", t.batches);
	KV("pubsub_publisher_pauses_total", t.pauses);
	KV("pubsub_permission_closes_total", t.revoked);
#undef KV
}

int
psub_totals(struct server *s, struct psub_stats *t)
{
	unsigned i;

	memset(t, 0, sizeof(*t));
	if (s->ps == NULL)
		return -1;
	for (i = 0; i < s->ps->n; i++) {
		const struct psub_stats *w = &s->ps->w[i].st;

		t->subs += STAT_GET(w->subs);
		t->publish += STAT_GET(w->publish);
		t->delivered += STAT_GET(w->delivered);
		t->dropped += STAT_GET(w->dropped);
		t->slow += STAT_GET(w->slow);
		t->denied += STAT_GET(w->denied);
		t->pending += STAT_GET(w->pending);
		t->cross += STAT_GET(w->cross);
		t->batches += STAT_GET(w->batches);
		t->pauses += STAT_GET(w->pauses);
		t->revoked += STAT_GET(w->revoked);
	}
	return 0;
}

void
psub_info_text(struct server *s, char *buf, size_t cap, size_t *off)
{
	struct server_cfg *sc;

	if (s->ps == NULL)
		return;
	sc = server_cfg_get(s);
	proto_kv_u64(
	    buf, cap, off, "pubsub_max_subscriptions", sc->c.pubsub_max_subs);
	proto_kv_u64(
	    buf, cap, off, "pubsub_max_pending", sc->c.pubsub_max_pending);
	proto_kv_str(buf, cap, off, "pubsub_slow_consumer",
	    sc->c.pubsub_slow_drop ? "drop" : "disconnect");
	server_cfg_put(sc);
}
