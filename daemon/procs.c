/*
 * Handler processes (procs.h): the procs thread and its children.
 *
 * Each entry of the processes list is a struct pent with up to twice its
 * `instances` slots (a reload starts a new child before an old one
 * leaves).  An instance goes FREE -> HELLO (started, OPCODES sent) -> UP
 * (serving) -> RETIRING (reload: no new requests; SIGTERM once its
 * in-flight ones are answered) or STOPPING (killed: its requests were
 * answered INTERNAL) -> FREE when its pidfd says it exited.  An instance
 * of the current generation that exits is restarted after its back-off
 * (restart_delay, doubling to 60 s while it keeps dying young).
 *
 * Requests: a worker calls procs_handler() (SD_ASYNC) which puts the
 * struct sd_req into p->in; this thread queues it on its entry and sends
 * it to the UP instance with the fewest in flight, under max_inflight, as
 * a v1 request with opcode = handler offset and request id = (sequence <<
 * SLOT_BITS | slot).  The answer's id finds the slot in O(1); an id that
 * does not match a slot is the child's mistake and stops it.
 *
 * Nothing here takes a lock per request except the inbox's; the entry's
 * figures are written by this thread and read with relaxed atomics.
 */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <stddef.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "dispatch.h"
#include "inbox.h"
#include "log.h"
#include "module.h"
#include "procs.h"
#include "promtext.h"
#include "proto.h"
#include "server.h"
#include "spawn.h"

#define PROCS_HELLO_MS 10000 /* start-up: every entry answers within */
#define SLOT_BITS      10    /* CFG_PROC_INFLIGHT_MAX == 1 << SLOT_BITS */
#define BACKOFF_MAX_MS 60000
#define POLL_MS        50    /* waitpid() polling, without pidfds */
#define YOUNG_MS       10000 /* an instance dying younger backs off */
#define ERRLINE_MAX    1024
#define HANDLERS_MAX   128
#define PENDING_MAX    4096 /* waiting per instance; then OVERLOADED */

enum { I_FREE = 0, I_HELLO, I_UP, I_RETIRING, I_STOPPING, I_DOWN };

struct slot {
	struct sd_req *r;
	uint32_t id;
	uint64_t sent_ms;
	int late; /* counted as a timeout */
};

struct pent;

struct tag {
	int type; /* T_* */
	struct pinst *in;
};

enum { T_INBOX = 1, T_WAKE, T_SOCK, T_ERR, T_PID };

struct pinst {
	struct pent *e;
	unsigned k; /* slot number within the entry */
	int state;
	unsigned gen; /* the entry's configuration it runs with */
	pid_t pid;
	int fd, errfd, pidfd;
	struct tag tsock, terr, tpid;
	struct slot *slots; /* e->c.max_inflight at its start */
	unsigned nslots, inflight;
	uint32_t seq;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint8_t *in;
	size_t in_len, in_cap;
	char eline[ERRLINE_MAX];
	size_t elen;
	uint64_t started_ms, last_read_ms, restart_at;
	uint32_t backoff_ms;
	char why[200];     /* set when we decided to stop it */
	uint64_t kill_at;  /* STOPPING after EOF: SIGKILL then */
	int termed;        /* SIGTERM sent (retiring, shutdown) */
	uint32_t want_out; /* EPOLLOUT registered */
};

struct pent {
	char name[65]; /* the entry's, fixed: STATS reads it from any thread */
	struct procs *p;
	struct cfg_proc c; /* in force */
	unsigned gen;
	unsigned nh;
	uint8_t hoff[HANDLERS_MAX];
	char hname[HANDLERS_MAX][65];
	int known;  /* the handler list is learned */
	int failed; /* start-up: no instance could answer */
	char lasterr[512];
	struct pinst ins[2 * CFG_PROC_INSTANCES_MAX];
	struct sd_req *qhead, *qtail;
	unsigned qlen;
	unsigned rr; /* the instance picked last: ties go round from it */
	/* Figures: written here, read by STATS (relaxed). */
	uint64_t up, restarts, requests, errors, timeouts, inflight;
};

struct procs {
	struct server *srv;
	const struct sd_api *api;
	struct pent *ents;
	size_t n;
	struct pent *byop[256];
	struct inbox in;
	int epfd, wakefd;
	struct tag tin, twake;
	pthread_t th;
	int started;
	pthread_mutex_t mu; /* below */
	pthread_cond_t cv;
	int stop; /* 1: stopping */
	uint64_t stop_deadline;
	struct cfg *reload;  /* a new configuration to take */
	unsigned handler_ms; /* timeouts.handler in force */
	size_t max_frame;
	int hello_done;
};

static struct procs *g_procs; /* for procs_handler() */

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define FIG_ADD(f, v) __atomic_add_fetch(&(f), (v), __ATOMIC_RELAXED)
#define FIG_GET(f)    __atomic_load_n(&(f), __ATOMIC_RELAXED)

static void
answer(struct procs *p, struct sd_req *r, unsigned status, const char *msg)
{
	(void)p->api->reply(r, status, msg, strlen(msg));
}

/* --- the worker side --- */

static void
procs_handler(struct sd_req *r)
{
	struct procs *p = g_procs;
	struct pent *e = p->byop[p->api->opcode(r)];
	char msg[160];

	FIG_ADD(e->requests, 1);
	if (FIG_GET(e->up) == 0) {
		FIG_ADD(e->errors, 1);
		snprintf(msg, sizeof(msg),
		    "no instance of handler process %s is running; retry "
		    "later",
		    e->c.name);
		answer(p, r, PROTO_OVERLOADED, msg);
		return;
	}
	inbox_put(&p->in, &r->m);
}

/* --- instances --- */

static void
ep_add(struct procs *p, int fd, struct tag *t, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.ptr = t};

	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e) == -1)
		log_warn("procs: epoll_ctl");
}

