#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "srclimit.h"

#define NBUCKETS 4096 /* power of two */

struct src_node {
	uint8_t addr[16];
	unsigned count;
	struct src_node *next;
};

struct srclimit {
	pthread_mutex_t mu; /* protects everything below; leaf lock */
	struct src_node *buckets[NBUCKETS];
	uint64_t sources;
};

static size_t
bucket(const uint8_t *addr)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	int i;

	for (i = 0; i < 16; i++)
		h = (h ^ addr[i]) * 1099511628211ULL;
	return (size_t)(h & (NBUCKETS - 1));
}

struct srclimit *
srclimit_new(void)
{
	struct srclimit *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void
srclimit_free(struct srclimit *t)
{
	struct src_node *n, *nx;
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < NBUCKETS; i++)
		for (n = t->buckets[i]; n != NULL; n = nx) {
			nx = n->next;
			free(n);
		}
	pthread_mutex_destroy(&t->mu);
	free(t);
}

int
srclimit_acquire(struct srclimit *t, const uint8_t *addr, unsigned limit)
{
	struct src_node *n;
	size_t b = bucket(addr);
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	for (n = t->buckets[b]; n != NULL; n = n->next)
		if (memcmp(n->addr, addr, 16) == 0)
			break;
	if (n == NULL) {
		if ((n = calloc(1, sizeof(*n))) == NULL) {
			rc = -1;
			goto out;
		}
		memcpy(n->addr, addr, 16);
		n->next = t->buckets[b];
		t->buckets[b] = n;
		t->sources++;
	} else if (limit != 0 && n->count >= limit) {
		rc = -1;
		goto out;
	}
	n->count++;
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void
srclimit_release(struct srclimit *t, const uint8_t *addr)
{
	struct src_node **pp, *n;

	pthread_mutex_lock(&t->mu);
	for (pp = &t->buckets[bucket(addr)]; (n = *pp) != NULL; pp = &n->next)
		if (memcmp(n->addr, addr, 16) == 0)
			break;
	if (n != NULL && --n->count == 0) {
		*pp = n->next;
		free(n);
		t->sources--;
	}
	pthread_mutex_unlock(&t->mu);
}

uint64_t
srclimit_sources(struct srclimit *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->mu);
	n = t->sources;
	pthread_mutex_unlock(&t->mu);
	return n;
}
