/*
 * libsocketd.c: the public client API of <socketd/client.h> over sdclient
 * (framing, timeouts, TLS) and proto (the codec), linked into
 * libsocketd.so.1 with hidden visibility: only the SOCKETD_API functions
 * are exported (client/libsocketd.map lists them).
 *
 * A client keeps its settings, the sdclient connection, the FIFO of
 * requests sent and not yet answered (request_id and opcode, for the
 * checks), the OPCODES text of this connection once asked for, and one
 * message buffer.  Every entry point clears the message, checks its
 * arguments (SOCKETD_E_INVALID, connection untouched), and on a failure of
 * the connection itself closes it (fail_conn): the answers in flight
 * would otherwise be taken for the answers to later requests.
 *
 * A round trip shares one deadline between the send, the push frames
 * skipped on the way and the answer.  Push frames are recognised by
 * status 0 with request_id 0: this library never sends request_id 0, so
 * an answer to one of its requests can never look like one.  An error
 * with request_id 0 (BUSY on a refused connection, TOO_LARGE, a body
 * shorter than the header) answers the oldest request in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <socketd/client.h>

#include "libsocketd_int.h"

#define NAME_MAX_LEN 64 /* an opcode name (PROTOCOL 1.1) */

unsigned
socketd_client_version(void)
{
	return SOCKETD_CLIENT_VERSION_NUMBER;
}

const char *
socketd_strerror(int error)
{
	switch (error) {
	case SOCKETD_E_OK:
		return "success";
	case SOCKETD_E_INVALID:
		return "invalid argument";
	case SOCKETD_E_NOMEM:
		return "out of memory";
	case SOCKETD_E_CONNECT:
		return "cannot connect";
	case SOCKETD_E_TLS:
		return "TLS failure";
	case SOCKETD_E_TIMEOUT:
		return "timed out";
	case SOCKETD_E_CLOSED:
		return "connection closed by server";
	case SOCKETD_E_IO:
		return "socket error";
	case SOCKETD_E_PROTOCOL:
		return "protocol error";
	case SOCKETD_E_SERVER:
		return "the server answered an error";
	case SOCKETD_E_NOT_CONNECTED:
		return "not connected";
	case SOCKETD_E_NO_OPCODES:
		return "the server does not list its opcodes";
	case SOCKETD_E_NOT_FOUND:
		return "no such name";
	case SOCKETD_E_GOAWAY:
		return "the server is draining the connection";
	case SOCKETD_E_CANCELLED:
		return "cancelled";
	default:
		return "unknown error";
	}
}

const char *
socketd_status_name(unsigned status)
{
	static const char *const names[] = {"OK", "UNKNOWN_OPCODE",
	    "BAD_REQUEST", "TOO_LARGE", "BUSY", "INTERNAL",
	    "UNSUPPORTED_VERSION", "DENIED", "TIMEOUT", "OVERLOADED",
	    "INVALID_TOPIC", "FORBIDDEN", "LIMIT_EXCEEDED", "NOT_SUBSCRIBED"};

	if (status < sizeof(names) / sizeof(names[0]))
		return names[status];
	return "UNKNOWN";
}

/* Set the message and return code; the connection is left alone. */
int
sd_fail(struct socketd_client *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return code;
}

static void
reset_conn_state(struct socketd_client *c)
{
	c->q_head = 0;
	c->q_len = 0;
	free(c->opcodes);
	c->opcodes = NULL;
	c->opcodes_len = 0;
	c->next_id = 1;
	c->draining = 0;
	c->closing = 0;
}

void
socketd_close(struct socketd_client *c)
{
	if (c == NULL || c->in_push)
		return;
	sdc_close(&c->conn);
	reset_conn_state(c);
	sd_pubsub_free(c); /* the program ends the session: subscriptions too */
}

/*
 * An sdclient failure (message already in c->err, errno set by sdclient):
 * close the connection and say which kind of failure it was.
 */
