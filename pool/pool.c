/*
 * The worker pool.
 *
 * Threads: the caller's threads (producers: the acceptor) and N workers.
 * Each worker owns an eventfd (efd).  pool_submit() pushes the item into
 * the shared bounded queue, then adds 1 to one worker's eventfd,
 * round-robin.  A worker reads its eventfd into a private credit count
 * and pops at most that many items, so the items spread over the workers
 * in submit order while the queue bounds their total.  Stop and wake-up
 * also write the eventfd; the extra credit they give only means one pop
 * that finds the queue empty.
 *
 * Shared state and its protection:
 *   queue        its own mutex (queue.c)
 *   next         atomic (relaxed): the round-robin cursor
 *   stopping     atomic (release/acquire): set once by pool_stop()
 *   worker.credit touched only by its worker thread
 */
#include <sys/eventfd.h>
#include <sys/prctl.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

struct pool_worker {
	struct pool *pool;
	pthread_t tid;
	int started;
	int efd;
	unsigned index;
	uint64_t credit;
};

struct pool {
	struct pool_queue queue;
	struct pool_worker *workers;
	unsigned nworkers;
	unsigned next;
	int stopping;
	int space_fd;
	pool_worker_fn *worker_main;
	void *arg;
	char name[9];
};

static void
efd_add(int fd)
{
	uint64_t one = 1;

	/* Fails only with EAGAIN at a count near 2^64: cannot happen. */
	(void)!write(fd, &one, sizeof(one));
}

static void *
worker_start(void *arg)
{
	struct pool_worker *w = arg;
	struct pool *p = w->pool;
	char name[16];

	snprintf(name, sizeof(name), "%s-%u", p->name, w->index);
	prctl(PR_SET_NAME, name, 0, 0, 0); /* shows in top -H, gdb */
	p->worker_main(w, p->arg);
	return NULL;
}

int
pool_create(struct pool **out, const struct pool_params *params,
    pool_worker_fn *worker_main, void *arg)
{
	struct pool *p;
	pthread_attr_t attr;
	sigset_t all, old;
	unsigned i;
	int rc;

	if (params->workers == 0 || params->queue_size == 0)
		return -EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->space_fd = -1;
	snprintf(p->name, sizeof(p->name), "%s",
	    params->name != NULL ? params->name : "worker");
	p->worker_main = worker_main;
	p->arg = arg;
	if ((rc = pool_queue_init(&p->queue, params->queue_size)) != 0) {
		free(p);
		return rc;
	}
	p->workers = calloc(params->workers, sizeof(*p->workers));
	if (p->workers == NULL) {
		rc = -ENOMEM;
		goto err;
	}
	p->nworkers = params->workers;
	for (i = 0; i < p->nworkers; i++)
		p->workers[i].efd = -1;
	p->space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->space_fd == -1) {
		rc = -errno;
		goto err;
	}
	pool_queue_set_space_fd(&p->queue, p->space_fd);
	for (i = 0; i < p->nworkers; i++) {
		p->workers[i].pool = p;
		p->workers[i].index = i;
		p->workers[i].efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->workers[i].efd == -1) {
			rc = -errno;
			goto err;
		}
	}

	/* Workers inherit the creator's mask: block everything meanwhile. */
	pthread_attr_init(&attr);
	if (params->stack_size != 0)
		pthread_attr_setstacksize(&attr, params->stack_size);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = 0;
	for (i = 0; i < p->nworkers && rc == 0; i++) {
		rc = -pthread_create(
		    &p->workers[i].tid, &attr, worker_start, &p->workers[i]);
		if (rc == 0)
			p->workers[i].started = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		pool_stop(p);
		pool_join(p);
		goto err;
	}
	*out = p;
	return 0;
err:
	pool_destroy(p, NULL);
	return rc;
}

int
pool_submit(struct pool *p, void *item)
{
	unsigned i;
	int rc;

	if (__atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE))
		return -ESHUTDOWN;
	if ((rc = pool_queue_push(&p->queue, item)) != 0)
		return rc;
	i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED) % p->nworkers;
	efd_add(p->workers[i].efd);
	return 0;
}

int
pool_space_fd(const struct pool *p)
{
	return p->space_fd;
}

void
pool_wake(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->nworkers; i++)
		efd_add(p->workers[i].efd);
}

void
pool_stop(struct pool *p)
{
	__atomic_store_n(&p->stopping, 1, __ATOMIC_RELEASE);
	pool_queue_shutdown(&p->queue);
	pool_wake(p);
}

void
pool_join(struct pool *p)
{
	unsigned i;

	for (i = 0; i < p->nworkers; i++) {
		if (p->workers[i].started) {
			pthread_join(p->workers[i].tid, NULL);
			p->workers[i].started = 0;
		}
	}
}

void
pool_destroy(struct pool *p, void (*free_item)(void *))
{
	unsigned i;

	if (p == NULL)
		return;
	for (i = 0; p->workers != NULL && i < p->nworkers; i++)
		if (p->workers[i].efd != -1)
			close(p->workers[i].efd);
	if (p->space_fd != -1)
		close(p->space_fd);
	pool_queue_destroy(&p->queue, free_item);
	free(p->workers);
	free(p);
}

void
pool_stats(struct pool *p, struct pool_stats *st)
{
	struct pool_queue *q = &p->queue;

	pthread_mutex_lock(&q->mu);
	st->depth = q->len;
	st->high_water = q->high_water;
	st->submitted = q->pushed;
	st->refused = q->refused;
	pthread_mutex_unlock(&q->mu);
}

unsigned
pool_size(const struct pool *p)
{
	return p->nworkers;
}

int
pool_worker_fd(const struct pool_worker *w)
{
	return w->efd;
}

unsigned
pool_worker_index(const struct pool_worker *w)
{
	return w->index;
}

int
pool_worker_take(struct pool_worker *w, void **item)
{
	uint64_t n;
	int rc;

	if (read(w->efd, &n, sizeof(n)) == (ssize_t)sizeof(n))
		w->credit += n;
	/* Once stopping, drain whatever is left regardless of credit. */
	if (w->credit == 0 && !pool_worker_stopping(w))
		return -EAGAIN;
	rc = pool_queue_pop(&w->pool->queue, item, 0);
	if (rc != 0) {
		w->credit = 0;
		return -EAGAIN;
	}
	if (w->credit > 0)
		w->credit--;
	return 0;
}

int
pool_worker_stopping(const struct pool_worker *w)
{
	return __atomic_load_n(&w->pool->stopping, __ATOMIC_ACQUIRE);
}
