/*
 * <socketd/client.h>: libsocketd, the C client library of socketd.
 *
 * One struct socketd_client is one connection to a socketd server, over
 * TCP or TLS, speaking protocol v1 (docs/protocol.md, socketd-protocol(7))
 * with the v1.1 additions: OPCODES name resolution, push frames, GOAWAY
 * and pub/sub; and a non-blocking client for event loops
 * (socketd_async(3)).  Every call blocks for at most the client's timeout
 * (5 seconds unless socketd_set_timeout says otherwise).  Manual:
 * libsocketd(3).
 *
 *	struct socketd_client *c = socketd_new();
 *	if (c == NULL || socketd_connect(c, "127.0.0.1", 7411) != 0)
 *		... socketd_errmsg(c) says why ...
 *	socketd_ping(c);
 *	socketd_free(c);
 *
 * Return convention: every int function returns SOCKETD_E_OK (0) or a
 * negative enum socketd_error; socketd_errmsg(c) then holds one line for
 * people ("connect to 127.0.0.1 port 7411: Connection refused").  Bad
 * arguments are SOCKETD_E_INVALID, never a crash.  The library never
 * exits, never logs, never raises SIGPIPE (it sends with MSG_NOSIGNAL)
 * and never changes signal dispositions.
 *
 * After a failure of the connection itself (SOCKETD_E_TIMEOUT, _CLOSED,
 * _IO, _PROTOCOL, _TLS, _NOMEM) the connection is closed, so a late
 * answer can never be taken for the answer to a later request:
 * socketd_connect again to go on.  (Since 1.1 a GOAWAY, or a close at a
 * request boundary, reconnects by itself: see socketd_set_retry.)
 * SOCKETD_E_SERVER (the server answered an error status),
 * SOCKETD_E_INVALID, SOCKETD_E_NO_OPCODES and SOCKETD_E_NOT_FOUND leave
 * it open.
 *
 * Threads: a client belongs to one thread at a time; different clients
 * may be used at once from different threads.  A child process after
 * fork() must not use its parent's clients (socketd_free them there is
 * fine: it closes only the child's descriptors).
 *
 * ABI: struct socketd_client is opaque and options are set through
 * functions, so the library can grow without breaking programs linked
 * against it; enums only ever gain values.  Programs check the version
 * they run with through socketd_client_version().
 */
#ifndef SOCKETD_CLIENT_H
#define SOCKETD_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define SOCKETD_API __attribute__((visibility("default")))
#else
#define SOCKETD_API
#endif

/* The version of this header; socketd_client_version() the library's. */
#define SOCKETD_CLIENT_VERSION_MAJOR 1
#define SOCKETD_CLIENT_VERSION_MINOR 1
#define SOCKETD_CLIENT_VERSION_PATCH 0
#define SOCKETD_CLIENT_VERSION_NUMBER                                          \
	((SOCKETD_CLIENT_VERSION_MAJOR << 16) |                                \
	    (SOCKETD_CLIENT_VERSION_MINOR << 8) |                              \
	    SOCKETD_CLIENT_VERSION_PATCH)

#define SOCKETD_DEFAULT_PORT       7411
#define SOCKETD_DEFAULT_TIMEOUT_MS 5000
/* The largest answer accepted unless socketd_set_max_frame says more. */
#define SOCKETD_DEFAULT_MAX_FRAME (16u << 20)

/* Opcodes of protocol v1 and v1.1.  Append-only. */
enum socketd_opcode {
	SOCKETD_OP_PING = 0x00,
	SOCKETD_OP_ECHO = 0x01,
	SOCKETD_OP_INFO = 0x02,
	SOCKETD_OP_STATS = 0x03,
	SOCKETD_OP_TIME = 0x04,
	SOCKETD_OP_OPCODES = 0x05,          /* v1.1 */
	SOCKETD_OP_GOAWAY = 0x06,           /* v1.1, push */
	SOCKETD_OP_PUBSUB_SUBSCRIBE = 0x10, /* v1.1 */
	SOCKETD_OP_PUBSUB_UNSUBSCRIBE = 0x11,
	SOCKETD_OP_PUBSUB_PUBLISH = 0x12,
	SOCKETD_OP_PUBSUB_MESSAGE = 0x13, /* push */
	SOCKETD_OP_PUBSUB_NOTICE = 0x14,  /* push */
	SOCKETD_OP_MODULE_FIRST = 0x80    /* 0x80-0xff: loadable modules */
};