int
sd_fail_conn(struct socketd_client *c, int e)
{
	int code;

	switch (e) {
	case ETIMEDOUT:
		code = SOCKETD_E_TIMEOUT;
		break;
	case ECONNRESET:
	case EPIPE:
		code = SOCKETD_E_CLOSED;
		break;
	case EPROTO:
		/* sdclient says EPROTO for a TLS error and a bad frame. */
		code = strncmp(c->err, "TLS error", 9) == 0
		    ? SOCKETD_E_TLS
		    : SOCKETD_E_PROTOCOL;
		break;
	case ENOMEM:
		code = SOCKETD_E_NOMEM;
		break;
	case ENOTCONN:
		code = SOCKETD_E_NOT_CONNECTED;
		break;
	default:
		code = SOCKETD_E_IO;
		break;
	}
	sdc_close(&c->conn);
	reset_conn_state(c);
	return code;
}

/* Checks every entry point makes; clears the message. */
int
sd_enter(struct socketd_client *c, int need_conn)
{
	if (c->in_push)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "libsocketd called from its own push handler");
	c->err[0] = '\0';
	if (need_conn && c->conn.fd < 0)
		return sd_fail(c, SOCKETD_E_NOT_CONNECTED, "not connected");
	return SOCKETD_E_OK;
}

struct socketd_client *
socketd_new(void)
{
	struct socketd_client *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->timeout_ms = SOCKETD_DEFAULT_TIMEOUT_MS;
	c->max_frame = SOCKETD_DEFAULT_MAX_FRAME;
	sdc_attach(&c->conn, -1, c->timeout_ms);
	c->next_id = 1;
	return c;
}

void
socketd_free(struct socketd_client *c)
{
	/* From its own push handler: leak rather than free under the caller. */
	if (c == NULL || c->in_push)
		return;
	socketd_close(c);
	free(c->q);
	free(c->text);
	free(c->cafile);
	free(c->certfile);
	free(c->keyfile);
	free(c->host);
	sd_pubsub_free(c);
	free(c);
}

int
socketd_set_timeout(struct socketd_client *c, int timeout_ms)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	if (timeout_ms < 0)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "invalid timeout %d ms: expected 0 (none) or more",
		    timeout_ms);
	c->timeout_ms = timeout_ms;
	c->conn.timeout_ms = timeout_ms;
	return SOCKETD_E_OK;
}

int
socketd_set_max_frame(struct socketd_client *c, size_t bytes)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	if (bytes < PROTO_HDR_SIZE || bytes > UINT32_MAX)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "invalid max frame of %zu bytes: expected %d to %" PRIu32,
		    bytes, PROTO_HDR_SIZE, UINT32_MAX);
	c->max_frame = bytes;
	c->conn.max_frame = bytes;
	return SOCKETD_E_OK;
}

int
socketd_set_tls(struct socketd_client *c, int enable)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	c->tls = enable != 0;
	return SOCKETD_E_OK;
}

/* Replace *dst with a copy of src (NULL: none). */
static int
set_path(
    struct socketd_client *c, char **dst, const char *src, const char *what)
{
	char *copy = NULL;

	if (src != NULL && *src == '\0')
		return sd_fail(c, SOCKETD_E_INVALID, "empty %s name", what);
	if (src != NULL && (copy = strdup(src)) == NULL)
		return sd_fail(c, SOCKETD_E_NOMEM, "out of memory");
	free(*dst);
	*dst = copy;
	return SOCKETD_E_OK;
}

int
socketd_set_tls_cafile(struct socketd_client *c, const char *cafile)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	if ((rv = set_path(c, &c->cafile, cafile, "CA file")) != 0)
		return rv;
	c->tls = 1;
	return SOCKETD_E_OK;
}

int
socketd_set_tls_cert(
    struct socketd_client *c, const char *certfile, const char *keyfile)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	if (certfile == NULL && keyfile != NULL)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "a key file needs a certificate file");
	if ((rv = set_path(c, &c->certfile, certfile, "certificate file")) != 0)
		return rv;
	if ((rv = set_path(c, &c->keyfile, keyfile, "key file")) != 0)
		return rv;
	c->tls = 1;
	return SOCKETD_E_OK;
}

