/*
 * fake_server: a test-only protocol v1 server that can answer wrongly, to
 * check that socketd-cli bench notices.
 *
 *	bench_fake_server MODE [N]
 *	bench_fake_server --free-port
 *
 * MODE is one of
 *	ok         every answer right
 *	badid      every Nth answer carries request_id + 1000
 *	badstatus  every Nth answer is INTERNAL with a message
 *	badecho    every Nth ECHO answer has one payload byte flipped
 * N defaults to 100.  The server listens on 127.0.0.1 port 0, prints the
 * port and a newline on stdout, and serves (one thread, epoll) until a
 * signal ends it; it also ends by itself after LIFETIME_S seconds, so a
 * test that dies cannot leave it behind for long.
 *
 * --free-port prints a loopback port that was free a moment ago.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define LIFETIME_S 120
#define MAX_EVENTS 64
#define READ_CHUNK 65536
#define MAX_FRAME  (1u << 20)

enum mode {
	M_OK,
	M_BADID,
	M_BADSTATUS,
	M_BADECHO,
};

struct fconn {
	int fd;
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
};

static enum mode mode;
static unsigned long every = 100;
static unsigned long answers; /* answers subject to the fault */

static void
die(const char *what)
{
	char eb[128];

	if (strerror_r(errno, eb, sizeof(eb)) != 0)
		(void)snprintf(eb, sizeof(eb), "error %d", errno);
	(void)fprintf(stderr, "fake_server: %s: %s\n", what, eb);
	exit(1);
}

static int
listen_loopback(int backlog, uint16_t *port)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		die("socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		die("bind 127.0.0.1:0");
	if (backlog > 0 && listen(fd, backlog) == -1)
		die("listen");
	if (getsockname(fd, (struct sockaddr *)&sin, &sl) == -1)
		die("getsockname");
	*port = ntohs(sin.sin_port);
	return fd;
}

static int
set_nonblock(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1)
		return -1;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Make room for n more bytes at the end of a buffer. */
static void
reserve(uint8_t **buf, size_t *cap, size_t len, size_t n)
{
	size_t ncap;

	if (len + n <= *cap)
		return;
	ncap = *cap < 4096 ? 4096 : *cap;
	while (ncap < len + n)
		ncap *= 2;
	if ((*buf = realloc(*buf, ncap)) == NULL)
		die("realloc");
	*cap = ncap;
}

static int
fault_now(void)
{
	return ++answers % every == 0;
}

/* Append the answer to one request to c->out. */
static void
answer(struct fconn *c, const struct proto_req *req)
{
	static const char text[] = "version fake\npid 1\nuptime_seconds 1\n";
	static const char fault[] = "injected fault";
	uint8_t tbuf[8], *p;
	const void *payload = NULL;
	size_t plen = 0, n;
	uint64_t ns;
	uint32_t id = req->request_id;
	uint16_t status = PROTO_OK;
	struct timespec ts;

	switch (req->opcode) {
	case PROTO_OP_PING:
		break;
	case PROTO_OP_ECHO:
		payload = req->payload;
		plen = req->payload_len;
		break;
	case PROTO_OP_TIME:
		(void)clock_gettime(CLOCK_REALTIME, &ts);
		ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		proto_put_u32(tbuf, (uint32_t)(ns >> 32));
		proto_put_u32(tbuf + 4, (uint32_t)ns);
		payload = tbuf;
		plen = 8;
		break;
	case PROTO_OP_INFO:
	case PROTO_OP_STATS:
		payload = text;
		plen = sizeof(text) - 1;
		break;
	default:
		status = PROTO_UNKNOWN_OPCODE;
		payload = "unknown opcode";
		plen = strlen(payload);
		break;
	}
	if (mode == M_BADID && fault_now())
		id += 1000;
	if (mode == M_BADSTATUS && fault_now()) {
		status = PROTO_INTERNAL;
		payload = fault;
		plen = sizeof(fault) - 1;
	}
	n = PROTO_FRAME_MIN + plen;
	reserve(&c->out, &c->out_cap, c->out_len, n);
	p = c->out + c->out_len;
	(void)proto_encode_resp(p, n, req->opcode, status, id, payload, plen);
	if (mode == M_BADECHO && req->opcode == PROTO_OP_ECHO && plen > 0 &&
	    status == PROTO_OK && fault_now())
		p[PROTO_FRAME_MIN + plen / 2] ^= 0x5a;
	c->out_len += n;
}