/*
 * Status codes in the server's answers.  Append-only; a status this list
 * does not name is an error all the same (socketd_status_name says
 * "UNKNOWN").
 */
enum socketd_status {
	SOCKETD_STATUS_OK = 0,
	SOCKETD_STATUS_UNKNOWN_OPCODE = 1,
	SOCKETD_STATUS_BAD_REQUEST = 2,
	SOCKETD_STATUS_TOO_LARGE = 3,
	SOCKETD_STATUS_BUSY = 4,
	SOCKETD_STATUS_INTERNAL = 5,
	SOCKETD_STATUS_UNSUPPORTED_VERSION = 6,
	SOCKETD_STATUS_DENIED = 7,
	SOCKETD_STATUS_TIMEOUT = 8, /* v1.1 */
	SOCKETD_STATUS_OVERLOADED = 9,
	SOCKETD_STATUS_INVALID_TOPIC = 10,
	SOCKETD_STATUS_FORBIDDEN = 11,
	SOCKETD_STATUS_LIMIT_EXCEEDED = 12,
	SOCKETD_STATUS_NOT_SUBSCRIBED = 13
};

/* What the library's functions return.  Append-only. */
enum socketd_error {
	SOCKETD_E_OK = 0,
	SOCKETD_E_INVALID = -1,        /* bad argument, option or TLS file */
	SOCKETD_E_NOMEM = -2,          /* out of memory */
	SOCKETD_E_CONNECT = -3,        /* name lookup or connect failed */
	SOCKETD_E_TLS = -4,            /* TLS handshake or session failed */
	SOCKETD_E_TIMEOUT = -5,        /* the client's timeout ran out */
	SOCKETD_E_CLOSED = -6,         /* the server closed the connection */
	SOCKETD_E_IO = -7,             /* another socket error */
	SOCKETD_E_PROTOCOL = -8,       /* a malformed or mismatched answer */
	SOCKETD_E_SERVER = -9,         /* the server answered an error status */
	SOCKETD_E_NOT_CONNECTED = -10, /* no connection (or it was closed) */
	SOCKETD_E_NO_OPCODES = -11,    /* the server does not serve OPCODES */
	SOCKETD_E_NOT_FOUND = -12,     /* no opcode or field by that name */
	SOCKETD_E_GOAWAY = -13, /* 1.1: the server is draining the connection */
	SOCKETD_E_CANCELLED = -14 /* 1.1: socketd_async_close or _free came */
};

struct socketd_client;

/*
 * A push frame (status 0, request_id 0: sent unasked, protocol v1.1)
 * seen while waiting for an answer.  payload is valid during the call
 * only.  The handler must not call libsocketd on the same client (such a
 * call returns SOCKETD_E_INVALID).  Without a handler pushes are dropped.
 * Since 1.1, MESSAGE pushes for subscriptions made with socketd_subscribe
 * go to socketd_next_message instead; GOAWAY is handled (and shown here).
 */
typedef void (*socketd_push_fn)(
    void *arg, unsigned opcode, const uint8_t *payload, size_t len);

/* The library's version, as SOCKETD_CLIENT_VERSION_NUMBER encodes it. */
SOCKETD_API unsigned socketd_client_version(void);
/* A fixed English sentence for an enum socketd_error value. */
SOCKETD_API const char *socketd_strerror(int error);
/* "OK", "BAD_REQUEST", ..., or "UNKNOWN" for a status not listed above. */
SOCKETD_API const char *socketd_status_name(unsigned status);

/* A new, unconnected client with default settings; NULL: out of memory. */
SOCKETD_API struct socketd_client *socketd_new(void);
/* Close and free; NULL is fine. */
SOCKETD_API void socketd_free(struct socketd_client *c);

/*
 * Settings, kept across reconnections.  Each returns SOCKETD_E_OK or
 * SOCKETD_E_INVALID.  The timeout bounds the connect, the TLS handshake
 * and each call (0: no bound); the TLS settings apply from the next
 * socketd_connect and setting any of them turns TLS on.  cafile NULL: the
 * system's CAs; keyfile NULL: the key is in certfile.  insecure skips
 * checking the server's certificate (it excludes cafile).
 */
