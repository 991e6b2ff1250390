/*
 * psub: pub/sub on the worker pool (protocol v1.1, opcodes 0x10-0x14);
 * the pure parts (syntax, trie, registry) are in pubsub/.
 *
 * Threads and locks
 *   Each worker owns the subscriptions of its own connections: a private
 *   trie of (filter -> subscription) that only it reads and writes.  The
 *   registry (pubsub/ pubsub_reg) says, for a topic, how many matching
 *   subscriptions each worker holds; it sits behind one rwlock, taken for
 *   writing once per SUBSCRIBE / UNSUBSCRIBE (which also bumps the atomic
 *   generation gen), and for reading by a PUBLISH only when the worker's
 *   own cache of registry answers (topic -> counts, valid for one
 *   generation) misses.  Nothing else is shared.  Each worker also caches
 *   its own trie's matches per topic (valid until its trie changes).
 *
 * Fan-out
 *   A PUBLISH is copied once into a refcounted struct psub_msg.  The
 *   publishing worker appends one reference per destination worker to a
 *   per-destination batch; at the end of its loop iteration (or when a
 *   batch reaches PSUB_BATCH_MAX) each batch goes to its worker's inbox
 *   with one inbox_put (one lock, at most one eventfd write).  Its own
 *   worker's batch is delivered then too, after the PUBLISH answer was
 *   written: the answer precedes the echo.  The destination worker
 *   matches each message against its own trie at delivery time (so a
 *   subscription removed before delivery gets nothing: the unsubscribe
 *   barrier), appends one MESSAGE per matching subscription to the
 *   connections' output and writes each touched connection once per
 *   batch.  No lock is taken per delivered message.
 *
 * Bounds
 *   Bytes queued toward a worker (inq, atomic, added once per batch: a
 *   batch holds at most PSUB_BATCH_BYTES) above PSUB_INBOX_HIGH
 *   pause the publishing connection (reading stops, CONN_HELD) until every
 *   worker is below PSUB_INBOX_LOW.  Output toward one connection above
 *   pubsub.max_pending makes it a slow consumer (policy in socketd.conf(5)).
 *   Past PSUB_REFQ_AT bytes of output a connection's MESSAGEs queue as
 *   references to the shared message, encoded as its output drains
 *   (psub_refill); they count toward max_pending as their frames' bytes.
 */
#ifndef SOCKETD_PSUB_H
#define SOCKETD_PSUB_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct inbox_msg;
struct modreg;
struct server;
struct worker;

#define PSUB_BATCH_MAX   1024         /* references in one batch */
#define PSUB_BATCH_BYTES (256u << 10) /* and the message bytes they hold */
#define PSUB_INBOX_HIGH  (1u << 20)   /* bytes queued toward a worker */
#define PSUB_INBOX_LOW   (PSUB_INBOX_HIGH / 2)
#define PSUB_CUT_MS      1000  /* a cut connection's last second of output */
#define PSUB_TLS_RECORD  16384 /* kept on a cut: OpenSSL may hold a record */
#define PSUB_CACHE_SLOTS 256   /* topics in each of a worker's topic caches */
#define PSUB_CACHE_BYTES (128u << 10) /* and the most memory for each */
#define PSUB_DMATCH_MAX  15 /* matches cached per topic for delivery */
/* Output past which MESSAGEs queue as references, and the refill mark. */
#define PSUB_REFQ_AT  (256u << 10)
#define PSUB_REFQ_LOW (PSUB_REFQ_AT / 2)

/* Main thread, before the workers start (after srv->nworkers is set). */
int psub_init(struct server *srv);
/* After the workers have stopped. */
void psub_fini(struct server *srv);
/* modreg_open: serve 0x10-0x14 (when pubsub.enabled). */
void psub_ops(struct modreg *r);

/* Worker hooks (worker.c, dispatch.c). */
/* The epoll timeout, lowered while publishers wait or cut conns close. */
int psub_timeout(struct worker *w, int timeout);
/* End of each loop iteration: flush batches, resume, reload, gauges. */
void psub_tick(struct worker *w);
/* A batch from another worker's inbox (INBOX_PUBSUB). */
void psub_inbox(struct worker *w, struct inbox_msg *m);
/* Free a batch left in an inbox at exit. */
void psub_free_msg(struct inbox_msg *m);
/* c is closing: drop its subscriptions. */
void psub_conn_close(struct worker *w, struct conn *c);
/* Whether c holds subscriptions (the idle timeout spares it). */
int psub_holds(const struct conn *c);
/*
 * c's write timeout expired: for a subscriber that is a write stall (its
 * socket took no byte for timeouts.write), which the slow-consumer policy
 * handles.  1: keep c (it is cut, or its MESSAGEs are dropped, and its
 * timer restarts); 0: close it as any connection.
 */
int psub_stall(struct worker *w, struct conn *c);
/* c's socket took bytes: the stall is over; whether c is a subscriber. */
int psub_wrote(struct conn *c);
/*
 * c's output fell below PSUB_REFQ_LOW: encode the MESSAGEs it queued as
 * references (the worker's flush, after its socket took bytes).
 */
void psub_refill(struct worker *w, struct conn *c);
/* Shutdown starts: NOTICE SHUTDOWN to every subscriber. */
void psub_drain(struct worker *w);

/* Pub/sub counters, per worker (single writer) or summed. */
struct psub_stats {
	uint64_t subs;
	uint64_t publish;
	uint64_t delivered;
	uint64_t dropped;
	uint64_t slow;
	uint64_t denied;
	uint64_t pending;
	uint64_t cross;
	uint64_t batches;
	uint64_t pauses;
	uint64_t revoked;
} __attribute__((aligned(64)));

/* The sums over the workers; 0, or -1 when pub/sub is off. */
int psub_totals(struct server *s, struct psub_stats *t);

/* STATS and INFO lines. */
void psub_stats_text(struct server *s, char *buf, size_t cap, size_t *off);
void psub_info_text(struct server *s, char *buf, size_t cap, size_t *off);

#endif /* SOCKETD_PSUB_H */