static void
conn_free(int ep, struct fconn *c)
{
	(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	(void)close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Send pending output; 0 all sent, 1 some left, -1 broken. */
static int
flush(struct fconn *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		return -1;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Read, answer every complete request; -1 when the connection ends. */
static int
serve(struct fconn *c)
{
	struct proto_req req;
	enum proto_status st;
	size_t off, used;
	ssize_t n;

	reserve(&c->in, &c->in_cap, c->in_len, READ_CHUNK);
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n == 0)
		return -1;
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	c->in_len += (size_t)n;
	for (off = 0;; off += used) {
		st = proto_decode_req(
		    c->in + off, c->in_len - off, MAX_FRAME, &req, &used);
		if (st == PROTO_AGAIN)
			break;
		if (st != PROTO_OK)
			return -1; /* the tests send only good requests */
		answer(c, &req);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return flush(c) == -1 ? -1 : 0;
}

static int
parse_mode(const char *s)
{
	if (strcmp(s, "ok") == 0)
		mode = M_OK;
	else if (strcmp(s, "badid") == 0)
		mode = M_BADID;
	else if (strcmp(s, "badstatus") == 0)
		mode = M_BADSTATUS;
	else if (strcmp(s, "badecho") == 0)
		mode = M_BADECHO;
	else
		return -1;
	return 0;
}

int
main(int argc, char *argv[])
{
	struct epoll_event ev, evs[MAX_EVENTS];
	struct fconn *c;
	uint16_t port;
	char *end;
	int lfd, ep, fd, i, n;

	if (argc == 2 && strcmp(argv[1], "--free-port") == 0) {
		lfd = listen_loopback(0, &port);
		(void)close(lfd);
		(void)printf("%u\n", (unsigned)port);
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if (argc < 2 || argc > 3 || parse_mode(argv[1]) == -1) {
		(void)fprintf(stderr,
		    "usage: bench_fake_server "
		    "ok|badid|badstatus|badecho [N]\n"
		    "       bench_fake_server --free-port\n");
		return 2;
	}
	if (argc == 3) {
		errno = 0;
		every = strtoul(argv[2], &end, 10);
		if (argv[2][0] < '0' || argv[2][0] > '9' || *end != '\0' ||
		    errno != 0 || every == 0) {
			(void)fprintf(
			    stderr, "fake_server: bad N '%s'\n", argv[2]);
			return 2;
		}
	}
	(void)alarm(LIFETIME_S);
	lfd = listen_loopback(128, &port);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1");
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL; /* the listener */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) == -1)
		die("epoll_ctl");
	(void)printf("%u\n", (unsigned)port);
	if (fflush(stdout) != 0)
		die("stdout");

	for (;;) {
		n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (c == NULL) {
				fd = accept(lfd, NULL, NULL);
				if (fd == -1)
					continue;
				if (set_nonblock(fd) == -1) {
					(void)close(fd);
					continue;
				}
				if ((c = calloc(1, sizeof(*c))) == NULL)
					die("calloc");
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
					die("epoll_ctl");
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				if (flush(c) == -1) {
					conn_free(ep, c);
					continue;
				}
			}
			/* While output is stuck, stop reading (EPOLLOUT). */
			if (c->out_len == 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
			    serve(c) == -1) {
				conn_free(ep, c);
				continue;
			}
			ev.events = c->out_len > 0 ? EPOLLOUT : EPOLLIN;
			ev.data.ptr = c;
			(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
	}
}
