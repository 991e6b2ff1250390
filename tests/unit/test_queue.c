/*
 * Unit tests for pool/queue.c, the bounded MPMC queue.
 *
 * No wait here is unbounded.  Every thread a test starts adds 1 to the
 * fixture's eventfd when it ends, and the test polls that eventfd with a
 * deadline.  The teardown shuts the queue down, which must wake every
 * waiter, waits a bounded time for every thread to end, and only then
 * joins the threads and destroys the queue.  If a thread is stuck, the
 * teardown fails and leaks the fixture rather than hang.
 *
 * Timing: only lower bounds are asserted ("blocked for at least ..."),
 * never upper bounds, so a slow or loaded machine cannot fail a test.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "queue.h"

#define WAIT_MS     5000  /* bound on any wait for another thread */
#define STRESS_MS   30000 /* bound for the stress test (slow under tsan) */
#define BLOCKED_MS  50    /* a waiter must still be blocked after this */
#define MAX_THREADS 16

#define STRESS_PRODUCERS 4
#define STRESS_CONSUMERS 4
#define STRESS_ITEMS     20000 /* per producer */
#define STRESS_CAP       8

enum waiter_op {
	OP_POP,
	OP_PUSH_WAIT,
};

/* One thread calling pop or push_wait. */
struct waiter {
	struct qfix *f;
	enum waiter_op op;
	int timeout_ms;
	/* Under f->mu (plain atomics would puzzle helgrind and drd). */
	void *item;         /* pushed, or the one popped */
	int started;        /* about to call the queue */
	int rc;             /* what the call returned */
	int64_t elapsed_ms; /* how long the call took */
};

struct qfix {
	struct pool_queue q;
	pthread_mutex_t mu; /* protects the waiters' results */
	int q_ok;           /* q is initialised and not destroyed */
	int done_fd;        /* eventfd: +1 for each thread that ended */
	uint64_t done;      /* thread ends read from done_fd so far */
	pthread_t tids[MAX_THREADS];
	unsigned nthreads;
	/*
	 * Waiter threads' state lives here, not on a test's stack: a failed
	 * assertion leaves the test function while the thread still runs.
	 */
	struct waiter waiters[MAX_THREADS];
};

static void *
item_of(uintptr_t n)
{
	return (void *)(n + 1);
}