int
socketd_set_tls_insecure(struct socketd_client *c, int enable)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	c->tls_insecure = enable != 0;
	if (enable)
		c->tls = 1;
	return SOCKETD_E_OK;
}

int
socketd_set_push_handler(
    struct socketd_client *c, socketd_push_fn fn, void *arg)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	c->push_fn = fn;
	c->push_arg = fn != NULL ? arg : NULL;
	return SOCKETD_E_OK;
}

/* The TLS context for one connect, from the settings. */
static int
tls_context(struct socketd_client *c, struct sdc_tls **out)
{
	struct sdc_tls_opts o;

	*out = NULL;
	if (!c->tls)
		return SOCKETD_E_OK;
	if (c->tls_insecure && c->cafile != NULL)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "TLS: insecure and a CA file exclude each other");
	memset(&o, 0, sizeof(o));
	o.cafile = c->cafile;
	o.certfile = c->certfile;
	o.keyfile = c->keyfile;
	o.insecure = c->tls_insecure;
	if ((*out = sdc_tls_new(&o, c->err)) == NULL)
		return SOCKETD_E_INVALID; /* a file that cannot be used */
	return SOCKETD_E_OK;
}

/* Connect c to c->host port c->port, then TLS if it is on. */
static int
connect_to(struct socketd_client *c)
{
	struct sdc_tls *tls;
	char ps[8];
	int rv, e;

	if ((rv = tls_context(c, &tls)) != 0)
		return rv;
	(void)snprintf(ps, sizeof(ps), "%u", c->port);
	if (sdc_connect(&c->conn, c->host, ps, c->timeout_ms, c->err) == -1) {
		e = errno;
		sdc_tls_free(tls);
		if (e == EINVAL)
			return SOCKETD_E_INVALID; /* a host name too long */
		return e == ETIMEDOUT ? SOCKETD_E_TIMEOUT : SOCKETD_E_CONNECT;
	}
	c->conn.max_frame = c->max_frame;
	if (tls != NULL) {
		rv = sdc_start_tls(&c->conn, c->host, ps, tls, c->err);
		e = errno;
		sdc_tls_free(tls);
		if (rv == -1) {
			if (e == ETIMEDOUT)
				return SOCKETD_E_TIMEOUT;
			return e == ENOMEM ? SOCKETD_E_NOMEM : SOCKETD_E_TLS;
		}
	}
	return SOCKETD_E_OK;
}

int
socketd_connect(struct socketd_client *c, const char *host, unsigned port)
{
	char *h;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	if (host == NULL || *host == '\0')
		return sd_fail(c, SOCKETD_E_INVALID, "empty host name");
	if (port == 0 || port > 65535)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "invalid port %u: expected 1 to 65535", port);
	/* Not socketd_close: subscriptions outlive a failed connection. */
	sdc_close(&c->conn);
	reset_conn_state(c);
	if ((h = strdup(host)) == NULL)
		return sd_fail(c, SOCKETD_E_NOMEM, "out of memory");
	free(c->host);
	c->host = h;
	c->port = port;
	if ((rv = connect_to(c)) != 0)
		return rv;
	return sd_resubscribe(c);
}

/*
 * After GOAWAY or a connection closed at a request boundary: connect to
 * the same server again and renew the subscriptions.
 */
int
sd_reconnect(struct socketd_client *c)
{
	int rv;

	if (c->host == NULL)
		return sd_fail(c, SOCKETD_E_NOT_CONNECTED, "not connected");
	sdc_close(&c->conn);
	reset_conn_state(c);
	if ((rv = connect_to(c)) != 0)
		return rv;
	return sd_resubscribe(c);
}

int
socketd_set_retry(struct socketd_client *c, int enable)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 0)) != 0)
		return rv;
	c->retry_all = enable != 0;
	return SOCKETD_E_OK;
}

int
socketd_fd(const struct socketd_client *c)
{
	return c != NULL ? c->conn.fd : -1;
}

const char *
socketd_errmsg(const struct socketd_client *c)
{
	if (c == NULL)
		return "no client (out of memory?)";
	return c->err;
}

