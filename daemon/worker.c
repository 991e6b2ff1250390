/*
 * The worker event loop.
 *
 * Life of a connection on a worker
 *   take from the pool -> registered for EPOLLIN, on the `all` list
 *   readable: one read(2) into the worker's scratch buffer; the complete
 *     frames in it are answered at once into the scratch output buffer,
 *     which is written with one send(2).  Only what is left over (a partial
 *     frame, output the socket did not take) is copied into buffers the
 *     connection owns, and those are freed as soon as they are empty.
 *   fairness: at most REQ_BUDGET requests are answered per turn; a
 *     connection with more complete frames buffered goes on the ready list
 *     and gets its next turn after the other connections' events.
 *   back-pressure: when OUT_HIGH bytes of output are pending the worker
 *     stops answering and stops reading from that connection (EPOLLIN off)
 *     until the peer reads; the write timeout bounds how long that lasts.
 *   closing after an answer we must not destroy (TOO_LARGE, shutdown):
 *     flush, shutdown(SHUT_WR), then discard input until EOF or LINGER_MS
 *     (Apache's lingering close) so that close(2) sends FIN, not RST.
 *
 * TLS (a connection from a tls:// listener, daemon/tls.h): when the worker
 * takes it, it gets its SSL and starts the handshake at once (the
 * ClientHello has usually arrived).  Until the handshake is over the
 * connection is on the `hs` list, and epoll waits for whatever the
 * handshake waits for; timeouts.handshake closes one that does not finish,
 * so a client that connects and stalls costs a list entry, never a worker.
 * Then it is served like any other, through io_tls, with three rare
 * states that are tested with one flag mask before the plain path's code:
 *   CONN_RD_WANT_OUT  a read said EAGAIN waiting for writability: retry
 *                     the read on EPOLLOUT;
 *   CONN_WR_WANT_IN   a write waits for input: retry it on EPOLLIN;
 *   CONN_IO_MORE      OpenSSL took input off the socket that it has not
 *                     returned yet: epoll will not report it, so the
 *                     connection goes on the ready list to be read again.
 *
 * Timeouts: each timer list is ordered by its timestamp because entries
 * are appended with the current time and moved to the tail when it is
 * refreshed; so checking a list costs only its expired head, and the
 * durations are read from the config in force at check time (a reload
 * that changes a timeout applies to existing connections at once).
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acceptor.h"
#include "log.h"
#include "psub.h"
#include "srclimit.h"
#include "tls.h"
#include "worker.h"

#define RBUF_SIZE  (64 * 1024)  /* one read(2) at most */
#define OBUF_INIT  (64 * 1024)  /* scratch output, grows for big answers */
#define OUT_HIGH   (256 * 1024) /* pending output that pauses a connection */
#define REQ_BUDGET 64           /* requests per connection per turn */
#define LINGER_MS  2000         /* lingering close, as Apache's */
#define MAX_EVENTS 256

#define HEARTBEAT_MS                1000 /* an idle loop still turns this often */
#define GOAWAY_GRACE_NO_SHUTDOWN_MS 30000

#define OFF(field) offsetof(struct conn, field)
#define CLOSED     (-2) /* the connection was closed and freed */

static void conn_close(struct worker *w, struct conn *c);

_Static_assert(REQ_BUDGET <= sizeof(((struct worker *)0)->hops),
    "a batch's opcodes fit in hops[]");

#define IO_WAITS (CONN_HANDSHAKE | CONN_RD_WANT_OUT | CONN_WR_WANT_IN)

/* Whether c reads more input when it is there. */
static int
reading(const struct conn *c)
{
	return !(c->flags &
		   (CONN_EOF | CONN_DRAIN | CONN_THROTTLED | CONN_CLOSE |
		       CONN_HELD)) ||
	    (c->flags & CONN_LINGER);
}

static void
set_events(struct worker *w, struct conn *c)
{
	struct epoll_event ev;
	uint32_t want_in, want_out;
	unsigned io;

	want_in = (uint32_t)reading(c);
	want_out = c->out_len > 0;
	if (c->flags & IO_WAITS) {
		/* TLS: wait for what the transport waits for. */
		if (c->flags & CONN_HANDSHAKE) {
			io = c->io->want(c->io_ctx);
			want_in = (io & IO_WANT_READ) || io == 0;
			want_out = (io & IO_WANT_WRITE) != 0;
		} else {
			/* Input or output readiness alone would spin. */
			if (c->flags & CONN_RD_WANT_OUT) {
				want_in = 0;
				want_out = 1;
			}
			if (c->flags & CONN_WR_WANT_IN) {
				want_in = 1;
				want_out = (c->flags & CONN_RD_WANT_OUT) != 0;
			}
		}
	}
	if (want_in == !(c->flags & CONN_NO_IN) &&
	    want_out == !!(c->flags & CONN_WANT_OUT))
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		log_warn("epoll_ctl on connection %d", c->fd);
		return;
	}
	c->flags &= ~(uint32_t)(CONN_NO_IN | CONN_WANT_OUT);
	if (!want_in)
		c->flags |= CONN_NO_IN;
	if (want_out)
		c->flags |= CONN_WANT_OUT;
}

