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
#include "psub_int.h"
#include "server.h"
#include "tls.h"
#include "worker.h"

struct psub *g_ps;

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

void
ps_watch_add(struct psub_w *p, struct psub_conn *pc, int kind)
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
		ps_deliver_batch(w, b);
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
				ps_msg_put(m); /* that worker misses it */
	}
	answer_u32(
	    r, receivers > UINT32_MAX ? UINT32_MAX : (uint32_t)receivers);
	// NOLINTEND(clang-analyzer-unix.Malloc)
	/* Fan-out piling up somewhere: stop reading this publisher. */
	if (inbox_full()) {
		r->x->c->flags |= CONN_HELD;
		if (pc->watch == W_NONE)
			STAT_ADD(p->st.pauses, 1);
		ps_watch_add(p, pc, W_PAUSED);
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

void
ps_drop_subs(struct worker *w, struct psub_conn *pc)
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
		ps_rq_spill(w, pc, 0); /* the barrier: its MESSAGEs go first */
	if (id == 0) {
		if (pc != NULL)
			ps_drop_subs(w, pc);
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
	ps_drop_subs(w, pc);
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
	STAT_ADD(p->st.dropped, ps_rq_release(pc));
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
			d = ps_cut_left(w, pc) > 0 ? ps_cut_left(w, pc) + 1 : 0;
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
		ps_cut(w, pc, PUBSUB_NOTICE_PERMISSIONS_CHANGED, msg);
	}
	ps_settle_dirty(w);
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
	ps_settle_dirty(w); /* the inbox's batches and our own */
	if (p->acl_gen != w->gen) {
		p->acl_gen = w->gen;
		recheck_acl(w);
	}
	for (pc = p->watch; pc != NULL; pc = nx) {
		struct conn *c = pc->x->c;

		nx = pc->wnext;
		if (pc->watch == W_CUT) {
			if (ps_cut_left(w, pc) <= 0)
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

			pend += c->out_len + ps_rq_bytes(pc);
			if (ps_rq_any(pc) && c->out_len == 0 && !pc->cut) {
				/* Nothing left to write that would refill. */
				ps_rq_spill(w, pc, PSUB_REFQ_AT);
				ps_mark_dirty(p, pc);
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
			(void)ps_notice(w, pc, PUBSUB_NOTICE_SHUTDOWN,
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