unsigned
socketd_status(const struct socketd_client *c)
{
	return c != NULL ? c->status : SOCKETD_STATUS_OK;
}

int
socketd_peer(struct socketd_client *c, char *buf, size_t len)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if (buf == NULL || len == 0)
		return sd_fail(
		    c, SOCKETD_E_INVALID, "no buffer for the address");
	if (sdc_peer(&c->conn, buf, len, c->err) == -1)
		return strstr(c->err, "does not fit") != NULL
		    ? SOCKETD_E_INVALID
		    : SOCKETD_E_IO;
	return SOCKETD_E_OK;
}

const char *
socketd_tls_version(const struct socketd_client *c)
{
	if (c == NULL || c->conn.fd < 0 || c->conn.tls == NULL)
		return NULL;
	return sdc_tls_conn_version(c->conn.tls);
}

size_t
socketd_pending(const struct socketd_client *c)
{
	return c != NULL ? c->q_len : 0;
}

/* Arguments of a request: the opcode fits a byte, the payload a frame. */
static int
check_request(
    struct socketd_client *c, unsigned opcode, const void *payload, size_t len)
{
	if (opcode > 0xff)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "invalid opcode %u: expected 0 to 255", opcode);
	if (payload == NULL && len > 0)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "no payload given for %zu bytes", len);
	if (len > UINT32_MAX - PROTO_HDR_SIZE)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "request payload of %zu bytes is too large", len);
	return SOCKETD_E_OK;
}

static int
queue_push(struct socketd_client *c, uint32_t id, uint8_t opcode)
{
	struct inflight *nq;
	size_t ncap, i;

	if (c->q_len == c->q_cap) {
		ncap = c->q_cap == 0 ? 16 : c->q_cap * 2;
		if (ncap > SIZE_MAX / sizeof(*nq) ||
		    (nq = malloc(ncap * sizeof(*nq))) == NULL)
			return sd_fail(c, SOCKETD_E_NOMEM,
			    "out of memory for %zu requests in flight",
			    c->q_len + 1);
		for (i = 0; i < c->q_len; i++)
			nq[i] = c->q[(c->q_head + i) % c->q_cap];
		free(c->q);
		c->q = nq;
		c->q_cap = ncap;
		c->q_head = 0;
	}
	c->q[(c->q_head + c->q_len) % c->q_cap].id = id;
	c->q[(c->q_head + c->q_len) % c->q_cap].opcode = opcode;
	c->q_len++;
	return SOCKETD_E_OK;
}

/* Send one request within deadline and remember it. */
static int
send_one(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, int64_t deadline, uint32_t *idp)
{
	uint32_t id;
	int rv;

	/* Room first: a request sent but not remembered would be lost. */
	if ((rv = queue_push(c, 0, 0)) != 0)
		return rv;
	c->q_len--;
	/* request_id 0 is what pushes and unsolicited errors carry. */
	if (c->next_id == 0)
		c->next_id = 1;
	id = c->next_id++;
	if (sdc_send_until(&c->conn, (uint8_t)opcode, id, payload, len,
		deadline, c->err) == -1)
		return sd_fail_conn(c, errno);
	(void)queue_push(c, id, (uint8_t)opcode);
	if (idp != NULL)
		*idp = id;
	return SOCKETD_E_OK;
}

/*
 * Receive the answer to the oldest request in flight, handing pushes to
 * sd_push.  *boundary (may be NULL): the connection ended before any byte
 * of the answer (a close at a request boundary).
 */
