/*
 * sdclient.c: protocol v1 over a blocking TCP socket, every operation
 * bounded by poll() timeouts.
 *
 * The socket stays blocking, but each send and recv is made with
 * MSG_DONTWAIT after poll() said it would not block, so a deadline holds
 * even when the peer stops reading or writing.  One deadline is computed
 * per public call; EINTR and partial transfers loop within it.  A TLS
 * connection's socket is non-blocking instead (OpenSSL's reads and writes
 * take no flags): each call is tried first and, when the session says
 * EAGAIN, poll() waits for what it wants, which may be the other
 * direction; a read is tried before any wait because the session may
 * hold decrypted input that poll() cannot see.
 *
 * The receive buffer holds at most the frame being returned followed by
 * whatever the server sent after it.  The frame last returned stays at the
 * front (the caller's struct proto_resp points into it) until the next
 * receive, which drops it first: a complete frame at the front of the
 * buffer on entry is always one that was already returned (or rejected),
 * because a frame is decoded as soon as it is complete, before any wait
 * that could time out.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "sdclient.h"

#define BUF_INIT   4096 /* first receive buffer */
#define SEND_STACK 512  /* requests up to this size are encoded on the stack */

void
sdc_seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, SDC_ERRLEN, fmt, ap);
	va_end(ap);
}

/* strerror_r (XSI flavour: no _GNU_SOURCE here) into a caller buffer. */
const char *
sdc_strerror(int e, char *buf, size_t len)
{
	if (strerror_r(e, buf, len) != 0)
		(void)snprintf(buf, len, "error %d", e);
	return buf;
}

/* "5 s" for whole seconds, "500 ms" otherwise. */
static const char *
duration(int ms, char *buf, size_t len)
{
	if (ms % 1000 == 0)
		(void)snprintf(buf, len, "%d s", ms / 1000);
	else
		(void)snprintf(buf, len, "%d ms", ms);
	return buf;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline on the monotonic clock, or -1 for none. */
static int64_t
deadline_of(int timeout_ms)
{
	if (timeout_ms <= 0)
		return -1;
	return now_ms() + timeout_ms;
}

/*
 * Wait until fd is ready for events or the deadline passes.  Returns 1 when
 * ready (or in error: the next I/O call will say which), 0 on timeout, -1
 * with errno set if poll itself failed.
 */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n, ms;

	for (;;) {
		ms = -1;
		if (deadline >= 0) {
			left = deadline - now_ms();
			ms = left > 0 ? (int)left : 0;
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, ms);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void
timeout_err(const struct sdc *c, const char *what, char *err)
{
	char d[32];

	sdc_seterr(err, "timed out after %s %s",
	    duration(c->timeout_ms, d, sizeof(d)), what);
	errno = ETIMEDOUT;
}

/* Describe a send or recv failure; errno is preserved for the caller. */
static void
io_err(const char *op, int e, char *err)
{
	char eb[128];

	if (e == EPIPE)
		sdc_seterr(err, "connection closed by server");
	else if (e == ECONNRESET)
		sdc_seterr(err, "connection reset by server");
	else
		sdc_seterr(err, "%s: %s", op, sdc_strerror(e, eb, sizeof(eb)));
	errno = e;
}

/* A TLS read or write failure: the session's words for a TLS error. */
static void
tls_io_err(const char *op, int e, const char *terr, char *err)
{
	if (e == EPROTO)
		sdc_seterr(err, "TLS error: %s", terr);
	else
		io_err(op, e, err);
	errno = e;
}

/* What poll() waits for while a TLS session says EAGAIN. */
static short
tls_events(const struct sdc *c)
{
	return sdc_tls_conn_want(c->tls) == SDC_WANT_WRITE ? POLLOUT : POLLIN;
}

/* One TLS read into the buffer, waiting as the session wants. */
static ssize_t
tls_recv(struct sdc *c, int64_t deadline, char *err)
{
	char terr[SDC_ERRLEN];
	ssize_t n;
	int r;

	for (;;) {
		n = sdc_tls_conn_read(
		    c->tls, c->buf + c->buf_len, c->buf_cap - c->buf_len, terr);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			tls_io_err("recv", errno, terr, err);
			return -1;
		}
		r = wait_fd(c->fd, tls_events(c), deadline);
		if (r == 0) {
			timeout_err(c, "waiting for a response", err);
			return -1;
		}
		if (r == -1) {
			io_err("poll", errno, err);
			return -1;
		}
	}
}

static int
send_all(
    struct sdc *c, const void *buf, size_t len, int64_t deadline, char *err)
{
	char terr[SDC_ERRLEN];
	const uint8_t *p = buf;
	ssize_t n;
	int r;

	if (c->fd < 0) {
		sdc_seterr(err, "not connected");
		errno = ENOTCONN;
		return -1;
	}
	while (len > 0) {
		/* Try first: the socket buffer almost always has room. */
		if (c->tls != NULL)
			n = sdc_tls_conn_write(c->tls, p, len, terr);
		else
			n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			tls_io_err("send", errno, terr, err);
			return -1;
		}
		r = wait_fd(c->fd,
		    (short)(c->tls != NULL ? tls_events(c) : POLLOUT),
		    deadline);
		if (r == 0) {
			timeout_err(c, "sending a request", err);
			return -1;
		}
		if (r == -1) {
			io_err("poll", errno, err);
			return -1;
		}
	}
	return 0;
}