/*
 * Activity: move c to the tail of the idle-ordered `all` list.  Skipped
 * when c is already stamped with this loop iteration's time: a read and
 * the write that answers it then cost one list move, not two, and the
 * list stays sorted because the time has not moved.
 */
static void
touch(struct worker *w, struct conn *c)
{
	if (c->t_active == w->now && w->all.tail == c)
		return;
	c->t_active = w->now;
	clist_remove(&w->all, c, OFF(l_all));
	clist_push_tail(&w->all, c, OFF(l_all));
}

/* Output goes to the scratch buffer unless the connection already queues. */
static uint8_t *
out_room(struct worker *w, struct conn *c, size_t need)
{
	uint8_t *nb;
	size_t ncap;

	if (c->out_len > 0) {
		if (conn_out_reserve(c, need) != 0)
			return NULL;
		return c->out + c->out_off + c->out_len;
	}
	if (w->obuf_len + need > w->obuf_cap) {
		ncap = w->obuf_cap;
		while (ncap < w->obuf_len + need)
			ncap *= 2;
		if ((nb = realloc(w->obuf, ncap)) == NULL)
			return NULL;
		w->obuf = nb;
		w->obuf_cap = ncap;
	}
	return w->obuf + w->obuf_len;
}

static void
out_commit(struct worker *w, struct conn *c, size_t n)
{
	if (c->out_len > 0)
		c->out_len += (uint32_t)n;
	else
		w->obuf_len += n;
}

static size_t
out_pending(const struct worker *w, const struct conn *c)
{
	return c->out_len > 0 ? c->out_len : w->obuf_len;
}

/* The answer to a frame the decoder refused. */
static size_t
decode_error(struct worker *w, const struct proto_req *req,
    enum proto_status st, size_t frame_len, const uint8_t *frame, uint8_t *out,
    size_t cap)
{
	char msg[128];

	switch (st) {
	case PROTO_TOO_LARGE:
		STAT_ADD(w->st.too_large, 1);
		snprintf(msg, sizeof(msg),
		    "frame of %lu bytes exceeds max_frame_size %lu",
		    (unsigned long)proto_get_u32(frame),
		    (unsigned long)w->sc->c.max_frame_size);
		break;
	case PROTO_UNSUPPORTED_VERSION:
		STAT_ADD(w->st.bad_version, 1);
		snprintf(msg, sizeof(msg), "unsupported protocol version %u",
		    req->version);
		break;
	default:
		STAT_ADD(w->st.bad_request, 1);
		if (frame_len < PROTO_FRAME_MIN)
			snprintf(msg, sizeof(msg),
			    "frame body of %lu bytes is shorter than the "
			    "8-byte header",
			    (unsigned long)(frame_len - PROTO_LEN_SIZE));
		else
			snprintf(msg, sizeof(msg), "flags must be zero");
		break;
	}
	return proto_error(req, st, msg, out, cap);
}

/*
 * Answer the complete frames at data[0..len), at most REQ_BUDGET of them
 * and until OUT_HIGH bytes are pending.  Returns the bytes consumed; sets
 * *more when a complete frame was left for a later turn.
 */
static size_t
serve_frames(struct worker *w, struct conn *c, const uint8_t *data, size_t len,
    int *more)
{
	size_t off = 0, used, need, n;
	unsigned budget = REQ_BUDGET;
	struct proto_req req;
	enum proto_status st, sent;
	const struct op *op;
	uint8_t *p;
	int queued;

	*more = 0;
	while (off < len) {
		st = proto_decode_req(data + off, len - off,
		    w->sc->c.max_frame_size, &req, &used);
		if (st == PROTO_AGAIN)
			break;
		if (budget == 0 || out_pending(w, c) >= OUT_HIGH) {
			*more = 1;
			break;
		}
		if ((c->flags & CONN_HELD) ||
		    dispatch_inflight(c) >= w->sc->c.max_inflight) {
			/* Reading resumes when an answer goes out (or when
			 * pub/sub fan-out drains: psub.c). */
			c->flags |= CONN_HELD;
			*more = 1;
			break;
		}
		budget--;
		if (w->t_batch_ns == 0)
			w->t_batch_ns = met_now_ns();
		op = st == PROTO_OK ? &w->srv->mods->ops[req.opcode] : NULL;
		if (op != NULL && op->kind >= OP_SYNC) {
			if (dispatch_request(w, c, &req, op) != 0)
				goto nomem;
			STAT_ADD(w->st.requests, 1);
			off += used;
			continue;
		}
		need = st == PROTO_OK ? proto_resp_bound(&req)
				      : PROTO_FRAME_MIN + PROTO_TEXT_MAX;
		queued = dispatch_queued(c);
		p = queued ? dispatch_slot(w, c, need) : out_room(w, c, need);
		if (p == NULL)
			goto nomem;
		if (op != NULL && op->kind == OP_PUSH) {
			STAT_ADD(w->st.bad_request, 1);
			n = proto_error(&req, PROTO_BAD_REQUEST,
			    "opcode is server-to-client only (push)", p, need);
			sent = PROTO_BAD_REQUEST;
		} else if (st == PROTO_OK) {
			n = proto_handle(&req, &w->pctx, p, need, &sent);
			if (sent == PROTO_UNKNOWN_OPCODE)
				STAT_ADD(w->st.unknown_opcode, 1);
			else if (sent == PROTO_BAD_REQUEST)
				STAT_ADD(w->st.bad_request, 1);
		} else {
			n = decode_error(
			    w, &req, st, used, data + off, p, need);
		}
		if (queued)
			dispatch_slot_commit(w, c, n);
		else
			out_commit(w, c, n);
		STAT_ADD(w->st.requests, 1);
		if (st == PROTO_OK) {
			met_count(w->met, req.opcode, sent);
			w->hops[w->nh++] = req.opcode;
		} else {
			met_count(w->met, MET_OP_INVALID, st);
		}
		if (st == PROTO_TOO_LARGE) {
			/* The stream cannot be resynchronised: answer, close.
			 */
			c->flags |= CONN_CLOSE;
			return len;
		}
		off += used;
	}
	return off;
nomem:
	log_warnx(
	    "connection %d: out of memory for an answer; closing it", c->fd);
	c->flags |= CONN_CLOSE;
	return len;
}

