/*
 * psub's insides, shared by psub.c (the operations, routing, hooks, set-up
 * and figures) and psub_out.c (delivery into connections' output, the
 * backlog of references, slow consumers).  Nothing else includes it.
 */
#ifndef SOCKETD_PSUB_INT_H
#define SOCKETD_PSUB_INT_H

#include <pthread.h>
#include <stdint.h>

#include "log.h"
#include "psub.h"
#include "pubsub.h"
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

extern struct psub *g_ps;

static inline struct psub_w *
pw_of(const struct worker *w)
{
	return &g_ps->w[w->index];
}

/* A cached match: the subscriptions on this worker a topic reaches. */
struct dmatch {
	uint32_t n;
	struct psub_sub *v[PSUB_DMATCH_MAX];
};

/* psub_out.c */
void ps_msg_put(struct psub_msg *m);
void ps_mark_dirty(struct psub_w *p, struct psub_conn *pc);
void ps_settle_dirty(struct worker *w);
int ps_notice(
    struct worker *w, struct psub_conn *pc, unsigned reason, const char *text);
void ps_cut(
    struct worker *w, struct psub_conn *pc, unsigned reason, const char *text);
int32_t ps_cut_left(const struct worker *w, const struct psub_conn *pc);
int ps_rq_any(const struct psub_conn *pc);
uint64_t ps_rq_bytes(const struct psub_conn *pc);
uint32_t ps_rq_release(struct psub_conn *pc);
void ps_rq_spill(struct worker *w, struct psub_conn *pc, size_t upto);
void ps_deliver_batch(struct worker *w, struct psub_batch *b);

/* psub.c */
void ps_watch_add(struct psub_w *p, struct psub_conn *pc, int kind);
void ps_drop_subs(struct worker *w, struct psub_conn *pc);

#endif
