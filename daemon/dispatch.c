/*
 * Module requests on the worker side (dispatch.h has the ownership rules).
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acceptor.h"
#include "dispatch.h"
#include "log.h"
#include "psub.h"
#include "runner.h"
#include "server.h"
#include "tls.h"
#include "worker.h"

#define IDS_INIT 64

static struct server *g_srv;
static __thread struct worker *tl_worker;

void
dispatch_set_thread(struct worker *w)
{
	tl_worker = w;
}

/*
 * The coarse clock (a vDSO read, no syscall, a few ms of resolution) is
 * plenty to catch a handler that holds its worker for DISPATCH_SLOW_MS,
 * and cheap enough to read around every call.
 */
static uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* --- the id table (written by the worker under ids_mu) --- */

static size_t
id_slot(const struct worker *w, uint64_t id)
{
	return (size_t)((id >> DISPATCH_ID_SHIFT) * 0x9e3779b97f4a7c15ULL >>
		   32) &
	    w->ids_mask;
}

static struct conn_ext *
id_find(const struct worker *w, uint64_t id)
{
	struct conn_ext *x;

	if (w->ids == NULL)
		return NULL;
	for (x = w->ids[id_slot(w, id)]; x != NULL; x = x->hnext)
		if (x->id == id)
			return x;
	return NULL;
}

/* Caller holds ids_mu. */
static int
id_grow(struct worker *w)
{
	struct conn_ext **nt, *x, *nx, **old = w->ids;
	size_t i, ocap = w->ids ? w->ids_mask + 1 : 0;
	size_t ncap = ocap ? ocap * 2 : IDS_INIT;

	if ((nt = calloc(ncap, sizeof(struct conn_ext *))) == NULL)
		return -1;
	w->ids = nt;
	w->ids_mask = ncap - 1;
	for (i = 0; i < ocap; i++)
		for (x = old[i]; x != NULL; x = nx) {
			nx = x->hnext;
			x->hnext = nt[id_slot(w, x->id)];
			nt[id_slot(w, x->id)] = x;
		}
	free(old);
	return 0;
}

static struct conn_ext *
ext_get(struct worker *w, struct conn *c)
{
	struct conn_ext *x;
	size_t n = g_srv->mods->nmods;

	if (c->ext != NULL)
		return c->ext;
	if ((x = calloc(1, sizeof(*x) + n * sizeof(x->state[0]))) == NULL)
		return NULL;
	x->c = c;
	x->id = (++w->next_id << DISPATCH_ID_SHIFT) | w->index;
	pthread_mutex_lock(&w->ids_mu);
	if ((w->ids == NULL || w->nids >= w->ids_mask + 1) && id_grow(w) != 0) {
		pthread_mutex_unlock(&w->ids_mu);
		free(x);
		return NULL;
	}
	x->hnext = w->ids[id_slot(w, x->id)];
	w->ids[id_slot(w, x->id)] = x;
	w->nids++;
	pthread_mutex_unlock(&w->ids_mu);
	c->ext = x;
	return x;
}

/* --- the timeout list --- */

static void
hto_add(struct worker *w, struct sd_req *r)
{
	r->tnext = NULL;
	r->tprev = w->hto_tail;
	if (w->hto_tail != NULL)
		w->hto_tail->tnext = r;
	else
		w->hto_head = r;
	w->hto_tail = r;
}

static void
hto_remove(struct worker *w, struct sd_req *r)
{
	if (r->tprev != NULL)
		r->tprev->tnext = r->tnext;
	else if (w->hto_head == r)
		w->hto_head = r->tnext;
	else
		return; /* not on the list */
	if (r->tnext != NULL)
		r->tnext->tprev = r->tprev;
	else
		w->hto_tail = r->tprev;
	r->tnext = r->tprev = NULL;
}

/* --- requests --- */

static void
req_free(struct sd_req *r)
{
	if (r == NULL || r == r->w->sreq)
		return;
	free(r->ans);
	free(r->ident_subject);
	free(r);
}

