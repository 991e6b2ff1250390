/*
 * The runner: N threads popping one pool_queue (queue.c), which holds the
 * only lock.  Shutdown goes through the queue too: pool_queue_shutdown()
 * wakes every waiting thread, pops drain what is left, then fail with
 * -ESHUTDOWN and the thread returns.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue.h"
#include "runner.h"

struct pool_runner {
	struct pool_queue q;
	pthread_t *tids;
	unsigned nthreads; /* started */
	pool_run_fn *run;
	void *arg;
	char name[9];
};

static void *
runner_main(void *p)
{
	struct pool_runner *r = p;
	char name[16];
	void *item;

	snprintf(name, sizeof(name), "%s", r->name);
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
	while (pool_queue_pop(&r->q, &item, -1) == 0)
		r->run(item, r->arg);
	return NULL;
}

int
pool_runner_create(struct pool_runner **out, unsigned threads,
    size_t queue_size, const char *name, pool_run_fn *run, void *arg)
{
	struct pool_runner *r;
	sigset_t all, old;
	unsigned i;
	int rc;

	*out = NULL;
	if (threads == 0 || queue_size == 0 || run == NULL)
		return -EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	if ((r->tids = calloc(threads, sizeof(*r->tids))) == NULL) {
		free(r);
		return -ENOMEM;
	}
	if ((rc = pool_queue_init(&r->q, queue_size)) != 0) {
		free(r->tids);
		free(r);
		return rc;
	}
	r->run = run;
	r->arg = arg;
	snprintf(r->name, sizeof(r->name), "%s", name != NULL ? name : "run");
	/* The threads inherit a mask with every signal blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < threads; i++) {
		if ((rc = pthread_create(&r->tids[i], NULL, runner_main, r)) !=
		    0)
			break;
		r->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r->nthreads < threads) {
		pool_runner_destroy(r);
		return -rc;
	}
	*out = r;
	return 0;
}

int
pool_runner_submit(struct pool_runner *r, void *item)
{
	return pool_queue_push(&r->q, item);
}

size_t
pool_runner_depth(struct pool_runner *r)
{
	return pool_queue_depth(&r->q);
}

void
pool_runner_destroy(struct pool_runner *r)
{
	unsigned i;

	if (r == NULL)
		return;
	pool_queue_shutdown(&r->q);
	for (i = 0; i < r->nthreads; i++)
		pthread_join(r->tids[i], NULL);
	pool_queue_destroy(&r->q, NULL);
	free(r->tids);
	free(r);
}
