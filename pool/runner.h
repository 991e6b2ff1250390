/*
 * runner: a fixed set of threads that run items from one bounded queue.
 *
 * Where pool.h hands connections to event loops (each worker waits on its
 * own eventfd and is credited items round-robin), a runner is for work
 * that blocks: every idle thread waits on the one queue, so an item never
 * waits behind a busy thread while another is idle.  nginx's thread_pool
 * and libuv's threadpool have this shape.
 *
 * run(item, arg) is called on a runner thread, with every signal blocked
 * and no lock held.  An item belongs to the runner from a successful
 * submit until run() is called with it.  Return convention: 0 or a
 * negative errno value; nothing here logs or exits.
 */
#ifndef SOCKETD_RUNNER_H
#define SOCKETD_RUNNER_H

#include <stddef.h>

struct pool_runner;

typedef void pool_run_fn(void *item, void *arg);

/* Start threads threads behind a queue of queue_size; 0, -EINVAL, -ENOMEM. */
int pool_runner_create(struct pool_runner **out, unsigned threads,
    size_t queue_size, const char *name, pool_run_fn *run, void *arg);

/* Queue item: 0, -EAGAIN (full: answer "overloaded") or -ESHUTDOWN. */
int pool_runner_submit(struct pool_runner *r, void *item);

/* Items waiting now (not those running). */
size_t pool_runner_depth(struct pool_runner *r);

/*
 * Refuse further submits; the threads run what is queued, then exit.
 * Waits for them and frees the runner.  NULL is fine.
 */
void pool_runner_destroy(struct pool_runner *r);

#endif /* SOCKETD_RUNNER_H */