static void
enqueue(struct conn_ext *x, struct sd_req *r)
{
	r->qnext = NULL;
	if (x->qtail != NULL)
		x->qtail->qnext = r;
	else
		x->qhead = r;
	x->qtail = r;
	x->qlen++;
}

int
dispatch_queued(const struct conn *c)
{
	return c->ext != NULL && c->ext->qhead != NULL;
}

int
dispatch_busy(const struct conn *c)
{
	return c->ext != NULL && c->ext->qhead != NULL;
}

unsigned
dispatch_inflight(const struct conn *c)
{
	return c->ext != NULL ? c->ext->qlen : 0;
}

uint8_t *
dispatch_slot(struct worker *w, struct conn *c, size_t need)
{
	struct sd_req *r;

	(void)c;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->ans = malloc(need)) == NULL) {
		free(r);
		return NULL;
	}
	r->w = w;
	r->wstate = R_READY;
	r->replied = 1;
	w->slot = r; /* parked until the commit */
	return r->ans;
}

void
dispatch_slot_commit(struct worker *w, struct conn *c, size_t n)
{
	struct sd_req *r = w->slot;

	w->slot = NULL;
	r->ans_len = n;
	r->opcode = n >= PROTO_FRAME_MIN ? r->ans[5] : 0;
	enqueue(c->ext, r);
}

static unsigned
frame_status(const uint8_t *f, size_t len)
{
	return len >= PROTO_FRAME_MIN ? proto_get_u16(f + 6) : PROTO_INTERNAL;
}

/*
 * An answer made on the worker, now: straight into the output when
 * nothing is queued before it, else into a slot.  0 or -1 (no memory).
 */
static int
answer_to(struct worker *w, struct conn *c, int queued, uint8_t opcode,
    uint32_t request_id, unsigned status, const void *data, size_t len,
    uint64_t t_ns)
{
	size_t need = PROTO_FRAME_MIN + len, n;
	uint8_t *p;

	p = queued ? dispatch_slot(w, c, need) : worker_out_room(w, c, need);
	if (p == NULL)
		return -1;
	n = proto_encode_resp(
	    p, need, opcode, (uint16_t)status, request_id, data, len);
	if (queued)
		dispatch_slot_commit(w, c, n);
	else
		worker_out_commit(w, c, n);
	if (status != PROTO_OK)
		STAT_ADD(w->hst.op_errors[opcode], 1);
	met_count(w->met, opcode, status);
	met_observe(w->met, opcode, met_now_ns() - t_ns);
	return 0;
}

static int
answer_now(struct worker *w, struct conn *c, uint8_t opcode,
    uint32_t request_id, unsigned status, const void *data, size_t len)
{
	return answer_to(w, c, dispatch_queued(c), opcode, request_id, status,
	    data, len, w->t_batch_ns);
}

static int
answer_msg(struct worker *w, struct conn *c, uint8_t opcode,
    uint32_t request_id, unsigned status, const char *msg)
{
	return answer_now(w, c, opcode, request_id, status, msg, strlen(msg));
}

static void
slow_log(struct worker *w, const struct op *op, uint64_t ns)
{
	uint64_t suppressed = 0;

	STAT_ADD(w->hst.slow, 1);
	if (log_ratelimit(&w->rl_slow, w->now, 10000, &suppressed))
		log_warnx("handler %s held worker %u for %llu ms (a %s "
			  "handler must not block)%s",
		    op->name, w->index, (unsigned long long)(ns / 1000000),
		    op->kind == OP_SYNC ? "synchronous" : "asynchronous",
		    suppressed ? " (and more since the last message)" : "");
}

/* What every request carries; the payload borrowed from the input. */
static void
req_fill(struct sd_req *r, struct worker *w, struct conn_ext *x,
    const struct proto_req *req, const struct op *op)
{
	r->w = w;
	r->op = op;
	r->x = x;
	r->conn_id = x->id;
	r->t_start = w->now;
	r->t_ns = w->t_batch_ns;
	r->request_id = req->request_id;
	r->opcode = req->opcode;
	r->max_frame = w->sc->c.max_frame_size;
	r->payload = req->payload;
	r->payload_len = req->payload_len;
}