/* serve_frames, and the durations of the batch's built-in requests. */
static size_t
serve(struct worker *w, struct conn *c, const uint8_t *data, size_t len,
    int *more)
{
	size_t used;

	w->t_batch_ns = 0;
	w->nh = 0;
	used = serve_frames(w, c, data, len, more);
	if (w->nh > 0)
		met_batch(w->met, w->hops, w->nh, w->t_batch_ns);
	return used;
}

/* Write pending output.  Returns -1 if the connection died. */
static int
flush(struct worker *w, struct conn *c)
{
	const uint8_t *p;
	size_t len;
	ssize_t n;

	if (w->obuf_len > 0) {
		p = w->obuf;
		len = w->obuf_len;
	} else if (c->out_len > 0) {
		p = c->out + c->out_off;
		len = c->out_len;
	} else {
		return 0;
	}
	n = c->io->write(c->fd, c->io_ctx, p, len);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR) {
			w->obuf_len = 0;
			STAT_ADD(w->st.resets, 1);
			log_debug("connection %d: send: %s", c->fd,
			    LOG_ERRSTR(errno));
			return -1;
		}
		/* TLS: the write may be waiting for input. */
		if (c->io->want != NULL) {
			c->flags &= ~(uint32_t)CONN_WR_WANT_IN;
			if (errno == EAGAIN &&
			    c->io->want(c->io_ctx) == IO_WANT_READ)
				c->flags |= CONN_WR_WANT_IN;
		}
		n = 0;
	}
	STAT_ADD(w->st.bytes_sent, (uint64_t)n);
	if (n > 0) {
		c->flags &= ~(uint32_t)CONN_WR_WANT_IN;
		touch(w, c);
		/* A subscriber's write timer is a stall timer: restart it. */
		if (psub_wrote(c) && (c->flags & CONN_IN_WR) &&
		    c->t_write != w->now) {
			c->t_write = w->now;
			clist_remove(&w->wr, c, OFF(l_wr));
			clist_push_tail(&w->wr, c, OFF(l_wr));
		}
	}
	if (w->obuf_len > 0) {
		if ((size_t)n < len) {
			/* Keep what the socket did not take, in order. */
			if (conn_out_keep(c, p, len, (size_t)n) != 0) {
				w->obuf_len = 0;
				log_warnx("connection %d: out of memory for "
					  "pending output; closing it",
				    c->fd);
				return -1;
			}
		}
		w->obuf_len = 0;
	} else {
		conn_out_consume(c, (size_t)n);
		if (n > 0 && c->out_len < PSUB_REFQ_LOW)
			psub_refill(w, c);
	}
	return 0;
}

static int
begin_linger(struct worker *w, struct conn *c)
{
	/*
	 * Reachable twice in one loop iteration (a read event, then the
	 * ready list): the second call must not link c into `lg` again.
	 */
	if (c->flags & CONN_LINGER)
		return 0;
	if (c->flags & CONN_READY) {
		clist_remove(&w->ready, c, OFF(l_rdy));
		c->flags &= ~(uint32_t)(CONN_READY | CONN_IO_MORE);
	}
	c->flags |= CONN_LINGER;
	if (c->flags & CONN_IN_RD) {
		clist_remove(&w->rd, c, OFF(l_rd));
		c->flags &= ~(uint32_t)CONN_IN_RD;
	}
	if (c->in_len > 0)
		conn_in_consume(c, c->in_len);
	if (c->io->shutdown_wr(c->fd, c->io_ctx) == -1 ||
	    (c->flags & CONN_EOF)) {
		/* Nothing more can arrive (or be sent): close at once. */
		conn_close(w, c);
		return CLOSED;
	}
	c->t_linger = w->now;
	clist_push_tail(&w->lg, c, OFF(l_lg));
	c->flags |= CONN_IN_LG;
	set_events(w, c);
	return 0;
}

/*
 * After input was served: flush, then settle the connection's state:
 * timers, ready list, back-pressure and whether it is finished.
 */
