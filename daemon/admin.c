/*
 * The admin thread (admin.h).
 *
 * Life of an admin connection
 *   accept: over ADMIN_MAX_CONNS, or refused by access control: closed at
 *     once.  An agent connection is written its one line, shut down for
 *     writing and lingers; an HTTP one starts reading.
 *   A_READ: bytes into a fixed buffer until the blank line that ends the
 *     request head; a head over ADMIN_HEADER_MAX is answered 431.
 *   A_WRITE: the whole answer is built at once (the metrics text is a
 *     few tens of KiB) and written as the socket takes it.
 *   A_LINGER: after shutdown(SHUT_WR), input is read and dropped until
 *     EOF or ADMIN_LINGER_MS, so that close(2) does not reset the answer
 *     away (the same lingering close as the workers').
 *   Every state has a deadline; the loop wakes at least once a second to
 *   enforce them (there are at most ADMIN_MAX_CONNS to look at).
 */
#define _GNU_SOURCE /* accept4 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acceptor.h"
#include "admin.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

#define ADMIN_BACKLOG 64
#define TAG_WAKE      ((uint64_t)-1)

enum astate {
	A_FREE = 0,
	A_READ,
	A_WRITE,
	A_LINGER,
};

struct aconn {
	int fd;
	enum astate st;
	uint64_t deadline; /* monotonic ms */
	char in[ADMIN_HEADER_MAX];
	size_t in_len;
	char *out; /* the whole answer; owned */
	size_t out_len, out_off;
};

struct alistener {
	struct listener l;
	int agent; /* agent_listen, not HTTP */
};

struct admin {
	struct server *srv;
	pthread_t tid;
	int started;
	int epfd, wake_fd;
	int stop; /* atomic */
	struct alistener ls[2 * CFG_ADMIN_LISTEN_MAX];
	size_t nls;
	struct aconn conns[ADMIN_MAX_CONNS];
	size_t nconns;
	struct log_ratelimit rl;
};

int
admin_live(struct server *s, char *why, size_t len)
{
	uint64_t now = now_mono_ms(), t;
	int stopping = __atomic_load_n(&s->stop_mono_ms, __ATOMIC_RELAXED) != 0;
	unsigned i;

	for (i = 0; i < s->nworkers; i++) {
		t = STAT_GET(s->workers[i].st.loop_ms);
		if (t == 0) {
			if (stopping)
				continue; /* finished its drain: gone */
			snprintf(
			    why, len, "worker %u: event loop not running", i);
			return 0;
		}
		if (now > t && now - t > ADMIN_STALL_MS) {
			snprintf(why, len,
			    "worker %u: event loop stalled for %.1f s", i,
			    (double)(now - t) / 1000.0);
			return 0;
		}
	}
	snprintf(why, len, "ok");
	return 1;
}

int
admin_ready(struct server *s, char *why, size_t len)
{
	uint64_t t0;

	if (__atomic_load_n(&s->draining, __ATOMIC_ACQUIRE)) {
		t0 = __atomic_load_n(&s->drain_start_ms, __ATOMIC_RELAXED);
		snprintf(why, len,
		    "draining: stopping (signal received %.1f s ago)",
		    (double)(now_mono_ms() - t0) / 1000.0);
		return 0;
	}
	return admin_live(s, why, len);
}

/* --- connections --- */

static void
aconn_close(struct admin *a, struct aconn *c)
{
	/* Not left to close(2): a child being started may hold a copy. */
	(void)epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
	c->st = A_FREE;
	a->nconns--;
}

static int
watch(struct admin *a, struct aconn *c, uint32_t events, int op)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = (uint64_t)(c - a->conns);
	return epoll_ctl(a->epfd, op, c->fd, &ev);
}

static void
start_linger(struct admin *a, struct aconn *c, uint64_t now)
{
	if (shutdown(c->fd, SHUT_WR) == -1 ||
	    watch(a, c, EPOLLIN, EPOLL_CTL_MOD) == -1) {
		aconn_close(a, c);
		return;
	}
	c->st = A_LINGER;
	c->deadline = now + ADMIN_LINGER_MS;
}