static int
recv_one(struct socketd_client *c, int64_t deadline, struct proto_resp *r,
    uint32_t *idp, int *boundary)
{
	struct inflight want;
	int e;

	if (boundary != NULL)
		*boundary = 0;
	if (c->q_len == 0)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "no request is waiting for "
		    "an answer");
	for (;;) {
		if (sdc_recv_until(&c->conn, r, deadline, c->err) == -1) {
			e = errno;
			if (boundary != NULL)
				*boundary =
				    e == ECONNRESET && c->conn.buf_len == 0;
			return sd_fail_conn(c, e);
		}
		if (r->request_id != 0 || r->status != PROTO_OK)
			break;
		sd_push(c, r);
	}
	want = c->q[c->q_head];
	c->q_head = (c->q_head + 1) % c->q_cap;
	c->q_len--;
	/* request_id 0 with an error: it answers the request in flight. */
	if (r->request_id != 0 && r->request_id != want.id) {
		(void)sd_fail(c, 0,
		    "server answered request_id %" PRIu32 ", expected %" PRIu32,
		    r->request_id, want.id);
		return sd_fail_conn(c, EPROTO);
	}
	if (r->request_id != 0 && r->opcode != want.opcode) {
		(void)sd_fail(c, 0,
		    "server answered opcode %u to a request with opcode %u",
		    (unsigned)r->opcode, (unsigned)want.opcode);
		return sd_fail_conn(c, EPROTO);
	}
	c->status = r->status;
	if (idp != NULL)
		*idp = want.id;
	return SOCKETD_E_OK;
}

/* May this request be sent again after its connection was lost? */
static int
retriable(const struct socketd_client *c, unsigned opcode)
{
	return c->retry_all || opcode <= SOCKETD_OP_OPCODES;
}

/*
 * One round trip.  A server that refuses the connection answers BUSY and
 * closes; the send may fail after that, so the reason is read if it came.
 * A draining connection (GOAWAY) is replaced first; one found closed
 * when sending is replaced once for free (nothing was received); one
 * closed before any byte of the answer is replaced and the request sent
 * again once if it is retriable (it may have run).
 */
int
sd_roundtrip(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, struct proto_resp *r)
{
	int64_t deadline;
	uint32_t id;
	int rv, e, boundary, fresh = 0, retried = 0;

	memset(r, 0, sizeof(*r));
	if ((rv = check_request(c, opcode, payload, len)) != 0)
		return rv;
	if (c->q_len > 0)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "%zu pipelined answer(s) pending: read them with "
		    "socketd_recv first",
		    c->q_len);
	deadline = sdc_deadline(&c->conn);
	for (;;) {
		/* No reconnect inside a reconnect's renewals. */
		if (c->resubscribing && c->conn.fd < 0)
			return SOCKETD_E_CLOSED;
		if ((c->draining || c->conn.fd < 0) && !c->resubscribing &&
		    (rv = sd_reconnect(c)) != 0)
			return rv;
		c->err[0] = '\0';
		if (c->next_id == 0)
			c->next_id = 1;
		id = c->next_id++;
		if (sdc_send_until(&c->conn, (uint8_t)opcode, id, payload, len,
			deadline, c->err) == -1) {
			e = errno;
			if ((e == EPIPE || e == ECONNRESET) &&
			    sdc_recv_until(&c->conn, r, deadline, NULL) == 0 &&
			    r->request_id == 0 && r->status != PROTO_OK) {
				c->err[0] = '\0';
				c->status = r->status;
				return SOCKETD_E_OK;
			}
			rv = sd_fail_conn(c, e);
			if ((e != EPIPE && e != ECONNRESET) || fresh++ > 0)
				return rv;
			continue;
		}
		if (queue_push(c, id, (uint8_t)opcode) != 0)
			return sd_fail_conn(c, ENOMEM); /* it would be lost */
		rv = recv_one(c, deadline, r, NULL, &boundary);
		if (rv == 0 || !boundary || retried++ > 0 ||
		    !retriable(c, opcode))
			return rv;
	}
}

int
socketd_call(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, unsigned *status, const uint8_t **answer, size_t *answer_len)
{
	struct proto_resp r;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = sd_roundtrip(c, opcode, payload, len, &r)) != 0)
		return rv;
	if (status != NULL)
		*status = r.status;
	if (answer != NULL)
		*answer = r.payload;
	if (answer_len != NULL)
		*answer_len = r.payload_len;
	return SOCKETD_E_OK;
}