static struct sd_req *
req_new(struct worker *w, struct conn_ext *x, const struct proto_req *req,
    const struct op *op)
{
	struct sd_req *r;

	if ((r = calloc(1, sizeof(*r) + req->payload_len)) == NULL)
		return NULL;
	r->m.kind = INBOX_REPLY;
	req_fill(r, w, x, req, op);
	if (req->payload_len > 0)
		memcpy(r->data, req->payload, req->payload_len);
	r->payload = r->data;
	return r;
}

static void snapshot_ident(struct sd_req *r, struct conn *c);

int
dispatch_request(struct worker *w, struct conn *c, const struct proto_req *req,
    const struct op *op)
{
	struct conn_ext *x;
	struct sd_req *r;
	uint64_t t0, dt;
	char msg[160];

	STAT_ADD(w->hst.op_requests[req->opcode], 1);
	if ((x = c->ext) == NULL && (x = ext_get(w, c)) == NULL)
		return -1;
	if (op->kind == OP_SYNC) {
		/* The fields a SYNC request uses; the rest stay zero. */
		r = w->sreq;
		req_fill(r, w, x, req, op);
		r->replied = 0;
		r->inline_ = 1;
		t0 = mono_ns();
		op->fn(r);
		dt = mono_ns() - t0;
		r->inline_ = 0;
		if (dt > (uint64_t)DISPATCH_SLOW_MS * 1000000)
			slow_log(w, op, dt);
		if (!r->replied) {
			snprintf(msg, sizeof(msg),
			    "handler %s returned without answering", op->name);
			if (answer_msg(w, c, r->opcode, r->request_id,
				PROTO_INTERNAL, msg) != 0)
				w->oom = 1;
		}
		if (w->oom) {
			w->oom = 0;
			return -1;
		}
		return 0;
	}
	if ((r = req_new(w, x, req, op)) == NULL)
		return -1;
	if (op->kind == OP_BLOCKING) {
		snapshot_ident(r, c);
		if (g_srv->runner == NULL ||
		    pool_runner_submit(g_srv->runner, r) != 0) {
			req_free(r);
			STAT_ADD(w->hst.overloaded, 1);
			snprintf(msg, sizeof(msg),
			    "handler queue full (handler_queue %u): %s not "
			    "run; retry later",
			    w->sc->c.handler_queue, op->name);
			return answer_msg(w, c, req->opcode, req->request_id,
			    PROTO_OVERLOADED, msg);
		}
		/* From here the runner may answer it: link it first. */
		enqueue(x, r);
		hto_add(w, r);
		STAT_ADD(w->met->inflight, 1);
		return 0;
	}
	enqueue(x, r);
	hto_add(w, r);
	STAT_ADD(w->met->inflight, 1);
	t0 = mono_ns();
	op->fn(r); /* may reply at once: it goes on the local list */
	dt = mono_ns() - t0;
	if (dt > (uint64_t)DISPATCH_SLOW_MS * 1000000)
		slow_log(w, op, dt);
	return 0;
}

/* --- answers coming back --- */

