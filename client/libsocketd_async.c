/*
 * libsocketd_async.c: the non-blocking client of <socketd/client.h>
 * (socketd_async(3)), for programs with their own event loop, in the
 * manner of hiredis's async API but without adapters: the program polls
 * socketd_async_fd() for socketd_async_events() with socketd_async_timeout()
 * and calls socketd_async_process().
 *
 * States: IDLE (no connection) -> CONNECTING (non-blocking connect to
 * each address in turn) -> HANDSHAKE (TLS only) -> OPEN.  Requests may be
 * queued from CONNECTING on: their frames wait in the output buffer and
 * go out once OPEN.  The FIFO of requests sent (id, opcode, callback,
 * deadline) matches answers, which come in request order; a push frame
 * (status 0, request_id 0; this library never sends request_id 0) goes to
 * the message or the event handler, never to an answer callback.
 *
 * Callbacks: every request's callback is called exactly once, with the
 * answer or with the reason none will come.  When the connection fails,
 * the FIFO is detached first and then drained, so a callback may connect
 * again and queue requests without meeting the old ones.  Callbacks may
 * call any function on the client, socketd_async_free included: while a
 * callback runs (depth > 0) free only marks the client dead; the
 * outermost entry point frees it on the way out, cancelling what is left
 * (no callback runs after that).  The answer's bytes live in the input
 * buffer, which is never freed or moved while a callback runs.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <socketd/client.h>

#include "libsocketd_int.h"

#define READ_CHUNK 16384

enum astate { A_IDLE, A_CONNECTING, A_HANDSHAKE, A_OPEN };

struct areq {
	uint32_t id;
	uint8_t opcode;
	socketd_answer_fn fn;
	void *arg;
	int64_t deadline; /* -1: none */
};

struct socketd_async {
	int fd;
	enum astate state;
	struct sdc_tls_conn *tls;
	struct sdc_tls *tlsctx; /* from connect until the session exists */
	int timeout_ms;
	size_t max_frame;
	int use_tls;
	int tls_insecure;
	char *cafile;
	char *certfile;
	char *keyfile;
	char *host;
	struct addrinfo *ai_list; /* addresses still to try */
	struct addrinfo *ai_next;
	int64_t conn_deadline;
	uint8_t *out; /* frames not yet written: out[out_off..out_len) */
	size_t out_off;
	size_t out_len;
	size_t out_cap;
	uint8_t *in; /* bytes read, not yet decoded */
	size_t in_len;
	size_t in_cap;
	struct areq *q; /* ring of requests queued or sent */
	size_t q_head;
	size_t q_len;
	size_t q_cap;
	uint32_t next_id;
	uint32_t next_sub_id;
	int draining; /* GOAWAY: no new requests on this connection */
	socketd_event_fn on_event;
	socketd_message_fn on_message;
	void *arg;
	int depth;    /* entry points with callbacks running */
	int dead;     /* socketd_async_free called */
	unsigned gen; /* bumped each time a connection ends */
	char err[SDC_ERRLEN];
};

