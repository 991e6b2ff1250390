/*
 * inbox: the one way anything crosses into a worker from another thread:
 * asynchronous and blocking-handler replies, module pushes, and (next)
 * pub/sub fan-out.
 *
 * A mutex-protected FIFO of intrusive messages plus an eventfd in the
 * worker's epoll set.  inbox_put() writes the eventfd only when it finds
 * the list empty, so a batch of messages costs one wake-up however many
 * threads add to it; the worker takes the whole batch with one lock
 * (inbox_take) and works through it without the lock.
 *
 * Lock order: a caller may hold its own lock around inbox_put (the push
 * path holds the worker's id-table lock); the inbox lock is a leaf.
 */
#ifndef SOCKETD_INBOX_H
#define SOCKETD_INBOX_H

#include <pthread.h>

enum inbox_kind {
	INBOX_REPLY = 1, /* a struct sd_req with its answer */
	INBOX_PUSH,      /* a struct push_msg */
	INBOX_PUBSUB,    /* a batch of pub/sub messages (psub.c) */
};

struct inbox_msg {
	struct inbox_msg *next;
	int kind;
};

struct inbox {
	pthread_mutex_t mu; /* protects head, tail */
	struct inbox_msg *head, *tail;
	int efd; /* eventfd, non-blocking */
};

/* 0, or -1 with errno set. */
int inbox_init(struct inbox *ib);
/* Close the eventfd; messages left are handed to free_msg (may be NULL). */
void inbox_fini(struct inbox *ib, void (*free_msg)(struct inbox_msg *));
/* Any thread. */
void inbox_put(struct inbox *ib, struct inbox_msg *m);
/* The owning worker: everything queued, oldest first, or NULL. */
struct inbox_msg *inbox_take(struct inbox *ib);

#endif /* SOCKETD_INBOX_H */
