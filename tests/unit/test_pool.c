/*
 * Unit tests for pool/pool.c, the worker pool.
 *
 * The workers run test_worker(): it records that it ran, checks its signal
 * mask, optionally waits at its gate (so that items stay queued), then loops
 * poll(pool_worker_fd) / pool_worker_take() until -EAGAIN, and returns
 * once pool_worker_stopping() is true.  Workers report through counting
 * eventfds (started, taken, woken, exited) that the test polls with a
 * deadline, and through counters under a mutex read after those reports.
 *
 * No wait is unbounded: the test waits WAIT_MS at most for any report, and
 * a worker gives up after WORKER_POLL_MS (longer, so a lost wake-up still
 * fails the test).  The teardown stops the pool, opens the gates, waits a
 * bounded time for every worker to end, and only then joins and destroys;
 * if a worker is stuck it fails and leaks the pool rather than hang.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pool.h"

#define WAIT_MS        5000  /* bound on any wait for the workers */
#define WORKER_POLL_MS 10000 /* a worker's bound; > WAIT_MS on purpose */
#define BLOCKED_MS     50    /* "still not readable" check */
#define MAX_WORKERS    8
#define MAX_ITEMS      1024

#define ALL_WORKERS (-1)

/* Each worker has a gate it passes before it takes anything. */
enum gate {
	GATE_NONE,    /* no gate: take items at once */
	GATE_CLOSED,  /* wait at the gate before taking anything */
	GATE_OPEN,    /* go on and take items */
	GATE_ABANDON, /* return without taking anything */
};

struct pctx {
	struct pool *p;
	unsigned nworkers;
	int stopped; /* pool_stop() called */
	int joined;  /* pool_join() called */
	/*
	 * mu protects the gates and what the workers record (a mutex
	 * rather than atomics, which would puzzle helgrind and drd).
	 */
	pthread_mutex_t mu;
	pthread_cond_t gate_cv; /* broadcast when a gate changes */
	int gate[MAX_WORKERS];  /* enum gate */
	int started_fd;         /* eventfds: +1 per event */
	int taken_fd;
	int woken_fd;
	int exited_fd;
	uint64_t started; /* events read so far (test thread only) */
	uint64_t taken;
	uint64_t woken;
	uint64_t exited;
	/* Written by the workers, read by the test; under mu. */
	unsigned runs[MAX_WORKERS];
	unsigned mask_ok[MAX_WORKERS];
	unsigned saw_stopping[MAX_WORKERS];
	unsigned wakeups[MAX_WORKERS];
	unsigned per_worker[MAX_WORKERS];
	unsigned item_seen[MAX_ITEMS];
	unsigned bad_index;
	unsigned bad_item;
	unsigned timeouts;
};