static uintptr_t
id_of(void *item)
{
	return (uintptr_t)item - 1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read the counting eventfd fd into *acc until it reaches target or
 * timeout_ms passes.  1 when target was reached.
 */
static int
wait_count(int fd, uint64_t *acc, uint64_t target, int timeout_ms)
{
	struct pollfd pfd;
	int64_t deadline, left;
	uint64_t v;
	int n;

	deadline = now_ms() + timeout_ms;
	while (*acc < target) {
		left = deadline - now_ms();
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		if (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			*acc += v;
	}
	return 1;
}

/* 1 when fd is readable within timeout_ms. */
static int
readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

/* Called from test threads too: no cmocka assertion here. */
static void
efd_add(int fd)
{
	uint64_t one = 1;

	(void)!write(fd, &one, sizeof(one));
}

static void
start_thread(struct qfix *f, void *(*fn)(void *), void *arg)
{
	assert_true(f->nthreads < MAX_THREADS);
	assert_int_equal(
	    pthread_create(&f->tids[f->nthreads], NULL, fn, arg), 0);
	f->nthreads++;
}

static int
setup(void **state)
{
	struct qfix *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -1;
	f->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->done_fd == -1) {
		free(f);
		return -1;
	}
	pthread_mutex_init(&f->mu, NULL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct qfix *f = *state;
	unsigned i;

	if (f->q_ok)
		pool_queue_shutdown(&f->q);
	if (!wait_count(f->done_fd, &f->done, f->nthreads, WAIT_MS)) {
		/* A thread is stuck in the queue: leak rather than hang. */
		print_error("teardown: %u of %u threads still running\n",
		    f->nthreads - (unsigned)f->done, f->nthreads);
		return -1;
	}
	for (i = 0; i < f->nthreads; i++)
		pthread_join(f->tids[i], NULL);
	if (f->q_ok)
		pool_queue_destroy(&f->q, NULL);
	close(f->done_fd);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static struct qfix *
fix_init(void **state, size_t capacity)
{
	struct qfix *f = *state;

	assert_int_equal(pool_queue_init(&f->q, capacity), 0);
	f->q_ok = 1;
	return f;
}

static int
waiter_started(struct waiter *w)
{
	int v;

	pthread_mutex_lock(&w->f->mu);
	v = w->started;
	pthread_mutex_unlock(&w->f->mu);
	return v;
}

static int
waiter_rc(struct waiter *w)
{
	int v;

	pthread_mutex_lock(&w->f->mu);
	v = w->rc;
	pthread_mutex_unlock(&w->f->mu);
	return v;
}

static void *
waiter_item(struct waiter *w)
{
	void *v;

	pthread_mutex_lock(&w->f->mu);
	v = w->item;
	pthread_mutex_unlock(&w->f->mu);
	return v;
}

static int64_t
waiter_elapsed_ms(struct waiter *w)
{
	int64_t v;

	pthread_mutex_lock(&w->f->mu);
	v = w->elapsed_ms;
	pthread_mutex_unlock(&w->f->mu);
	return v;
}

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;
	void *item = NULL;
	int64_t t0;
	int rc;

	pthread_mutex_lock(&w->f->mu);
	w->started = 1;
	pthread_mutex_unlock(&w->f->mu);
	t0 = now_ms();
	if (w->op == OP_POP)
		rc = pool_queue_pop(&w->f->q, &item, w->timeout_ms);
	else
		rc = pool_queue_push_wait(&w->f->q, w->item, w->timeout_ms);
	pthread_mutex_lock(&w->f->mu);
	if (w->op == OP_POP)
		w->item = item;
	w->elapsed_ms = now_ms() - t0;
	w->rc = rc;
	pthread_mutex_unlock(&w->f->mu);
	efd_add(w->f->done_fd);
	return NULL;
}

/* Start a thread calling op on the queue. */
static struct waiter *
start_waiter(struct qfix *f, enum waiter_op op, void *item, int timeout_ms)
{
	struct waiter *w;

	assert_true(f->nthreads < MAX_THREADS);
	w = &f->waiters[f->nthreads];
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->op = op;
	w->item = item;
	w->timeout_ms = timeout_ms;
	w->rc = 1; /* not a value the queue returns */
	start_thread(f, waiter_main, w);
	return w;
}

/*
 * Start a thread calling op without a timeout, and check that it is still
 * blocked BLOCKED_MS after it started.
 */
static struct waiter *
start_blocked_waiter(struct qfix *f, enum waiter_op op, void *item)
{
	struct waiter *w = start_waiter(f, op, item, -1);
	int64_t deadline;

	deadline = now_ms() + WAIT_MS;
	while (!waiter_started(w)) {
		assert_true(now_ms() < deadline);
		usleep(1000);
	}
	/* Still blocked: no thread has ended. */
	assert_false(wait_count(f->done_fd, &f->done, f->done + 1, BLOCKED_MS));
	assert_int_equal(waiter_rc(w), 1);
	return w;
}

/* Wait (bounded) for the waiter to end; return what its call returned. */
static int
finish_waiter(struct qfix *f, struct waiter *w)
{
	assert_true(wait_count(f->done_fd, &f->done, f->done + 1, WAIT_MS));
	return waiter_rc(w);
}

/*
 * Make a call that may block (pop or push_wait with a timeout) in a thread,
 * so that a queue bug that never returns fails the test instead of hanging
 * it.  Returns what the call returned; *wp (if not NULL) tells the rest.
 */
static int
call_bounded(struct qfix *f, enum waiter_op op, void *item, int timeout_ms,
    struct waiter **wp)
{
	struct waiter *w = start_waiter(f, op, item, timeout_ms);

	if (wp != NULL)
		*wp = w;
	return finish_waiter(f, w);
}

static int
pop_bounded(struct qfix *f, void **item, int timeout_ms)
{
	struct waiter *w;
	int rc;

	rc = call_bounded(f, OP_POP, NULL, timeout_ms, &w);
	*item = waiter_item(w);
	return rc;
}

static int
push_wait_bounded(struct qfix *f, void *item, int timeout_ms)
{
	return call_bounded(f, OP_PUSH_WAIT, item, timeout_ms, NULL);
}

/* --- basic behaviour --- */

static void
test_init_with_capacity_zero_is_einval(void **state)
{
	struct pool_queue q;

	(void)state;
	memset(&q, 0, sizeof(q));
	assert_int_equal(pool_queue_init(&q, 0), -EINVAL);
}

static void
test_push_up_to_capacity_then_eagain(void **state)
{
	struct qfix *f = fix_init(state, 4);
	uintptr_t i;

	for (i = 0; i < 4; i++) {
		assert_int_equal(pool_queue_push(&f->q, item_of(i)), 0);
		assert_int_equal(pool_queue_depth(&f->q), i + 1);
	}
	assert_int_equal(pool_queue_push(&f->q, item_of(4)), -EAGAIN);
	assert_int_equal(pool_queue_push(&f->q, item_of(5)), -EAGAIN);
	assert_int_equal(pool_queue_depth(&f->q), 4);
}

static void
test_pop_returns_items_in_fifo_order(void **state)
{
	struct qfix *f = fix_init(state, 5);
	void *item;
	uintptr_t i;

	for (i = 0; i < 5; i++)
		assert_int_equal(pool_queue_push(&f->q, item_of(i)), 0);
	for (i = 0; i < 5; i++) {
		item = NULL;
		assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
		assert_int_equal(id_of(item), i);
	}
	assert_int_equal(pool_queue_depth(&f->q), 0);
}

static void
test_ring_wraps_around_over_many_cycles(void **state)
{
	struct qfix *f = fix_init(state, 3);
	uintptr_t next_in = 0, next_out = 0;
	void *item;
	unsigned cycle, k, batch;

	/*
	 * Batches of 1, 2 and 3 items: head and tail cross the end of the
	 * ring at every offset, and the queue is filled to the brim too.
	 */
	for (cycle = 0; cycle < 3000; cycle++) {
		batch = 1 + cycle % 3;
		for (k = 0; k < batch; k++)
			assert_int_equal(
			    pool_queue_push(&f->q, item_of(next_in++)), 0);
		if (batch == 3)
			assert_int_equal(
			    pool_queue_push(&f->q, item_of(999999)), -EAGAIN);
		assert_int_equal(pool_queue_depth(&f->q), batch);
		for (k = 0; k < batch; k++) {
			item = NULL;
			assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
			assert_int_equal(id_of(item), next_out);
			next_out++;
		}
		assert_int_equal(pool_queue_pop(&f->q, &item, 0), -EAGAIN);
	}
	/* Keep one item across cycles too: depth 1 then 2, sliding. */
	assert_int_equal(pool_queue_push(&f->q, item_of(next_in++)), 0);
	for (cycle = 0; cycle < 1000; cycle++) {
		assert_int_equal(pool_queue_push(&f->q, item_of(next_in++)), 0);
		assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
		assert_int_equal(id_of(item), next_out);
		next_out++;
	}
	assert_int_equal(pool_queue_depth(&f->q), 1);
}

static void
test_pop_on_empty_without_wait_is_eagain(void **state)
{
	struct qfix *f = fix_init(state, 2);
	void *item = item_of(42);

	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -EAGAIN);
	assert_ptr_equal(item, item_of(42)); /* untouched */
	/* Also after the queue has had items. */
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -EAGAIN);
}