static int a_fail(struct socketd_async *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
a_fail(struct socketd_async *a, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
	return code;
}

static char *
dup_or_null(const char *s, int *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*bad = 1;
	return d;
}

struct socketd_async *
socketd_async_new(const struct socketd_client *settings)
{
	struct socketd_async *a;
	int bad = 0;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->fd = -1;
	a->next_id = 1;
	a->timeout_ms = SOCKETD_DEFAULT_TIMEOUT_MS;
	a->max_frame = SOCKETD_DEFAULT_MAX_FRAME;
	if (settings != NULL) {
		a->timeout_ms = settings->timeout_ms;
		a->max_frame = settings->max_frame;
		a->use_tls = settings->tls;
		a->tls_insecure = settings->tls_insecure;
		a->cafile = dup_or_null(settings->cafile, &bad);
		a->certfile = dup_or_null(settings->certfile, &bad);
		a->keyfile = dup_or_null(settings->keyfile, &bad);
	}
	if (bad) {
		socketd_async_free(a);
		return NULL;
	}
	return a;
}

static void
a_event(struct socketd_async *a, int event, int value, const char *text)
{
	if (a->on_event == NULL || a->dead)
		return;
	a->depth++;
	a->on_event(a, event, value, text, a->arg);
	a->depth--;
}

/*
 * End the connection: close it, then give every request pending the
 * result code (from a detached FIFO, so callbacks may start anew), then
 * the event handler SOCKETD_EV_CLOSED unless the program asked for it.
 */
static int
conn_down(struct socketd_async *a, int code)
{
	struct areq *q = a->q;
	size_t head = a->q_head, len = a->q_len, cap = a->q_cap, i;
	char why[SDC_ERRLEN];

	(void)snprintf(why, sizeof(why), "%s", a->err);
	sdc_tls_conn_free(a->tls);
	a->tls = NULL;
	sdc_tls_free(a->tlsctx);
	a->tlsctx = NULL;
	if (a->fd >= 0)
		(void)close(a->fd);
	a->fd = -1;
	if (a->ai_list != NULL)
		freeaddrinfo(a->ai_list);
	a->ai_list = a->ai_next = NULL;
	a->state = A_IDLE;
	a->draining = 0;
	a->out_off = a->out_len = 0;
	a->in_len = 0;
	a->q = NULL;
	a->q_head = a->q_len = a->q_cap = 0;
	a->next_id = 1;
	a->gen++;
	a->depth++;
	for (i = 0; i < len; i++) {
		struct areq r = q[(head + i) % cap];

		if (r.fn != NULL)
			r.fn(a, code, 0, NULL, 0, r.arg);
	}
	a->depth--;
	free(q);
	if (code != SOCKETD_E_CANCELLED)
		a_event(a, SOCKETD_EV_CLOSED, code, why);
	return code;
}

/* Free a dead client once no callback is running; 1 if it was freed. */
static int
leave(struct socketd_async *a)
{
	if (!a->dead || a->depth > 0)
		return 0;
	a->depth++; /* the cancel callbacks cannot free it again */
	(void)conn_down(a, SOCKETD_E_CANCELLED);
	free(a->out);
	free(a->in);
	free(a->q);
	free(a->cafile);
	free(a->certfile);
	free(a->keyfile);
	free(a->host);
	free(a);
	return 1;
}

void
socketd_async_free(struct socketd_async *a)
{
	if (a == NULL || a->dead)
		return;
	a->dead = 1;
	(void)leave(a);
}

int
socketd_async_set_handlers(struct socketd_async *a, socketd_event_fn on_event,
    socketd_message_fn on_message, void *arg)
{
	if (a == NULL || a->dead)
		return SOCKETD_E_INVALID;
	a->on_event = on_event;
	a->on_message = on_message;
	a->arg = arg;
	return SOCKETD_E_OK;
}

void
socketd_async_close(struct socketd_async *a)
{
	if (a == NULL || a->dead)
		return;
	a->err[0] = '\0';
	a->depth++;
	(void)conn_down(a, SOCKETD_E_CANCELLED);
	a->depth--;
	(void)leave(a);
}

int
socketd_async_fd(const struct socketd_async *a)
{
	return a != NULL ? a->fd : -1;
}

const char *
socketd_async_errmsg(const struct socketd_async *a)
{
	return a != NULL ? a->err : "no client (out of memory?)";
}

size_t
socketd_async_pending(const struct socketd_async *a)
{
	return a != NULL ? a->q_len : 0;
}

unsigned
socketd_async_events(const struct socketd_async *a)
{
	unsigned ev = 0, want;

	if (a == NULL || a->dead)
		return 0;
	switch (a->state) {
	case A_CONNECTING:
		return SOCKETD_WANT_WRITE;
	case A_HANDSHAKE:
		want = sdc_tls_conn_want(a->tls);
		return ((want & SDC_WANT_WRITE) ? SOCKETD_WANT_WRITE : 0) |
		    ((want & SDC_WANT_WRITE) ? 0 : SOCKETD_WANT_READ);
	case A_OPEN:
		ev = SOCKETD_WANT_READ;
		if (a->out_len > a->out_off ||
		    (a->tls != NULL &&
			(sdc_tls_conn_want(a->tls) & SDC_WANT_WRITE)))
			ev |= SOCKETD_WANT_WRITE;
		return ev;
	default:
		return 0;
	}
}

int
socketd_async_timeout(const struct socketd_async *a)
{
	int64_t d = -1, left;

	if (a == NULL || a->dead)
		return -1;
	if (a->state == A_CONNECTING || a->state == A_HANDSHAKE)
		d = a->conn_deadline;
	else if (a->state == A_OPEN && a->q_len > 0)
		d = a->q[a->q_head].deadline;
	if (a->state == A_OPEN && a->tls != NULL &&
	    sdc_tls_conn_pending(a->tls))
		return 0; /* decrypted bytes poll() cannot see */
	if (d < 0)
		return -1;
	left = d - sd_now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Start a non-blocking connect to the next address; -1: none left. */
static int
start_next(struct socketd_async *a, char *eb, size_t eblen)
{
	struct addrinfo *ai;
	int fd, e;

	while ((ai = a->ai_next) != NULL) {
		a->ai_next = ai->ai_next;
		fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
		if (fd == -1) {
			(void)sdc_strerror(errno, eb, eblen);
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    errno == EINPROGRESS || errno == EINTR) {
			a->fd = fd;
			a->state = A_CONNECTING;
			return 0;
		}
		e = errno;
		(void)close(fd);
		(void)sdc_strerror(e, eb, eblen);
	}
	return -1;
}

int
socketd_async_connect(struct socketd_async *a, const char *host, unsigned port)
{
	struct addrinfo hints, *res;
	struct sdc_tls_opts o;
	char name[NI_MAXHOST], ps[8], eb[128] = "no address";
	size_t hlen;
	int gai;

	if (a == NULL || a->dead)
		return SOCKETD_E_INVALID;
	if (host == NULL || *host == '\0')
		return a_fail(a, SOCKETD_E_INVALID, "empty host name");
	if (port == 0 || port > 65535)
		return a_fail(a, SOCKETD_E_INVALID,
		    "invalid port %u: expected 1 to 65535", port);
	hlen = strlen(host);
	if (hlen >= sizeof(name))
		return a_fail(a, SOCKETD_E_INVALID,
		    "host name of %zu bytes is too long", hlen);
	/* An open connection is closed first (its requests cancelled). */
	a->err[0] = '\0';
	a->depth++;
	(void)conn_down(a, SOCKETD_E_CANCELLED);
	a->depth--;
	if (leave(a))
		return SOCKETD_E_CANCELLED; /* a callback freed it */
	free(a->host);
	if ((a->host = strdup(host)) == NULL)
		return a_fail(a, SOCKETD_E_NOMEM, "out of memory");
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
		(void)snprintf(
		    name, sizeof(name), "%.*s", (int)(hlen - 2), host + 1);
	else
		(void)snprintf(name, sizeof(name), "%s", host);
	if (a->use_tls) {
		if (a->tls_insecure && a->cafile != NULL)
			return a_fail(a, SOCKETD_E_INVALID,
			    "TLS: insecure and a CA file exclude each other");
		memset(&o, 0, sizeof(o));
		o.cafile = a->cafile;
		o.certfile = a->certfile;
		o.keyfile = a->keyfile;
		o.insecure = a->tls_insecure;
		if ((a->tlsctx = sdc_tls_new(&o, a->err)) == NULL)
			return SOCKETD_E_INVALID;
	}
	(void)snprintf(ps, sizeof(ps), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	if ((gai = getaddrinfo(name, ps, &hints, &res)) != 0) {
		sdc_tls_free(a->tlsctx);
		a->tlsctx = NULL;
		return a_fail(a, SOCKETD_E_CONNECT, "resolve %s port %s: %s",
		    name, ps,
		    gai == EAI_SYSTEM ? sdc_strerror(errno, eb, sizeof(eb))
				      : gai_strerror(gai));
	}
	a->ai_list = a->ai_next = res;
	a->conn_deadline = a->timeout_ms > 0 ? sd_now_ms() + a->timeout_ms : -1;
	if (start_next(a, eb, sizeof(eb)) == -1) {
		(void)a_fail(a, SOCKETD_E_CONNECT, "connect to %s port %s: %s",
		    name, ps, eb);
		(void)conn_down(a, SOCKETD_E_CANCELLED); /* nothing pending */
		return SOCKETD_E_CONNECT;
	}
	return SOCKETD_E_OK;
}

/* Grow a buffer to hold want bytes. */
static int
grow(uint8_t **buf, size_t *cap, size_t want)
{
	uint8_t *nb;
	size_t ncap;

	if (want <= *cap)
		return 0;
	ncap = *cap == 0 ? 4096 : *cap;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	if ((nb = realloc(*buf, ncap)) == NULL)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

int
socketd_async_send(struct socketd_async *a, unsigned opcode,
    const void *payload, size_t len, socketd_answer_fn fn, void *arg,
    uint32_t *request_id)
{
	struct areq *nq, *r;
	size_t ncap, i, flen;

	if (a == NULL || a->dead)
		return SOCKETD_E_INVALID;
	a->err[0] = '\0';
	if (opcode > 0xff)
		return a_fail(a, SOCKETD_E_INVALID,
		    "invalid opcode %u: expected 0 to 255", opcode);
	if (payload == NULL && len > 0)
		return a_fail(a, SOCKETD_E_INVALID,
		    "no payload given for %zu bytes", len);
	if (len > UINT32_MAX - PROTO_HDR_SIZE || len > SIZE_MAX / 2)
		return a_fail(a, SOCKETD_E_INVALID,
		    "request payload of %zu bytes is too large", len);
	if (a->state == A_IDLE)
		return a_fail(a, SOCKETD_E_NOT_CONNECTED, "not connected");
	if (a->draining)
		return a_fail(a, SOCKETD_E_GOAWAY,
		    "the server is draining this connection (GOAWAY): "
		    "connect again");
	if (a->q_len == a->q_cap) {
		ncap = a->q_cap == 0 ? 16 : a->q_cap * 2;
		if (ncap > SIZE_MAX / sizeof(*nq) ||
		    (nq = malloc(ncap * sizeof(*nq))) == NULL)
			return a_fail(a, SOCKETD_E_NOMEM, "out of memory");
		for (i = 0; i < a->q_len; i++)
			nq[i] = a->q[(a->q_head + i) % a->q_cap];
		free(a->q);
		a->q = nq;
		a->q_cap = ncap;
		a->q_head = 0;
	}
	flen = PROTO_FRAME_MIN + len;
	if (grow(&a->out, &a->out_cap, a->out_len + flen) == -1)
		return a_fail(a, SOCKETD_E_NOMEM, "out of memory");
	if (a->next_id == 0)
		a->next_id = 1;
	r = &a->q[(a->q_head + a->q_len) % a->q_cap];
	r->id = a->next_id++;
	r->opcode = (uint8_t)opcode;
	r->fn = fn;
	r->arg = arg;
	r->deadline = a->timeout_ms > 0 ? sd_now_ms() + a->timeout_ms : -1;
	(void)proto_encode_req(
	    a->out + a->out_len, flen, (uint8_t)opcode, r->id, payload, len);
	a->out_len += flen;
	a->q_len++;
	if (request_id != NULL)
		*request_id = r->id;
	return SOCKETD_E_OK;
}

/* An I/O failure: errno e (or EOF: e 0) as an error code and message. */
static int
io_down(struct socketd_async *a, const char *op, int e)
{
	char eb[128];

	if (e == 0)
		return conn_down(a,
		    a_fail(a, SOCKETD_E_CLOSED, "connection closed by server%s",
			a->in_len > 0      ? " in the middle of an answer"
			    : a->q_len > 0 ? " before the answer"
					   : ""));
	if (e == EPROTO)
		return conn_down(a, SOCKETD_E_TLS); /* a->err set by sdtls */
	if (e == ECONNRESET || e == EPIPE)
		return conn_down(a,
		    a_fail(a, SOCKETD_E_CLOSED, "%s: %s", op,
			sdc_strerror(e, eb, sizeof(eb))));
	return conn_down(a,
	    a_fail(a, SOCKETD_E_IO, "%s: %s", op,
		sdc_strerror(e, eb, sizeof(eb))));
}

/* Write what the socket takes.  0, or the error that closed it. */
static int
flush_out(struct socketd_async *a)
{
	ssize_t n;

	while (a->out_off < a->out_len) {
		if (a->tls != NULL)
			n = sdc_tls_conn_write(a->tls, a->out + a->out_off,
			    a->out_len - a->out_off, a->err);
		else
			n = send(a->fd, a->out + a->out_off,
			    a->out_len - a->out_off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			a->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return io_down(a, "send", n < 0 ? errno : EPIPE);
	}
	a->out_off = a->out_len = 0;
	return 0;
}

static void
on_push(struct socketd_async *a, const struct proto_resp *r)
{
	struct socketd_message m;
	char text[SD_TOPIC_MAX + 1];
	size_t n;

	switch (r->opcode) {
	case SOCKETD_OP_GOAWAY:
		if (r->payload_len < 4)
			return;
		n = r->payload_len - 4 < 200 ? r->payload_len - 4 : 200;
		memcpy(text, r->payload + 4, n);
		text[n] = '\0';
		a->draining = 1;
		a_event(a, SOCKETD_EV_GOAWAY,
		    (int)(proto_get_u32(r->payload) & 0x7fffffff), text);
		return;
	case SOCKETD_OP_PUBSUB_MESSAGE:
		if (a->on_message == NULL || a->dead ||
		    sd_parse_message(r->payload, r->payload_len, &m, text) ==
			-1)
			return;
		a->depth++;
		a->on_message(a, &m, a->arg);
		a->depth--;
		return;
	case SOCKETD_OP_PUBSUB_NOTICE:
		if (r->payload_len < 2)
			return;
		n = r->payload_len - 2 < 200 ? r->payload_len - 2 : 200;
		memcpy(text, r->payload + 2, n);
		text[n] = '\0';
		if (proto_get_u16(r->payload) == 2) /* SHUTDOWN */
			a->draining = 1;
		a_event(a, SOCKETD_EV_NOTICE, proto_get_u16(r->payload), text);
		return;
	default:
		return; /* a push this library does not know: ignored */
	}
}

/* One answer: check it against the oldest request and call back. */
static int
on_answer(struct socketd_async *a, const struct proto_resp *r)
{
	struct areq want;

	if (a->q_len == 0)
		return conn_down(a,
		    a_fail(a, SOCKETD_E_PROTOCOL,
			"server answered request_id %" PRIu32
			" when no request was waiting",
			r->request_id));
	want = a->q[a->q_head];
	if (r->request_id != 0 &&
	    (r->request_id != want.id || r->opcode != want.opcode))
		return conn_down(a,
		    a_fail(a, SOCKETD_E_PROTOCOL,
			"server answered request_id %" PRIu32
			" opcode %u, expected request_id %" PRIu32 " opcode %u",
			r->request_id, (unsigned)r->opcode, want.id,
			(unsigned)want.opcode));
	a->q_head = (a->q_head + 1) % a->q_cap;
	a->q_len--;
	if (want.fn != NULL) {
		a->depth++;
		want.fn(a, SOCKETD_E_OK, r->status, r->payload, r->payload_len,
		    want.arg);
		a->depth--;
	}
	return 0;
}

/* Decode and hand out every whole frame in the input buffer. */
static int
dispatch(struct socketd_async *a)
{
	struct proto_resp r;
	enum proto_status st;
	unsigned gen = a->gen;
	size_t off = 0, used;
	int rv;

	while (off < a->in_len) {
		st = proto_decode_resp(
		    a->in + off, a->in_len - off, a->max_frame, &r, &used);
		if (st == PROTO_AGAIN)
			break;
		if (st != PROTO_OK)
			return conn_down(a,
			    a_fail(a, SOCKETD_E_PROTOCOL,
				"server sent a malformed or oversized "
				"frame (%s)",
				proto_status_str(st)));
		off += used;
		if (r.request_id == 0 && r.status == PROTO_OK)
			on_push(a, &r);
		else if ((rv = on_answer(a, &r)) != 0)
			return rv;
		if (a->gen != gen || a->dead)
			return 0; /* a callback closed it: bytes are moot */
	}
	if (off > 0) {
		memmove(a->in, a->in + off, a->in_len - off);
		a->in_len -= off;
	}
	return 0;
}

/* Read what is there and dispatch it.  0, or the error that closed it. */
static int
read_in(struct socketd_async *a)
{
	unsigned gen = a->gen;
	ssize_t n;
	int rv;

	for (;;) {
		if (grow(&a->in, &a->in_cap, a->in_len + READ_CHUNK) == -1)
			return conn_down(
			    a, a_fail(a, SOCKETD_E_NOMEM, "out of memory"));
		if (a->tls != NULL)
			n = sdc_tls_conn_read(a->tls, a->in + a->in_len,
			    a->in_cap - a->in_len, a->err);
		else
			n = recv(a->fd, a->in + a->in_len,
			    a->in_cap - a->in_len, MSG_DONTWAIT);
		if (n > 0) {
			a->in_len += (size_t)n;
			if ((rv = dispatch(a)) != 0)
				return rv;
			if (a->gen != gen || a->dead)
				return 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return io_down(a, "recv", n < 0 ? errno : 0);
	}
}

/* The connect finished (or failed: try the next address). */
static int
connected(struct socketd_async *a)
{
	struct pollfd p = {.fd = a->fd, .events = POLLOUT};
	char eb[128];
	socklen_t sl = sizeof(int);
	int soerr = 0, one = 1;

	if (poll(&p, 1, 0) != 1)
		return 0; /* still in progress */
	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
		soerr = errno;
	if (soerr != 0) {
		(void)close(a->fd);
		a->fd = -1;
		(void)sdc_strerror(soerr, eb, sizeof(eb));
		if (start_next(a, eb, sizeof(eb)) == 0)
			return 0;
		return conn_down(a,
		    a_fail(a, SOCKETD_E_CONNECT, "connect to %s: %s", a->host,
			eb));
	}
	freeaddrinfo(a->ai_list);
	a->ai_list = a->ai_next = NULL;
	(void)setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (a->tlsctx != NULL) {
		a->tls = sdc_tls_conn_new(a->tlsctx, a->fd, a->host, a->err);
		sdc_tls_free(a->tlsctx);
		a->tlsctx = NULL;
		if (a->tls == NULL)
			return conn_down(a, SOCKETD_E_TLS);
		a->state = A_HANDSHAKE;
		return 0;
	}
	a->state = A_OPEN;
	a_event(a, SOCKETD_EV_CONNECTED, 0, NULL);
	return 0;
}

static int
step(struct socketd_async *a)
{
	unsigned gen = a->gen;
	int64_t now = sd_now_ms();
	int rv;

	if (a->state == A_CONNECTING && (rv = connected(a)) != 0)
		return rv;
	if (a->state == A_HANDSHAKE) {
		rv = sdc_tls_conn_handshake(a->tls, a->err);
		if (rv == -1)
			return conn_down(a, SOCKETD_E_TLS);
		if (rv == 1) {
			a->state = A_OPEN;
			a_event(a, SOCKETD_EV_CONNECTED, 0, NULL);
		}
	}
	if (a->gen != gen || a->dead)
		return 0;
	if ((a->state == A_CONNECTING || a->state == A_HANDSHAKE) &&
	    a->conn_deadline >= 0 && now >= a->conn_deadline)
		return conn_down(a,
		    a_fail(a, SOCKETD_E_TIMEOUT,
			"connect to %s: timed out after %d ms", a->host,
			a->timeout_ms));
	if (a->state != A_OPEN)
		return 0;
	if ((rv = flush_out(a)) != 0 || (rv = read_in(a)) != 0)
		return rv;
	if (a->gen != gen || a->dead)
		return 0;
	/* Answers that came may have made room: write the rest. */
	if ((rv = flush_out(a)) != 0)
		return rv;
	if (a->q_len > 0 && a->q[a->q_head].deadline >= 0 &&
	    sd_now_ms() >= a->q[a->q_head].deadline)
		return conn_down(a,
		    a_fail(a, SOCKETD_E_TIMEOUT,
			"no answer within %d ms (%zu request(s) pending)",
			a->timeout_ms, a->q_len));
	return 0;
}

int
socketd_async_process(struct socketd_async *a)
{
	int rv;

	if (a == NULL || a->dead)
		return SOCKETD_E_INVALID;
	a->depth++;
	rv = step(a);
	a->depth--;
	(void)leave(a);
	return rv;
}

int
socketd_async_subscribe(struct socketd_async *a, const char *filter,
    unsigned flags, socketd_answer_fn fn, void *arg, uint32_t *sub_id)
{
	uint8_t buf[8 + SD_TOPIC_MAX];
	uint32_t id;
	size_t n;
	int rv;

	if (a == NULL || a->dead)
		return SOCKETD_E_INVALID;
	if ((rv = sd_check_subscribe(a->err, filter, flags)) != 0)
		return rv;
	id = a->next_sub_id + 1;
	if (id == 0)
		id = 1;
	n = sd_enc_subscribe(buf, sizeof(buf), id, filter, flags);
	rv = socketd_async_send(
	    a, SOCKETD_OP_PUBSUB_SUBSCRIBE, buf, n, fn, arg, NULL);
	if (rv != 0)
		return rv;
	a->next_sub_id = id;
	if (sub_id != NULL)
		*sub_id = id;
	return SOCKETD_E_OK;
}

int
socketd_async_unsubscribe(
    struct socketd_async *a, uint32_t sub_id, socketd_answer_fn fn, void *arg)
{
	uint8_t buf[4];

	proto_put_u32(buf, sub_id);
	return socketd_async_send(
	    a, SOCKETD_OP_PUBSUB_UNSUBSCRIBE, buf, 4, fn, arg, NULL);
}

int
socketd_async_publish(struct socketd_async *a, const char *topic,
    const void *data, size_t len, socketd_answer_fn fn, void *arg)
{
	uint8_t *buf;
	size_t n;
	int rv;

	if (a == NULL || a->dead)
		return SOCKETD_E_INVALID;
	if ((rv = sd_check_publish(a->err, topic, data, len)) != 0)
		return rv;
	if (sd_enc_publish(&buf, &n, topic, strlen(topic), data, len) == -1)
		return a_fail(a, SOCKETD_E_NOMEM, "out of memory");
	rv = socketd_async_send(
	    a, SOCKETD_OP_PUBSUB_PUBLISH, buf, n, fn, arg, NULL);
	free(buf);
	return rv;
}