static int
settle(struct worker *w, struct conn *c, int more, int consumed_any)
{
	if (flush(w, c) != 0) {
		conn_close(w, c);
		return CLOSED;
	}
	/* Write timer: from the moment output became pending. */
	if (c->out_len > 0 && !(c->flags & CONN_IN_WR)) {
		c->t_write = w->now;
		clist_push_tail(&w->wr, c, OFF(l_wr));
		c->flags |= CONN_IN_WR;
	} else if (c->out_len == 0 && (c->flags & CONN_IN_WR)) {
		clist_remove(&w->wr, c, OFF(l_wr));
		c->flags &= ~(uint32_t)CONN_IN_WR;
	}
	if (c->ext != NULL)
		STAT_SET(c->ext->out_pending, c->out_len);
	/* Back-pressure: stop reading while the peer does not read. */
	if (c->out_len >= OUT_HIGH) {
		if (!(c->flags & CONN_THROTTLED))
			STAT_ADD(w->st.output_throttled, 1);
		c->flags |= CONN_THROTTLED;
	} else {
		c->flags &= ~(uint32_t)CONN_THROTTLED;
	}
	/* Read timer: from the first byte of a pending partial frame. */
	if (c->in_len > 0 && !more && !(c->flags & (CONN_EOF | CONN_DRAIN))) {
		if ((c->flags & CONN_IN_RD) && consumed_any) {
			clist_remove(&w->rd, c, OFF(l_rd));
			c->flags &= ~(uint32_t)CONN_IN_RD;
		}
		if (!(c->flags & CONN_IN_RD)) {
			c->t_read = w->now;
			clist_push_tail(&w->rd, c, OFF(l_rd));
			c->flags |= CONN_IN_RD;
		}
	} else if (c->flags & CONN_IN_RD) {
		clist_remove(&w->rd, c, OFF(l_rd));
		c->flags &= ~(uint32_t)CONN_IN_RD;
	}
	/* More complete frames and room to answer them: another turn. */
	if (more && c->out_len < OUT_HIGH &&
	    !(c->flags & (CONN_READY | CONN_HELD))) {
		clist_push_tail(&w->ready, c, OFF(l_rdy));
		c->flags |= CONN_READY;
	}
	if (c->out_len == 0 && !more && !dispatch_busy(c)) {
		if (c->flags & (CONN_CLOSE | CONN_DRAIN))
			return begin_linger(w, c);
		if (c->flags & CONN_EOF) {
			/* Half-closed and everything answered. */
			conn_close(w, c);
			return CLOSED;
		}
	}
	/* TLS: input already off the socket, which epoll cannot report. */
	if (c->io->pending != NULL && !(c->flags & CONN_READY) && reading(c) &&
	    c->io->pending(c->io_ctx)) {
		clist_push_tail(&w->ready, c, OFF(l_rdy));
		c->flags |= CONN_READY | CONN_IO_MORE;
	}
	set_events(w, c);
	return 0;
}

/* Serve what the connection has buffered; 0 or CLOSED. */
static int
serve_buffered(struct worker *w, struct conn *c)
{
	size_t used = 0;
	int more = 0;

	if (c->in_len > 0 && !(c->flags & (CONN_CLOSE | CONN_LINGER))) {
		used = serve(w, c, c->in + c->in_off, c->in_len, &more);
		conn_in_consume(c, used);
	}
	if ((c->flags & (CONN_EOF | CONN_DRAIN)) && !more && c->in_len > 0)
		conn_in_consume(c, c->in_len); /* a partial frame: no answer */
	return settle(w, c, more, used > 0);
}

/* Read once and serve; the read(2) result, or CLOSED. */
static ssize_t
read_and_serve(struct worker *w, struct conn *c)
{
	size_t used;
	ssize_t n;
	int more = 0;

	c->flags &= ~(uint32_t)CONN_RD_WANT_OUT; /* this read retries it */
	n = c->io->read(c->fd, c->io_ctx, w->rbuf, RBUF_SIZE);
	if (n > 0) {
		STAT_ADD(w->st.bytes_received, (uint64_t)n);
		touch(w, c);
		if (c->flags & (CONN_LINGER | CONN_CLOSE))
			return n; /* discarded */
		if (c->in_len > 0) {
			if (conn_in_append(c, w->rbuf, (size_t)n) != 0)
				goto nomem;
			return serve_buffered(w, c) == CLOSED ? CLOSED : n;
		}
		used = serve(w, c, w->rbuf, (size_t)n, &more);
		if (used < (size_t)n && !(c->flags & CONN_CLOSE) &&
		    conn_in_append(c, w->rbuf + used, (size_t)n - used) != 0)
			goto nomem;
		return settle(w, c, more, used > 0) == CLOSED ? CLOSED : n;
	}
	if (n == 0) {
		if (c->flags & CONN_LINGER) {
			conn_close(w, c);
			return CLOSED;
		}
		c->flags |= CONN_EOF;
		return serve_buffered(w, c);
	}
	if (errno == EAGAIN || errno == EINTR) {
		/* TLS: the read may be waiting to write. */
		if (c->io->want != NULL) {
			if (errno == EAGAIN &&
			    c->io->want(c->io_ctx) == IO_WANT_WRITE)
				c->flags |= CONN_RD_WANT_OUT;
			set_events(w, c);
		}
		return -1;
	}
	STAT_ADD(w->st.resets, 1);
	log_debug("connection %d: read: %s", c->fd, LOG_ERRSTR(errno));
	w->obuf_len = 0;
	conn_close(w, c);
	return CLOSED;
nomem:
	log_warnx("connection %d: out of memory for buffered input; closing it",
	    c->fd);
	w->obuf_len = 0;
	conn_close(w, c);
	return CLOSED;
}