static int
drain(struct worker *w, struct conn *c)
{
	struct conn_ext *x = c->ext;
	struct sd_req *r;
	const char *what;
	uint8_t *p;
	char msg[160];
	unsigned st;

	while ((r = x->qhead) != NULL && r->wstate != R_PENDING) {
		x->qhead = r->qnext;
		if (x->qhead == NULL)
			x->qtail = NULL;
		x->qlen--;
		if (r->wstate == R_TIMEDOUT) {
			snprintf(msg, sizeof(msg),
			    "handler %s did not answer within "
			    "timeouts.handler (%.3g s)",
			    r->op->name, (double)w->sc->c.handler_ms / 1000.0);
			r->x = NULL; /* the module still holds it */
			STAT_ADD(w->met->inflight, (uint64_t)-1);
			if (answer_to(w, c, 0, r->opcode, r->request_id,
				PROTO_TIMEOUT, msg, strlen(msg), r->t_ns) != 0)
				goto nomem;
			continue;
		}
		if (r->op != NULL)
			STAT_ADD(w->met->inflight, (uint64_t)-1);
		if (r->ans == NULL) {
			what = "out of memory for the answer";
			if (answer_to(w, c, 0, r->opcode, r->request_id,
				PROTO_INTERNAL, what, strlen(what),
				r->t_ns) != 0) {
				req_free(r);
				goto nomem;
			}
			req_free(r);
			continue;
		}
		if ((p = worker_out_room(w, c, r->ans_len)) == NULL) {
			req_free(r);
			goto nomem;
		}
		memcpy(p, r->ans, r->ans_len);
		worker_out_commit(w, c, r->ans_len);
		st = frame_status(r->ans, r->ans_len);
		if (st != PROTO_OK && r->op != NULL)
			STAT_ADD(w->hst.op_errors[r->opcode], 1);
		if (r->op != NULL) {
			/* A module's answer; built-ins were counted in serve.
			 */
			met_count(w->met, r->opcode, st);
			met_observe(w->met, r->opcode, met_now_ns() - r->t_ns);
		}
		req_free(r);
	}
	if ((c->flags & CONN_HELD) && x->qlen < w->sc->c.max_inflight) {
		c->flags &= ~(uint32_t)CONN_HELD;
		return worker_serve_buffered(w, c);
	}
	return worker_settle(w, c);
nomem:
	log_warnx(
	    "connection %d: out of memory for an answer; closing it", c->fd);
	c->flags |= CONN_CLOSE;
	return worker_settle(w, c);
}

/*
 * Answers that came in are written once per batch and connection, not
 * once each: a batch of 16 replies to one connection is one send(2).
 */
static void
mark_answered(struct worker *w, struct conn_ext *x)
{
	if (x->rmarked)
		return;
	x->rmarked = 1;
	x->rprev = NULL;
	x->rnext = w->answered;
	if (w->answered != NULL)
		w->answered->rprev = x;
	w->answered = x;
}

static void
unmark_answered(struct worker *w, struct conn_ext *x)
{
	if (!x->rmarked)
		return;
	x->rmarked = 0;
	if (x->rprev != NULL)
		x->rprev->rnext = x->rnext;
	else
		w->answered = x->rnext;
	if (x->rnext != NULL)
		x->rnext->rprev = x->rprev;
	x->rnext = x->rprev = NULL;
}

static void
on_reply(struct worker *w, struct sd_req *r)
{
	if (r->x == NULL) {
		/* Orphaned: the connection went, or TIMEOUT was sent. */
		if (__atomic_load_n(&r->replied, __ATOMIC_ACQUIRE))
			STAT_ADD(w->hst.replies_dropped, 1);
		req_free(r);
		return;
	}
	hto_remove(w, r);
	r->wstate = R_READY;
	mark_answered(w, r->x);
}

/* Write what came in for each marked connection, in request order. */
static void
write_answered(struct worker *w)
{
	struct conn_ext *x;

	while ((x = w->answered) != NULL) {
		unmark_answered(w, x);
		(void)drain(w, x->c); /* may close it: x is unlinked already */
	}
}

static void
on_push(struct worker *w, struct push_msg *pm)
{
	struct conn_ext *x = id_find(w, pm->conn);
	struct conn *c;
	uint8_t *p;

	if (x != NULL)
		__atomic_fetch_sub(&x->push_queued, pm->len, __ATOMIC_RELAXED);
	if (x == NULL ||
	    (x->c->flags & (CONN_LINGER | CONN_CLOSE | CONN_DRAIN))) {
		STAT_ADD(w->hst.pushes_dropped, 1);
		free(pm);
		return;
	}
	c = x->c;
	if (x->rmarked) {
		/* Answers that came in before the push leave before it. */
		unmark_answered(w, x);
		if (drain(w, c) == WORKER_CLOSED) {
			STAT_ADD(w->hst.pushes_dropped, 1);
			free(pm);
			return;
		}
	}
	if ((p = worker_out_room(w, c, pm->len)) == NULL) {
		STAT_ADD(w->hst.pushes_dropped, 1);
		free(pm);
		return;
	}
	memcpy(p, pm->frame, pm->len);
	worker_out_commit(w, c, pm->len);
	STAT_ADD(w->hst.pushes, 1);
	free(pm);
	(void)worker_settle(w, c);
}

