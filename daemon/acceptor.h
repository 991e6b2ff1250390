/*
 * acceptor: the one thread that owns the listening sockets.  It accepts,
 * refuses what is over max_connections with a BUSY frame, and hands the
 * rest to the pool.  When the pool's queue is full or descriptors run out
 * it stops accepting (the kernel backlog holds new clients) instead of
 * growing memory or spinning.
 */
#ifndef SOCKETD_ACCEPTOR_H
#define SOCKETD_ACCEPTOR_H

#include <stddef.h>

#include "server.h"

struct listener {
	int fd;
	int tls;       /* connections start with a TLS handshake */
	char name[80]; /* as written in the config: "127.0.0.1:7411" */
};

/*
 * Bind and listen on spec ("host:port", "[v6]:port", "*:port", any of them
 * after "tls://" for a TLS listener).  On error returns -1 with a
 * one-line message in err ("listen 127.0.0.1:7411: Address already in
 * use").
 */
int listener_open(const char *spec, int backlog, struct listener *out,
    char *err, size_t errlen);

/* Start the acceptor thread over ls[0..n) (it owns them now); NULL on error. */
struct acceptor *acceptor_start(
    struct server *srv, struct listener *ls, size_t n);
/* Stop accepting, close the listeners and join the thread. */
void acceptor_stop(struct acceptor *a);
/* A worker closed a connection: resume accepting if descriptors ran out. */
void acceptor_conn_closed(struct acceptor *a);
/* Listener i's name as configured ("127.0.0.1:7411"); any thread. */
const char *acceptor_listener_name(const struct acceptor *a, unsigned i);

#endif /* SOCKETD_ACCEPTOR_H */
