/*
 * The acceptor thread.
 *
 * It waits in its own epoll set on the listening sockets, an eventfd for
 * wake-ups (stop, a connection closed while descriptors were short) and
 * the pool's space eventfd.  Listeners are removed from the set while
 * accepting is paused, so a full queue or a descriptor shortage costs no
 * CPU: the kernel's listen backlog holds new clients meanwhile.
 *
 * Refusals (BUSY) must not destroy their own answer: the refused socket
 * is shut down for writing and kept for up to REFUSE_LINGER_MS in a small
 * fixed table, its input read and discarded, before close(2) (Apache's
 * lingering close).  When the table is full the socket is closed at once.
 * On a TLS listener an answer could only follow a handshake, which the
 * acceptor does not do: a refused TLS connection is closed at once.
 */
#define _GNU_SOURCE /* accept4 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acceptor.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "srclimit.h"

#define ACCEPT_BATCH     64  /* accepts per listener per wake-up */
#define PAUSE_FD_MS      250 /* retry after a descriptor shortage */
#define LINGER_SLOTS     256 /* refused sockets lingering at once */
#define REFUSE_LINGER_MS 2000
#define LOG_INTERVAL_MS  10000 /* one line per condition per interval */

/* epoll tags: listener i is i; the rest above CFG_LISTEN_MAX. */
#define TAG_WAKE   1000
#define TAG_SPACE  1001
#define TAG_LINGER 2000 /* + slot */

enum pause_reason {
	PAUSE_NONE = 0,
	PAUSE_FD,
	PAUSE_QUEUE,
};

struct linger_slot {
	int fd; /* -1: free */
	uint64_t t;
};

struct acceptor {
	struct server *srv;
	pthread_t tid;
	int epfd;
	int wake_fd;
	int spare_fd; /* reserved descriptor for answering under EMFILE */
	struct listener ls[CFG_LISTEN_MAX];
	size_t nls;
	int listening; /* listeners are in the epoll set */
	int stop;      /* atomic */
	int paused;    /* enum pause_reason; atomic for acceptor_conn_closed */
	uint64_t pause_start, resume_at;
	struct conn *held; /* accepted, waiting for queue room */
	struct linger_slot lingers[LINGER_SLOTS];
	size_t nlinger;
	struct server_cfg *sc;
	uint64_t gen;
	uint64_t now;
	struct log_ratelimit rl_fd, rl_busy, rl_err, rl_deny;
};

int
listener_open(const char *spec, int backlog, struct listener *out, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char host[256];
	const char *colon, *port, *h, *addr;
	size_t hlen;
	int fd = -1, one = 1, rc;

	snprintf(out->name, sizeof(out->name), "%s", spec);
	out->fd = -1;
	addr = cfg_listen_addr(spec, &out->tls);
	if ((colon = strrchr(addr, ':')) == NULL) {
		snprintf(err, errlen, "listen %s: expected host:port", spec);
		return -1;
	}
	port = colon + 1;
	h = addr;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "listen %s: host name too long", spec);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "*") == 0 || hlen == 0)
		snprintf(host, sizeof(host), "0.0.0.0");

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen %s: %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(
	    res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		goto fail;
	/* [::] must not also claim IPv4: 0.0.0.0 may be listed beside it. */
	if (res->ai_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, res->ai_addr, res->ai_addrlen) == -1)
		goto fail;
	if (listen(fd, backlog) == -1)
		goto fail;
	freeaddrinfo(res);
	out->fd = fd;
	return 0;
fail:
	snprintf(err, errlen, "listen %s: %s", spec, LOG_ERRSTR(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(res);
	return -1;
}

static void
epoll_add(struct acceptor *a, int fd, uint64_t tag)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = tag;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		log_warn("acceptor: epoll_ctl add");
}

static void
set_listening(struct acceptor *a, int on)
{
	size_t i;

	if (a->listening == on)
		return;
	for (i = 0; i < a->nls; i++) {
		if (on)
			epoll_add(a, a->ls[i].fd, i);
		else
			(void)epoll_ctl(
			    a->epfd, EPOLL_CTL_DEL, a->ls[i].fd, NULL);
	}
	a->listening = on;
}

static void
pause_accepting(struct acceptor *a, enum pause_reason why)
{
	set_listening(a, 0);
	if (a->paused == PAUSE_NONE) {
		a->pause_start = a->now;
		STAT_SET(a->srv->astats.paused_now, 1);
		if (why == PAUSE_FD)
			STAT_ADD(a->srv->astats.paused_fd, 1);
		else
			STAT_ADD(a->srv->astats.paused_queue, 1);
	}
	__atomic_store_n(&a->paused, (int)why, __ATOMIC_RELAXED);
	if (why == PAUSE_FD)
		a->resume_at = a->now + PAUSE_FD_MS;
}