static void
test_pop_on_empty_with_timeout_is_etimedout_after_timeout(void **state)
{
	struct qfix *f = fix_init(state, 2);
	struct waiter *w;

	assert_int_equal(call_bounded(f, OP_POP, NULL, 50, &w), -ETIMEDOUT);
	assert_true(waiter_elapsed_ms(w) >= 40);
}

static void
test_push_wait_on_full_with_timeout_is_etimedout_after_timeout(void **state)
{
	struct qfix *f = fix_init(state, 1);
	struct waiter *w;
	void *item;

	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	assert_int_equal(
	    call_bounded(f, OP_PUSH_WAIT, item_of(1), 50, &w), -ETIMEDOUT);
	assert_true(waiter_elapsed_ms(w) >= 40);
	/* The refused item is not in the queue. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(id_of(item), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -EAGAIN);
}

/* --- blocking and waking --- */

static void
test_blocked_pop_is_woken_by_push(void **state)
{
	struct qfix *f = fix_init(state, 2);
	struct waiter *w;

	w = start_blocked_waiter(f, OP_POP, NULL);
	assert_int_equal(pool_queue_push(&f->q, item_of(7)), 0);
	assert_int_equal(finish_waiter(f, w), 0);
	assert_ptr_equal(waiter_item(w), item_of(7));
	assert_int_equal(pool_queue_depth(&f->q), 0);
}

static void
test_blocked_push_wait_is_woken_by_pop(void **state)
{
	struct qfix *f = fix_init(state, 2);
	struct waiter *w;
	void *item;

	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), 0);
	w = start_blocked_waiter(f, OP_PUSH_WAIT, item_of(2));
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(id_of(item), 0);
	assert_int_equal(finish_waiter(f, w), 0);
	/* The waiter's item went in behind the others. */
	assert_int_equal(pool_queue_depth(&f->q), 2);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(id_of(item), 1);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(id_of(item), 2);
}