SOCKETD_API int socketd_set_timeout(struct socketd_client *c, int timeout_ms);
SOCKETD_API int socketd_set_max_frame(struct socketd_client *c, size_t bytes);
SOCKETD_API int socketd_set_tls(struct socketd_client *c, int enable);
SOCKETD_API int socketd_set_tls_cafile(
    struct socketd_client *c, const char *cafile);
SOCKETD_API int socketd_set_tls_cert(
    struct socketd_client *c, const char *certfile, const char *keyfile);
SOCKETD_API int socketd_set_tls_insecure(struct socketd_client *c, int enable);
SOCKETD_API int socketd_set_push_handler(
    struct socketd_client *c, socketd_push_fn fn, void *arg);

/*
 * Connect to host (a name, an IPv4 or IPv6 literal, with or without
 * brackets) on port, trying each address in turn within one timeout, then
 * the TLS handshake if TLS is on (the certificate must name host).  An
 * open connection is closed first.
 */
SOCKETD_API int socketd_connect(
    struct socketd_client *c, const char *host, unsigned port);
/* Close the connection, keep the client and its settings. */
SOCKETD_API void socketd_close(struct socketd_client *c);
/* The connection's socket, or -1. */
SOCKETD_API int socketd_fd(const struct socketd_client *c);
/* The last failure's message ("" if none); valid until the next call. */
SOCKETD_API const char *socketd_errmsg(const struct socketd_client *c);
/* The status of the last answer received (SOCKETD_STATUS_OK if none). */
SOCKETD_API unsigned socketd_status(const struct socketd_client *c);
/* "127.0.0.1:7411" or "[::1]:7411" into buf. */
SOCKETD_API int socketd_peer(struct socketd_client *c, char *buf, size_t len);
/* "TLSv1.3" for a TLS connection, NULL otherwise. */
SOCKETD_API const char *socketd_tls_version(const struct socketd_client *c);

/*
 * One request and its answer.  Returns SOCKETD_E_OK when an answer came,
 * whatever its status: *status says (the payload of an error answer is a
 * message for people).  *answer points into the client and stays valid
 * until the next call on c; it is not NUL-terminated.  status, answer and
 * answer_len may be NULL.  Fails with SOCKETD_E_INVALID while pipelined
 * answers are pending.
 */
SOCKETD_API int socketd_call(struct socketd_client *c, unsigned opcode,
    const void *payload, size_t len, unsigned *status, const uint8_t **answer,
    size_t *answer_len);
/* The same, the opcode found by name through OPCODES ("hello.upper"). */
SOCKETD_API int socketd_call_name(struct socketd_client *c, const char *name,
    const void *payload, size_t len, unsigned *status, const uint8_t **answer,
    size_t *answer_len);

/*
 * Pipelining: socketd_send sends a request without waiting (its id in
 * *request_id, which may be NULL); socketd_recv returns the answers in
 * request order, checking each against the request it answers.  Keep
 * batches bounded (a few hundred small requests): the server stops
 * reading once 256 KiB of answers wait for the client, and a send then
 * times out.  socketd_pending: requests sent, not yet answered.
 */
SOCKETD_API int socketd_send(struct socketd_client *c, unsigned opcode,
    const void *payload, size_t len, uint32_t *request_id);
SOCKETD_API int socketd_recv(struct socketd_client *c, uint32_t *request_id,
    unsigned *status, const uint8_t **answer, size_t *answer_len);
SOCKETD_API size_t socketd_pending(const struct socketd_client *c);

/*
 * The built-in requests.  An error status is SOCKETD_E_SERVER, with the
 * status in socketd_status(c) and the server's message in
 * socketd_errmsg(c).  socketd_echo checks that the same bytes came back.
 * Text (INFO, STATS, OPCODES: "name value" lines) is NUL-terminated,
 * owned by c and valid until the next call on c.  *ns: the server's
 * clock, nanoseconds since the Unix epoch.
 */
SOCKETD_API int socketd_ping(struct socketd_client *c);
SOCKETD_API int socketd_echo(
    struct socketd_client *c, const void *data, size_t len);
