/*
 * Bounded MPMC queue.  Lock rules: every field of struct pool_queue is
 * read and written with mu held; mu is a leaf lock (nothing else is taken
 * while it is held).  The eventfd write that signals space happens under
 * mu too: it is one non-blocking system call and keeps want_space exact.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

int
pool_queue_init(struct pool_queue *q, size_t capacity)
{
	pthread_condattr_t ca;

	if (capacity == 0)
		return -EINVAL;
	q->ring = calloc(capacity, sizeof(*q->ring));
	if (q->ring == NULL)
		return -ENOMEM;
	q->cap = capacity;
	q->head = q->len = q->high_water = 0;
	q->pushed = q->refused = 0;
	q->shutdown = 0;
	q->space_fd = -1;
	q->want_space = 0;
	pthread_mutex_init(&q->mu, NULL);
	/* Timed waits use CLOCK_MONOTONIC: wall-clock steps must not matter. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->not_empty, &ca);
	pthread_cond_init(&q->not_full, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

void
pool_queue_destroy(struct pool_queue *q, void (*free_item)(void *))
{
	void *item;

	if (q->ring == NULL)
		return;
	while (q->len > 0) {
		item = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
		if (free_item != NULL)
			free_item(item);
	}
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	pthread_mutex_destroy(&q->mu);
	free(q->ring);
	q->ring = NULL;
}

static void
deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait on cv with mu held; -ETIMEDOUT when the deadline passed. */
static int
wait_locked(struct pool_queue *q, pthread_cond_t *cv, int timeout_ms,
    const struct timespec *deadline)
{
	if (timeout_ms < 0) {
		pthread_cond_wait(cv, &q->mu);
		return 0;
	}
	if (pthread_cond_timedwait(cv, &q->mu, deadline) == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

static void
push_locked(struct pool_queue *q, void *item)
{
	q->ring[(q->head + q->len) % q->cap] = item;
	q->len++;
	q->pushed++;
	if (q->len > q->high_water)
		q->high_water = q->len;
	pthread_cond_signal(&q->not_empty);
}

int
pool_queue_push(struct pool_queue *q, void *item)
{
	return pool_queue_push_wait(q, item, 0);
}

int
pool_queue_push_wait(struct pool_queue *q, void *item, int timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	if (timeout_ms > 0)
		deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&q->mu);
	while (!q->shutdown && q->len == q->cap) {
		if (timeout_ms == 0) {
			rc = -EAGAIN;
			break;
		}
		if ((rc = wait_locked(
			 q, &q->not_full, timeout_ms, &deadline)) != 0)
			break;
	}
	if (q->shutdown)
		rc = -ESHUTDOWN;
	else if (rc == 0)
		push_locked(q, item);
	else {
		q->refused++;
		q->want_space = 1;
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int
pool_queue_pop(struct pool_queue *q, void **item, int timeout_ms)
{
	struct timespec deadline;
	uint64_t one = 1;
	int rc = 0;

	if (timeout_ms > 0)
		deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&q->mu);
	while (q->len == 0) {
		if (q->shutdown) {
			rc = -ESHUTDOWN;
			break;
		}
		if (timeout_ms == 0) {
			rc = -EAGAIN;
			break;
		}
		if ((rc = wait_locked(
			 q, &q->not_empty, timeout_ms, &deadline)) != 0)
			break;
	}
	if (q->len > 0) {
		rc = 0;
		*item = q->ring[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
		pthread_cond_signal(&q->not_full);
		if (q->want_space && q->space_fd >= 0) {
			q->want_space = 0;
			/* Cannot fail short of a bug: the counter is far from
			 * max. */
			(void)!write(q->space_fd, &one, sizeof(one));
		}
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void
pool_queue_shutdown(struct pool_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->shutdown = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->mu);
}

size_t
pool_queue_depth(struct pool_queue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->len;
	pthread_mutex_unlock(&q->mu);
	return n;
}

void
pool_queue_set_space_fd(struct pool_queue *q, int space_fd)
{
	pthread_mutex_lock(&q->mu);
	q->space_fd = space_fd;
	pthread_mutex_unlock(&q->mu);
}