int
socketd_send(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, uint32_t *request_id)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = check_request(c, opcode, payload, len)) != 0)
		return rv;
	if (c->draining && c->q_len > 0)
		return sd_fail(c, SOCKETD_E_GOAWAY,
		    "the server is draining this connection (GOAWAY): read "
		    "the %zu pending answer(s) with socketd_recv first",
		    c->q_len);
	if (c->draining && (rv = sd_reconnect(c)) != 0)
		return rv;
	return send_one(
	    c, opcode, payload, len, sdc_deadline(&c->conn), request_id);
}

int
socketd_recv(struct socketd_client *c, uint32_t *request_id, unsigned *status,
    const uint8_t **answer, size_t *answer_len)
{
	struct proto_resp r;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = recv_one(c, sdc_deadline(&c->conn), &r, request_id, NULL)) !=
	    0)
		return rv;
	if (status != NULL)
		*status = r.status;
	if (answer != NULL)
		*answer = r.payload;
	if (answer_len != NULL)
		*answer_len = r.payload_len;
	return SOCKETD_E_OK;
}

/* The word for a built-in request in messages. */
static const char *
opcode_word(unsigned opcode)
{
	static const char *const words[] = {
	    "ping", "echo", "info", "stats", "time", "opcodes"};

	if (opcode < sizeof(words) / sizeof(words[0]))
		return words[opcode];
	return NULL;
}

/*
 * A request whose only acceptable answer is OK: an error status becomes
 * SOCKETD_E_SERVER with the server's message.  what names it in messages
 * (NULL: the built-in's name).
 */
int
sd_call_ok(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, struct proto_resp *r, const char *what)
{
	const char *name;
	int rv;

	if ((rv = sd_roundtrip(c, opcode, payload, len, r)) != 0)
		return rv;
	if (r->status == PROTO_OK)
		return SOCKETD_E_OK;
	name = what != NULL ? what : opcode_word(opcode);
	if (name == NULL)
		name = "request";
	if (r->payload_len > 0)
		return sd_fail(c, SOCKETD_E_SERVER,
		    "%s: server answered %s: %.*s", name,
		    socketd_status_name(r->status),
		    (int)(r->payload_len > 200 ? 200 : r->payload_len),
		    (const char *)r->payload);
	return sd_fail(c, SOCKETD_E_SERVER, "%s: server answered %s", name,
	    socketd_status_name(r->status));
}

static int
call_ok(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, struct proto_resp *r)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	return sd_call_ok(c, opcode, payload, len, r, NULL);
}

int
socketd_ping(struct socketd_client *c)
{
	struct proto_resp r;

	return call_ok(c, SOCKETD_OP_PING, NULL, 0, &r);
}

int
socketd_echo(struct socketd_client *c, const void *data, size_t len)
{
	struct proto_resp r;
	int rv;

	if ((rv = call_ok(c, SOCKETD_OP_ECHO, data, len, &r)) != 0)
		return rv;
	if (r.payload_len != len ||
	    (len > 0 && memcmp(r.payload, data, len) != 0)) {
		(void)sd_fail(c, 0,
		    "echo: server sent back %zu bytes that differ from the "
		    "%zu sent",
		    r.payload_len, len);
		return sd_fail_conn(c, EPROTO);
	}
	return SOCKETD_E_OK;
}

/* Copy an answer into c->text with a NUL after it. */
static int
keep_text(struct socketd_client *c, const struct proto_resp *r,
    const char **text, size_t *len)
{
	char *nt;

	if (r->payload_len + 1 > c->text_cap) {
		if ((nt = realloc(c->text, r->payload_len + 1)) == NULL)
			return sd_fail(c, SOCKETD_E_NOMEM,
			    "out of memory for %zu bytes of text",
			    r->payload_len);
		c->text = nt;
		c->text_cap = r->payload_len + 1;
	}
	if (r->payload_len > 0)
		memcpy(c->text, r->payload, r->payload_len);
	c->text[r->payload_len] = '\0';
	if (text != NULL)
		*text = c->text;
	if (len != NULL)
		*len = r->payload_len;
	return SOCKETD_E_OK;
}