static void
run_list(struct worker *w, struct inbox_msg *m)
{
	struct inbox_msg *next;

	for (; m != NULL; m = next) {
		next = m->next;
		if (m->kind == INBOX_REPLY)
			on_reply(w, (struct sd_req *)m);
		else if (m->kind == INBOX_PUBSUB)
			psub_inbox(w, m);
		else
			on_push(w, (struct push_msg *)m);
	}
}

int
dispatch_local_pending(const struct worker *w)
{
	return w->local_head != NULL;
}

void
dispatch_inbox(struct worker *w)
{
	struct inbox_msg *m;

	while ((m = w->local_head) != NULL) {
		w->local_head = w->local_tail = NULL;
		run_list(w, m);
	}
	run_list(w, inbox_take(&w->inbox));
	write_answered(w);
}

void
dispatch_expire(struct worker *w, uint64_t *next)
{
	uint64_t ms = w->sc->c.handler_ms, t;
	struct sd_req *r;

	if (ms == 0)
		return;
	while ((r = w->hto_head) != NULL) {
		t = r->t_start + ms;
		if (t > w->now) {
			if (t < *next)
				*next = t;
			return;
		}
		hto_remove(w, r);
		r->wstate = R_TIMEDOUT;
		__atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
		STAT_ADD(w->hst.timeouts, 1);
		(void)drain(w, r->x->c);
	}
}

void
dispatch_conn_close(struct worker *w, struct conn *c)
{
	struct conn_ext *x = c->ext, **pp;
	struct sd_req *r;
	size_t i;

	if (x == NULL)
		return;
	unmark_answered(w, x);
	psub_conn_close(w, c);
	for (i = 0; i < g_srv->mods->nmods; i++) {
		struct sd_mod *m = &g_srv->mods->mods[i];

		if (x->state[i] != NULL && m->d->conn_close != NULL)
			m->d->conn_close(m, x->id, x->state[i]);
	}
	while ((r = x->qhead) != NULL) {
		x->qhead = r->qnext;
		if (r->op != NULL)
			STAT_ADD(w->met->inflight, (uint64_t)-1);
		if (r->wstate == R_READY) {
			req_free(r);
			continue;
		}
		if (r->wstate == R_PENDING)
			hto_remove(w, r);
		r->x = NULL;
		__atomic_store_n(&r->cancelled, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_lock(&w->ids_mu);
	for (pp = &w->ids[id_slot(w, x->id)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == x) {
			*pp = x->hnext;
			w->nids--;
			break;
		}
	pthread_mutex_unlock(&w->ids_mu);
	free(x->tls_subject);
	free(x);
	c->ext = NULL;
}

void
dispatch_run_blocking(void *item, void *arg)
{
	struct sd_req *r = item;
	char msg[160];
	size_t n;

	(void)arg;
	if (!__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE))
		r->op->fn(r);
	if (!__atomic_exchange_n(&r->replied, 1, __ATOMIC_ACQ_REL) &&
	    !__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE)) {
		n = (size_t)snprintf(msg, sizeof(msg),
		    "handler %s returned without answering", r->op->name);
		if ((r->ans = malloc(PROTO_FRAME_MIN + n)) != NULL)
			r->ans_len = proto_encode_resp(r->ans,
			    PROTO_FRAME_MIN + n, r->opcode, PROTO_INTERNAL,
			    r->request_id, msg, n);
	} else if (!r->ans) {
		/* Cancelled before it ran: nothing to drop. */
		__atomic_store_n(&r->replied, 0, __ATOMIC_RELEASE);
	}
	inbox_put(&r->w->inbox, &r->m);
}

void
dispatch_free_msg(struct inbox_msg *m)
{
	if (m->kind == INBOX_REPLY)
		req_free((struct sd_req *)m);
	else if (m->kind == INBOX_PUBSUB)
		psub_free_msg(m);
	else
		free(m);
}

/* --- the sd_api table --- */

static const uint8_t *
api_payload(const struct sd_req *r, size_t *len)
{
	if (len != NULL)
		*len = r->payload_len;
	return r->payload;
}

static uint8_t
api_opcode(const struct sd_req *r)
{
	return r->opcode;
}

static uint64_t
api_conn(const struct sd_req *r)
{
	return r->conn_id;
}

static void
fill_ident(struct sd_conn_identity *id, const struct conn *c)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(id, 0, sizeof(*id));
	if (memcmp(c->src, mapped, sizeof(mapped)) == 0) {
		id->family = AF_INET;
		memcpy(id->addr, c->src + 12, 4);
	} else {
		id->family = AF_INET6;
		memcpy(id->addr, c->src, 16);
	}
	id->port = c->port;
	id->listener = acceptor_listener_name(g_srv->acc, c->listener);
}