static void
conn_close(struct worker *w, struct conn *c)
{
	dispatch_conn_close(w, c);
	clist_remove(&w->all, c, OFF(l_all));
	if (c->flags & CONN_IN_RD)
		clist_remove(&w->rd, c, OFF(l_rd));
	if (c->flags & CONN_IN_WR)
		clist_remove(&w->wr, c, OFF(l_wr));
	if (c->flags & CONN_IN_LG)
		clist_remove(&w->lg, c, OFF(l_lg));
	if (c->flags & CONN_IN_HS)
		clist_remove(&w->hs, c, OFF(l_rd));
	if (c->flags & CONN_READY)
		clist_remove(&w->ready, c, OFF(l_rdy));
	if (c->src_counted)
		srclimit_release(w->srv->src, c->src);
	/*
	 * close(2) takes the socket out of the epoll set only when no other
	 * descriptor refers to it.  A handler process being started holds a
	 * copy of every descriptor between fork() and execve(): a socket
	 * closed then would stay in the set and report events for freed
	 * memory.  So with handler processes, take it out first.
	 */
	if (w->srv->procs != NULL)
		(void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	conn_free(c);
	STAT_ADD(w->st.connections_now, (uint64_t)-1);
	__atomic_fetch_sub(&w->srv->conns_current, 1, __ATOMIC_RELAXED);
	acceptor_conn_closed(w->srv->acc);
}

/* Advance a TLS handshake; 0 or CLOSED. */
static int
handshake(struct worker *w, struct conn *c)
{
	char why[160], peer[64];
	uint64_t suppressed = 0;
	int r;

	r = c->io->handshake(c->fd, c->io_ctx);
	if (r == 0) {
		set_events(w, c);
		return 0;
	}
	if (r < 0) {
		STAT_ADD(w->st.tls_handshake_failures, 1);
		c->io->error(c->io_ctx, why, sizeof(why));
		if (log_ratelimit(&w->rl_tls, w->now, 10000, &suppressed))
			log_info("TLS handshake with %s failed: %s%s",
			    conn_peer_str(c, peer, sizeof(peer)), why,
			    suppressed > 0 ? " (and more since the last "
					     "message)"
					   : "");
		else
			log_debug("connection %d: TLS handshake failed: %s",
			    c->fd, why);
		/*
		 * OpenSSL may have written an alert, and the client may have
		 * sent more: a plain close would reset the connection and
		 * the alert with it.  Go on as plain TCP and linger.
		 */
		tls_conn_free(c->io_ctx);
		c->io_ctx = NULL;
		c->io = &io_plain;
		c->flags &= ~(uint32_t)(CONN_TLS | CONN_HANDSHAKE | CONN_IN_HS);
		clist_remove(&w->hs, c, OFF(l_rd));
		return begin_linger(w, c);
	}
	STAT_ADD(w->st.tls_handshakes, 1);
	c->flags &= ~(uint32_t)(CONN_HANDSHAKE | CONN_IN_HS);
	clist_remove(&w->hs, c, OFF(l_rd));
	touch(w, c);
	/* The first request may have come right behind the handshake. */
	if (read_and_serve(w, c) == CLOSED)
		return CLOSED;
	set_events(w, c);
	return 0;
}

/* A TLS handshake, or a read or write waiting for the other direction. */
static void
on_io_wait(struct worker *w, struct conn *c, uint32_t events)
{
	const uint32_t any_in = EPOLLIN | EPOLLHUP | EPOLLERR;
	const uint32_t any_out = EPOLLOUT | EPOLLHUP | EPOLLERR;

	if (c->flags & CONN_HANDSHAKE) {
		(void)handshake(w, c);
		return;
	}
	if ((c->flags & CONN_WR_WANT_IN) && (events & any_in)) {
		/* flush sets it again if the write still waits. */
		c->flags &= ~(uint32_t)CONN_WR_WANT_IN;
		if (flush(w, c) != 0) {
			conn_close(w, c);
			return;
		}
		if (serve_buffered(w, c) == CLOSED)
			return;
	}
	if ((c->flags & CONN_RD_WANT_OUT) && (events & any_out))
		(void)read_and_serve(w, c);
}

static void
on_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->flags & IO_WAITS) {
		on_io_wait(w, c, events);
		return;
	}
	if ((events & EPOLLOUT) && c->out_len > 0) {
		if (flush(w, c) != 0) {
			conn_close(w, c);
			return;
		}
		/* Room again: answer what waited for it. */
		(void)serve_buffered(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->flags & CONN_NO_IN && !(events & (EPOLLHUP | EPOLLERR)))
			return;
		(void)read_and_serve(w, c);
	}
}

/* Start draining one connection: read what has arrived, answer, close. */
static void
drain_conn(struct worker *w, struct conn *c)
{
	ssize_t n;
	int i;

	if (c->flags & (CONN_DRAIN | CONN_LINGER | CONN_CLOSE))
		return;
	if (c->flags & CONN_HANDSHAKE) {
		/* No request can have arrived yet. */
		conn_close(w, c);
		return;
	}
	/* Whatever the kernel already holds counts as received. */
	for (i = 0; i < 64; i++) {
		n = read_and_serve(w, c);
		if (n == CLOSED)
			return;
		/*
		 * Bounded: a peer that does not read gets no more reads.  A
		 * TLS read returns one record: go on while it returns any.
		 */
		if (n <= 0 || (n != RBUF_SIZE && !(c->flags & CONN_TLS)) ||
		    (c->flags & (CONN_EOF | CONN_CLOSE | CONN_THROTTLED)))
			break;
	}
	c->flags |= CONN_DRAIN;
	(void)serve_buffered(w, c);
}

