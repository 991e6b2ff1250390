/*
 * admin: the admin listeners (admin.listen, admin.agent_listen): HTTP
 * for /metrics, /livez, /readyz and /healthz, and HAProxy's agent-check.
 *
 * One thread of its own with its own epoll loop serves them, so that a
 * scrape never takes time from a worker and a stalled worker cannot stop
 * /livez from saying so.  Everything is bounded: ADMIN_MAX_CONNS
 * connections, ADMIN_HEADER_MAX bytes of request head, ADMIN_REQUEST_MS
 * for the request to arrive and its answer to leave, then a lingering
 * close of at most ADMIN_LINGER_MS.  The access rules apply as on the
 * main listeners.
 *
 * Threads: admin_open, admin_start and admin_stop run on the main
 * thread; admin_live and admin_ready on any (they read the workers'
 * heartbeats and the server's draining flag with relaxed loads).
 */
#ifndef SOCKETD_ADMIN_H
#define SOCKETD_ADMIN_H

#include <stddef.h>

#include "cfg.h"
#include "server.h"

#define ADMIN_MAX_CONNS  64
#define ADMIN_HEADER_MAX 8192
#define ADMIN_REQUEST_MS 5000
#define ADMIN_LINGER_MS  2000
/* A worker whose loop has not turned for this long is stalled. */
#define ADMIN_STALL_MS 5000

struct admin;

/*
 * Bind c's admin and agent listeners (before privileges are dropped).
 * 0 with *out set (NULL when both lists are empty), or -1 with a message
 * in err ("admin.listen 127.0.0.1:9411: Address already in use").
 */
int admin_open(struct server *s, const struct cfg *c, struct admin **out,
    char *err, size_t len);
/* Start serving; 0 or -1 with errno set. */
int admin_start(struct admin *a);
/* Stop the thread, close everything, free; NULL is fine. */
void admin_stop(struct admin *a);

/*
 * Health: 1 (live / ready) or 0 with the reason in why ("worker 1: event
 * loop stalled for 7.2 s", "draining: stopping").
 */
int admin_live(struct server *s, char *why, size_t len);
int admin_ready(struct server *s, char *why, size_t len);

#endif /* SOCKETD_ADMIN_H */