static void
want_out(struct pinst *in, int on)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &in->tsock};

	if (in->fd == -1 || in->want_out == (uint32_t)on)
		return;
	in->want_out = (uint32_t)on;
	(void)epoll_ctl(in->e->p->epfd, EPOLL_CTL_MOD, in->fd, &ev);
}

static int
out_reserve(struct pinst *in, size_t need)
{
	uint8_t *nb;
	size_t cap;

	if (in->out_off > 0 && in->out_off == in->out_len)
		in->out_off = in->out_len = 0;
	if (in->out_len + need <= in->out_cap)
		return 0;
	if (in->out_off > 0) {
		memmove(
		    in->out, in->out + in->out_off, in->out_len - in->out_off);
		in->out_len -= in->out_off;
		in->out_off = 0;
		if (in->out_len + need <= in->out_cap)
			return 0;
	}
	cap = in->out_cap ? in->out_cap : 4096;
	while (cap < in->out_len + need)
		cap *= 2;
	if ((nb = realloc(in->out, cap)) == NULL)
		return -1;
	in->out = nb;
	in->out_cap = cap;
	return 0;
}

static void flush(struct pinst *in);

/* Queue a frame toward the child; 0 or -1 (out of memory). */
static int
send_frame(
    struct pinst *in, uint8_t opcode, uint32_t id, const void *data, size_t len)
{
	size_t need = PROTO_FRAME_MIN + len;

	if (out_reserve(in, need) != 0)
		return -1;
	in->out_len += proto_encode_req(
	    in->out + in->out_len, need, opcode, id, data, len);
	return 0;
}

static void
set_up(struct pent *e)
{
	unsigned i, n = 0;

	for (i = 0; i < 2 * CFG_PROC_INSTANCES_MAX; i++)
		n += e->ins[i].state == I_UP;
	__atomic_store_n(&e->up, n, __ATOMIC_RELAXED);
}

/* Answer every request it holds with INTERNAL and msg. */
static void
fail_inflight(struct pinst *in, const char *msg)
{
	struct pent *e = in->e;
	unsigned i;

	for (i = 0; i < in->nslots; i++) {
		if (in->slots[i].r == NULL)
			continue;
		answer(e->p, in->slots[i].r, PROTO_INTERNAL, msg);
		in->slots[i].r = NULL;
		FIG_ADD(e->errors, 1);
		FIG_ADD(e->inflight, (uint64_t)-1);
	}
	in->inflight = 0;
}

static void
close_fds(struct pinst *in)
{
	if (in->fd != -1)
		close(in->fd);
	if (in->errfd != -1)
		close(in->errfd);
	in->fd = in->errfd = -1;
	in->out_len = in->out_off = in->in_len = 0;
	in->want_out = 0;
}

/*
 * Stop an instance we gave up on: its requests get INTERNAL naming why,
 * it gets sig, and it is reaped when its pidfd fires.
 */