int
socketd_info(struct socketd_client *c, const char **text, size_t *len)
{
	struct proto_resp r;
	int rv;

	if ((rv = call_ok(c, SOCKETD_OP_INFO, NULL, 0, &r)) != 0)
		return rv;
	return keep_text(c, &r, text, len);
}

int
socketd_stats(struct socketd_client *c, const char **text, size_t *len)
{
	struct proto_resp r;
	int rv;

	if ((rv = call_ok(c, SOCKETD_OP_STATS, NULL, 0, &r)) != 0)
		return rv;
	return keep_text(c, &r, text, len);
}

int
socketd_time(struct socketd_client *c, uint64_t *ns)
{
	struct proto_resp r;
	int rv;

	if ((rv = call_ok(c, SOCKETD_OP_TIME, NULL, 0, &r)) != 0)
		return rv;
	if (r.payload_len != 8) {
		(void)sd_fail(c, 0, "time: server sent %zu bytes, expected 8",
		    r.payload_len);
		return sd_fail_conn(c, EPROTO);
	}
	if (ns != NULL)
		*ns = (uint64_t)proto_get_u32(r.payload) << 32 |
		    proto_get_u32(r.payload + 4);
	return SOCKETD_E_OK;
}

static int
is_name_byte(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	    ch == '_' || ch == '.';
}

static int
hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/*
 * One OPCODES line p[0..n) (no newline): "0xNN name" or "0xNN name push".
 * Returns the opcode and the name's span, or -1 when malformed.
 */
static int
parse_opcode_line(
    const char *p, size_t n, const char **name, size_t *nlen, int *push)
{
	size_t i;
	int hi, lo;

	*name = NULL;
	*nlen = 0;
	*push = 0;
	if (n < 6 || p[0] != '0' || p[1] != 'x' || p[4] != ' ')
		return -1;
	if ((hi = hexval((unsigned char)p[2])) < 0 ||
	    (lo = hexval((unsigned char)p[3])) < 0)
		return -1;
	for (i = 5; i < n && is_name_byte((unsigned char)p[i]); i++)
		;
	*name = p + 5;
	*nlen = i - 5;
	if (*nlen == 0 || *nlen > NAME_MAX_LEN)
		return -1;
	*push = 0;
	if (i < n) {
		if (n - i != 5 || memcmp(p + i, " push", 5) != 0)
			return -1;
		*push = 1;
	}
	return hi << 4 | lo;
}

/* Ask for OPCODES once per connection and check every line. */
static int
load_opcodes(struct socketd_client *c)
{
	struct proto_resp r;
	const char *p, *end, *nl, *name;
	size_t nlen, line;
	int rv, push;

	if (c->opcodes != NULL)
		return SOCKETD_E_OK;
	if ((rv = sd_roundtrip(c, SOCKETD_OP_OPCODES, NULL, 0, &r)) != 0)
		return rv;
	if (r.status == PROTO_UNKNOWN_OPCODE)
		return sd_fail(c, SOCKETD_E_NO_OPCODES,
		    "the server does not serve OPCODES (opcode 0x05): it "
		    "answered UNKNOWN_OPCODE, so names cannot be resolved "
		    "(a socketd that speaks protocol 1.1 lists them)");
	if (r.status != PROTO_OK)
		return sd_fail(c, SOCKETD_E_SERVER,
		    "opcodes: server answered %s: %.*s",
		    socketd_status_name(r.status),
		    (int)(r.payload_len > 200 ? 200 : r.payload_len),
		    (const char *)r.payload);
	p = (const char *)r.payload;
	end = p + r.payload_len;
	for (line = 1; p < end; line++, p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    parse_opcode_line(
			p, (size_t)(nl - p), &name, &nlen, &push) < 0) {
			(void)sd_fail(c, 0,
			    "opcodes: malformed line %zu in the server's "
			    "answer",
			    line);
			return sd_fail_conn(c, EPROTO);
		}
	}
	if ((c->opcodes = malloc(r.payload_len + 1)) == NULL)
		return sd_fail(c, SOCKETD_E_NOMEM, "out of memory");
	if (r.payload_len > 0)
		memcpy(c->opcodes, r.payload, r.payload_len);
	c->opcodes[r.payload_len] = '\0';
	c->opcodes_len = r.payload_len;
	return SOCKETD_E_OK;
}