static const char *
conn_subject(struct conn *c)
{
	struct conn_ext *x = c->ext;
	char buf[512];

	if (!x->tls_subject_done) {
		x->tls_subject_done = 1;
		if ((c->flags & CONN_TLS) && c->io_ctx != NULL &&
		    tls_conn_subject(c->io_ctx, buf, sizeof(buf)) == 0)
			x->tls_subject = strdup(buf);
	}
	return x->tls_subject;
}

static void
snapshot_ident(struct sd_req *r, struct conn *c)
{
	const char *s;

	fill_ident(&r->ident, c);
	if ((s = conn_subject(c)) != NULL)
		r->ident_subject = strdup(s);
	r->ident.tls_subject = r->ident_subject;
	r->has_ident = 1;
}

static int
api_conn_identity(const struct sd_req *r, struct sd_conn_identity *out)
{
	if (r == NULL || out == NULL)
		return SD_EINVAL;
	if (r->has_ident) {
		*out = r->ident;
		return SD_OK;
	}
	/* r->x is the worker's: not even read from another thread. */
	if (tl_worker != r->w)
		return SD_EINVAL;
	if (r->x == NULL)
		return SD_EGONE;
	fill_ident(out, r->x->c);
	out->tls_subject = conn_subject(r->x->c);
	return SD_OK;
}

static void **
api_conn_state(struct sd_req *r)
{
	if (r == NULL || tl_worker != r->w || r->x == NULL ||
	    r->op->mod == NULL)
		return NULL;
	return &r->x->state[r->op->mod->index];
}

static void
forward(struct sd_req *r)
{
	struct worker *w = r->w;

	if (tl_worker == w) {
		r->m.next = NULL;
		if (w->local_tail != NULL)
			w->local_tail->next = &r->m;
		else
			w->local_head = &r->m;
		w->local_tail = &r->m;
		return;
	}
	inbox_put(&w->inbox, &r->m);
}