static void *
item_of(uintptr_t n)
{
	return (void *)(n + 1);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Called from the workers too: no cmocka assertion here. */
static void
efd_add(int fd)
{
	uint64_t one = 1;

	(void)!write(fd, &one, sizeof(one));
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

/* Every signal that can be blocked is blocked in the calling thread. */
static int
all_signals_blocked(void)
{
	sigset_t cur;
	int sig;

	if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
		return 0;
	for (sig = 1; sig <= SIGRTMAX; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		/* Between 31 and SIGRTMIN: reserved by the C library. */
		if (sig > 31 && sig < SIGRTMIN)
			continue;
		if (sigismember(&cur, sig) != 1)
			return 0;
	}
	return 1;
}

/* Add n to a recorded counter, or (set) store n in it. */
static void
put(struct pctx *c, unsigned *field, unsigned n, int set)
{
	pthread_mutex_lock(&c->mu);
	*field = set ? n : *field + n;
	pthread_mutex_unlock(&c->mu);
}

static unsigned
get(struct pctx *c, const unsigned *field)
{
	unsigned v;

	pthread_mutex_lock(&c->mu);
	v = *field;
	pthread_mutex_unlock(&c->mu);
	return v;
}

static void
record_take(struct pctx *c, unsigned idx, void *item)
{
	uintptr_t id = (uintptr_t)item - 1;

	if (item == NULL || id >= MAX_ITEMS)
		put(c, &c->bad_item, 1, 0);
	else
		put(c, &c->item_seen[id], 1, 0);
	put(c, &c->per_worker[idx], 1, 0);
	efd_add(c->taken_fd);
}

/* 0 to go on taking items, -1 to return without taking any. */
static int
pass_gate(struct pctx *c, unsigned idx)
{
	struct timespec deadline;
	int g, rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += WORKER_POLL_MS / 1000;
	pthread_mutex_lock(&c->mu);
	while ((g = c->gate[idx]) == GATE_CLOSED && rc == 0)
		rc = pthread_cond_timedwait(&c->gate_cv, &c->mu, &deadline);
	pthread_mutex_unlock(&c->mu);
	if (g == GATE_CLOSED) {
		put(c, &c->timeouts, 1, 0);
		return -1;
	}
	return g == GATE_ABANDON ? -1 : 0;
}

static void
test_worker(struct pool_worker *w, void *arg)
{
	struct pctx *c = arg;
	unsigned idx = pool_worker_index(w);
	struct pollfd pfd;
	void *item;
	int n;

	if (idx >= MAX_WORKERS) {
		put(c, &c->bad_index, 1, 0);
		efd_add(c->started_fd);
		efd_add(c->exited_fd);
		return;
	}
	put(c, &c->runs[idx], 1, 0);
	put(c, &c->mask_ok[idx], (unsigned)all_signals_blocked(), 1);
	efd_add(c->started_fd);

	if (pass_gate(c, idx) != 0)
		goto out;
	for (;;) {
		pfd.fd = pool_worker_fd(w);
		pfd.events = POLLIN;
		pfd.revents = 0;
		n = poll(&pfd, 1, WORKER_POLL_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			put(c, &c->timeouts, 1, 0);
			break;
		}
		put(c, &c->wakeups[idx], 1, 0);
		efd_add(c->woken_fd);
		while (pool_worker_take(w, &item) == 0)
			record_take(c, idx, item);
		/*
		 * Check stopping after the takes, not before: a take reads
		 * the eventfd and so may swallow pool_stop()'s wake-up.
		 * Once stopping, one more round takes what is left
		 * regardless of credit.
		 */
		if (pool_worker_stopping(w)) {
			while (pool_worker_take(w, &item) == 0)
				record_take(c, idx, item);
			break;
		}
	}
out:
	put(c, &c->saw_stopping[idx], (unsigned)pool_worker_stopping(w), 1);
	efd_add(c->exited_fd);
}

static int
new_efd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

static int
setup(void **state)
{
	struct pctx *c;
	pthread_condattr_t ca;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->gate_cv, &ca);
	pthread_condattr_destroy(&ca);
	c->started_fd = new_efd();
	c->taken_fd = new_efd();
	c->woken_fd = new_efd();
	c->exited_fd = new_efd();
	if (c->started_fd == -1 || c->taken_fd == -1 || c->woken_fd == -1 ||
	    c->exited_fd == -1)
		return -1;
	*state = c;
	return 0;
}

/* Set worker idx's gate, or every gate (ALL_WORKERS), to g. */
static void
set_gate(struct pctx *c, int idx, int g)
{
	int i;

	pthread_mutex_lock(&c->mu);
	for (i = 0; i < MAX_WORKERS; i++)
		if (idx == ALL_WORKERS || idx == i)
			c->gate[i] = g;
	pthread_cond_broadcast(&c->gate_cv);
	pthread_mutex_unlock(&c->mu);
}

/* Let every worker still held at its gate go, without taking anything. */
static void
abandon_closed_gates(struct pctx *c)
{
	int i;

	pthread_mutex_lock(&c->mu);
	for (i = 0; i < MAX_WORKERS; i++)
		if (c->gate[i] == GATE_CLOSED)
			c->gate[i] = GATE_ABANDON;
	pthread_cond_broadcast(&c->gate_cv);
	pthread_mutex_unlock(&c->mu);
}

static int
teardown(void **state)
{
	struct pctx *c = *state;

	if (c->p != NULL && !c->joined) {
		abandon_closed_gates(c);
		if (!c->stopped)
			pool_stop(c->p);
		if (!wait_count(
			c->exited_fd, &c->exited, c->nworkers, WAIT_MS)) {
			/* A worker is stuck: leak rather than hang. */
			print_error(
			    "teardown: %u of %u workers still running\n",
			    c->nworkers - (unsigned)c->exited, c->nworkers);
			return -1;
		}
		pool_join(c->p);
	}
	if (c->p != NULL)
		pool_destroy(c->p, NULL);
	pthread_cond_destroy(&c->gate_cv);
	pthread_mutex_destroy(&c->mu);
	close(c->started_fd);
	close(c->taken_fd);
	close(c->woken_fd);
	close(c->exited_fd);
	free(c);
	return 0;
}

/* Create the pool with workers threads and wait until all have started. */
static struct pctx *
start_pool(void **state, unsigned workers, unsigned queue_size, int gate)
{
	struct pctx *c = *state;
	struct pool_params params = {
	    .workers = workers,
	    .queue_size = queue_size,
	    .name = "test",
	};

	assert_true(workers <= MAX_WORKERS);
	set_gate(c, ALL_WORKERS, gate);
	c->nworkers = workers;
	assert_int_equal(pool_create(&c->p, &params, test_worker, c), 0);
	assert_non_null(c->p);
	assert_true(wait_count(c->started_fd, &c->started, workers, WAIT_MS));
	return c;
}

/* pool_stop(), remembered so that the teardown does not repeat it. */
static void
stop(struct pctx *c)
{
	pool_stop(c->p);
	c->stopped = 1;
}

/* Wait (bounded) for every worker to return, then join them. */
static void
join(struct pctx *c)
{
	assert_true(wait_count(c->exited_fd, &c->exited, c->nworkers, WAIT_MS));
	pool_join(c->p);
	c->joined = 1;
}

static void
stop_and_join(struct pctx *c)
{
	stop(c);
	join(c);
}

static void
check_no_worker_trouble(struct pctx *c)
{
	assert_int_equal(get(c, &c->bad_index), 0);
	assert_int_equal(get(c, &c->bad_item), 0);
	assert_int_equal(get(c, &c->timeouts), 0);
}

/* --- creation and threads --- */

static void
test_create_with_zero_workers_or_zero_queue_is_einval(void **state)
{
	struct pctx *c = *state;
	struct pool_params params = {.workers = 0, .queue_size = 4};
	struct pool *p = NULL;

	assert_int_equal(pool_create(&p, &params, test_worker, c), -EINVAL);
	params.workers = 2;
	params.queue_size = 0;
	assert_int_equal(pool_create(&p, &params, test_worker, c), -EINVAL);
	params.workers = 0;
	assert_int_equal(pool_create(&p, &params, test_worker, c), -EINVAL);
	assert_null(p);
	/* No worker ran. */
	assert_false(readable(c->started_fd, 0));
}

static void
test_each_worker_runs_worker_main_once_with_distinct_index(void **state)
{
	struct pctx *c = start_pool(state, 5, 4, GATE_NONE);
	unsigned i;

	assert_int_equal(pool_size(c->p), 5);
	stop_and_join(c);
	check_no_worker_trouble(c);
	/* Exactly 5 starts, indexes 0..4, each once. */
	assert_int_equal(c->started, 5);
	assert_int_equal(c->exited, 5);
	for (i = 0; i < 5; i++)
		assert_int_equal(get(c, &c->runs[i]), 1);
	for (i = 5; i < MAX_WORKERS; i++)
		assert_int_equal(get(c, &c->runs[i]), 0);
}

static void
test_worker_threads_have_all_signals_blocked(void **state)
{
	struct pctx *c;
	sigset_t mine, before, after;
	unsigned i;

	/* A distinctive mask in the creating thread, to see it restored. */
	sigemptyset(&mine);
	sigaddset(&mine, SIGUSR2);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &mine, &before), 0);

	c = start_pool(state, 3, 4, GATE_NONE);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &before, &after), 0);
	for (i = 0; i < 3; i++)
		assert_true(get(c, &c->mask_ok[i]));
	/* pool_create gave the creator its own mask back. */
	assert_int_equal(sigismember(&after, SIGUSR2), 1);
	assert_int_equal(sigismember(&after, SIGTERM), 0);
	assert_int_equal(sigismember(&after, SIGINT), 0);
}