SOCKETD_API int socketd_info(
    struct socketd_client *c, const char **text, size_t *len);
SOCKETD_API int socketd_stats(
    struct socketd_client *c, const char **text, size_t *len);
SOCKETD_API int socketd_time(struct socketd_client *c, uint64_t *ns);

/*
 * OPCODES (protocol v1.1): the server's list, asked once per connection.
 * A server that does not serve it is SOCKETD_E_NO_OPCODES.
 * socketd_opcode finds a name's opcode (SOCKETD_E_NOT_FOUND if the
 * server serves no request by that name).
 */
SOCKETD_API int socketd_opcodes(
    struct socketd_client *c, const char **text, size_t *len);
SOCKETD_API int socketd_opcode(
    struct socketd_client *c, const char *name, unsigned *opcode);

/*
 * The value of "name value" in INFO or STATS text: *value points into
 * text, *value_len bytes.  SOCKETD_E_NOT_FOUND if no line has that name.
 */
SOCKETD_API int socketd_text_value(const char *text, size_t len,
    const char *name, const char **value, size_t *value_len);

/* ---- Since libsocketd 1.1 (version node LIBSOCKETD_1.1) ---- */

/*
 * GOAWAY and lost connections (blocking client).  A GOAWAY push (the
 * server drains the connection) is noted and the answers still due are
 * read; the next request goes out on a new connection to the same host
 * and port (socketd_subscribe's subscriptions renewed).  A connection the
 * server closed at a request boundary (EOF or reset before any byte of
 * the answer) is replaced and the request sent once more if it is one of
 * the built-ins (ping, echo, info, stats, time, opcodes), which are
 * idempotent; other requests (modules, publish) fail with
 * SOCKETD_E_CLOSED because they may have run, unless socketd_set_retry
 * says they may be sent twice.  socketd_send on a draining connection
 * with answers pending is SOCKETD_E_GOAWAY: read them first.
 */
SOCKETD_API int socketd_set_retry(struct socketd_client *c, int enable);

/*
 * Pub/sub (protocol v1.1, opcodes 0x10-0x14).  Topics are "chat.lobby";
 * filters may use "*" for one token and ">" for the rest.  The library
 * picks each subscription's id and renews the subscriptions on every new
 * connection (socketd_connect after a failure, GOAWAY); socketd_close
 * ends them.  MESSAGE pushes for this client's
 * subscriptions are never taken for answers: they wait in the client
 * (at most 4096; beyond, they are dropped and counted in the next one's
 * lost) until socketd_next_message returns them, in arrival order.
 */
#define SOCKETD_SUB_NO_ECHO 0x01u /* not my own publishes */

/* A message; owned by the library (the struct may grow at its end). */
struct socketd_message {
	uint32_t sub_id;
	uint32_t lost;     /* messages dropped before this one */
	const char *topic; /* NUL-terminated */
	size_t topic_len;
	const uint8_t *data; /* not NUL-terminated */
	size_t len;
};

SOCKETD_API int socketd_subscribe(struct socketd_client *c, const char *filter,
    unsigned flags, uint32_t *sub_id);
/* sub_id 0: all of them.  Queued messages of the subscription go too. */
SOCKETD_API int socketd_unsubscribe(struct socketd_client *c, uint32_t sub_id);
/* *receivers: the subscriptions it was routed to (may be NULL). */
SOCKETD_API int socketd_publish(struct socketd_client *c, const char *topic,
    const void *data, size_t len, uint32_t *receivers);
/*
 * The next message: *m is valid until the next call on c.  Waits up to
 * timeout_ms (0: do not wait; -1: no bound): SOCKETD_E_TIMEOUT if none
 * came, and the connection stays open.  A GOAWAY while waiting: connect
 * again, renew the subscriptions, go on waiting.
 */
SOCKETD_API int socketd_next_message(
    struct socketd_client *c, int timeout_ms, const struct socketd_message **m);

/*
 * The non-blocking client, for programs with their own event loop:
 * socketd_async(3).  It never blocks (but for resolving a host name:
 * give an IP literal to avoid that); the program watches socketd_async_fd
 * for socketd_async_events, calls socketd_async_process when it is ready
 * or socketd_async_timeout has passed, and gets every answer through the
 * callback given with its request.
 */