static void stop_inst(struct pinst *in, int sig, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
stop_inst(struct pinst *in, int sig, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(in->why, sizeof(in->why), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "handler process %s[%d] %s", in->e->c.name,
	    (int)in->pid, in->why);
	log_warnx("%s", msg);
	/* Out of the count before a client can hear of it. */
	in->state = I_STOPPING;
	set_up(in->e);
	fail_inflight(in, msg);
	close_fds(in);
	kill(in->pid, sig);
}

/*
 * Start-up waits for the first instance's handler list; one that fails
 * before giving it fails the start (procs_open reports lasterr).
 */
static void
note_failure(struct pent *e)
{
	if (__atomic_load_n(&e->known, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&e->p->mu);
	e->failed = 1;
	pthread_cond_broadcast(&e->p->cv);
	pthread_mutex_unlock(&e->p->mu);
}

static void
start_inst(struct pent *e, struct pinst *in)
{
	struct spawned sp;
	char err[400];
	uint64_t now = mono_ms();

	in->e = e;
	in->gen = e->gen;
	in->why[0] = '\0';
	in->elen = 0;
	in->kill_at = 0;
	in->termed = 0;
	in->seq = 1;
	in->inflight = 0;
	in->fd = in->errfd = in->pidfd = -1;
	if (spawn_child(&e->c, &sp, err, sizeof(err)) != 0) {
		log_errx("processes.%s: %s", e->c.name, err);
		pthread_mutex_lock(&e->p->mu);
		snprintf(e->lasterr, sizeof(e->lasterr), "%s", err);
		pthread_mutex_unlock(&e->p->mu);
		in->state = I_DOWN;
		in->backoff_ms = in->backoff_ms == 0
		    ? (e->c.restart_delay_ms ? e->c.restart_delay_ms : 100)
		    : in->backoff_ms * 2;
		if (in->backoff_ms > BACKOFF_MAX_MS)
			in->backoff_ms = BACKOFF_MAX_MS;
		in->restart_at = now + in->backoff_ms;
		note_failure(e);
		return;
	}
	free(in->slots);
	in->nslots = e->c.max_inflight;
	if ((in->slots = calloc(in->nslots, sizeof(*in->slots))) == NULL)
		fatalx("out of memory");
	in->pid = sp.pid;
	in->fd = sp.fd;
	in->errfd = sp.errfd;
	in->pidfd = sp.pidfd;
	in->started_ms = in->last_read_ms = now;
	in->tsock = (struct tag){T_SOCK, in};
	in->terr = (struct tag){T_ERR, in};
	in->tpid = (struct tag){T_PID, in};
	ep_add(e->p, in->fd, &in->tsock, EPOLLIN);
	ep_add(e->p, in->errfd, &in->terr, EPOLLIN);
	if (in->pidfd != -1)
		ep_add(e->p, in->pidfd, &in->tpid, EPOLLIN);
	in->state = I_HELLO;
	log_info(
	    "processes.%s: started %s[%d]", e->c.name, e->c.name, (int)in->pid);
	/* Its first request: which handlers it serves (id 0: no slot). */
	if (send_frame(in, PROTO_OP_OPCODES, 0, NULL, 0) != 0)
		fatalx("out of memory");
	flush(in);
}

/* It exited with status: answer what it held, plan its restart. */
static void
reaped(struct pinst *in, int status)
{
	struct pent *e = in->e;
	char how[96], msg[300];
	int young;
	uint64_t now = mono_ms();

	spawn_status_str(status, how, sizeof(how));
	if (in->state == I_UP) {
		/* Out of the count before a client can hear of it. */
		in->state = I_STOPPING;
		set_up(e);
	}
	if (in->inflight > 0) {
		snprintf(msg, sizeof(msg), "handler process %s[%d] %s",
		    e->c.name, (int)in->pid, how);
		fail_inflight(in, msg);
	}
	close_fds(in);
	if (in->pidfd != -1) {
		(void)epoll_ctl(e->p->epfd, EPOLL_CTL_DEL, in->pidfd, NULL);
		close(in->pidfd);
		in->pidfd = -1;
	}
	young = now - in->started_ms < YOUNG_MS;
	if (in->state == I_RETIRING ||
	    (in->state == I_STOPPING && in->gen != e->gen)) {
		log_info("processes.%s: %s[%d] %s (replaced)", e->c.name,
		    e->c.name, (int)in->pid, how);
		in->state = I_FREE;
	} else if (__atomic_load_n(&e->p->stop, __ATOMIC_ACQUIRE)) {
		log_info("processes.%s: %s[%d] %s", e->c.name, e->c.name,
		    (int)in->pid, how);
		in->state = I_FREE;
	} else {
		in->backoff_ms = !young || in->backoff_ms == 0
		    ? e->c.restart_delay_ms
		    : in->backoff_ms * 2;
		if (young && in->backoff_ms == 0)
			in->backoff_ms = 100; /* never a tight loop */
		if (in->backoff_ms > BACKOFF_MAX_MS)
			in->backoff_ms = BACKOFF_MAX_MS;
		log_warnx(
		    "processes.%s: %s[%d] %s%s%s; restarting it in %.3g s",
		    e->c.name, e->c.name, (int)in->pid, how,
		    in->why[0] ? ": " : "", in->why,
		    (double)in->backoff_ms / 1000.0);
		pthread_mutex_lock(&e->p->mu);
		snprintf(e->lasterr, sizeof(e->lasterr), "%s[%d] %s%s%s",
		    e->c.name, (int)in->pid, how, in->why[0] ? ": " : "",
		    in->why);
		pthread_mutex_unlock(&e->p->mu);
		in->state = I_DOWN;
		in->restart_at = now + in->backoff_ms;
		FIG_ADD(e->restarts, 1);
	}
	note_failure(e);
	set_up(e);
}

/* --- the child's answers --- */

static int
parse_list(struct pent *e, const uint8_t *pl, size_t len, uint8_t *off,
    char (*names)[65], unsigned *n, char *why, size_t wlen)
{
	char line[200], *end;
	size_t i = 0, j;
	unsigned long v;

	*n = 0;
	while (i < len) {
		for (j = 0; i + j < len && pl[i + j] != '\n'; j++)
			;
		if (j >= sizeof(line)) {
			snprintf(why, wlen, "an OPCODES line is too long");
			return -1;
		}
		memcpy(line, pl + i, j);
		line[j] = '\0';
		i += j + 1;
		if (line[0] == '\0')
			continue;
		if (*n >= HANDLERS_MAX) {
			snprintf(
			    why, wlen, "more than %d handlers", HANDLERS_MAX);
			return -1;
		}
		errno = 0;
		v = strtoul(line, &end, 0);
		if (errno != 0 || end == line || *end != ' ' || v > 0x7f ||
		    e->c.opcode + v > 0xff || strlen(end + 1) > 64 ||
		    end[1] == '\0') {
			snprintf(why, wlen,
			    "bad OPCODES line \"%.80s\" (expected \"0xNN "
			    "name\", offsets from 0x00 with opcode 0x%02x + "
			    "offset <= 0xff)",
			    line, e->c.opcode);
			return -1;
		}
		for (j = 0; end[1 + j] != '\0'; j++)
			if (!((end[1 + j] >= 'a' && end[1 + j] <= 'z') ||
				(end[1 + j] >= '0' && end[1 + j] <= '9') ||
				end[1 + j] == '_')) {
				snprintf(why, wlen,
				    "bad handler name \"%.64s\" (a-z, 0-9, _)",
				    end + 1);
				return -1;
			}
		for (j = 0; j < *n; j++)
			if (off[j] == v) {
				snprintf(why, wlen,
				    "offset 0x%02lx listed twice", v);
				return -1;
			}
		off[*n] = (uint8_t)v;
		snprintf(names[*n], 65, "%s", end + 1);
		(*n)++;
	}
	if (*n == 0) {
		snprintf(why, wlen, "it serves no handlers");
		return -1;
	}
	return 0;
}

static void
hello(struct pinst *in, const struct proto_resp *rs)
{
	struct pent *e = in->e;
	uint8_t off[HANDLERS_MAX];
	char names[HANDLERS_MAX][65], why[200];
	unsigned n, i;

	if (rs->request_id != 0 || rs->status != PROTO_OK) {
		stop_inst(in, SIGKILL,
		    "answered the OPCODES request with status %u (%s): "
		    "stopped",
		    rs->status, proto_status_str(rs->status));
		return;
	}
	if (parse_list(e, rs->payload, rs->payload_len, off, names, &n, why,
		sizeof(why)) != 0) {
		stop_inst(
		    in, SIGKILL, "answered OPCODES wrongly: %s; stopped", why);
		return;
	}
	if (!e->known) {
		e->nh = n;
		memcpy(e->hoff, off, n);
		memcpy(e->hname, names, sizeof(names[0]) * n);
		__atomic_store_n(&e->known, 1, __ATOMIC_RELEASE);
	} else {
		int same = n == e->nh;

		for (i = 0; same && i < n; i++)
			same = off[i] == e->hoff[i] &&
			    strcmp(names[i], e->hname[i]) == 0;
		if (!same) {
			stop_inst(in, SIGTERM,
			    "serves other handlers than the first instance "
			    "did (the list is fixed until socketd restarts): "
			    "stopped");
			return;
		}
	}
	in->state = I_UP;
	set_up(e);
	log_info("processes.%s: %s[%d] serves %u handler%s", e->c.name,
	    e->c.name, (int)in->pid, n, n == 1 ? "" : "s");
	pthread_mutex_lock(&e->p->mu);
	pthread_cond_broadcast(&e->p->cv);
	pthread_mutex_unlock(&e->p->mu);
}

static void
answered(struct pinst *in, const struct proto_resp *rs)
{
	struct pent *e = in->e;
	struct slot *s;
	uint32_t k = rs->request_id & ((1u << SLOT_BITS) - 1);

	if (in->state == I_HELLO) {
		hello(in, rs);
		return;
	}
	s = k < in->nslots ? &in->slots[k] : NULL;
	if (rs->request_id == 0 || s == NULL || s->r == NULL ||
	    s->id != rs->request_id) {
		stop_inst(in, SIGKILL,
		    "answered request id %u, which it was not sent: stopped "
		    "(its answers can no longer be trusted)",
		    rs->request_id);
		return;
	}
	if (rs->status != PROTO_OK)
		FIG_ADD(e->errors, 1);
	(void)e->p->api->reply(s->r, rs->status, rs->payload, rs->payload_len);
	s->r = NULL;
	in->inflight--;
	FIG_ADD(e->inflight, (uint64_t)-1);
}

/*
 * The child closed its end: it is most likely exiting, and its pidfd
 * will say how.  Stop sending to it; kill it if it lingers.
 */
static void
sock_eof(struct pinst *in)
{
	(void)epoll_ctl(in->e->p->epfd, EPOLL_CTL_DEL, in->fd, NULL);
	in->state = I_STOPPING;
	in->kill_at = mono_ms() + 1000;
	set_up(in->e);
}

static void
read_sock(struct pinst *in, int at_exit)
{
	struct proto_resp rs;
	enum proto_status st;
	size_t used, pos, cap, room;
	uint8_t *nb;
	ssize_t n;

	for (;;) {
		if (in->in_cap - in->in_len < 4096) {
			cap = in->in_cap ? in->in_cap * 2 : 16384;
			if (cap > in->e->p->max_frame * 2 + 65536 &&
			    in->in_cap >= in->in_len + 4096)
				cap = in->in_cap;
			if ((nb = realloc(in->in, cap)) == NULL)
				fatalx("out of memory");
			in->in = nb;
			in->in_cap = cap;
		}
		room = in->in_cap - in->in_len;
		n = read(in->fd, in->in + in->in_len, room);
		/* A reset is a child that died with requests unread. */
		if (n == 0 || (n == -1 && errno == ECONNRESET)) {
			if (!at_exit && in->state != I_STOPPING)
				sock_eof(in);
			return;
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			stop_inst(in, SIGKILL, "read: %s: stopped",
			    LOG_ERRSTR(errno));
			return;
		}
		in->in_len += (size_t)n;
		in->last_read_ms = mono_ms();
		pos = 0;
		for (;;) {
			st = proto_decode_resp(in->in + pos, in->in_len - pos,
			    in->e->p->max_frame, &rs, &used);
			if (st == PROTO_AGAIN)
				break;
			if (st != PROTO_OK) {
				stop_inst(in, SIGKILL,
				    "wrote a malformed frame (%s): stopped",
				    proto_status_str(st));
				return;
			}
			pos += used;
			answered(in, &rs);
			if (in->fd == -1)
				return; /* stopped */
		}
		if (pos > 0) {
			memmove(in->in, in->in + pos, in->in_len - pos);
			in->in_len -= pos;
		}
		/* A short read emptied the socket: no read for EAGAIN. */
		if ((size_t)n < room && !at_exit)
			break;
	}
}

static void
read_err(struct pinst *in)
{
	char buf[4096];
	ssize_t n;
	size_t i;

	while ((n = read(in->errfd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++) {
			if (buf[i] == '\n' || in->elen == ERRLINE_MAX - 1) {
				in->eline[in->elen] = '\0';
				log_info("%s[%d]: %s", in->e->c.name,
				    (int)in->pid, in->eline);
				in->elen = 0;
				if (buf[i] == '\n')
					continue;
			}
			in->eline[in->elen++] = buf[i];
		}
	}
	if (n == 0) { /* closed: the rest, then stop watching it */
		if (in->elen > 0) {
			in->eline[in->elen] = '\0';
			log_info("%s[%d]: %s", in->e->c.name, (int)in->pid,
			    in->eline);
			in->elen = 0;
		}
		(void)epoll_ctl(in->e->p->epfd, EPOLL_CTL_DEL, in->errfd, NULL);
		close(in->errfd);
		in->errfd = -1;
	}
}

static void
flush(struct pinst *in)
{
	ssize_t n;

	while (in->fd != -1 && in->out_off < in->out_len) {
		n = write(
		    in->fd, in->out + in->out_off, in->out_len - in->out_off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET)) {
			/* It is gone: its pidfd will say how. */
			in->out_off = in->out_len = 0;
			if (in->state != I_STOPPING)
				sock_eof(in);
			break;
		}
		if (n == -1) {
			stop_inst(in, SIGKILL, "write: %s: stopped",
			    LOG_ERRSTR(errno));
			return;
		}
		in->out_off += (size_t)n;
	}
	want_out(in, in->fd != -1 && in->out_off < in->out_len);
}

/* --- scheduling --- */

/*
 * The UP instance with the fewest in flight; among equals the next after
 * the last one picked, so that a child fast enough to answer each request
 * before the next arrives does not get them all (the others stay warm,
 * and a crash takes fewer requests with it).
 */
static struct pinst *
least_busy(struct pent *e)
{
	enum { N = 2 * CFG_PROC_INSTANCES_MAX };
	struct pinst *best = NULL, *in;
	unsigned i, k, bk = 0;

	for (i = 1; i <= N; i++) {
		k = (e->rr + i) % N;
		in = &e->ins[k];
		if (in->state != I_UP || in->inflight >= in->nslots)
			continue;
		if (best == NULL || in->inflight < best->inflight) {
			best = in;
			bk = k;
		}
	}
	if (best != NULL)
		e->rr = bk;
	return best;
}

static void
send_req(struct pinst *in, struct sd_req *r)
{
	struct pent *e = in->e;
	struct slot *s;
	unsigned k;

	for (k = 0; in->slots[k].r != NULL; k++)
		;
	s = &in->slots[k];
	in->seq = (in->seq + 1) & ((1u << (32 - SLOT_BITS)) - 1);
	if (in->seq == 0)
		in->seq = 1;
	s->id = in->seq << SLOT_BITS | k;
	s->r = r;
	s->sent_ms = mono_ms();
	s->late = 0;
	if (in->inflight == 0)
		in->last_read_ms = s->sent_ms; /* silence counts from now */
	in->inflight++;
	FIG_ADD(e->inflight, 1);
	if (send_frame(in, (uint8_t)(r->opcode - e->c.opcode), s->id,
		r->payload, r->payload_len) != 0)
		fatalx("out of memory");
}

static void
schedule(struct pent *e)
{
	struct pinst *in;
	struct sd_req *r;
	unsigned i;

	while (e->qhead != NULL && (in = least_busy(e)) != NULL) {
		r = e->qhead;
		e->qhead = (struct sd_req *)(void *)r->m.next;
		if (e->qhead == NULL)
			e->qtail = NULL;
		e->qlen--;
		if (__atomic_load_n(&r->cancelled, __ATOMIC_ACQUIRE)) {
			/* TIMEOUT was sent already: do not run it late. */
			answer(e->p, r, PROTO_TIMEOUT, "timed out in queue");
			continue;
		}
		send_req(in, r);
	}
	for (i = 0; i < 2 * CFG_PROC_INSTANCES_MAX; i++)
		if (e->ins[i].fd != -1 && e->ins[i].state >= I_HELLO &&
		    e->ins[i].out_off < e->ins[i].out_len)
			flush(&e->ins[i]);
}

static void
take_inbox(struct procs *p)
{
	struct inbox_msg *m, *next;
	struct sd_req *r;
	struct pent *e;
	char msg[200];

	for (m = inbox_take(&p->in); m != NULL; m = next) {
		next = m->next;
		r = (struct sd_req *)(void *)m;
		e = p->byop[r->opcode];
		if (e->up == 0 || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE) ||
		    e->qlen >= PENDING_MAX * e->c.instances) {
			snprintf(msg, sizeof(msg),
			    e->qlen > 0 ? "handler process %s: %u requests "
					  "waiting already; retry later"
					: "no instance of handler process %s "
					  "is running; retry later",
			    e->c.name, e->qlen);
			answer(p, r, PROTO_OVERLOADED, msg);
			FIG_ADD(e->errors, 1);
			continue;
		}
		r->m.next = NULL;
		if (e->qtail != NULL)
			e->qtail->m.next = &r->m;
		else
			e->qhead = r;
		e->qtail = r;
		e->qlen++;
	}
}

/*
 * Bring an entry toward its configuration: start an instance when fewer
 * than `instances` of the current generation live (one starting at a
 * time), retire an old-generation one when a new one is up, restart the
 * ones whose back-off is over, and terminate retiring ones that are idle.
 */
static void
reconcile(struct pent *e, uint64_t now, uint64_t *next)
{
	struct pinst *in, *free_in = NULL, *old = NULL;
	unsigned i, cur = 0, cur_up = 0, starting = 0, live_old = 0;

	for (i = 0; i < 2 * CFG_PROC_INSTANCES_MAX; i++) {
		in = &e->ins[i];
		if (in->state == I_STOPPING && in->kill_at != 0) {
			if (now >= in->kill_at) {
				in->kill_at = 0;
				snprintf(in->why, sizeof(in->why),
				    "closed its standard input and output "
				    "and did not exit: killed");
				kill(in->pid, SIGKILL);
			} else if (in->kill_at < *next) {
				*next = in->kill_at;
			}
		}
		if (in->state == I_FREE) {
			if (free_in == NULL)
				free_in = in;
			continue;
		}
		if (in->gen != e->gen) {
			if (in->state == I_DOWN)
				in->state = I_FREE; /* not restarted */
			else if (in->state == I_UP || in->state == I_HELLO) {
				live_old++;
				old = in;
			}
			continue;
		}
		/* A stopping one is restarted in place once reaped. */
		cur++;
		cur_up += in->state == I_UP;
		starting += in->state == I_HELLO;
		if (in->state == I_DOWN) {
			if (now >= in->restart_at &&
			    !__atomic_load_n(&e->p->stop, __ATOMIC_ACQUIRE))
				start_inst(e, in);
			else if (in->restart_at < *next)
				*next = in->restart_at;
		}
	}
	if (__atomic_load_n(&e->p->stop, __ATOMIC_ACQUIRE))
		return;
	if (cur < e->c.instances && starting == 0 && free_in != NULL) {
		free_in->backoff_ms = 0;
		start_inst(e, free_in);
	}
	/* One old instance leaves per new one up, never below instances. */
	if (old != NULL && cur_up > 0 && cur_up + live_old > e->c.instances) {
		old->state = I_RETIRING;
		set_up(e);
	}
	for (i = 0; i < 2 * CFG_PROC_INSTANCES_MAX; i++) {
		in = &e->ins[i];
		if (in->state == I_RETIRING && in->inflight == 0 &&
		    !in->termed) {
			in->termed = 1;
			kill(in->pid, SIGTERM);
		}
	}
}

/* Requests a child sits on: TIMEOUT is dispatch's; 2x that kills it. */
static void
expire(struct pent *e, uint64_t now, uint64_t *next)
{
	uint64_t lim = e->p->handler_ms, d;
	struct pinst *in;
	unsigned i, k;

	if (lim == 0)
		return;
	for (i = 0; i < 2 * CFG_PROC_INSTANCES_MAX; i++) {
		in = &e->ins[i];
		if (in->inflight == 0 || in->fd == -1)
			continue;
		for (k = 0; k < in->nslots; k++) {
			struct slot *s = &in->slots[k];

			if (s->r == NULL)
				continue;
			if (!s->late && now >= s->sent_ms + lim) {
				s->late = 1;
				FIG_ADD(e->timeouts, 1);
			}
			d = (s->late ? s->sent_ms + 2 * lim : s->sent_ms + lim);
			if (s->late && now >= d &&
			    now >= in->last_read_ms + 2 * lim) {
				stop_inst(in, SIGKILL,
				    "did not answer request %u within twice "
				    "timeouts.handler (%.3g s): killed",
				    s->id, (double)(2 * lim) / 1000.0);
				break;
			}
			if (d < *next)
				*next = d;
		}
	}
}

/* --- reload and shutdown, on the thread --- */

static struct pent *
find_entry(struct procs *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->ents[i].c.name, name) == 0)
			return &p->ents[i];
	return NULL;
}