/* --- hand-off --- */

static void
test_items_are_taken_exactly_once_and_spread_over_workers(void **state)
{
	const unsigned nitems = 400;
	struct pctx *c = start_pool(state, 4, 16, GATE_NONE);
	struct pool_stats st;
	unsigned i, total = 0;
	uint64_t v;
	int rc;

	for (i = 0; i < nitems; i++) {
		/* Back-pressure: wait for room as a real producer would. */
		while ((rc = pool_submit(c->p, item_of(i))) == -EAGAIN) {
			assert_true(readable(pool_space_fd(c->p), WAIT_MS));
			(void)!read(pool_space_fd(c->p), &v, sizeof(v));
		}
		assert_int_equal(rc, 0);
	}
	assert_true(wait_count(c->taken_fd, &c->taken, nitems, WAIT_MS));
	check_no_worker_trouble(c);
	for (i = 0; i < nitems; i++)
		assert_int_equal(get(c, &c->item_seen[i]), 1);
	for (i = 0; i < 4; i++) {
		v = get(c, &c->per_worker[i]);
		assert_true(v >= 1);
		total += (unsigned)v;
	}
	assert_int_equal(total, nitems);
	pool_stats(c->p, &st);
	assert_int_equal(st.submitted, nitems);
	assert_int_equal(st.depth, 0);
	assert_true(st.high_water >= 1 && st.high_water <= 16);

	stop_and_join(c);
	/* Nothing was taken twice, even while stopping. */
	assert_int_equal(c->taken, nitems);
	assert_false(readable(c->taken_fd, 0));
}