static void
on_write(struct admin *a, struct aconn *c, uint64_t now)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			if (watch(a, c, EPOLLOUT, EPOLL_CTL_MOD) == -1)
				aconn_close(a, c);
			return;
		}
		aconn_close(a, c); /* the client went away */
		return;
	}
	free(c->out);
	c->out = NULL;
	start_linger(a, c, now);
}

static const char *
reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	default:
		return "Service Unavailable";
	}
}

/* Take body (owned, may be NULL) into a full answer; start writing. */
static void
respond(struct admin *a, struct aconn *c, int code, const char *ctype,
    char *body, size_t blen, uint64_t now)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "%s"
	    "Connection: close\r\n\r\n",
	    code, reason(code), ctype, blen,
	    code == 405 ? "Allow: GET\r\n" : "");
	c->out = malloc((size_t)n + blen);
	if (c->out == NULL) {
		free(body);
		aconn_close(a, c);
		return;
	}
	memcpy(c->out, head, (size_t)n);
	if (blen > 0)
		memcpy(c->out + n, body, blen);
	free(body);
	c->out_len = (size_t)n + blen;
	c->out_off = 0;
	c->st = A_WRITE;
	c->deadline = now + ADMIN_REQUEST_MS;
	on_write(a, c, now);
}

static void
respond_text(
    struct admin *a, struct aconn *c, int code, const char *text, uint64_t now)
{
	char *body = strdup(text);

	respond(a, c, code, "text/plain; charset=utf-8", body,
	    body != NULL ? strlen(body) : 0, now);
}

/* GET /livez, /healthz, /readyz: 200 "ok" or 503 "[-]reason". */
static void
health(struct admin *a, struct aconn *c, int ready, uint64_t now)
{
	char why[160], text[200];
	int ok;

	ok = ready ? admin_ready(a->srv, why, sizeof(why))
		   : admin_live(a->srv, why, sizeof(why));
	if (ok)
		snprintf(text, sizeof(text), "ok\n");
	else
		snprintf(text, sizeof(text), "[-]%s\n", why);
	respond_text(a, c, ok ? 200 : 503, text, now);
}

static void
route(struct admin *a, struct aconn *c, const char *method, const char *path,
    uint64_t now)
{
	struct pt_buf b;
	char text[400];

	if (strcmp(method, "GET") != 0) {
		snprintf(text, sizeof(text),
		    "method %.40s not allowed: the admin listener serves GET "
		    "only\n",
		    method);
		respond_text(a, c, 405, text, now);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		pt_init(&b);
		if (metrics_text(a->srv, &b) != 0) {
			pt_free(&b);
			respond_text(a, c, 500, "out of memory\n", now);
			return;
		}
		respond(a, c, 200, PT_CONTENT_TYPE, b.p, b.len, now);
		return;
	}
	if (strcmp(path, "/livez") == 0 || strcmp(path, "/healthz") == 0) {
		health(a, c, 0, now);
		return;
	}
	if (strcmp(path, "/readyz") == 0) {
		health(a, c, 1, now);
		return;
	}
	snprintf(text, sizeof(text),
	    "not found: %.200s\nroutes: /metrics /livez /readyz /healthz\n",
	    path);
	respond_text(a, c, 404, text, now);
}

/*
 * The request line of a complete head: "METHOD SP target SP HTTP/1.x".
 * The rest of the head is not needed and not checked.
 */
static void
on_request(struct admin *a, struct aconn *c, uint64_t now)
{
	char method[16], path[256], *sp1, *sp2, *eol, *q;
	size_t ml, pl;

	c->in[c->in_len < sizeof(c->in) ? c->in_len : sizeof(c->in) - 1] = '\0';
	eol = strpbrk(c->in, "\r\n");
	sp1 = strchr(c->in, ' ');
	sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (eol == NULL || sp1 == NULL || sp2 == NULL || sp2 > eol ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/') {
		respond_text(a, c, 400,
		    "bad request: expected \"GET /path HTTP/1.1\"\n", now);
		return;
	}
	ml = (size_t)(sp1 - c->in);
	pl = (size_t)(sp2 - sp1 - 1);
	if (ml == 0 || ml >= sizeof(method) || pl >= sizeof(path)) {
		respond_text(a, c, ml >= sizeof(method) ? 405 : 404,
		    "method or path too long\n", now);
		return;
	}
	memcpy(method, c->in, ml);
	method[ml] = '\0';
	memcpy(path, sp1 + 1, pl);
	path[pl] = '\0';
	if ((q = strchr(path, '?')) != NULL)
		*q = '\0'; /* ?verbose and the like: same answer */
	route(a, c, method, path, now);
}

