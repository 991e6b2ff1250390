#include <sys/socket.h>

#include <unistd.h>

#include "io.h"

static ssize_t
plain_read(int fd, void *ctx, void *buf, size_t len)
{
	(void)ctx;
	return read(fd, buf, len);
}

static ssize_t
plain_write(int fd, void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	/* MSG_NOSIGNAL: a peer that went away gives EPIPE, not SIGPIPE. */
	return send(fd, buf, len, MSG_NOSIGNAL);
}

static int
plain_shutdown_wr(int fd, void *ctx)
{
	(void)ctx;
	return shutdown(fd, SHUT_WR);
}

static void
plain_close(int fd, void *ctx)
{
	(void)ctx;
	close(fd);
}

const struct conn_io io_plain = {
    .name = "tcp",
    .read = plain_read,
    .write = plain_write,
    .shutdown_wr = plain_shutdown_wr,
    .close = plain_close,
};
