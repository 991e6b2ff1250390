/*
 * io: the per-connection transport.  Every byte a connection reads or
 * writes goes through these function pointers (memcached's conn_new /
 * tls.c seam), so TLS slots in here without touching the protocol, the
 * worker loop or the pool.
 *
 * read and write follow read(2)/send(2): bytes moved, 0 for end of file
 * (read only), or -1 with errno set (EAGAIN when the socket would block).
 * shutdown_wr sends FIN after pending output; close releases the
 * transport's state and closes the descriptor (ctx may be NULL).
 *
 * A transport with a handshake and buffers of its own (TLS, daemon/tls.h)
 * fills in the second half; plain TCP leaves it NULL, so the plain path
 * costs nothing more than its indirect calls:
 *   handshake  advance the handshake: 1 done, 0 call again when want()
 *              says, -1 failed (error() says why).  Before any read.
 *   want       after read, write or handshake said EAGAIN: IO_WANT_READ
 *              or IO_WANT_WRITE, the readiness the transport waits for.
 *              A TLS read may wait for writability, a write for input.
 *   pending    non-zero when input was already taken off the socket and
 *              is held by the transport: epoll will not report it, so
 *              the caller must read again without waiting.
 *   error      why the last call failed, for the log, in buf.
 */
#ifndef SOCKETD_IO_H
#define SOCKETD_IO_H

#include <sys/types.h>

#include <stddef.h>

#define IO_WANT_READ  1u
#define IO_WANT_WRITE 2u

struct conn_io {
	const char *name;
	ssize_t (*read)(int fd, void *ctx, void *buf, size_t len);
	ssize_t (*write)(int fd, void *ctx, const void *buf, size_t len);
	int (*shutdown_wr)(int fd, void *ctx);
	void (*close)(int fd, void *ctx);
	/* NULL for plain TCP (see above). */
	int (*handshake)(int fd, void *ctx);
	unsigned (*want)(void *ctx);
	int (*pending)(void *ctx);
	const char *(*error)(void *ctx, char *buf, size_t len);
};

/* Plain TCP. */
extern const struct conn_io io_plain;

#endif /* SOCKETD_IO_H */