static void
test_shutdown_wakes_blocked_pop_with_eshutdown(void **state)
{
	struct qfix *f = fix_init(state, 2);
	struct waiter *w;

	w = start_blocked_waiter(f, OP_POP, NULL);
	pool_queue_shutdown(&f->q);
	assert_int_equal(finish_waiter(f, w), -ESHUTDOWN);
}

static void
test_shutdown_wakes_blocked_push_wait_with_eshutdown(void **state)
{
	struct qfix *f = fix_init(state, 1);
	struct waiter *w;
	void *item;

	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	w = start_blocked_waiter(f, OP_PUSH_WAIT, item_of(1));
	pool_queue_shutdown(&f->q);
	assert_int_equal(finish_waiter(f, w), -ESHUTDOWN);
	/* Its item was not queued. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(id_of(item), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -ESHUTDOWN);
}

static void
test_after_shutdown_pops_drain_then_eshutdown_and_pushes_fail(void **state)
{
	struct qfix *f = fix_init(state, 4);
	void *item;
	uintptr_t i;

	for (i = 0; i < 3; i++)
		assert_int_equal(pool_queue_push(&f->q, item_of(i)), 0);
	pool_queue_shutdown(&f->q);

	assert_int_equal(pool_queue_push(&f->q, item_of(10)), -ESHUTDOWN);
	assert_int_equal(push_wait_bounded(f, item_of(11), 50), -ESHUTDOWN);
	assert_int_equal(push_wait_bounded(f, item_of(12), -1), -ESHUTDOWN);
	assert_int_equal(pool_queue_depth(&f->q), 3);

	/* Drain, in order, whatever the timeout. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(id_of(item), 0);
	assert_int_equal(pop_bounded(f, &item, 50), 0);
	assert_int_equal(id_of(item), 1);
	assert_int_equal(pop_bounded(f, &item, -1), 0);
	assert_int_equal(id_of(item), 2);

	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -ESHUTDOWN);
	assert_int_equal(pop_bounded(f, &item, 50), -ESHUTDOWN);
	/* Forever-pop on a shut, empty queue must return, not block. */
	assert_int_equal(pop_bounded(f, &item, -1), -ESHUTDOWN);
}