static void
test_submit_on_full_queue_is_eagain_and_space_fd_signals_after_take(
    void **state)
{
	struct pctx *c = start_pool(state, 2, 4, GATE_CLOSED);
	int sfd = pool_space_fd(c->p);
	uintptr_t i;
	uint64_t v = 0;

	assert_true(sfd >= 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(pool_submit(c->p, item_of(i)), 0);
	assert_int_equal(pool_submit(c->p, item_of(4)), -EAGAIN);
	assert_int_equal(pool_submit(c->p, item_of(4)), -EAGAIN);
	/* Nobody took anything yet: no room, no signal. */
	assert_false(readable(sfd, BLOCKED_MS));
	assert_false(readable(c->taken_fd, 0));

	set_gate(c, ALL_WORKERS, GATE_OPEN);
	assert_true(readable(sfd, WAIT_MS));
	assert_int_equal(read(sfd, &v, sizeof(v)), sizeof(v));
	assert_true(v >= 1);
	assert_true(wait_count(c->taken_fd, &c->taken, 4, WAIT_MS));

	/* The refused item can be submitted now, and is taken. */
	assert_int_equal(pool_submit(c->p, item_of(4)), 0);
	assert_true(wait_count(c->taken_fd, &c->taken, 5, WAIT_MS));
	check_no_worker_trouble(c);
	for (i = 0; i < 5; i++)
		assert_int_equal(get(c, &c->item_seen[i]), 1);
}

static void
test_wake_makes_every_worker_fd_readable(void **state)
{
	struct pctx *c = start_pool(state, 3, 4, GATE_NONE);
	unsigned i;

	assert_false(readable(c->woken_fd, BLOCKED_MS));
	pool_wake(c->p);
	assert_true(wait_count(c->woken_fd, &c->woken, 3, WAIT_MS));
	for (i = 0; i < 3; i++)
		assert_true(get(c, &c->wakeups[i]) >= 1);
	/* A wake-up is no item and does not stop anyone. */
	assert_int_equal(c->taken, 0);
	assert_false(readable(c->exited_fd, 0));
	check_no_worker_trouble(c);
}

static void
test_submit_credits_workers_round_robin(void **state)
{
	struct pctx *c = start_pool(state, 2, 8, GATE_CLOSED);
	struct pool_stats st;
	uintptr_t i;

	/*
	 * pool.h: each submit credits one worker, round-robin, and the
	 * credited worker finds the item.  With worker 1 held back,
	 * worker 0 takes as many items as it has credit, two, and leaves
	 * two for worker 1.
	 */
	for (i = 0; i < 4; i++)
		assert_int_equal(pool_submit(c->p, item_of(i)), 0);
	set_gate(c, 0, GATE_OPEN);
	assert_true(wait_count(c->taken_fd, &c->taken, 2, WAIT_MS));
	assert_false(readable(c->taken_fd, BLOCKED_MS));
	assert_int_equal(get(c, &c->per_worker[0]), 2);
	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 2);

	set_gate(c, 1, GATE_OPEN);
	assert_true(wait_count(c->taken_fd, &c->taken, 4, WAIT_MS));
	assert_int_equal(get(c, &c->per_worker[1]), 2);
	for (i = 0; i < 4; i++)
		assert_int_equal(get(c, &c->item_seen[i]), 1);
	check_no_worker_trouble(c);
}

