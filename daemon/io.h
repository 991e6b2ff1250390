/*
 * io: the per-connection transport.  Every byte a connection reads or
 * writes goes through these function pointers (memcached's conn_new /
 * tls.c seam), so TLS slots in here without touching the protocol, the
 * worker loop or the pool.
 *
 * read and write follow read(2)/send(2): bytes moved, 0 for end of file
 * (read only), or -1 with errno set (EAGAIN when the socket would block).
 * shutdown_wr sends FIN after pending output; close releases the
 * transport's state and closes the descriptor.
 */
#ifndef SOCKETD_IO_H
#define SOCKETD_IO_H

#include <sys/types.h>

#include <stddef.h>

struct conn_io {
	const char *name;
	ssize_t (*read)(int fd, void *ctx, void *buf, size_t len);
	ssize_t (*write)(int fd, void *ctx, const void *buf, size_t len);
	int (*shutdown_wr)(int fd, void *ctx);
	void (*close)(int fd, void *ctx);
};

/* Plain TCP. */
extern const struct conn_io io_plain;

#endif /* SOCKETD_IO_H */