/*
 * GOAWAY (push opcode 0x06): tell c's client to finish and reconnect
 * elsewhere; c is served as before until the grace period ends.
 */
static void
goaway_conn(struct worker *w, struct conn *c)
{
	static const char why[] = "socketd is stopping";
	uint8_t payload[4 + sizeof(why) - 1], *p;
	size_t need = PROTO_FRAME_MIN + sizeof(payload);

	if (c->flags & (CONN_DRAIN | CONN_LINGER | CONN_CLOSE))
		return;
	if (c->flags & CONN_HANDSHAKE) {
		/* No request can have arrived yet. */
		conn_close(w, c);
		return;
	}
	proto_put_u32(payload, w->goaway_grace_ms);
	memcpy(payload + 4, why, sizeof(why) - 1);
	if ((p = out_room(w, c, need)) == NULL) {
		drain_conn(w, c); /* the old way, then */
		return;
	}
	out_commit(w, c,
	    proto_encode_resp(p, need, PROTO_OP_GOAWAY, PROTO_OK, 0, payload,
		sizeof(payload)));
	STAT_ADD(w->st.goaway_sent, 1);
	(void)settle(w, c, (c->flags & CONN_READY) != 0, 0);
}

/* Every connection: drain_conn, or goaway_conn in the grace period. */
static void
each_conn(struct worker *w, void (*fn)(struct worker *, struct conn *))
{
	struct conn *c, *nx;
	size_t n;

	/* fn may move c to the tail of `all`: walk a fixed count. */
	for (c = w->all.head, n = w->all.len; c != NULL && n > 0; c = nx, n--) {
		nx = c->l_all.next;
		fn(w, c);
	}
}

/* A connection from a tls:// listener: its session, then the handshake. */
static int
start_tls(struct worker *w, struct conn *c)
{
	if (w->sc->tls == NULL ||
	    (c->io_ctx = tls_conn_new(w->sc->tls, c->fd)) == NULL) {
		log_warnx("connection %d: cannot start TLS: %s", c->fd,
		    w->sc->tls == NULL ? "no certificate loaded"
				       : "out of memory");
		conn_close(w, c);
		return CLOSED;
	}
	c->io = &io_tls;
	c->flags |= CONN_HANDSHAKE | CONN_IN_HS;
	c->t_read = w->now;
	clist_push_tail(&w->hs, c, OFF(l_rd));
	return handshake(w, c);
}

static int
adopt(struct worker *w, struct conn *c)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	c->t_active = w->now;
	clist_push_tail(&w->all, c, OFF(l_all));
	STAT_ADD(w->st.connections, 1);
	STAT_ADD(w->st.connections_now, 1);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
		log_warn("epoll_ctl: cannot watch connection %d", c->fd);
		conn_close(w, c);
		return CLOSED;
	}
	if (c->flags & CONN_TLS)
		return start_tls(w, c);
	return 0;
}

static uint64_t
coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* SOCKETD_TEST_SLOW_WORKER_MS (architecture.md, "Test hook"). */
static void
test_hook_sleep(const struct worker *w)
{
	struct timespec ts;

	if (w->srv->test_slow_worker_ms == 0)
		return;
	ts.tv_sec = w->srv->test_slow_worker_ms / 1000;
	ts.tv_nsec = (long)(w->srv->test_slow_worker_ms % 1000) * 1000000L;
	(void)nanosleep(&ts, NULL);
}

static void
take_new(struct worker *w)
{
	void *item;

	while (pool_worker_take(w->pw, &item) == 0) {
		struct conn *c = item;

		test_hook_sleep(w);
		if (adopt(w, c) == 0 && w->draining) {
			if (w->goaway_until != 0)
				goaway_conn(w, c);
			else
				drain_conn(w, c);
		}
	}
}

static void
refresh_cfg(struct worker *w)
{
	uint64_t g = __atomic_load_n(&w->srv->cfg_gen, __ATOMIC_ACQUIRE);

	if (g == w->gen)
		return;
	server_cfg_put(w->sc);
	w->sc = server_cfg_get(w->srv);
	w->gen = g;
}

/*
 * Close the expired connections at the head of one timer list (their
 * timestamp at offset stamp in struct conn); lower *next to the next
 * deadline.  dur 0 means no timeout.
 */
static void
expire_list(struct worker *w, struct clist *l, size_t stamp, uint64_t dur,
    uint64_t *counter, uint64_t *next)
{
	struct conn *c;
	uint64_t t;

	if (dur == 0)
		return;
	while ((c = l->head) != NULL) {
		t = *(uint64_t *)((char *)c + stamp) + dur;
		if (t > w->now) {
			if (t < *next)
				*next = t;
			return;
		}
		if (l == &w->wr && psub_stall(w, c)) {
			/* A subscriber stalls: pub/sub decides; again later. */
			c->t_write = w->now;
			clist_remove(l, c, OFF(l_wr));
			clist_push_tail(l, c, OFF(l_wr));
			continue;
		}
		if (counter != NULL) {
			STAT_ADD(*counter, 1);
			log_debug("connection %d: timed out", c->fd);
		}
		conn_close(w, c);
	}
}

