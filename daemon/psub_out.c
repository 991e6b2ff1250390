/*
 * Pub/sub delivery: MESSAGEs into connections' output, the backlog of
 * references behind a full output, NOTICEs and cuts, slow consumers
 * (psub.h has the design; psub_int.h the shared structures).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "psub_int.h"
#include "server.h"
#include "tls.h"

/* --- output --- */

void
ps_msg_put(struct psub_msg *m)
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

int
ps_rq_any(const struct psub_conn *pc)
{
	return pc->rq != NULL && pc->rq->n > 0;
}

uint64_t
ps_rq_bytes(const struct psub_conn *pc)
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
uint32_t
ps_rq_release(struct psub_conn *pc)
{
	struct psub_rq *q = pc->rq;
	uint32_t i, n;

	if (q == NULL)
		return 0;
	for (i = 0, n = q->n; i < n; i++)
		ps_msg_put(q->v[q->head + i].m);
	q->head = q->n = 0;
	q->bytes = 0;
	return n;
}

/*
 * Encode queued references into c's output, oldest first, until it holds
 * `upto` bytes (0: all of them).  Through out_room(): behind answers still
 * waiting in order, as a MESSAGE made at delivery would have gone.
 */
void
ps_rq_spill(struct worker *w, struct psub_conn *pc, size_t upto)
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
			ps_rq_release(pc); /* out of memory: the rest is lost */
			return;
		}
		msg_encode(p, n, r->m, r->id, r->lost);
		out_commit(w, c, n, slot);
		ps_msg_put(r->m);
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
	    !ps_rq_any(pc) || pc->cut)
		return;
	ps_rq_spill(w, pc, PSUB_REFQ_AT);
}

void
ps_mark_dirty(struct psub_w *p, struct psub_conn *pc)
{
	if (pc->dirty)
		return;
	pc->dirty = 1;
	pc->dnext = p->dirty;
	p->dirty = pc;
}

/*
 * Write every connection touched since the last call, once each; drop the
 * subscriptions of those cut meanwhile (not during a trie walk).
 */
void
ps_settle_dirty(struct worker *w)
{
	struct psub_w *p = pw_of(w);
	struct psub_conn *pc, *nx;

	pc = p->dirty;
	p->dirty = NULL;
	for (; pc != NULL; pc = nx) {
		nx = pc->dnext;
		pc->dirty = 0;
		if (pc->cut)
			ps_drop_subs(w, pc);
		(void)worker_settle(w, pc->x->c); /* may free pc */
	}
}

int
ps_notice(
    struct worker *w, struct psub_conn *pc, unsigned reason, const char *text)
{
	struct conn *c = pc->x->c;
	uint8_t pay[256], *p;
	size_t n, len;
	int slot;

	len = pubsub_encode_notice(pay, sizeof(pay), reason, text);
	if (len > sizeof(pay))
		return -1;
	ps_rq_spill(w, pc, 0); /* the MESSAGEs before it first */
	n = PROTO_FRAME_MIN + len;
	if ((p = out_room(w, c, n, &slot)) == NULL)
		return -1;
	proto_encode_resp(p, n, PUBSUB_OP_NOTICE, PROTO_OK, 0, pay, len);
	out_commit(w, c, n, slot);
	ps_mark_dirty(pw_of(w), pc);
	return 0;
}

/*
 * Stop pc for good: NOTICE (reason), no more input or MESSAGEs, closed once
 * the output drains or PSUB_CUT_MS from now.
 */
void
ps_cut(
    struct worker *w, struct psub_conn *pc, unsigned reason, const char *text)
{
	struct psub_w *p = pw_of(w);

	if (pc->cut)
		return;
	pc->cut = 1; /* its subscriptions go in ps_settle_dirty() */
	(void)ps_notice(w, pc, reason, text);
	pc->x->c->flags |= CONN_CLOSE;
	pc->deadline = (uint32_t)(w->now + PSUB_CUT_MS);
	ps_watch_add(p, pc, W_CUT);
	ps_mark_dirty(p, pc);
}

/* Milliseconds until a cut connection's deadline; <= 0: it is past. */
int32_t
ps_cut_left(const struct worker *w, const struct psub_conn *pc)
{
	return (int32_t)(pc->deadline - (uint32_t)w->now);
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
	size_t pending = c->out_len + ps_rq_bytes(pc);
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
		    conn_peer_str(c, peer, sizeof(peer)), c->port, c->fd,
		    pending, pc->nsubs, why,
		    suppressed ? " (and more since the last message)" : "");
	}
	(void)conn_out_discard(
	    c, (c->flags & CONN_TLS) ? PSUB_TLS_RECORD : 0, &frames);
	STAT_ADD(p->st.dropped, frames + ps_rq_release(pc));
	ps_cut(w, pc, PUBSUB_NOTICE_SLOW_CONSUMER,
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
	pending = c->out_len + ps_rq_bytes(pc);
	if ((pending > 0 && pending + n > d->max_pending) || pc->stalled ||
	    stalled(d->w, c, d->write_ms)) {
		STAT_ADD(d->p->st.dropped, 1);
		if (d->drop)
			pc->lost++;
		else
			slow_consumer(d->w, pc, pending + n <= d->max_pending);
		return;
	}
	if (c->out_len >= PSUB_REFQ_AT || ps_rq_any(pc)) {
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
	ps_mark_dirty(d->p, pc);
}

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
 * ps_settle_dirty()).
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
void
ps_deliver_batch(struct worker *w, struct psub_batch *b)
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
		ps_msg_put(b->v[i]);
	}
	__atomic_fetch_sub(&p->inq, b->bytes, __ATOMIC_RELEASE);
	free(b);
}

void
psub_inbox(struct worker *w, struct inbox_msg *m)
{
	ps_deliver_batch(w, (struct psub_batch *)m);
}

void
psub_free_msg(struct inbox_msg *m)
{
	struct psub_batch *b = (struct psub_batch *)m;
	uint32_t i;

	for (i = 0; i < b->n; i++)
		ps_msg_put(b->v[i]);
	free(b);
}