/* A new configuration from procs_reload(): a new generation each. */
static void
take_reload(struct procs *p)
{
	struct cfg *c;
	struct pent *e;
	size_t i;

	pthread_mutex_lock(&p->mu);
	c = p->reload;
	p->reload = NULL;
	pthread_mutex_unlock(&p->mu);
	if (c == NULL)
		return;
	p->handler_ms = c->handler_ms;
	p->max_frame = c->max_frame_size;
	for (i = 0; i < c->nprocs; i++) {
		if ((e = find_entry(p, c->procs[i].name)) == NULL) {
			log_warnx("reload: processes.%s is new; adding a "
				  "process needs a restart",
			    c->procs[i].name);
			continue;
		}
		if (c->procs[i].opcode != e->c.opcode) {
			log_warnx("reload: processes.%s.opcode changed; that "
				  "needs a restart, so it stays 0x%02x",
			    e->c.name, e->c.opcode);
			c->procs[i].opcode = e->c.opcode;
		}
		cfg_proc_clear(&e->c);
		if (cfg_proc_copy(&e->c, &c->procs[i]) != 0)
			fatalx("out of memory");
		e->gen++;
		log_info("reload: processes.%s: restarting its %u instance%s "
			 "one at a time",
		    e->c.name, e->c.instances, e->c.instances == 1 ? "" : "s");
	}
	for (i = 0; i < p->n; i++) {
		size_t j;

		for (j = 0; j < c->nprocs; j++)
			if (strcmp(c->procs[j].name, p->ents[i].c.name) == 0)
				break;
		if (j == c->nprocs)
			log_warnx("reload: processes.%s was removed; that "
				  "needs a restart, so it keeps running",
			    p->ents[i].c.name);
	}
	cfg_free(c);
	free(c);
}