/*
 * The idle timeout is for connections with nothing in progress: one with a
 * partial frame is governed by the read timeout, one with answers pending
 * by the write timeout (when those are enabled).  Such a connection found
 * at the head of `all` is moved to the tail as if active now; the list
 * stays sorted and each connection moves at most once per check.
 */
static void
expire_idle(struct worker *w, const struct cfg *cf, uint64_t *next)
{
	struct conn *c;
	uint64_t t;

	if (cf->idle_ms == 0)
		return;
	while ((c = w->all.head) != NULL) {
		t = c->t_active + cf->idle_ms;
		if (t > w->now) {
			if (t < *next)
				*next = t;
			return;
		}
		if (((c->flags & CONN_IN_RD) && cf->read_ms > 0) ||
		    ((c->flags & CONN_IN_WR) && cf->write_ms > 0) ||
		    ((c->flags & CONN_IN_HS) && cf->handshake_ms > 0) ||
		    (c->flags & CONN_IN_LG) || dispatch_busy(c) ||
		    psub_holds(c)) {
			c->t_active = w->now;
			clist_remove(&w->all, c, OFF(l_all));
			clist_push_tail(&w->all, c, OFF(l_all));
			continue;
		}
		STAT_ADD(w->st.timeouts_idle, 1);
		log_debug("connection %d: idle timeout", c->fd);
		conn_close(w, c);
	}
}

/* Close what has expired; return ms to the next deadline or -1. */
static int
expire(struct worker *w)
{
	const struct cfg *cf = &w->sc->c;
	uint64_t next = UINT64_MAX;
	struct conn *c;

	expire_list(
	    w, &w->rd, OFF(t_read), cf->read_ms, &w->st.timeouts_read, &next);
	expire_list(w, &w->wr, OFF(t_write), cf->write_ms,
	    &w->st.timeouts_write, &next);
	expire_list(w, &w->lg, OFF(t_linger), LINGER_MS, NULL, &next);
	expire_list(w, &w->hs, OFF(t_read), cf->handshake_ms,
	    &w->st.tls_handshake_timeouts, &next);
	expire_idle(w, cf, &next);
	dispatch_expire(w, &next);
	if (w->goaway_until != 0) {
		/* The grace period is over: the lingering close for the rest.
		 */
		if (w->now >= w->goaway_until) {
			w->goaway_until = 0;
			each_conn(w, drain_conn);
		} else if (w->goaway_until < next) {
			next = w->goaway_until;
		}
	}
	if (w->draining && w->drain_deadline != 0) {
		if (w->now >= w->drain_deadline) {
			while ((c = w->all.head) != NULL) {
				STAT_ADD(w->st.timeouts_shutdown, 1);
				conn_close(w, c);
			}
		} else if (w->drain_deadline < next) {
			next = w->drain_deadline;
		}
	}
	if (next == UINT64_MAX)
		return -1;
	/* Round up so that we wake after the deadline, not just before. */
	return next - w->now > 60000 ? 60000 : (int)(next - w->now) + 1;
}

static void
start_drain(struct worker *w)
{
	const struct cfg *cf = &w->sc->c;
	uint64_t stop;

	w->draining = 1;
	stop = __atomic_load_n(&w->srv->stop_mono_ms, __ATOMIC_ACQUIRE);
	if (cf->shutdown_ms > 0)
		w->drain_deadline = (stop ? stop : w->now) + cf->shutdown_ms;
	if (cf->drain_ms > 0) {
		/*
		 * timeouts.drain: GOAWAY first.  Half of timeouts.shutdown is
		 * the grace period; the rest is for the lingering close of
		 * clients that do not know GOAWAY.
		 */
		w->goaway_grace_ms = cf->shutdown_ms > 0
		    ? cf->shutdown_ms / 2
		    : GOAWAY_GRACE_NO_SHUTDOWN_MS;
		w->goaway_until = w->now + w->goaway_grace_ms + 1;
		take_new(w);
		psub_drain(w); /* NOTICE SHUTDOWN to subscribers */
		each_conn(w, goaway_conn);
		return;
	}
	take_new(w);
	psub_drain(w); /* NOTICE SHUTDOWN, written by drain_conn() */
	each_conn(w, drain_conn);
}

