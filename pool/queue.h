/*
 * queue: a bounded multi-producer, multi-consumer FIFO of pointers.
 *
 * One mutex and two condition variables; the ring is allocated once at
 * init and never grows.  Operations that would exceed the capacity fail
 * with -EAGAIN (or wait, for the _wait variants) instead of growing.
 * After pool_queue_shutdown() pushes fail with -ESHUTDOWN and pops drain
 * what is left, then fail with -ESHUTDOWN; every waiter is woken.
 *
 * Return convention: 0 or a negative errno value.  Any thread may call any
 * function except init and destroy.
 */
#ifndef SOCKETD_QUEUE_H
#define SOCKETD_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct pool_queue {
	/* All fields private; protected by mu. */
	pthread_mutex_t mu;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	void **ring;
	size_t cap;
	size_t head; /* next pop */
	size_t len;
	size_t high_water;
	uint64_t pushed;
	uint64_t refused;
	int shutdown;
	int space_fd; /* eventfd written when want_space and a pop frees room */
	int want_space;
};

/* 0, -EINVAL (capacity 0) or -ENOMEM. */
int pool_queue_init(struct pool_queue *q, size_t capacity);
/* Destroy; items still queued are handed to free_item (may be NULL). */
void pool_queue_destroy(struct pool_queue *q, void (*free_item)(void *));

/* Non-blocking push: 0, -EAGAIN (full) or -ESHUTDOWN. */
int pool_queue_push(struct pool_queue *q, void *item);
/*
 * Push, waiting up to timeout_ms for room (-1: forever).  0, -ETIMEDOUT or
 * -ESHUTDOWN.
 */
int pool_queue_push_wait(struct pool_queue *q, void *item, int timeout_ms);
/*
 * Pop, waiting up to timeout_ms for an item (0: do not wait, -1: forever).
 * 0 with *item set, -EAGAIN (empty and timeout_ms was 0), -ETIMEDOUT, or
 * -ESHUTDOWN (shut down and empty).
 */
int pool_queue_pop(struct pool_queue *q, void **item, int timeout_ms);

void pool_queue_shutdown(struct pool_queue *q);
size_t pool_queue_depth(struct pool_queue *q);

/*
 * Have the queue write 1 to the eventfd space_fd after the next pop that
 * follows a refused push (-EAGAIN).  -1 turns it off.  Call before use.
 */
void pool_queue_set_space_fd(struct pool_queue *q, int space_fd);

#endif /* SOCKETD_QUEUE_H */