/*
 * Shutdown: what waits in the queues is refused, a child with nothing in
 * flight gets SIGTERM, and every child SIGKILL at the deadline.
 */
static void
stopping(struct procs *p, uint64_t now, uint64_t *next)
{
	struct pinst *in;
	struct pent *e;
	struct sd_req *r;
	size_t i;
	unsigned k;

	for (i = 0; i < p->n; i++) {
		e = &p->ents[i];
		while ((r = e->qhead) != NULL) {
			e->qhead = (struct sd_req *)(void *)r->m.next;
			e->qlen--;
			answer(p, r, PROTO_OVERLOADED, "server shutting down");
		}
		e->qtail = NULL;
		for (k = 0; k < 2 * CFG_PROC_INSTANCES_MAX; k++) {
			in = &e->ins[k];
			if (in->state == I_FREE || in->state == I_DOWN)
				continue;
			if (now >= p->stop_deadline) {
				if (in->termed < 2) {
					in->termed = 2;
					kill(in->pid, SIGKILL);
				}
			} else if (!in->termed && in->inflight == 0) {
				in->termed = 1;
				kill(in->pid, SIGTERM);
			}
		}
	}
	if (p->stop_deadline > now && p->stop_deadline < *next)
		*next = p->stop_deadline;
}

/* --- the thread --- */