struct socketd_async;

#define SOCKETD_WANT_READ  0x01u
#define SOCKETD_WANT_WRITE 0x02u

/*
 * An answer.  result SOCKETD_E_OK: answer[0..len) came with status (an
 * error status's payload is a message).  Otherwise no answer will come:
 * the connection failed (SOCKETD_E_CLOSED, _TIMEOUT, _PROTOCOL, ...) or
 * the program closed or freed the client (SOCKETD_E_CANCELLED).  Each
 * callback is called exactly once.  answer is valid during the call.
 */
typedef void (*socketd_answer_fn)(struct socketd_async *a, int result,
    unsigned status, const uint8_t *answer, size_t len, void *arg);
/* A MESSAGE push; m is valid during the call. */
typedef void (*socketd_message_fn)(
    struct socketd_async *a, const struct socketd_message *m, void *arg);

/* What the event handler hears about the connection. */
enum socketd_async_event {
	SOCKETD_EV_CONNECTED = 1, /* connected (TLS handshake done) */
	SOCKETD_EV_GOAWAY = 2,    /* value: grace_ms; text: the reason */
	SOCKETD_EV_NOTICE = 3,    /* pubsub.notice; value: its reason */
	SOCKETD_EV_CLOSED = 4     /* value: the error; text: why */
};
typedef void (*socketd_event_fn)(
    struct socketd_async *a, int event, int value, const char *text, void *arg);

/*
 * A new, unconnected client with the timeout, max frame and TLS settings
 * of settings (NULL: the defaults).  NULL: out of memory.
 */
SOCKETD_API struct socketd_async *socketd_async_new(
    const struct socketd_client *settings);
/* Cancel what is pending (SOCKETD_E_CANCELLED), close and free. */
SOCKETD_API void socketd_async_free(struct socketd_async *a);
SOCKETD_API int socketd_async_set_handlers(struct socketd_async *a,
    socketd_event_fn on_event, socketd_message_fn on_message, void *arg);
/* Start connecting; requests may be queued at once. */
SOCKETD_API int socketd_async_connect(
    struct socketd_async *a, const char *host, unsigned port);
/* Cancel what is pending (SOCKETD_E_CANCELLED) and close. */
SOCKETD_API void socketd_async_close(struct socketd_async *a);
SOCKETD_API int socketd_async_fd(const struct socketd_async *a);
SOCKETD_API unsigned socketd_async_events(const struct socketd_async *a);
/* Milliseconds until socketd_async_process is due anyway, or -1. */
SOCKETD_API int socketd_async_timeout(const struct socketd_async *a);
/*
 * Do what can be done without blocking: connect, write, read, call the
 * callbacks, expire timeouts.  SOCKETD_E_OK, or the error that closed the
 * connection (the callbacks have had it).
 */
SOCKETD_API int socketd_async_process(struct socketd_async *a);
SOCKETD_API const char *socketd_async_errmsg(const struct socketd_async *a);
/* Requests sent or queued, not yet answered. */
SOCKETD_API size_t socketd_async_pending(const struct socketd_async *a);

/*
 * Queue a request; fn (may be NULL) gets its answer.  *request_id may be
 * NULL.  SOCKETD_E_GOAWAY once the server drains the connection.
 */
SOCKETD_API int socketd_async_send(struct socketd_async *a, unsigned opcode,
    const void *payload, size_t len, socketd_answer_fn fn, void *arg,
    uint32_t *request_id);
/*
 * Pub/sub requests; the answer's payload is a big-endian u32: the
 * subscriptions left (subscribe, unsubscribe) or the receivers (publish).
 */
SOCKETD_API int socketd_async_subscribe(struct socketd_async *a,
    const char *filter, unsigned flags, socketd_answer_fn fn, void *arg,
    uint32_t *sub_id);
SOCKETD_API int socketd_async_unsubscribe(
    struct socketd_async *a, uint32_t sub_id, socketd_answer_fn fn, void *arg);
SOCKETD_API int socketd_async_publish(struct socketd_async *a,
    const char *topic, const void *data, size_t len, socketd_answer_fn fn,
    void *arg);

#ifdef __cplusplus
}
#endif

#endif /* SOCKETD_CLIENT_H */