static void
on_read(struct admin *a, struct aconn *c, uint64_t now)
{
	char drop[4096];
	ssize_t n;

	if (c->st == A_LINGER) {
		n = recv(c->fd, drop, sizeof(drop), MSG_DONTWAIT);
		if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
			aconn_close(a, c);
		return;
	}
	if (c->st != A_READ)
		return;
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len,
	    MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		aconn_close(a, c); /* gone before asking anything whole */
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	if (strstr(c->in, "\r\n\r\n") != NULL ||
	    strstr(c->in, "\n\n") != NULL) {
		on_request(a, c, now);
		return;
	}
	if (c->in_len >= sizeof(c->in) - 1)
		respond_text(
		    a, c, 431, "request head larger than 8192 bytes\n", now);
}

/* The agent's one line: HAProxy agent-check words. */
static void
agent_line(struct admin *a, struct aconn *c, uint64_t now)
{
	char why[160];
	const char *line;

	if (__atomic_load_n(&a->srv->draining, __ATOMIC_ACQUIRE))
		line = "drain\n";
	else if (!admin_live(a->srv, why, sizeof(why)))
		line = "down\n";
	else
		line = "up ready\n";
	/* A fresh socket's buffer takes a few bytes at once. */
	if (send(c->fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)strlen(line)) {
		aconn_close(a, c);
		return;
	}
	start_linger(a, c, now);
}

/* Whether access control lets the peer of fd in. */
static int
allowed(struct admin *a, const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct server_cfg *sc = server_cfg_get(a->srv);
	uint8_t src[16];
	int ok;

	memset(src, 0, sizeof(src));
	if (ss->ss_family == AF_INET) {
		memcpy(src, mapped, sizeof(mapped));
		memcpy(src + 12,
		    &((const struct sockaddr_in *)(const void *)ss)->sin_addr,
		    4);
	} else if (ss->ss_family == AF_INET6) {
		memcpy(src,
		    &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr,
		    16);
	}
	ok = (sc->c.nallow == 0 && sc->c.ndeny == 0) ||
	    cfg_access_allows(&sc->c, 1, src);
	server_cfg_put(sc);
	return ok;
}

static void
on_accept(struct admin *a, struct alistener *l, uint64_t now)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct aconn *c;
	uint64_t suppressed = 0;
	size_t i;
	int fd, n;

	for (n = 0; n < 16; n++) {
		sl = sizeof(ss);
		memset(&ss, 0, sizeof(ss)); /* accept4 fills it in */
		fd = accept4(l->l.fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED &&
			    log_ratelimit(&a->rl, now, 10000, &suppressed))
				log_warn("admin: accept on %s", l->l.name);
			return;
		}
		if (a->nconns == ADMIN_MAX_CONNS || !allowed(a, &ss)) {
			close(fd);
			continue;
		}
		for (i = 0; a->conns[i].st != A_FREE; i++)
			;
		c = &a->conns[i];
		memset(c, 0, offsetof(struct aconn, in));
		c->fd = fd;
		c->in_len = 0;
		c->st = A_READ;
		c->deadline = now + ADMIN_REQUEST_MS;
		a->nconns++;
		if (watch(a, c, EPOLLIN, EPOLL_CTL_ADD) == -1) {
			aconn_close(a, c);
			continue;
		}
		if (l->agent)
			agent_line(a, c, now);
	}
}

static void
expire(struct admin *a, uint64_t now)
{
	size_t i;

	for (i = 0; i < ADMIN_MAX_CONNS && a->nconns > 0; i++)
		if (a->conns[i].st != A_FREE && a->conns[i].deadline <= now)
			aconn_close(a, &a->conns[i]);
}

