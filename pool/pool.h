/*
 * pool: a bounded hand-off queue and a fixed pool of worker threads.
 *
 * Generic: it moves opaque items (void *) from producers to workers and
 * knows nothing of sockets, protocols or configuration.  It never logs and
 * never exits.  Return convention: 0 or a negative errno value.
 *
 * The threads
 *   Each worker thread runs worker_main(w, arg), given to pool_create(), for
 *   its whole life, with every signal blocked and no pool lock held.  A
 *   worker typically waits in its own event loop (epoll) on
 *   pool_worker_fd(w), an eventfd the pool writes to when an item is
 *   submitted for it, on pool_wake() and on pool_stop().
 *
 * Hand-off
 *   pool_submit() puts an item in the one bounded queue (capacity
 *   queue_size) and credits one worker, round-robin, with it.  The credited
 *   worker finds it with pool_worker_take().  Every credit matches an item,
 *   so an item is never stranded; which worker takes which item is only a
 *   balancing hint.  An item belongs to the pool from a successful submit
 *   until a worker takes it; if submit fails the caller still owns it.
 *
 * Back-pressure
 *   When the queue is full pool_submit() returns -EAGAIN and never blocks
 *   or grows.  The producer can then wait until pool_space_fd() is
 *   readable: the pool signals it once a worker takes an item after a
 *   refused submit.  The producer must read the eventfd to re-arm it.
 *
 * Locks: one mutex in the queue protects its ring, depth and counters; it
 * is held only for a few instructions and never across a callback or a
 * system call other than the eventfd write that signals space.
 */
#ifndef SOCKETD_POOL_H
#define SOCKETD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "queue.h"

struct pool;
struct pool_worker;

typedef void pool_worker_fn(struct pool_worker *w, void *arg);

struct pool_params {
	unsigned workers;    /* number of threads, >= 1 */
	unsigned queue_size; /* hand-off queue capacity, >= 1 */
	const char *name;    /* thread name prefix, <= 8 chars; may be NULL */
	size_t stack_size;   /* 0: the system default */
};

struct pool_stats {
	uint64_t depth;      /* items in the queue now */
	uint64_t high_water; /* the most there ever were */
	uint64_t submitted;  /* successful submits */
	uint64_t refused;    /* submits refused because the queue was full */
};

/*
 * Create the pool and start its threads.  On success *out owns the pool.
 * Any thread may call it; the threads it starts block all signals.
 */
int pool_create(struct pool **out, const struct pool_params *params,
    pool_worker_fn *worker_main, void *arg);

/*
 * Hand item to a worker.  0: the pool owns it now.  -EAGAIN: the queue is
 * full.  -ESHUTDOWN: pool_stop() was called.  Any thread.
 */
int pool_submit(struct pool *p, void *item);

/* An eventfd that becomes readable when room appears after -EAGAIN. */
int pool_space_fd(const struct pool *p);

/* Wake every worker (its fd becomes readable), e.g. after a reload. */
void pool_wake(struct pool *p);

/*
 * Stop: refuse further submits and wake every worker, which sees
 * pool_worker_stopping() true.  Items already queued can still be taken.
 */
void pool_stop(struct pool *p);

/* Wait for every worker thread to return.  Call once, after pool_stop(). */
void pool_join(struct pool *p);

/* Free the pool, and any items left with free_item (may be NULL). */
void pool_destroy(struct pool *p, void (*free_item)(void *));

void pool_stats(struct pool *p, struct pool_stats *st);
unsigned pool_size(const struct pool *p);

/* Worker side: call only from the worker thread w. */
int pool_worker_fd(const struct pool_worker *w);
unsigned pool_worker_index(const struct pool_worker *w);
/*
 * Take one item: 0 with *item set, or -EAGAIN when there is none.  It
 * consumes the worker's eventfd, wake-ups from pool_wake() and pool_stop()
 * included: check pool_worker_stopping() (and anything a wake-up signals)
 * after take returns -EAGAIN, not before.
 */
int pool_worker_take(struct pool_worker *w, void **item);
int pool_worker_stopping(const struct pool_worker *w);

#endif /* SOCKETD_POOL_H */