/* Its last words and answers first, then what its exit means. */
static void
exited(struct pinst *in, int status)
{
	if (in->errfd != -1)
		read_err(in);
	if (in->fd != -1)
		read_sock(in, 1);
	reaped(in, status);
}

/*
 * Without pidfds (valgrind, old kernels, some seccomp filters), ask
 * waitpid() about each child every POLL_MS.
 */
static void
poll_exits(struct procs *p, uint64_t now, uint64_t *next)
{
	struct pinst *in;
	size_t i;
	unsigned k;
	int status, any = 0;

	for (i = 0; i < p->n; i++)
		for (k = 0; k < 2 * CFG_PROC_INSTANCES_MAX; k++) {
			in = &p->ents[i].ins[k];
			if (in->state == I_FREE || in->state == I_DOWN ||
			    in->pidfd != -1)
				continue;
			if (waitpid(in->pid, &status, WNOHANG) == in->pid)
				exited(in, status);
			else
				any = 1;
		}
	if (any && now + POLL_MS < *next)
		*next = now + POLL_MS;
}

static void
on_event(struct procs *p, struct tag *t, uint32_t ev)
{
	uint64_t v;
	int status;

	switch (t->type) {
	case T_INBOX:
		(void)!read(p->in.efd, &v, sizeof(v));
		take_inbox(p);
		break;
	case T_WAKE:
		(void)!read(p->wakefd, &v, sizeof(v));
		take_reload(p);
		break;
	case T_SOCK:
		if (t->in->fd == -1)
			break;
		if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
			read_sock(t->in, 0);
		if (t->in->fd != -1 && (ev & EPOLLOUT))
			flush(t->in);
		break;
	case T_ERR:
		if (t->in->errfd != -1)
			read_err(t->in);
		break;
	case T_PID:
		while (waitpid(t->in->pid, &status, 0) == -1 && errno == EINTR)
			;
		exited(t->in, status);
		break;
	default:
		break;
	}
}