static void
resume_accepting(struct acceptor *a)
{
	if (a->paused == PAUSE_NONE)
		return;
	STAT_ADD(a->srv->astats.paused_ms, a->now - a->pause_start);
	STAT_SET(a->srv->astats.paused_now, 0);
	__atomic_store_n(&a->paused, PAUSE_NONE, __ATOMIC_RELAXED);
	set_listening(a, 1);
}

static void
linger_close(struct acceptor *a, size_t slot)
{
	(void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->lingers[slot].fd, NULL);
	close(a->lingers[slot].fd);
	a->lingers[slot].fd = -1;
	a->nlinger--;
}

/*
 * Answer st (BUSY, DENIED) on fd, shut down our side, linger; takes fd.
 * A TLS connection is closed without an answer.
 */
static void
refuse(struct acceptor *a, int fd, int tls, enum proto_status st,
    const char *msg, int may_linger)
{
	uint8_t frame[PROTO_FRAME_MIN + PROTO_TEXT_MAX];
	size_t n, i;

	if (tls) {
		close(fd);
		return;
	}
	n = proto_error(NULL, st, msg, frame, sizeof(frame));
	/* A fresh socket's send buffer takes a few dozen bytes at once. */
	if (send(fd, frame, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n ||
	    shutdown(fd, SHUT_WR) == -1 || !may_linger ||
	    a->nlinger == LINGER_SLOTS) {
		if (may_linger)
			STAT_ADD(a->srv->astats.rejected_dropped, 1);
		close(fd);
		return;
	}
	for (i = 0; a->lingers[i].fd != -1; i++)
		;
	a->lingers[i].fd = fd;
	a->lingers[i].t = a->now;
	a->nlinger++;
	epoll_add(a, fd, TAG_LINGER + i);
}

static void
on_linger(struct acceptor *a, size_t slot)
{
	char buf[4096];
	ssize_t n;

	n = read(a->lingers[slot].fd, buf, sizeof(buf));
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		linger_close(a, slot);
}

/* Close lingering sockets whose time is up; ms until the next, or -1. */
static int
expire_lingers(struct acceptor *a)
{
	uint64_t next = UINT64_MAX, t;
	size_t i;

	for (i = 0; i < LINGER_SLOTS && a->nlinger > 0; i++) {
		if (a->lingers[i].fd == -1)
			continue;
		t = a->lingers[i].t + REFUSE_LINGER_MS;
		if (t <= a->now)
			linger_close(a, i);
		else if (t < next)
			next = t;
	}
	return next == UINT64_MAX ? -1 : (int)(next - a->now) + 1;
}

/* Out of descriptors: answer one client with the spare, then pause. */
static void
no_descriptors(struct acceptor *a, int lfd, int tls, int err)
{
	uint64_t suppressed = 0;
	int fd;

	if (a->spare_fd != -1) {
		close(a->spare_fd);
		a->spare_fd = -1;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd != -1) {
			STAT_ADD(a->srv->astats.rejected_no_fd, 1);
			refuse(a, fd, tls, PROTO_BUSY,
			    "server out of file descriptors", 0);
		}
		a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	if (log_ratelimit(&a->rl_fd, a->now, LOG_INTERVAL_MS, &suppressed))
		log_warnx("accept: %s; pausing new connections until one "
			  "closes (%lu more since the last message)",
		    LOG_ERRSTR(err), (unsigned long)suppressed);
	pause_accepting(a, PAUSE_FD);
}

/* The peer as 16 bytes (IPv4 mapped) and whether access control allows it. */
static int
peer_allowed(
    const struct cfg *cf, const struct sockaddr_storage *ss, uint8_t *src)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(src, 0, 16);
	if (ss->ss_family == AF_INET) {
		memcpy(src, mapped, sizeof(mapped));
		memcpy(
		    src + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		memcpy(src, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	}
	if (cf->nallow == 0 && cf->ndeny == 0)
		return 1;
	return cfg_access_allows(cf, 1, src);
}

/* Close a connection no worker ever took, undoing its accounting. */
static void
drop_conn(struct acceptor *a, struct conn *c)
{
	if (c->src_counted)
		srclimit_release(a->srv->src, c->src);
	conn_free(c);
	__atomic_fetch_sub(&a->srv->conns_current, 1, __ATOMIC_RELAXED);
}

/* Refuse with BUSY: log once per interval what the limit was. */
static void
refuse_busy(struct acceptor *a, int fd, int tls, const char *msg)
{
	uint64_t suppressed = 0;

	if (log_ratelimit(&a->rl_busy, a->now, LOG_INTERVAL_MS, &suppressed))
		log_warnx("refusing connections: %s (%lu more since the last "
			  "message)",
		    msg, (unsigned long)suppressed);
	refuse(a, fd, tls, PROTO_BUSY, msg, 1);
}

/* Hand a new connection to the pool, or hold it while the queue is full. */
static void
dispatch(
    struct acceptor *a, int fd, size_t li, const struct sockaddr_storage *ss)
{
	int tls = a->ls[li].tls;
	const struct cfg *cf = &a->sc->c;
	uint64_t suppressed = 0;
	struct conn *c;
	uint8_t src[16];
	char msg[96];
	int one = 1, rc;

	/* Before a byte is read: a denied peer learns nothing but DENIED. */
	if (!peer_allowed(cf, ss, src)) {
		STAT_ADD(a->srv->astats.rejected_denied, 1);
		if (log_ratelimit(
			&a->rl_deny, a->now, LOG_INTERVAL_MS, &suppressed))
			log_info("refused a connection by access control (%lu "
				 "more since the last message)",
			    (unsigned long)suppressed);
		refuse(a, fd, tls, PROTO_DENIED, "access denied", 1);
		return;
	}
	if ((unsigned)__atomic_load_n(&a->srv->conns_current,
		__ATOMIC_RELAXED) >= cf->max_connections) {
		STAT_ADD(a->srv->astats.rejected_max_conn, 1);
		snprintf(msg, sizeof(msg), "max_connections (%u) reached",
		    cf->max_connections);
		refuse_busy(a, fd, tls, msg);
		return;
	}
	if (srclimit_acquire(a->srv->src, src, cf->max_conn_per_source) != 0) {
		STAT_ADD(a->srv->astats.rejected_per_source, 1);
		snprintf(msg, sizeof(msg),
		    "max_connections_per_source (%u) reached for this address",
		    cf->max_conn_per_source);
		refuse_busy(a, fd, tls, msg);
		return;
	}
	if (cf->tcp_nodelay)
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cf->tcp_keepalive)
		(void)setsockopt(
		    fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if ((c = conn_new(fd)) == NULL) {
		log_warnx("accept: out of memory for a new connection");
		srclimit_release(a->srv->src, src);
		close(fd);
		return;
	}
	memcpy(c->src, src, sizeof(c->src));
	c->src_counted = 1;
	c->listener = (uint8_t)li;
	c->port = ntohs(ss->ss_family == AF_INET6
		? ((const struct sockaddr_in6 *)(const void *)ss)->sin6_port
		: ((const struct sockaddr_in *)(const void *)ss)->sin_port);
	if (tls)
		c->flags |= CONN_TLS; /* the worker starts the handshake */
	__atomic_fetch_add(&a->srv->conns_current, 1, __ATOMIC_RELAXED);
	STAT_ADD(a->srv->astats.accepted, 1);
	rc = pool_submit(a->srv->pool, c);
	if (rc == -EAGAIN) {
		a->held = c;
		pause_accepting(a, PAUSE_QUEUE);
	} else if (rc != 0) {
		drop_conn(a, c);
	}
}

static void
accept_batch(struct acceptor *a, size_t i)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint64_t suppressed = 0;
	int fd, n;

	for (n = 0; n < ACCEPT_BATCH && a->paused == PAUSE_NONE; n++) {
		sl = sizeof(ss);
		/* accept4 fills it in; zeroed so that the port is never junk.
		 */
		memset(&ss, 0, sizeof(ss));
		fd = accept4(a->ls[i].fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			dispatch(a, fd, i, &ss);
			continue;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			no_descriptors(a, a->ls[i].fd, a->ls[i].tls, errno);
			return;
		default:
			STAT_ADD(a->srv->astats.accept_errors, 1);
			if (log_ratelimit(&a->rl_err, a->now, LOG_INTERVAL_MS,
				&suppressed))
				log_warn("accept on %s", a->ls[i].name);
			return;
		}
	}
}

/* The queue has room again: hand over the held connection and resume. */
static void
on_space(struct acceptor *a)
{
	uint64_t n;

	(void)!read(
	    a->srv->pool ? pool_space_fd(a->srv->pool) : -1, &n, sizeof(n));
	if (a->held != NULL) {
		if (pool_submit(a->srv->pool, a->held) == -EAGAIN)
			return;
		a->held = NULL;
	}
	if (a->paused == PAUSE_QUEUE)
		resume_accepting(a);
}

static void *
acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	struct epoll_event evs[64];
	uint64_t g, n64;
	int i, n, timeout, t, woken;

	prctl(PR_SET_NAME, "acceptor", 0, 0, 0);
	a->now = now_mono_ms();
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		woken = 0;
		timeout = expire_lingers(a);
		if (a->paused == PAUSE_FD) {
			t = a->resume_at > a->now ? (int)(a->resume_at - a->now)
						  : 0;
			if (timeout == -1 || t < timeout)
				timeout = t;
		}
		n = epoll_wait(a->epfd, evs, 64, timeout);
		if (n == -1 && errno != EINTR)
			fatal("acceptor: epoll_wait");
		a->now = now_mono_ms();
		g = __atomic_load_n(&a->srv->cfg_gen, __ATOMIC_ACQUIRE);
		if (g != a->gen) {
			server_cfg_put(a->sc);
			a->sc = server_cfg_get(a->srv);
			a->gen = g;
		}
		for (i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag < CFG_LISTEN_MAX)
				accept_batch(a, (size_t)tag);
			else if (tag == TAG_WAKE &&
			    read(a->wake_fd, &n64, sizeof(n64)) > 0)
				woken = 1;
			else if (tag == TAG_SPACE)
				on_space(a);
			else if (a->lingers[tag - TAG_LINGER].fd != -1)
				on_linger(a, (size_t)(tag - TAG_LINGER));
		}
		/* Descriptors short: retry when one closed or the timer ran. */
		if (a->paused == PAUSE_FD && (woken || a->now >= a->resume_at))
			resume_accepting(a);
	}
	return NULL;
}