/* --- stop, drain, destroy --- */

static void
test_stop_sets_stopping_and_wakes_idle_workers(void **state)
{
	struct pctx *c = start_pool(state, 3, 4, GATE_NONE);
	unsigned i;

	/* Idle in poll(), with WORKER_POLL_MS > WAIT_MS to go. */
	assert_false(readable(c->exited_fd, BLOCKED_MS));
	stop_and_join(c);
	check_no_worker_trouble(c);
	for (i = 0; i < 3; i++)
		assert_true(get(c, &c->saw_stopping[i]));
}

static void
test_submit_after_stop_is_eshutdown(void **state)
{
	struct pctx *c = start_pool(state, 2, 4, GATE_CLOSED);
	struct pool_stats st;

	assert_int_equal(pool_submit(c->p, item_of(0)), 0);
	stop(c);
	assert_int_equal(pool_submit(c->p, item_of(1)), -ESHUTDOWN);
	assert_int_equal(pool_submit(c->p, item_of(2)), -ESHUTDOWN);
	pool_stats(c->p, &st);
	assert_int_equal(st.submitted, 1);
	assert_int_equal(st.refused, 0);
	assert_int_equal(st.depth, 1);
	/* The teardown lets the gated workers go. */
}

static void
test_items_queued_before_stop_are_still_taken(void **state)
{
	struct pctx *c = start_pool(state, 2, 8, GATE_CLOSED);
	struct pool_stats st;
	uintptr_t i;

	for (i = 0; i < 8; i++)
		assert_int_equal(pool_submit(c->p, item_of(i)), 0);
	stop(c);
	assert_int_equal(pool_submit(c->p, item_of(8)), -ESHUTDOWN);
	set_gate(c, ALL_WORKERS, GATE_OPEN);
	join(c);
	check_no_worker_trouble(c);
	assert_int_equal(wait_count(c->taken_fd, &c->taken, 8, 0), 1);
	assert_int_equal(c->taken, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(get(c, &c->item_seen[i]), 1);
	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.submitted, 8);
	for (i = 0; i < 2; i++)
		assert_true(get(c, &c->saw_stopping[i]));
}

static void
test_after_stop_a_worker_takes_items_credited_to_others(void **state)
{
	struct pctx *c = start_pool(state, 2, 8, GATE_CLOSED);
	struct pool_stats st;
	uintptr_t i;

	/* Half the items are credited to worker 1, which leaves early. */
	for (i = 0; i < 4; i++)
		assert_int_equal(pool_submit(c->p, item_of(i)), 0);
	stop(c);
	set_gate(c, 1, GATE_ABANDON);
	set_gate(c, 0, GATE_OPEN);
	join(c);
	check_no_worker_trouble(c);
	assert_true(wait_count(c->taken_fd, &c->taken, 4, 0));
	assert_int_equal(get(c, &c->per_worker[0]), 4);
	assert_int_equal(get(c, &c->per_worker[1]), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(get(c, &c->item_seen[i]), 1);
	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 0);
}