static int
all_gone(struct procs *p)
{
	size_t i;
	unsigned k;

	for (i = 0; i < p->n; i++)
		for (k = 0; k < 2 * CFG_PROC_INSTANCES_MAX; k++)
			if (p->ents[i].ins[k].state != I_FREE &&
			    p->ents[i].ins[k].state != I_DOWN)
				return 0;
	return 1;
}

static void *
procs_main(void *arg)
{
	struct procs *p = arg;
	struct epoll_event evs[64];
	uint64_t now, next;
	int i, n, tmo, stop;
	size_t k;

	for (;;) {
		now = mono_ms();
		next = now + 1000;
		pthread_mutex_lock(&p->mu);
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop && all_gone(p))
			break;
		poll_exits(p, now, &next);
		if (stop)
			stopping(p, now, &next);
		for (k = 0; k < p->n; k++) {
			reconcile(&p->ents[k], now, &next);
			expire(&p->ents[k], now, &next);
			schedule(&p->ents[k]);
		}
		tmo = next > now ? (int)(next - now) : 0;
		n = epoll_wait(p->epfd, evs, 64, tmo);
		for (i = 0; i < n; i++)
			on_event(p, evs[i].data.ptr, evs[i].events);
	}
	return NULL;
}

/* --- the main thread's side --- */

static void
entry_init(struct procs *p, struct pent *e, const struct cfg_proc *pc)
{
	unsigned i;

	if (cfg_proc_copy(&e->c, pc) != 0)
		fatalx("out of memory");
	snprintf(e->name, sizeof(e->name), "%s", pc->name);
	e->p = p;
	e->gen = 1;
	for (i = 0; i < 2 * CFG_PROC_INSTANCES_MAX; i++) {
		e->ins[i].e = e;
		e->ins[i].k = i;
		e->ins[i].fd = e->ins[i].errfd = e->ins[i].pidfd = -1;
	}
}

static int
register_ops(struct procs *p, struct modreg *r, char *err, size_t len)
{
	struct pent *e;
	struct op *o;
	size_t i;
	unsigned k, opc;

	for (i = 0; i < p->n; i++) {
		e = &p->ents[i];
		for (k = 0; k < e->nh; k++) {
			opc = e->c.opcode + e->hoff[k];
			o = &r->ops[opc];
			if (o->kind != OP_NONE) {
				snprintf(err, len,
				    "%s:%d: processes.%s: handler %s (offset "
				    "0x%02x) would be served on 0x%02x, which "
				    "%s already uses",
				    e->c.file, e->c.line, e->c.name,
				    e->hname[k], e->hoff[k], opc, o->name);
				return -1;
			}
			o->kind = OP_ASYNC;
			o->fn = procs_handler;
			o->mod = NULL;
			snprintf(o->name, sizeof(o->name), "%s.%s", e->c.name,
			    e->hname[k]);
			p->byop[opc] = e;
		}
	}
	return 0;
}

int
procs_check(const struct cfg *c, char *err, size_t len)
{
	const struct cfg_proc *pc;
	struct passwd pw, *pwp;
	char buf[4096];
	size_t i;

	for (i = 0; i < c->nprocs; i++) {
		pc = &c->procs[i];
		if (access(pc->argv[0], X_OK) != 0) {
			snprintf(err, len,
			    "%s:%d: processes.%s.command: %s: %s", pc->file,
			    pc->line, pc->name, pc->argv[0],
			    errno == EACCES ? "not executable"
					    : LOG_ERRSTR(errno));
			return -1;
		}
		pwp = NULL;
		if (pc->user != NULL &&
		    (getpwnam_r(pc->user, &pw, buf, sizeof(buf), &pwp) != 0 ||
			pwp == NULL)) {
			snprintf(err, len,
			    "%s:%d: processes.%s.user: no such user \"%s\"",
			    pc->file, pc->line, pc->name, pc->user);
			return -1;
		}
	}
	return 0;
}