static void
test_push_on_full_shut_queue_is_eshutdown(void **state)
{
	struct qfix *f = fix_init(state, 1);

	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	pool_queue_shutdown(&f->q);
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), -ESHUTDOWN);
	assert_int_equal(push_wait_bounded(f, item_of(1), -1), -ESHUTDOWN);
	assert_int_equal(f->q.refused, 0);
}

/* --- counters --- */

static void
test_high_water_and_refused_counters(void **state)
{
	struct qfix *f = fix_init(state, 4);
	void *item;

	assert_int_equal(f->q.high_water, 0);
	assert_int_equal(f->q.refused, 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), 0);
	assert_int_equal(f->q.high_water, 2);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	/* High water stays at its peak when the queue empties. */
	assert_int_equal(f->q.high_water, 2);
	assert_int_equal(pool_queue_push(&f->q, item_of(2)), 0);
	assert_int_equal(f->q.high_water, 2);
	assert_int_equal(pool_queue_push(&f->q, item_of(3)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(4)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(5)), 0);
	assert_int_equal(f->q.high_water, 4);
	assert_int_equal(f->q.refused, 0);

	assert_int_equal(pool_queue_push(&f->q, item_of(6)), -EAGAIN);
	assert_int_equal(pool_queue_push(&f->q, item_of(7)), -EAGAIN);
	assert_int_equal(f->q.refused, 2);
	assert_int_equal(f->q.high_water, 4);
	assert_int_equal(f->q.pushed, 6);
	/* A pop does not reset either. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(f->q.refused, 2);
	assert_int_equal(f->q.high_water, 4);
	/* Nor do emptying the queue and a failed pop. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -EAGAIN);
	assert_int_equal(f->q.refused, 2);
	assert_int_equal(f->q.high_water, 4);
}

/* --- space_fd --- */

static int
new_space_fd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_int_not_equal(fd, -1);
	return fd;
}

static void
test_space_fd_readable_after_refused_push_then_pop(void **state)
{
	struct qfix *f = fix_init(state, 2);
	int sfd = new_space_fd();
	uint64_t v = 0;
	void *item;

	pool_queue_set_space_fd(&f->q, sfd);
	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(2)), -EAGAIN);
	/* Refused, but no room yet. */
	assert_false(readable(sfd, 0));
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_true(readable(sfd, 0));
	assert_int_equal(read(sfd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);

	/* One signal per refusal: the next pop does not write again. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_false(readable(sfd, 0));

	/* It re-arms with the next refusal. */
	assert_int_equal(pool_queue_push(&f->q, item_of(3)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(4)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(5)), -EAGAIN);
	assert_false(readable(sfd, 0));
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_true(readable(sfd, 0));

	pool_queue_set_space_fd(&f->q, -1);
	close(sfd);
}

static void
test_space_fd_not_readable_after_pop_without_refusal(void **state)
{
	struct qfix *f = fix_init(state, 2);
	int sfd = new_space_fd();
	void *item;

	pool_queue_set_space_fd(&f->q, sfd);
	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_false(readable(sfd, 0));
	/* Full, but never refused. */
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(2)), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_false(readable(sfd, 0));
	/* A failed pop on empty does not signal either. */
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), -EAGAIN);
	assert_false(readable(sfd, 0));

	pool_queue_set_space_fd(&f->q, -1);
	close(sfd);
}

static void
test_space_fd_set_to_minus_one_is_not_written(void **state)
{
	struct qfix *f = fix_init(state, 1);
	int sfd = new_space_fd();
	void *item;

	pool_queue_set_space_fd(&f->q, sfd);
	pool_queue_set_space_fd(&f->q, -1);
	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(1)), -EAGAIN);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_false(readable(sfd, 0));
	close(sfd);
}

