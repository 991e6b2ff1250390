/*
 * The worker inbox (inbox.h).  A wake-up is owed only when the list goes
 * from empty to non-empty: inbox_take() reads the eventfd before it takes
 * the list, so a put that lands after the take finds the list empty and
 * writes again.  At worst the worker wakes once more and finds nothing.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "inbox.h"

int
inbox_init(struct inbox *ib)
{
	ib->head = ib->tail = NULL;
	if ((ib->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	if ((errno = pthread_mutex_init(&ib->mu, NULL)) != 0) {
		close(ib->efd);
		ib->efd = -1;
		return -1;
	}
	return 0;
}

void
inbox_fini(struct inbox *ib, void (*free_msg)(struct inbox_msg *))
{
	struct inbox_msg *m, *next;

	if (ib->efd == -1)
		return;
	for (m = ib->head; m != NULL; m = next) {
		next = m->next;
		if (free_msg != NULL)
			free_msg(m);
	}
	ib->head = ib->tail = NULL;
	close(ib->efd);
	ib->efd = -1;
	pthread_mutex_destroy(&ib->mu);
}

void
inbox_put(struct inbox *ib, struct inbox_msg *m)
{
	uint64_t one = 1;
	int was_empty;

	m->next = NULL;
	pthread_mutex_lock(&ib->mu);
	was_empty = ib->head == NULL;
	if (was_empty)
		ib->head = m;
	else
		ib->tail->next = m;
	ib->tail = m;
	pthread_mutex_unlock(&ib->mu);
	/* Fails only at a count near 2^64: cannot happen. */
	if (was_empty)
		(void)!write(ib->efd, &one, sizeof(one));
}

struct inbox_msg *
inbox_take(struct inbox *ib)
{
	struct inbox_msg *m;
	uint64_t n;

	(void)!read(ib->efd, &n, sizeof(n));
	pthread_mutex_lock(&ib->mu);
	m = ib->head;
	ib->head = ib->tail = NULL;
	pthread_mutex_unlock(&ib->mu);
	return m;
}