static int
api_reply(struct sd_req *r, unsigned status, const void *data, size_t len)
{
	static const char big[] = "answer exceeds max_frame_size";
	size_t need;
	int rc;

	if (r == NULL || (data == NULL && len > 0))
		return SD_EINVAL;
	/*
	 * A SYNC request is the worker's own struct, touched by no other
	 * thread: no locked instruction on that path.
	 */
	if (r->inline_ && tl_worker == r->w && !r->replied) {
		r->replied = 1;
	} else if (__atomic_exchange_n(&r->replied, 1, __ATOMIC_ACQ_REL)) {
		log_warnx("handler %s replied twice to request %u; the second "
			  "reply is ignored",
		    r->op->name, r->request_id);
		return SD_EINVAL;
	}
	if (status > 0xffff)
		status = PROTO_INTERNAL;
	if (status != PROTO_OK && len > PROTO_TEXT_MAX)
		len = PROTO_TEXT_MAX;
	if (len > r->max_frame - PROTO_HDR_SIZE) {
		status = PROTO_INTERNAL;
		data = big;
		len = sizeof(big) - 1;
	}
	if (r->inline_) {
		if (answer_now(r->w, r->x->c, r->opcode, r->request_id, status,
			data, len) != 0) {
			r->w->oom = 1;
			return SD_ENOMEM;
		}
		return SD_OK;
	}
	need = PROTO_FRAME_MIN + len;
	if ((r->ans = malloc(need)) != NULL)
		r->ans_len = proto_encode_resp(r->ans, need, r->opcode,
		    (uint16_t)status, r->request_id, data, len);
	/* Decided before forward(): after it, r may be freed at any time. */
	rc = __atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE) ? SD_EGONE
	    : r->ans != NULL                                  ? SD_OK
							      : SD_ENOMEM;
	if (r->op->kind != OP_BLOCKING)
		forward(r); /* the runner forwards blocking ones */
	return rc;
}

/* max_frame_size in force (a push must fit a frame the client accepts). */
static size_t
max_frame_now(void)
{
	struct server_cfg *sc = server_cfg_get(g_srv);
	size_t n = sc->c.max_frame_size;

	server_cfg_put(sc);
	return n;
}

static int
api_push(struct sd_mod *m, uint64_t conn, uint8_t opcode, const void *data,
    size_t len)
{
	const struct op *op = &g_srv->mods->ops[opcode];
	struct conn_ext *x;
	struct push_msg *pm;
	struct worker *w;
	size_t need = PROTO_FRAME_MIN + len;
	uint64_t pending;
	unsigned idx = (unsigned)(conn & ((1u << DISPATCH_ID_SHIFT) - 1));

	if (m == NULL || op->kind != OP_PUSH || op->mod != m ||
	    (data == NULL && len > 0))
		return SD_EINVAL;
	/* Before the workers exist (a push from init()) nothing is there. */
	if (conn == 0 || idx >= g_srv->nworkers || g_srv->workers == NULL)
		return SD_EGONE;
	if (len > max_frame_now() - PROTO_HDR_SIZE)
		return SD_EINVAL;
	w = &g_srv->workers[idx];
	if ((pm = malloc(sizeof(*pm) + need)) == NULL)
		return SD_ENOMEM;
	pm->m.kind = INBOX_PUSH;
	pm->conn = conn;
	pm->len =
	    proto_encode_resp(pm->frame, need, opcode, PROTO_OK, 0, data, len);
	pthread_mutex_lock(&w->ids_mu);
	if ((x = id_find(w, conn)) == NULL) {
		pthread_mutex_unlock(&w->ids_mu);
		free(pm);
		return SD_EGONE;
	}
	pending = __atomic_load_n(&x->out_pending, __ATOMIC_RELAXED) +
	    __atomic_load_n(&x->push_queued, __ATOMIC_RELAXED);
	if (pending + need > DISPATCH_PUSH_MAX_PENDING) {
		pthread_mutex_unlock(&w->ids_mu);
		free(pm);
		return SD_EFULL;
	}
	__atomic_fetch_add(&x->push_queued, need, __ATOMIC_RELAXED);
	inbox_put(&w->inbox, &pm->m);
	pthread_mutex_unlock(&w->ids_mu);
	return SD_OK;
}