static void *
admin_main(void *arg)
{
	struct admin *a = arg;
	struct epoll_event evs[64];
	uint64_t now, tag, n64;
	int i, n;

	prctl(PR_SET_NAME, "admin", 0, 0, 0);
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		n = epoll_wait(a->epfd, evs, 64, 1000);
		if (n == -1 && errno != EINTR) {
			log_warn("admin: epoll_wait");
			break;
		}
		now = now_mono_ms();
		for (i = 0; i < n; i++) {
			tag = evs[i].data.u64;
			if (tag == TAG_WAKE) {
				(void)!read(a->wake_fd, &n64, sizeof(n64));
			} else if (tag >= ADMIN_MAX_CONNS) {
				on_accept(
				    a, &a->ls[tag - ADMIN_MAX_CONNS], now);
			} else if (a->conns[tag].st == A_WRITE) {
				on_write(a, &a->conns[tag], now);
			} else if (a->conns[tag].st != A_FREE) {
				on_read(a, &a->conns[tag], now);
			}
		}
		expire(a, now);
	}
	return NULL;
}

static int
open_list(struct admin *a, char *const *list, size_t n, int agent, char *err,
    size_t len)
{
	char why[256];
	size_t i;

	for (i = 0; i < n; i++) {
		struct alistener *l = &a->ls[a->nls];

		if (listener_open(
			list[i], ADMIN_BACKLOG, &l->l, why, sizeof(why)) != 0) {
			/* why is "listen ADDR: reason" */
			snprintf(err, len, "admin.%s %s",
			    agent ? "agent_listen" : "listen",
			    strncmp(why, "listen ", 7) == 0 ? why + 7 : why);
			return -1;
		}
		l->agent = agent;
		a->nls++;
	}
	return 0;
}

int
admin_open(struct server *s, const struct cfg *c, struct admin **out, char *err,
    size_t len)
{
	struct admin *a;
	struct epoll_event ev;
	size_t i;

	*out = NULL;
	if (c->nadmin_listen == 0 && c->nagent_listen == 0)
		return 0;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, len, "admin: out of memory");
		return -1;
	}
	a->srv = s;
	a->epfd = a->wake_fd = -1;
	for (i = 0; i < ADMIN_MAX_CONNS; i++)
		a->conns[i].fd = -1;
	if (open_list(a, c->admin_listen, c->nadmin_listen, 0, err, len) != 0 ||
	    open_list(a, c->agent_listen, c->nagent_listen, 1, err, len) != 0)
		goto fail;
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->epfd == -1 || a->wake_fd == -1) {
		snprintf(err, len, "admin: %s", LOG_ERRSTR(errno));
		goto fail;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = TAG_WAKE;
	if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->wake_fd, &ev) == -1)
		goto fail_errno;
	for (i = 0; i < a->nls; i++) {
		ev.data.u64 = ADMIN_MAX_CONNS + i;
		if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->ls[i].l.fd, &ev) == -1)
			goto fail_errno;
	}
	*out = a;
	return 0;
fail_errno:
	snprintf(err, len, "admin: epoll_ctl: %s", LOG_ERRSTR(errno));
fail:
	for (i = 0; i < a->nls; i++)
		close(a->ls[i].l.fd);
	if (a->epfd != -1)
		close(a->epfd);
	if (a->wake_fd != -1)
		close(a->wake_fd);
	free(a);
	return -1;
}

int
admin_start(struct admin *a)
{
	sigset_t all, old;
	size_t i;
	int rc;

	if (a == NULL)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&a->tid, NULL, admin_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	a->started = 1;
	for (i = 0; i < a->nls; i++)
		log_info("admin: %s on %s",
		    a->ls[i].agent ? "agent-check" : "HTTP", a->ls[i].l.name);
	return 0;
}

void
admin_stop(struct admin *a)
{
	uint64_t one = 1;
	size_t i;

	if (a == NULL)
		return;
	if (a->started) {
		__atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
		(void)!write(a->wake_fd, &one, sizeof(one));
		pthread_join(a->tid, NULL);
	}
	for (i = 0; i < ADMIN_MAX_CONNS; i++)
		if (a->conns[i].st != A_FREE)
			aconn_close(a, &a->conns[i]);
	for (i = 0; i < a->nls; i++)
		close(a->ls[i].l.fd);
	close(a->epfd);
	close(a->wake_fd);
	free(a);
}