/* --- many producers and consumers --- */

struct stress {
	struct qfix *f;
	int prod_fd;   /* eventfd: +1 per producer that ended */
	uint8_t *seen; /* atomic: deliveries per item */
	struct stress_thread {
		struct stress *s;
		unsigned id;
		int err;        /* first unexpected return value */
		int order_ok;   /* per-producer FIFO held */
		uint64_t count; /* items pushed or popped */
	} prod[STRESS_PRODUCERS], cons[STRESS_CONSUMERS];
};

static void *
producer_main(void *arg)
{
	struct stress_thread *t = arg;
	struct qfix *f = t->s->f;
	uintptr_t seq;
	int rc;

	for (seq = 0; seq < STRESS_ITEMS; seq++) {
		rc = pool_queue_push_wait(
		    &f->q, item_of(t->id * STRESS_ITEMS + seq), -1);
		if (rc != 0) {
			t->err = rc;
			break;
		}
		t->count++;
	}
	efd_add(t->s->prod_fd);
	efd_add(f->done_fd);
	return NULL;
}

static void *
consumer_main(void *arg)
{
	struct stress_thread *t = arg;
	struct qfix *f = t->s->f;
	long last[STRESS_PRODUCERS];
	uintptr_t id;
	unsigned p;
	long seq;
	void *item;
	int rc;

	for (p = 0; p < STRESS_PRODUCERS; p++)
		last[p] = -1;
	t->order_ok = 1;
	for (;;) {
		rc = pool_queue_pop(&f->q, &item, -1);
		if (rc == -ESHUTDOWN)
			break;
		if (rc != 0) {
			t->err = rc;
			break;
		}
		id = id_of(item);
		if (id >= (uintptr_t)STRESS_PRODUCERS * STRESS_ITEMS) {
			t->err = -ERANGE;
			break;
		}
		p = (unsigned)(id / STRESS_ITEMS);
		seq = (long)(id % STRESS_ITEMS);
		/* One consumer sees each producer's items in push order. */
		if (seq <= last[p])
			t->order_ok = 0;
		last[p] = seq;
		__atomic_fetch_add(&t->s->seen[id], 1, __ATOMIC_RELAXED);
		t->count++;
	}
	efd_add(f->done_fd);
	return NULL;
}

static void
test_many_producers_and_consumers_deliver_each_item_exactly_once(void **state)
{
	struct qfix *f = fix_init(state, STRESS_CAP);
	const size_t nitems = (size_t)STRESS_PRODUCERS * STRESS_ITEMS;
	struct stress *s;
	uint64_t prod_done = 0, popped = 0;
	size_t i, bad = 0;
	unsigned k;

	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->seen = calloc(nitems, 1);
	assert_non_null(s->seen);
	s->f = f;
	s->prod_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_int_not_equal(s->prod_fd, -1);

	for (k = 0; k < STRESS_CONSUMERS; k++) {
		s->cons[k].s = s;
		s->cons[k].id = k;
		start_thread(f, consumer_main, &s->cons[k]);
	}
	for (k = 0; k < STRESS_PRODUCERS; k++) {
		s->prod[k].s = s;
		s->prod[k].id = k;
		start_thread(f, producer_main, &s->prod[k]);
	}
	/*
	 * On failure s is leaked on purpose: the teardown shuts the queue
	 * down, so the threads end, but they may still touch s.
	 */
	assert_true(
	    wait_count(s->prod_fd, &prod_done, STRESS_PRODUCERS, STRESS_MS));
	/* Consumers drain what is left, then see -ESHUTDOWN and end. */
	pool_queue_shutdown(&f->q);
	assert_true(wait_count(f->done_fd, &f->done, f->nthreads, STRESS_MS));
	for (k = 0; k < f->nthreads; k++)
		pthread_join(f->tids[k], NULL);
	f->nthreads = 0;
	f->done = 0;

	for (k = 0; k < STRESS_PRODUCERS; k++) {
		assert_int_equal(s->prod[k].err, 0);
		assert_int_equal(s->prod[k].count, STRESS_ITEMS);
	}
	for (k = 0; k < STRESS_CONSUMERS; k++) {
		assert_int_equal(s->cons[k].err, 0);
		assert_true(s->cons[k].order_ok);
		popped += s->cons[k].count;
	}
	assert_int_equal(popped, nitems);
	for (i = 0; i < nitems; i++)
		if (s->seen[i] != 1)
			bad++;
	assert_int_equal(bad, 0);
	assert_int_equal(pool_queue_depth(&f->q), 0);
	assert_true(f->q.high_water <= STRESS_CAP);
	assert_int_equal(f->q.pushed, nitems);

	close(s->prod_fd);
	free(s->seen);
	free(s);
}