struct acceptor *
acceptor_start(struct server *srv, struct listener *ls, size_t n)
{
	struct acceptor *a;
	sigset_t all, old;
	size_t i;
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->srv = srv;
	a->wake_fd = a->epfd = -1;
	for (i = 0; i < LINGER_SLOTS; i++)
		a->lingers[i].fd = -1;
	memcpy(a->ls, ls, n * sizeof(*ls));
	a->nls = n;
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->spare_fd == -1 || a->epfd == -1 || a->wake_fd == -1) {
		log_warn("acceptor: cannot create its descriptors");
		goto err;
	}
	a->gen = __atomic_load_n(&srv->cfg_gen, __ATOMIC_ACQUIRE);
	a->sc = server_cfg_get(srv);
	epoll_add(a, a->wake_fd, TAG_WAKE);
	epoll_add(a, pool_space_fd(srv->pool), TAG_SPACE);
	set_listening(a, 1);
	srv->acc = a;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->tid, NULL, acceptor_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		log_warn("acceptor: pthread_create");
		srv->acc = NULL;
		server_cfg_put(a->sc);
		goto err;
	}
	return a;
err:
	if (a->spare_fd != -1)
		close(a->spare_fd);
	if (a->epfd != -1)
		close(a->epfd);
	if (a->wake_fd != -1)
		close(a->wake_fd);
	free(a);
	return NULL;
}