static void
test_stats_count_submitted_refused_high_water_and_depth(void **state)
{
	struct pctx *c = start_pool(state, 2, 3, GATE_CLOSED);
	struct pool_stats st;

	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.high_water, 0);
	assert_int_equal(st.submitted, 0);
	assert_int_equal(st.refused, 0);

	assert_int_equal(pool_submit(c->p, item_of(0)), 0);
	assert_int_equal(pool_submit(c->p, item_of(1)), 0);
	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 2);
	assert_int_equal(st.high_water, 2);
	assert_int_equal(st.submitted, 2);
	assert_int_equal(st.refused, 0);

	assert_int_equal(pool_submit(c->p, item_of(2)), 0);
	assert_int_equal(pool_submit(c->p, item_of(3)), -EAGAIN);
	assert_int_equal(pool_submit(c->p, item_of(3)), -EAGAIN);
	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 3);
	assert_int_equal(st.high_water, 3);
	assert_int_equal(st.submitted, 3);
	assert_int_equal(st.refused, 2);

	set_gate(c, ALL_WORKERS, GATE_OPEN);
	assert_true(wait_count(c->taken_fd, &c->taken, 3, WAIT_MS));
	pool_stats(c->p, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.high_water, 3);
	assert_int_equal(st.submitted, 3);
	assert_int_equal(st.refused, 2);

	assert_int_equal(pool_submit(c->p, item_of(3)), 0);
	assert_true(wait_count(c->taken_fd, &c->taken, 4, WAIT_MS));
	pool_stats(c->p, &st);
	assert_int_equal(st.submitted, 4);
	assert_int_equal(st.high_water, 3);
	check_no_worker_trouble(c);
}

struct owned {
	unsigned id;
};

static unsigned nfreed;
static unsigned freed_mask;

static void
free_owned(void *item)
{
	struct owned *o = item;

	nfreed++;
	if (o->id < 32)
		freed_mask |= 1u << o->id;
	free(o);
}

static void
test_destroy_frees_leftover_items_with_free_item(void **state)
{
	struct pctx *c = start_pool(state, 2, 8, GATE_CLOSED);
	struct owned *o;
	unsigned i;

	for (i = 0; i < 5; i++) {
		o = malloc(sizeof(*o));
		assert_non_null(o);
		o->id = i;
		assert_int_equal(pool_submit(c->p, o), 0);
	}
	/* The workers leave without taking anything. */
	set_gate(c, ALL_WORKERS, GATE_ABANDON);
	stop_and_join(c);
	assert_int_equal(c->taken, 0);
	assert_false(readable(c->taken_fd, 0));

	nfreed = 0;
	freed_mask = 0;
	pool_destroy(c->p, free_owned);
	c->p = NULL;
	assert_int_equal(nfreed, 5);
	assert_int_equal(freed_mask, 0x1f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_create_with_zero_workers_or_zero_queue_is_einval),
	    T(test_each_worker_runs_worker_main_once_with_distinct_index),
	    T(test_worker_threads_have_all_signals_blocked),
	    T(test_items_are_taken_exactly_once_and_spread_over_workers),
	    T(test_submit_on_full_queue_is_eagain_and_space_fd_signals_after_take),
	    T(test_submit_credits_workers_round_robin),
	    T(test_wake_makes_every_worker_fd_readable),
	    T(test_stop_sets_stopping_and_wakes_idle_workers),
	    T(test_submit_after_stop_is_eshutdown),
	    T(test_items_queued_before_stop_are_still_taken),
	    T(test_after_stop_a_worker_takes_items_credited_to_others),
	    T(test_stats_count_submitted_refused_high_water_and_depth),
	    T(test_destroy_frees_leftover_items_with_free_item),
	};

	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