/* --- destroy --- */

static uintptr_t freed[8];
static unsigned nfreed;

static void
record_free(void *item)
{
	if (nfreed < sizeof(freed) / sizeof(freed[0]))
		freed[nfreed] = id_of(item);
	nfreed++;
}

static void
test_destroy_hands_remaining_items_to_free_item(void **state)
{
	struct qfix *f = fix_init(state, 4);
	void *item;
	uintptr_t i;

	/* Move head off 0 so the leftovers wrap around the ring's end. */
	for (i = 0; i < 4; i++)
		assert_int_equal(pool_queue_push(&f->q, item_of(i)), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_pop(&f->q, &item, 0), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(4)), 0);
	assert_int_equal(pool_queue_push(&f->q, item_of(5)), 0);

	nfreed = 0;
	f->q_ok = 0;
	pool_queue_destroy(&f->q, record_free);
	assert_int_equal(nfreed, 3);
	assert_int_equal(freed[0], 3);
	assert_int_equal(freed[1], 4);
	assert_int_equal(freed[2], 5);
}

static void
test_destroy_with_null_free_item_and_empty_queue(void **state)
{
	struct qfix *f = fix_init(state, 4);

	assert_int_equal(pool_queue_push(&f->q, item_of(0)), 0);
	f->q_ok = 0;
	pool_queue_destroy(&f->q, NULL); /* must not call through NULL */

	assert_int_equal(pool_queue_init(&f->q, 2), 0);
	nfreed = 0;
	pool_queue_destroy(&f->q, record_free);
	assert_int_equal(nfreed, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_init_with_capacity_zero_is_einval),
	    T(test_push_up_to_capacity_then_eagain),
	    T(test_pop_returns_items_in_fifo_order),
	    T(test_ring_wraps_around_over_many_cycles),
	    T(test_pop_on_empty_without_wait_is_eagain),
	    T(test_pop_on_empty_with_timeout_is_etimedout_after_timeout),
	    T(test_push_wait_on_full_with_timeout_is_etimedout_after_timeout),
	    T(test_blocked_pop_is_woken_by_push),
	    T(test_blocked_push_wait_is_woken_by_pop),
	    T(test_shutdown_wakes_blocked_pop_with_eshutdown),
	    T(test_shutdown_wakes_blocked_push_wait_with_eshutdown),
	    T(test_after_shutdown_pops_drain_then_eshutdown_and_pushes_fail),
	    T(test_push_on_full_shut_queue_is_eshutdown),
	    T(test_high_water_and_refused_counters),
	    T(test_space_fd_readable_after_refused_push_then_pop),
	    T(test_space_fd_not_readable_after_pop_without_refusal),
	    T(test_space_fd_set_to_minus_one_is_not_written),
	    T(test_many_producers_and_consumers_deliver_each_item_exactly_once),
	    T(test_destroy_hands_remaining_items_to_free_item),
	    T(test_destroy_with_null_free_item_and_empty_queue),
	};

	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