void
acceptor_stop(struct acceptor *a)
{
	uint64_t one = 1;
	size_t i;

	__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
	(void)!write(a->wake_fd, &one, sizeof(one));
	pthread_join(a->tid, NULL);
	for (i = 0; i < a->nls; i++)
		close(a->ls[i].fd);
	for (i = 0; i < LINGER_SLOTS; i++)
		if (a->lingers[i].fd != -1)
			close(a->lingers[i].fd);
	if (a->held != NULL && pool_submit(a->srv->pool, a->held) != 0)
		drop_conn(a, a->held);
	a->held = NULL;
	if (a->paused != PAUSE_NONE) {
		a->now = now_mono_ms();
		resume_accepting(a); /* settles the paused_ms counter */
	}
	server_cfg_put(a->sc);
	close(a->spare_fd);
	close(a->epfd);
	/* wake_fd stays open: workers may still call acceptor_conn_closed. */
}

void
acceptor_conn_closed(struct acceptor *a)
{
	uint64_t one = 1;

	if (a != NULL &&
	    __atomic_load_n(&a->paused, __ATOMIC_RELAXED) == PAUSE_FD)
		(void)!write(a->wake_fd, &one, sizeof(one));
}

const char *
acceptor_listener_name(const struct acceptor *a, unsigned i)
{
	return a != NULL && i < a->nls ? a->ls[i].name : "";
}
