/*
 * srclimit: connections open per client address, for
 * max_connections_per_source.  The acceptor acquires, the worker that
 * closes the connection releases; one mutex (a leaf lock, held for a hash
 * lookup) protects the table.  Every connection is counted whatever the
 * limit, so that a reload that sets or lowers it applies at once.
 */
#ifndef SOCKETD_SRCLIMIT_H
#define SOCKETD_SRCLIMIT_H

#include <stdint.h>

struct srclimit;

struct srclimit *srclimit_new(void);
void srclimit_free(struct srclimit *t);
/*
 * Count one more connection from addr (16 bytes; IPv4 as ::ffff:a.b.c.d)
 * unless limit (0: none) connections from it are open already.  0 counted,
 * -1 refused (or out of memory, which refuses too).
 */
int srclimit_acquire(struct srclimit *t, const uint8_t *addr, unsigned limit);
void srclimit_release(struct srclimit *t, const uint8_t *addr);
/* Addresses with at least one connection (for STATS). */
uint64_t srclimit_sources(struct srclimit *t);

#endif /* SOCKETD_SRCLIMIT_H */