int
procs_open(struct server *srv, const struct cfg *c, struct procs **out,
    char *err, size_t len)
{
	struct procs *p;
	struct timespec dl;
	size_t i;
	int rc = 0, waiting;

	*out = NULL;
	if (c->nprocs == 0)
		return 0;
	if (procs_check(c, err, len) != 0)
		return -1;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->ents = calloc(c->nprocs, sizeof(*p->ents))) == NULL)
		fatalx("out of memory");
	p->srv = srv;
	p->api = dispatch_api(srv);
	p->n = c->nprocs;
	p->handler_ms = c->handler_ms;
	p->max_frame = c->max_frame_size;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (inbox_init(&p->in) != 0 ||
	    (p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
	    (p->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		fatal("procs: cannot set up");
	p->tin = (struct tag){T_INBOX, NULL};
	p->twake = (struct tag){T_WAKE, NULL};
	ep_add(p, p->in.efd, &p->tin, EPOLLIN);
	ep_add(p, p->wakefd, &p->twake, EPOLLIN);
	for (i = 0; i < p->n; i++)
		entry_init(p, &p->ents[i], &c->procs[i]);
	g_procs = p;
	*out = p;
	if (pthread_create(&p->th, NULL, procs_main, p) != 0)
		fatal("cannot start the procs thread");
	p->started = 1;

	/* Wait until each entry has its handler list, or time is up. */
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += PROCS_HELLO_MS / 1000;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		waiting = 0;
		for (i = 0; i < p->n; i++)
			waiting |= !__atomic_load_n(
				       &p->ents[i].known, __ATOMIC_ACQUIRE) &&
			    !p->ents[i].failed;
		if (!waiting || rc == ETIMEDOUT)
			break;
		rc = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
	}
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->n; i++) {
		struct pent *e = &p->ents[i];

		if (__atomic_load_n(&e->known, __ATOMIC_ACQUIRE))
			continue;
		pthread_mutex_lock(&p->mu);
		if (e->failed)
			snprintf(err, len,
			    "%s:%d: processes.%s: the first instance did not "
			    "answer OPCODES: %s",
			    e->c.file, e->c.line, e->c.name, e->lasterr);
		else
			snprintf(err, len,
			    "%s:%d: processes.%s: no instance answered "
			    "OPCODES within %d s",
			    e->c.file, e->c.line, e->c.name,
			    PROCS_HELLO_MS / 1000);
		pthread_mutex_unlock(&p->mu);
		return -1;
	}
	/* The thread wrote the lists before setting known (release). */
	return register_ops(p, srv->mods, err, len);
}

void
procs_reload(struct procs *p, const struct cfg *c)
{
	struct cfg *copy;
	uint64_t one = 1;

	if (p == NULL) {
		if (c->nprocs > 0)
			log_warnx("reload: processes were added; that needs a "
				  "restart");
		return;
	}
	if ((copy = calloc(1, sizeof(*copy))) == NULL ||
	    cfg_copy(copy, c) != 0) {
		free(copy);
		log_errx("reload: processes: out of memory; they keep their "
			 "settings");
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (p->reload != NULL) {
		cfg_free(p->reload);
		free(p->reload);
	}
	p->reload = copy;
	pthread_mutex_unlock(&p->mu);
	(void)!write(p->wakefd, &one, sizeof(one));
}

void
procs_stop(struct procs *p, unsigned shutdown_ms)
{
	uint64_t one = 1;

	if (p == NULL || !p->started)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop_deadline = mono_ms() + (shutdown_ms ? shutdown_ms : 5000);
	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&p->mu);
	(void)!write(p->wakefd, &one, sizeof(one));
	pthread_join(p->th, NULL);
	p->started = 0;
}

static void
free_held(struct inbox_msg *m)
{
	/* Requests still in the inbox: answered (dropped, workers gone). */
	(void)g_procs->api->reply((struct sd_req *)(void *)m, PROTO_INTERNAL,
	    "server shutting down", 20);
}

void
procs_free(struct procs *p)
{
	size_t i;
	unsigned k;

	if (p == NULL)
		return;
	procs_stop(p, 0);
	inbox_fini(&p->in, free_held);
	for (i = 0; i < p->n; i++) {
		for (k = 0; k < 2 * CFG_PROC_INSTANCES_MAX; k++) {
			struct pinst *in = &p->ents[i].ins[k];

			free(in->slots);
			free(in->out);
			free(in->in);
		}
		cfg_proc_clear(&p->ents[i].c);
	}
	if (p->reload != NULL) {
		cfg_free(p->reload);
		free(p->reload);
	}
	close(p->wakefd);
	close(p->epfd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->ents);
	free(p);
	g_procs = NULL;
}

void
procs_stats_text(struct procs *p, char *buf, size_t cap, size_t *off)
{
	struct pent *e;
	char key[128];
	size_t i;

	if (p == NULL)
		return;
#define PKV(what, v)                                                           \
	do {                                                                   \
		snprintf(key, sizeof(key), "process_%s_%s", e->name, what);    \
		proto_kv_u64(buf, cap, off, key, v);                           \
	} while (0)
	for (i = 0; i < p->n; i++) {
		e = &p->ents[i];
		PKV("instances_up", FIG_GET(e->up));
		PKV("restarts", FIG_GET(e->restarts));
		PKV("requests", FIG_GET(e->requests));
		PKV("errors", FIG_GET(e->errors));
		PKV("timeouts", FIG_GET(e->timeouts));
		PKV("inflight", FIG_GET(e->inflight));
	}
#undef PKV
}

void
procs_metrics(struct procs *p, struct pt_buf *b)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} fam[] = {
	    {"socketd_process_instances_up", "gauge",
		"Handler process instances serving now, by entry.",
		offsetof(struct pent, up)},
	    {"socketd_process_restarts_total", "counter",
		"Handler process instances that exited and were restarted.",
		offsetof(struct pent, restarts)},
	    {"socketd_process_requests_total", "counter",
		"Requests for a handler process's opcodes.",
		offsetof(struct pent, requests)},
	    {"socketd_process_errors_total", "counter",
		"Of those, answered with an error status (the child's, or "
		"INTERNAL and OVERLOADED from socketd).",
		offsetof(struct pent, errors)},
	    {"socketd_process_timeouts_total", "counter",
		"Requests a child held past timeouts.handler.",
		offsetof(struct pent, timeouts)},
	    {"socketd_process_inflight", "gauge",
		"Requests sent to the children and not answered yet.",
		offsetof(struct pent, inflight)},
	};
	char l[160];
	size_t i, k;

	if (p == NULL)
		return;
	for (k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		pt_family(b, fam[k].name, fam[k].type, fam[k].help);
		for (i = 0; i < p->n; i++) {
			const uint64_t *v = (const uint64_t *)(const void
				*)((const char *)&p->ents[i] + fam[k].off);

			l[0] = '\0';
			(void)pt_label(
			    l, sizeof(l), "process", p->ents[i].name);
			pt_u64(b, fam[k].name, l,
			    __atomic_load_n(v, __ATOMIC_RELAXED));
		}
	}
}
