/*
 * dispatch: module requests on the worker side: the per-connection
 * queue that keeps answers in request order, the request handle modules
 * hold (struct sd_req), replies and pushes arriving through the worker's
 * inbox, handler timeouts, and the sd_api table modules call.
 *
 * Ownership of a struct sd_req (one module request)
 *   The worker creates it, links it into its connection's answer queue
 *   (in request order) and into the worker's timeout list, and hands it to
 *   the handler: run on the worker (SD_SYNC, SD_ASYNC) or queued for a
 *   handler thread (SD_BLOCKING).  From then until its reply the module
 *   holds it; reply() writes the answer into it (fields the worker never
 *   touches meanwhile) and sends it back through the worker's inbox (a
 *   reply made on the worker itself goes on a local list: no lock, no
 *   wake-up).  The worker then marks it READY and writes every READY
 *   answer at the head of the queue, in order.
 *   If the connection closes, or timeouts.handler answers TIMEOUT first,
 *   the worker unlinks it and sets ->x to NULL and ->cancelled: it is an
 *   orphan.  The module still holds it, so it is not freed; when the reply
 *   comes in, the worker drops it (replies_dropped) and frees it.  A
 *   request is therefore freed exactly once, by its worker, after its
 *   reply: never while a module can still touch it.
 *
 *   SD_SYNC requests use one struct sd_req embedded in the worker (no
 *   allocation on that path); the reply goes straight into the output.
 *
 * Connection handles: a connection that makes a module request gets a
 * struct conn_ext with a 64-bit id (a per-worker sequence number above
 * the worker's index: never reused, routable without a global lock), in
 * its worker's id table.  push() looks the id up under that worker's
 * ids_mu, checks the pending-output limit and queues the frame into the
 * inbox; the worker writes it between two answers.
 */
#ifndef SOCKETD_DISPATCH_H
#define SOCKETD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include <socketd/module.h>

#include "inbox.h"
#include "module.h"
#include "proto.h"

struct worker;
struct conn;
struct server;
struct psub_conn;

/* Output queued toward one connection beyond which push() says SD_EFULL. */
#define DISPATCH_PUSH_MAX_PENDING (4u << 20)
/* A worker-thread handler holding its worker longer is logged. */
#define DISPATCH_SLOW_MS 100
/* Connection ids: sequence << ID_SHIFT | worker index. */
#define DISPATCH_ID_SHIFT 10

enum req_state {
	R_PENDING = 0, /* with the module */
	R_READY,       /* answer in ans, waiting for its turn */
	R_TIMEDOUT,    /* TIMEOUT is owed; the module still holds it */
};

struct conn_ext {
	uint64_t id;
	struct conn *c;
	struct conn_ext *hnext;       /* id table chain; under ids_mu */
	struct sd_req *qhead, *qtail; /* answers in request order */
	unsigned qlen;
	uint64_t push_queued; /* atomic: push bytes in the inbox */
	uint64_t out_pending; /* atomic: mirror of c->out_len */
	char *tls_subject;    /* cached; NULL: none or not asked */
	int tls_subject_done;
	struct psub_conn *ps; /* pub/sub state (psub.c); NULL: none */
	/* On the worker's list of connections with answers to write. */
	struct conn_ext *rnext, *rprev;
	int rmarked;
	void *state[]; /* one per module: sd_api.conn_state */
};

struct sd_req {
	struct inbox_msg m; /* first: the inbox carries it */
	struct worker *w;   /* owner; never changes */
	const struct op *op;
	struct sd_req *qnext;         /* the connection's queue */
	struct sd_req *tnext, *tprev; /* the worker's timeout list */
	struct conn_ext *x;           /* NULL: orphaned */
	uint64_t conn_id;
	uint64_t t_start; /* monotonic ms */
	uint64_t t_ns;    /* its batch's start, for the duration metric */
	uint32_t request_id;
	uint32_t max_frame;
	uint8_t opcode;
	uint8_t wstate;  /* enum req_state; the worker's */
	uint8_t inline_; /* SD_SYNC call in progress */
	uint8_t has_ident;
	int replied;   /* atomic */
	int cancelled; /* atomic: set when orphaned */
	uint8_t *ans;  /* the whole answer frame */
	size_t ans_len;
	const uint8_t *payload;
	size_t payload_len;
	struct sd_conn_identity ident; /* SD_BLOCKING: a snapshot */
	char *ident_subject;
	uint8_t data[]; /* the payload's copy */
};

struct push_msg {
	struct inbox_msg m;
	uint64_t conn;
	size_t len;
	uint8_t frame[];
};

/* Handler counters; single writer (the worker). */
struct hstats {
	uint64_t overloaded;
	uint64_t timeouts;
	uint64_t replies_dropped;
	uint64_t pushes;
	uint64_t pushes_dropped;
	uint64_t slow;
	uint64_t op_requests[256];
	uint64_t op_errors[256];
};

/* Once, before the workers start: the table modules get. */
const struct sd_api *dispatch_api(struct server *srv);
/* The thread's worker (worker_main sets it; NULL elsewhere). */
void dispatch_set_thread(struct worker *w);

int dispatch_worker_init(struct worker *w);
void dispatch_worker_fini(struct worker *w);

/*
 * A request for a module opcode (op->kind SYNC, BLOCKING or ASYNC).
 * 0, or -1: out of memory (the caller closes the connection).
 */
int dispatch_request(struct worker *w, struct conn *c,
    const struct proto_req *req, const struct op *op);
/* Whether answers are waiting in c's queue (built-ins must queue too). */
int dispatch_queued(const struct conn *c);
/*
 * Room for a queued answer of up to need bytes, then commit the n bytes
 * written; NULL: out of memory.
 */
uint8_t *dispatch_slot(struct worker *w, struct conn *c, size_t need);
void dispatch_slot_commit(struct worker *w, struct conn *c, size_t n);
/* Answers in progress on c: it must not be closed for EOF or drain. */
int dispatch_busy(const struct conn *c);
/* Module requests in progress on c (max_inflight). */
unsigned dispatch_inflight(const struct conn *c);
/* c is closing: close hooks, orphan its requests, forget its id. */
void dispatch_conn_close(struct worker *w, struct conn *c);
/* The inbox and the local list: replies and pushes. */
void dispatch_inbox(struct worker *w);
int dispatch_local_pending(const struct worker *w);
/* Handler timeouts; lowers *next to the next deadline. */
void dispatch_expire(struct worker *w, uint64_t *next);
/* The runner's function: one SD_BLOCKING request. */
void dispatch_run_blocking(void *item, void *arg);
/* Free what an inbox still holds at exit. */
void dispatch_free_msg(struct inbox_msg *m);
/* STATS lines for the handlers. */
void dispatch_stats_text(struct server *s, char *buf, size_t cap, size_t *off);

#endif /* SOCKETD_DISPATCH_H */
