/*
 * pool/runner.c: threads behind one bounded queue, for blocking work.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "runner.h"

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int open;
	int started;
	int done;
	int order[64];
};

static void
run_wait(void *item, void *arg)
{
	struct gate *g = arg;

	pthread_mutex_lock(&g->mu);
	g->started++;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	g->order[g->done++ % 64] = (int)(intptr_t)item;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void
gate_init(struct gate *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
}

static void
wait_started(struct gate *g, int n)
{
	pthread_mutex_lock(&g->mu);
	while (g->started < n)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void
test_create_rejects_zero(void **state)
{
	struct pool_runner *r;
	struct gate g;

	(void)state;
	gate_init(&g);
	assert_int_equal(
	    pool_runner_create(&r, 0, 4, "t", run_wait, &g), -EINVAL);
	assert_null(r);
	assert_int_equal(
	    pool_runner_create(&r, 1, 0, "t", run_wait, &g), -EINVAL);
	assert_int_equal(pool_runner_create(&r, 1, 4, "t", NULL, &g), -EINVAL);
}

/* Threads all busy, queue full: the next submit says EAGAIN at once. */
static void
test_full_queue_refuses(void **state)
{
	struct pool_runner *r;
	struct gate g;

	(void)state;
	gate_init(&g);
	assert_int_equal(pool_runner_create(&r, 2, 3, "t", run_wait, &g), 0);
	assert_int_equal(pool_runner_submit(r, (void *)1), 0);
	assert_int_equal(pool_runner_submit(r, (void *)2), 0);
	wait_started(&g, 2); /* both threads hold one */
	assert_int_equal(pool_runner_submit(r, (void *)3), 0);
	assert_int_equal(pool_runner_submit(r, (void *)4), 0);
	assert_int_equal(pool_runner_submit(r, (void *)5), 0);
	assert_int_equal(pool_runner_depth(r), 3);
	assert_int_equal(pool_runner_submit(r, (void *)6), -EAGAIN);
	pthread_mutex_lock(&g.mu);
	g.open = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	pool_runner_destroy(r);
	assert_int_equal(g.done, 5);
}

/* An idle thread takes the next item even while another is blocked. */
static void
test_idle_thread_not_stranded(void **state)
{
	struct pool_runner *r;
	struct gate g;

	(void)state;
	gate_init(&g);
	assert_int_equal(pool_runner_create(&r, 2, 8, "t", run_wait, &g), 0);
	assert_int_equal(pool_runner_submit(r, (void *)1), 0);
	wait_started(&g, 1);
	assert_int_equal(pool_runner_submit(r, (void *)2), 0);
	/* The second thread starts it while the first is still held. */
	wait_started(&g, 2);
	assert_int_equal(g.done, 0);
	pthread_mutex_lock(&g.mu);
	g.open = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	pool_runner_destroy(r);
	assert_int_equal(g.done, 2);
}

/* Destroy runs what was queued, then refuses. */
static void
test_destroy_drains_queue(void **state)
{
	struct pool_runner *r;
	struct gate g;
	int i;

	(void)state;
	gate_init(&g);
	g.open = 1;
	assert_int_equal(pool_runner_create(&r, 1, 16, "t", run_wait, &g), 0);
	for (i = 1; i <= 10; i++)
		assert_int_equal(pool_runner_submit(r, (void *)(intptr_t)i), 0);
	pool_runner_destroy(r);
	assert_int_equal(g.done, 10);
	/* One thread: they ran in submit order. */
	for (i = 0; i < 10; i++)
		assert_int_equal(g.order[i], i + 1);
	pool_runner_destroy(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_rejects_zero),
	    cmocka_unit_test(test_full_queue_refuses),
	    cmocka_unit_test(test_idle_thread_not_stranded),
	    cmocka_unit_test(test_destroy_drains_queue),
	};

	return cmocka_run_group_tests_name("runner", tests, NULL, NULL);
}