static int
send_req(struct sdc *c, uint8_t opcode, uint32_t request_id,
    const void *payload, size_t len, int64_t deadline, char *err)
{
	uint8_t stackbuf[SEND_STACK], *frame = stackbuf;
	size_t n;
	int rv, save;

	n = proto_encode_req(
	    stackbuf, sizeof(stackbuf), opcode, request_id, payload, len);
	if (n == SIZE_MAX) {
		sdc_seterr(
		    err, "request payload of %zu bytes is too large", len);
		errno = EMSGSIZE;
		return -1;
	}
	if (n > sizeof(stackbuf)) {
		if ((frame = malloc(n)) == NULL) {
			sdc_seterr(
			    err, "out of memory for a request of %zu bytes", n);
			errno = ENOMEM;
			return -1;
		}
		(void)proto_encode_req(
		    frame, n, opcode, request_id, payload, len);
	}
	rv = send_all(c, frame, n, deadline, err);
	save = errno;
	if (frame != stackbuf)
		free(frame);
	errno = save;
	return rv;
}

/* Drop the frame returned by the previous receive, if it is still here. */
static void
drop_returned(struct sdc *c)
{
	uint64_t flen;

	if (c->buf_len < PROTO_LEN_SIZE)
		return;
	flen = (uint64_t)PROTO_LEN_SIZE + proto_get_u32(c->buf);
	if (flen > c->buf_len)
		return; /* a frame still arriving */
	memmove(c->buf, c->buf + flen, c->buf_len - (size_t)flen);
	c->buf_len -= (size_t)flen;
}

/* Make the buffer hold at least want bytes (want <= max_frame + prefix). */
static int
reserve(struct sdc *c, size_t want, char *err)
{
	uint8_t *nb;
	size_t ncap;

	if (want <= c->buf_cap)
		return 0;
	ncap = c->buf_cap < BUF_INIT ? BUF_INIT : c->buf_cap;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	/* Growth by doubling stops at the largest frame allowed. */
	if (c->max_frame <= SIZE_MAX - PROTO_LEN_SIZE &&
	    ncap > c->max_frame + PROTO_LEN_SIZE)
		ncap = c->max_frame + PROTO_LEN_SIZE;
	if (ncap < want)
		ncap = want;
	if ((nb = realloc(c->buf, ncap)) == NULL) {
		sdc_seterr(
		    err, "out of memory for a response of %zu bytes", want);
		errno = ENOMEM;
		return -1;
	}
	c->buf = nb;
	c->buf_cap = ncap;
	return 0;
}

/* Printable ASCII only, as in "HTTP/1.1 400": a stranger on the port. */
static int
is_text(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return 0;
	return 1;
}