static void api_log(struct sd_mod *m, enum sd_log_level level, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
api_log(struct sd_mod *m, enum sd_log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	switch (level) {
	case SD_LOG_ERROR:
		log_errx("module %s: %s", m ? m->name : "?", buf);
		break;
	case SD_LOG_WARNING:
		log_warnx("module %s: %s", m ? m->name : "?", buf);
		break;
	case SD_LOG_INFO:
		log_info("module %s: %s", m ? m->name : "?", buf);
		break;
	default:
		log_debug("module %s: %s", m ? m->name : "?", buf);
		break;
	}
}

static uint8_t
api_opcode_of(struct sd_mod *m, unsigned i)
{
	if (m == NULL || i >= m->nhandlers + m->npushes)
		return 0;
	return (uint8_t)(m->opcode + i);
}

static const struct sd_api api = {
    .size = sizeof(struct sd_api),
    .abi_major = SD_ABI_MAJOR,
    .abi_minor = SD_ABI_MINOR,
    .payload = api_payload,
    .opcode = api_opcode,
    .conn = api_conn,
    .conn_identity = api_conn_identity,
    .conn_state = api_conn_state,
    .reply = api_reply,
    .push = api_push,
    .log = api_log,
    .setting_int = modreg_setting_int,
    .setting_float = modreg_setting_float,
    .setting_bool = modreg_setting_bool,
    .setting_str = modreg_setting_str,
    .stat = modreg_stat_line,
    .opcode_of = api_opcode_of,
};

const struct sd_api *
dispatch_api(struct server *srv)
{
	g_srv = srv;
	return &api;
}

int
dispatch_worker_init(struct worker *w)
{
	if ((w->sreq = calloc(1, sizeof(*w->sreq))) == NULL)
		return -1;
	if ((errno = pthread_mutex_init(&w->ids_mu, NULL)) != 0) {
		free(w->sreq);
		w->sreq = NULL;
		return -1;
	}
	if (inbox_init(&w->inbox) != 0) {
		pthread_mutex_destroy(&w->ids_mu);
		free(w->sreq);
		w->sreq = NULL;
		return -1;
	}
	return 0;
}

void
dispatch_worker_fini(struct worker *w)
{
	struct sd_req *r, *nx;

	inbox_fini(&w->inbox, dispatch_free_msg);
	/* Left on the local list only if a module replied after the end. */
	for (r = (struct sd_req *)w->local_head; r != NULL; r = nx) {
		nx = (struct sd_req *)r->m.next;
		req_free(r);
	}
	w->local_head = w->local_tail = NULL;
	free(w->ids);
	w->ids = NULL;
	free(w->sreq);
	w->sreq = NULL;
	pthread_mutex_destroy(&w->ids_mu);
}

void
dispatch_stats_text(struct server *s, char *buf, size_t cap, size_t *off)
{
	uint64_t ov = 0, to = 0, dr = 0, pu = 0, pd = 0, sl = 0, rq, er;
	char name[160];
	unsigned i, op;

	for (i = 0; i < s->nworkers; i++) {
		const struct hstats *h = &s->workers[i].hst;

		ov += STAT_GET(h->overloaded);
		to += STAT_GET(h->timeouts);
		dr += STAT_GET(h->replies_dropped);
		pu += STAT_GET(h->pushes);
		pd += STAT_GET(h->pushes_dropped);
		sl += STAT_GET(h->slow);
	}
	proto_kv_u64(buf, cap, off, "handler_queue_depth",
	    s->runner != NULL ? pool_runner_depth(s->runner) : 0);
	proto_kv_u64(buf, cap, off, "handler_overloaded", ov);
	proto_kv_u64(buf, cap, off, "handler_timeouts", to);
	proto_kv_u64(buf, cap, off, "handler_slow", sl);
	proto_kv_u64(buf, cap, off, "replies_dropped", dr);
	proto_kv_u64(buf, cap, off, "pushes", pu);
	proto_kv_u64(buf, cap, off, "pushes_dropped", pd);
	for (op = 0x80; op < 256; op++) {
		const struct op *o = &s->mods->ops[op];

		if (o->kind < OP_SYNC)
			continue;
		for (rq = er = 0, i = 0; i < s->nworkers; i++) {
			rq += STAT_GET(s->workers[i].hst.op_requests[op]);
			er += STAT_GET(s->workers[i].hst.op_errors[op]);
		}
		snprintf(name, sizeof(name), "%s_requests", o->name);
		proto_kv_u64(buf, cap, off, name, rq);
		snprintf(name, sizeof(name), "%s_errors", o->name);
		proto_kv_u64(buf, cap, off, name, er);
	}
}