int
worker_init(struct worker *w, struct server *srv)
{
	memset(w, 0, sizeof(*w));
	w->srv = srv;
	/*
	 * Made here, on the main thread before the acceptor starts, not in
	 * the worker's own thread: clients accepted first could otherwise
	 * take the last descriptor under a low RLIMIT_NOFILE.
	 */
	w->inbox.efd = -1;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	w->rbuf = malloc(RBUF_SIZE);
	w->obuf = malloc(OBUF_INIT);
	w->obuf_cap = OBUF_INIT;
	w->met = calloc(1, sizeof(*w->met));
	if (w->rbuf == NULL || w->obuf == NULL || w->met == NULL) {
		worker_fini(w);
		errno = ENOMEM;
		return -1;
	}
	w->pctx.now_ns = server_now_ns;
	w->pctx.info = server_info_text;
	w->pctx.stats = server_stats_text;
	w->pctx.opcodes = server_opcodes_text;
	w->pctx.arg = srv;
	w->index = (unsigned)(w - srv->workers);
	if (dispatch_worker_init(w) != 0) {
		worker_fini(w);
		return -1;
	}
	/*
	 * A worker whose thread has not run yet is starting, not gone: under
	 * valgrind, which runs one thread at a time, /livez answered 503
	 * "event loop not running" right after READY (test_admin).  Five
	 * seconds without its first turn is a stall like any other.
	 */
	STAT_SET(w->st.loop_ms, now_mono_ms());
	return 0;
}

void
worker_fini(struct worker *w)
{
	if (w->epfd != -1)
		close(w->epfd);
	w->epfd = -1;
	free(w->rbuf);
	free(w->obuf);
	free(w->met);
	w->rbuf = w->obuf = NULL;
	w->met = NULL;
	if (w->inbox.efd != -1)
		dispatch_worker_fini(w);
}

void
worker_main(struct pool_worker *pw, void *arg)
{
	struct server *srv = arg;
	struct worker *w = &srv->workers[pool_worker_index(pw)];
	struct epoll_event evs[MAX_EVENTS], ev;
	struct conn *c;
	int i, n, timeout, inbox;

	w->pw = pw;
	test_hook_sleep(w);
	w->now = now_mono_ms();
	STAT_SET(w->st.loop_ms, w->now); /* the heartbeat /livez reads */
	w->gen = __atomic_load_n(&srv->cfg_gen, __ATOMIC_ACQUIRE);
	w->sc = server_cfg_get(srv);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL; /* the pool's eventfd */
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, pool_worker_fd(pw), &ev) == -1)
		fatal("worker %u: epoll_ctl", pool_worker_index(pw));
	ev.data.ptr = &w->inbox;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->inbox.efd, &ev) == -1)
		fatal("worker %u: epoll_ctl", pool_worker_index(pw));
	dispatch_set_thread(w);

	for (;;) {
		timeout = expire(w);
		if (w->ready.head != NULL || dispatch_local_pending(w))
			timeout = 0;
		timeout = psub_timeout(w, timeout);
		if (w->draining && w->all.head == NULL)
			break;
		if (timeout < 0 || timeout > HEARTBEAT_MS)
			timeout = HEARTBEAT_MS;
		/*
		 * Before sleeping: a long turn must not look like a stall.
		 * The coarse clock (a few ms of resolution, no time-stamp
		 * counter read) is plenty for a 5 s threshold.
		 */
		STAT_SET(w->st.loop_ms, coarse_ms());
		n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
		if (n == -1 && errno != EINTR)
			fatal("worker %u: epoll_wait", pool_worker_index(pw));
		w->now = now_mono_ms();
		STAT_SET(w->st.loop_ms, w->now);
		refresh_cfg(w);
		inbox = 0;
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				take_new(w);
			else if (evs[i].data.ptr == &w->inbox)
				inbox = 1; /* after the events: see below */
			else
				on_event(w, evs[i].data.ptr, evs[i].events);
		}
		/* take_new() may have eaten pool_wake()'s reload wake-up. */
		refresh_cfg(w);
		/* One more turn for each connection that still has work. */
		n = (int)w->ready.len;
		while (n-- > 0 && (c = w->ready.head) != NULL) {
			clist_remove(&w->ready, c, OFF(l_rdy));
			if (c->flags & CONN_IO_MORE) {
				c->flags &=
				    ~(uint32_t)(CONN_READY | CONN_IO_MORE);
				(void)read_and_serve(w, c);
				continue;
			}
			c->flags &= ~(uint32_t)CONN_READY;
			serve_buffered(w, c);
		}
		/*
		 * Replies and pushes from other threads, and those handlers
		 * made on this one.  Only now, after the events: writing them
		 * may close a connection whose own event is still waiting in
		 * evs[] (a reset peer's EPOLLERR), which would then be read
		 * from freed memory.
		 */
		if (inbox || dispatch_local_pending(w))
			dispatch_inbox(w);
		psub_tick(w); /* pub/sub batches out, paused publishers */
		if (!w->draining && pool_worker_stopping(pw))
			start_drain(w);
		else if (w->draining)
			take_new(w);
	}
	STAT_SET(w->st.loop_ms, 0); /* exited: not stalled */
	server_cfg_put(w->sc);
	w->sc = NULL;
}

/* The output path, for dispatch.c (worker.h). */
uint8_t *
worker_out_room(struct worker *w, struct conn *c, size_t need)
{
	return out_room(w, c, need);
}

void
worker_out_commit(struct worker *w, struct conn *c, size_t n)
{
	out_commit(w, c, n);
}

int
worker_settle(struct worker *w, struct conn *c)
{
	return settle(w, c, 0, 0) == CLOSED ? WORKER_CLOSED : 0;
}

void
worker_close(struct worker *w, struct conn *c)
{
	conn_close(w, c);
}

int
worker_serve_buffered(struct worker *w, struct conn *c)
{
	return serve_buffered(w, c) == CLOSED ? WORKER_CLOSED : 0;
}