/* Look at the buffer: 1 a frame is ready in *resp, 0 need more, -1 bad. */
static int
decode(struct sdc *c, struct proto_resp *resp, size_t *want, char *err)
{
	enum proto_status st;
	size_t used;
	uint32_t blen;

	st = proto_decode_resp(c->buf, c->buf_len, c->max_frame, resp, &used);
	switch (st) {
	case PROTO_OK:
		return 1;
	case PROTO_AGAIN:
		if (c->buf_len < PROTO_LEN_SIZE)
			*want = PROTO_FRAME_MIN;
		else
			*want = PROTO_LEN_SIZE + (size_t)proto_get_u32(c->buf);
		return 0;
	case PROTO_TOO_LARGE:
		if (is_text(c->buf, PROTO_LEN_SIZE))
			sdc_seterr(err,
			    "server sent \"%.4s...\" where a length "
			    "was expected: not a socketd server?",
			    c->buf);
		else
			sdc_seterr(err,
			    "server sent a response of %" PRIu32
			    " bytes, more than the limit of %zu bytes",
			    proto_get_u32(c->buf), c->max_frame);
		break;
	case PROTO_UNSUPPORTED_VERSION:
		sdc_seterr(err,
		    "server sent a response in protocol version %u, "
		    "expected %d",
		    (unsigned)resp->version, PROTO_VERSION);
		break;
	case PROTO_BAD_REQUEST:
		blen = proto_get_u32(c->buf);
		sdc_seterr(err,
		    "server sent a malformed response: a body of "
		    "%" PRIu32 " bytes, shorter than the %d-byte header",
		    blen, PROTO_HDR_SIZE);
		break;
	default:
		sdc_seterr(err, "server sent a malformed response (%s)",
		    proto_status_str(st));
		break;
	}
	errno = EPROTO;
	return -1;
}

static int
recv_frame(struct sdc *c, struct proto_resp *resp, int64_t deadline, char *err)
{
	size_t want;
	ssize_t n;
	int r;

	memset(resp, 0, sizeof(*resp));
	if (c->fd < 0) {
		sdc_seterr(err, "not connected");
		errno = ENOTCONN;
		return -1;
	}
	drop_returned(c);
	for (;;) {
		if ((r = decode(c, resp, &want, err)) != 0)
			return r == 1 ? 0 : -1;
		if (reserve(c, want, err) == -1)
			return -1;
		if (c->tls != NULL) {
			if ((n = tls_recv(c, deadline, err)) < 0)
				return -1;
		} else {
			r = wait_fd(c->fd, POLLIN, deadline);
			if (r == 0) {
				timeout_err(c, "waiting for a response", err);
				return -1;
			}
			if (r == -1) {
				io_err("poll", errno, err);
				return -1;
			}
			n = recv(c->fd, c->buf + c->buf_len,
			    c->buf_cap - c->buf_len, MSG_DONTWAIT);
		}
		if (n > 0) {
			c->buf_len += (size_t)n;
		} else if (n == 0) {
			if (c->buf_len == 0)
				sdc_seterr(err, "connection closed by server");
			else
				sdc_seterr(err,
				    "connection closed by server in "
				    "the middle of a response");
			errno = ECONNRESET;
			return -1;
		} else if (errno != EINTR && errno != EAGAIN &&
		    errno != EWOULDBLOCK) {
			io_err("recv", errno, err);
			return -1;
		}
	}
}

void
sdc_attach(struct sdc *c, int fd, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
	c->next_id = 1;
	c->buf = NULL;
	c->max_frame = SDC_MAX_FRAME_DEFAULT;
}

/*
 * Connect one address without blocking past the deadline.  Returns the
 * connected (blocking) socket, or -1 with errno set (ETIMEDOUT on timeout).
 */
static int
try_connect(const struct addrinfo *ai, int64_t deadline)
{
	socklen_t sl;
	int fd, flags, soerr, save;

	fd = socket(
	    ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1)
		return -1;
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
		goto fail;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
		/* Interrupted, a non-blocking connect goes on anyway. */
		if (errno != EINPROGRESS && errno != EINTR)
			goto fail;
		switch (wait_fd(fd, POLLOUT, deadline)) {
		case 0:
			errno = ETIMEDOUT;
			goto fail;
		case -1:
			goto fail;
		default:
			break;
		}
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, flags) == -1)
		goto fail;
	return fd;
fail:
	save = errno;
	(void)close(fd);
	errno = save;
	return -1;
}