int
socketd_opcodes(struct socketd_client *c, const char **text, size_t *len)
{
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = load_opcodes(c)) != 0)
		return rv;
	if (text != NULL)
		*text = c->opcodes;
	if (len != NULL)
		*len = c->opcodes_len;
	return SOCKETD_E_OK;
}

/* Validate a name as PROTOCOL 1.1 spells them. */
static int
check_name(struct socketd_client *c, const char *name)
{
	size_t i, n;

	if (name == NULL || *name == '\0')
		return sd_fail(c, SOCKETD_E_INVALID, "empty opcode name");
	n = strlen(name);
	if (n > NAME_MAX_LEN)
		return sd_fail(c, SOCKETD_E_INVALID,
		    "opcode name of %zu bytes: at most %d", n, NAME_MAX_LEN);
	for (i = 0; i < n; i++)
		if (!is_name_byte((unsigned char)name[i]))
			return sd_fail(c, SOCKETD_E_INVALID,
			    "invalid opcode name '%.64s': expected a-z, 0-9, "
			    "'_' and '.'",
			    name);
	return SOCKETD_E_OK;
}

static int
find_opcode(struct socketd_client *c, const char *name, unsigned *opcode)
{
	const char *p, *end, *nl, *lname;
	size_t nlen, want;
	int op, push, rv;

	if ((rv = check_name(c, name)) != 0)
		return rv;
	if ((rv = load_opcodes(c)) != 0)
		return rv;
	want = strlen(name);
	end = c->opcodes + c->opcodes_len;
	for (p = c->opcodes; p < end; p = nl + 1) {
		/* load_opcodes checked every line; stay careful all the same.
		 */
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		op = parse_opcode_line(
		    p, (size_t)(nl - p), &lname, &nlen, &push);
		if (op < 0 || nlen != want || memcmp(lname, name, want) != 0)
			continue;
		if (push)
			return sd_fail(c, SOCKETD_E_INVALID,
			    "'%s' (0x%02x) is a push: the server sends it, "
			    "a client cannot ask for it",
			    name, (unsigned)op);
		*opcode = (unsigned)op;
		return SOCKETD_E_OK;
	}
	return sd_fail(c, SOCKETD_E_NOT_FOUND,
	    "the server serves no opcode named '%s'", name);
}

int
socketd_opcode(struct socketd_client *c, const char *name, unsigned *opcode)
{
	unsigned op = 0;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = find_opcode(c, name, &op)) != 0)
		return rv;
	if (opcode != NULL)
		*opcode = op;
	return SOCKETD_E_OK;
}

int
socketd_call_name(struct socketd_client *c, const char *name,
    const void *payload, size_t len, unsigned *status, const uint8_t **answer,
    size_t *answer_len)
{
	unsigned op = 0;
	int rv;

	if (c == NULL)
		return SOCKETD_E_INVALID;
	if ((rv = sd_enter(c, 1)) != 0)
		return rv;
	if ((rv = find_opcode(c, name, &op)) != 0)
		return rv;
	return socketd_call(c, op, payload, len, status, answer, answer_len);
}

int
socketd_text_value(const char *text, size_t len, const char *name,
    const char **value, size_t *value_len)
{
	const char *p, *end, *nl, *v;
	size_t n;

	if (text == NULL || name == NULL || *name == '\0' ||
	    strchr(name, ' ') != NULL || strchr(name, '\n') != NULL)
		return SOCKETD_E_INVALID;
	n = strlen(name);
	end = text + len;
	for (p = text; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if ((size_t)(nl - p) > n && memcmp(p, name, n) == 0 &&
		    p[n] == ' ') {
			v = p + n + 1;
			if (value != NULL)
				*value = v;
			if (value_len != NULL)
				*value_len = (size_t)(nl - v);
			return SOCKETD_E_OK;
		}
		if (nl == end)
			break;
	}
	return SOCKETD_E_NOT_FOUND;
}