int
sdc_connect(struct sdc *c, const char *host, const char *port, int timeout_ms,
    char *err)
{
	struct addrinfo hints, *res, *ai;
	char name[NI_MAXHOST], eb[128], d[32];
	size_t hlen;
	int64_t deadline;
	int fd, gai, e, one = 1;

	sdc_attach(c, -1, timeout_ms);
	if (timeout_ms < 0) {
		sdc_seterr(err, "invalid timeout %d ms", timeout_ms);
		errno = EINVAL;
		return -1;
	}

	/* "[::1]" as in a URL: getaddrinfo wants the bare literal. */
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
		(void)snprintf(
		    name, sizeof(name), "%.*s", (int)(hlen - 2), host + 1);
	else if (hlen < sizeof(name))
		(void)snprintf(name, sizeof(name), "%s", host);
	else {
		sdc_seterr(err, "host name of %zu bytes is too long", hlen);
		errno = EINVAL;
		return -1;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	if ((gai = getaddrinfo(name, port, &hints, &res)) != 0) {
		sdc_seterr(err, "resolve %s port %s: %s", name, port,
		    gai == EAI_SYSTEM ? sdc_strerror(errno, eb, sizeof(eb))
				      : gai_strerror(gai));
		errno = EHOSTUNREACH;
		return -1;
	}

	/* One deadline for the whole attempt, whatever the address count. */
	deadline = deadline_of(timeout_ms);
	fd = -1;
	e = EHOSTUNREACH;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = try_connect(ai, deadline)) != -1)
			break;
		e = errno;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		if (e == ETIMEDOUT)
			sdc_seterr(err,
			    "connect to %s port %s: timed out after %s", name,
			    port, duration(timeout_ms, d, sizeof(d)));
		else
			sdc_seterr(err, "connect to %s port %s: %s", name, port,
			    sdc_strerror(e, eb, sizeof(eb)));
		errno = e;
		return -1;
	}

	/* Small requests, each awaited: Nagle would only add delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	return 0;
}

void
sdc_close(struct sdc *c)
{
	if (c == NULL)
		return;
	sdc_tls_conn_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		(void)close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->buf_len = 0;
	c->buf_cap = 0;
}

int
sdc_connect_tls(struct sdc *c, const char *host, const char *port,
    int timeout_ms, struct sdc_tls *tls, char *err)
{
	if (sdc_connect(c, host, port, timeout_ms, err) == -1)
		return -1;
	if (tls == NULL)
		return 0;
	return sdc_start_tls(c, host, port, tls, err);
}

int
sdc_start_tls(struct sdc *c, const char *host, const char *port,
    struct sdc_tls *tls, char *err)
{
	char name[NI_MAXHOST], herr[SDC_ERRLEN], d[32];
	int64_t deadline;
	size_t hlen;
	int fl, r, timeout_ms = c->timeout_ms;

	if (c->fd < 0) {
		sdc_seterr(err, "not connected");
		errno = ENOTCONN;
		return -1;
	}
	/* The name to check the certificate against: no brackets. */
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
		(void)snprintf(
		    name, sizeof(name), "%.*s", (int)(hlen - 2), host + 1);
	else
		(void)snprintf(name, sizeof(name), "%s", host);
	if ((fl = fcntl(c->fd, F_GETFL)) == -1 ||
	    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		io_err("fcntl", errno, err);
		sdc_close(c);
		return -1;
	}
	if ((c->tls = sdc_tls_conn_new(tls, c->fd, name, err)) == NULL) {
		sdc_close(c);
		return -1;
	}
	deadline = deadline_of(timeout_ms);
	while ((r = sdc_tls_conn_handshake(c->tls, herr)) != 1) {
		if (r == -1) {
			sdc_seterr(err, "TLS handshake with %s port %s: %s",
			    name, port, herr);
			sdc_close(c);
			errno = EPROTO;
			return -1;
		}
		r = wait_fd(c->fd, tls_events(c), deadline);
		if (r == 0) {
			sdc_seterr(err,
			    "TLS handshake with %s port %s: timed out "
			    "after %s",
			    name, port, duration(timeout_ms, d, sizeof(d)));
			sdc_close(c);
			errno = ETIMEDOUT;
			return -1;
		}
		if (r == -1) {
			io_err("poll", errno, err);
			sdc_close(c);
			return -1;
		}
	}
	return 0;
}

int
sdc_tls_describe(const struct sdc *c, char *buf, size_t len)
{
	if (c->tls == NULL)
		return -1;
	return sdc_tls_conn_describe(c->tls, buf, len);
}

int
sdc_send_raw(struct sdc *c, const void *buf, size_t len, char *err)
{
	return send_all(c, buf, len, deadline_of(c->timeout_ms), err);
}

int
sdc_send(struct sdc *c, uint8_t opcode, uint32_t request_id,
    const void *payload, size_t len, char *err)
{
	return send_req(c, opcode, request_id, payload, len,
	    deadline_of(c->timeout_ms), err);
}

int
sdc_recv(struct sdc *c, struct proto_resp *resp, char *err)
{
	return recv_frame(c, resp, deadline_of(c->timeout_ms), err);
}

int64_t
sdc_deadline(const struct sdc *c)
{
	return deadline_of(c->timeout_ms);
}

int
sdc_send_until(struct sdc *c, uint8_t opcode, uint32_t request_id,
    const void *payload, size_t len, int64_t deadline, char *err)
{
	return send_req(c, opcode, request_id, payload, len, deadline, err);
}

int
sdc_recv_until(
    struct sdc *c, struct proto_resp *resp, int64_t deadline, char *err)
{
	return recv_frame(c, resp, deadline, err);
}

/*
 * A push (protocol v1.1: status OK, request_id 0, which no request
 * uses): skipped, as unknown pushes must be; GOAWAY is remembered.
 */
static int
skip_push(struct sdc *c, const struct proto_resp *r)
{
	if (r->version != PROTO_VERSION || r->request_id != 0 ||
	    r->status != PROTO_OK)
		return 0;
	if (r->opcode == PROTO_OP_GOAWAY) {
		c->goaway = 1;
		c->goaway_grace_ms =
		    r->payload_len >= 4 ? proto_get_u32(r->payload) : 0;
	}
	return 1;
}

int
sdc_call(struct sdc *c, uint8_t opcode, const void *payload, size_t len,
    struct proto_resp *resp, char *err)
{
	char serr[SDC_ERRLEN];
	int64_t deadline;
	uint32_t id;
	int e;

	if (c->goaway) {
		sdc_seterr(err,
		    "the server is draining this connection "
		    "(GOAWAY): connect again");
		errno = ESHUTDOWN;
		return -1;
	}
	/* request_id 0 is what unsolicited responses carry: never use it. */
	if (c->next_id == 0)
		c->next_id = 1;
	id = c->next_id++;
	deadline = deadline_of(c->timeout_ms);

	if (send_req(c, opcode, id, payload, len, deadline, serr) == -1) {
		e = errno;
		/*
		 * A server that refuses a connection says BUSY and closes;
		 * the send may fail after that: read the reason if it came.
		 */
		if ((e != EPIPE && e != ECONNRESET) ||
		    recv_frame(c, resp, deadline, NULL) == -1 ||
		    resp->status == PROTO_OK) {
			sdc_seterr(err, "%s", serr);
			errno = e;
			return -1;
		}
	} else {
		do {
			if (recv_frame(c, resp, deadline, err) == -1)
				return -1;
		} while (skip_push(c, resp));
	}

	if (resp->version != PROTO_VERSION) {
		sdc_seterr(err,
		    "server sent a response in protocol version %u, "
		    "expected %d",
		    (unsigned)resp->version, PROTO_VERSION);
		errno = EPROTO;
		return -1;
	}
	/* Unsolicited (BUSY before closing): it answers this request too. */
	if (resp->request_id == 0 && resp->status != PROTO_OK)
		return 0;
	if (resp->request_id != id) {
		sdc_seterr(err,
		    "server answered request_id %" PRIu32 ", "
		    "expected %" PRIu32,
		    resp->request_id, id);
		errno = EPROTO;
		return -1;
	}
	if (resp->opcode != opcode) {
		sdc_seterr(err,
		    "server answered opcode %u to a request with "
		    "opcode %u",
		    (unsigned)resp->opcode, (unsigned)opcode);
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
sdc_peer(const struct sdc *c, char *buf, size_t len, char *err)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[NI_MAXHOST], s[NI_MAXSERV], eb[128];
	int gai, n;

	if (c->fd < 0) {
		sdc_seterr(err, "not connected");
		return -1;
	}
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == -1) {
		sdc_seterr(err, "getpeername: %s",
		    sdc_strerror(errno, eb, sizeof(eb)));
		return -1;
	}
	gai = getnameinfo((struct sockaddr *)&ss, sl, h, sizeof(h), s,
	    sizeof(s), NI_NUMERICHOST | NI_NUMERICSERV);
	if (gai != 0) {
		sdc_seterr(err, "getnameinfo: %s", gai_strerror(gai));
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		n = snprintf(buf, len, "[%s]:%s", h, s);
	else
		n = snprintf(buf, len, "%s:%s", h, s);
	if (n < 0 || (size_t)n >= len) {
		sdc_seterr(err, "peer address does not fit %zu bytes", len);
		return -1;
	}
	return 0;
}
