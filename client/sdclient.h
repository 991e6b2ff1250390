/*
 * sdclient: the client side of socketd protocol v1 over a blocking TCP
 * socket with timeouts, or over TLS (OpenSSL 3, client/sdtls.c).  Shared
 * by socketd-cli and the integration tests.
 *
 * Return convention: 0 on success, -1 on failure with a one-line message
 * in the caller's char err[SDC_ERRLEN] (never a bare errno).  Nothing here
 * exits or logs.  TLS connections write with write(2): a program that
 * uses them ignores SIGPIPE.
 */
#ifndef SOCKETD_SDCLIENT_H
#define SOCKETD_SDCLIENT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define SDC_ERRLEN 256
/* The initial c->max_frame; set c->max_frame after connecting to change. */
#define SDC_MAX_FRAME_DEFAULT (16u << 20)

struct sdc_tls_conn;

struct sdc {
	int fd;
	struct sdc_tls_conn *tls; /* NULL: plain TCP; owned */
	int timeout_ms;           /* for connect, each send and each receive */
	uint32_t next_id;         /* request_id of the next sdc_call */
	uint8_t *buf;             /* receive buffer (owned) */
	size_t buf_len;           /* bytes held */
	size_t buf_cap;
	size_t max_frame; /* largest response body accepted */
	/*
	 * The server sent GOAWAY (protocol v1.1 push 0x06): it serves this
	 * connection for goaway_grace_ms more; sdc_call refuses new
	 * requests on it (errno ESHUTDOWN): close it and connect again.
	 */
	int goaway;
	uint32_t goaway_grace_ms;
};

/*
 * Connect to host:port (a name, an IPv4 or an IPv6 literal, with or without
 * brackets), trying each address getaddrinfo returns.  timeout_ms bounds
 * the connect and every later I/O call (0: no timeout).
 */
int sdc_connect(struct sdc *c, const char *host, const char *port,
    int timeout_ms, char *err);

/* TLS: what socketd-cli's --tls, --cafile, --insecure, --cert, --key say. */
struct sdc_tls_opts {
	const char *cafile;   /* CAs to check the server with; NULL: system */
	const char *certfile; /* client certificate (mutual TLS), or NULL */
	const char *keyfile;  /* its private key; NULL: in certfile */
	int insecure;         /* do not check the server's certificate */
};

/* A client TLS context, shared by any number of connections. */
struct sdc_tls;

/* Load the files o names; NULL with err filled ("CA file x: ..."). */
struct sdc_tls *sdc_tls_new(const struct sdc_tls_opts *o, char *err);
/* Drop it; connections made from it keep what they need.  NULL is fine. */
void sdc_tls_free(struct sdc_tls *t);

/*
 * sdc_connect, then a TLS handshake bounded by another timeout_ms.
 * Unless tls is insecure, the server's certificate must be signed by a
 * trusted CA and name host (an IP literal: an IP address entry in
 * subjectAltName).  tls NULL: plain sdc_connect.  The socket is left
 * non-blocking.
 */
int sdc_connect_tls(struct sdc *c, const char *host, const char *port,
    int timeout_ms, struct sdc_tls *tls, char *err);

/*
 * The TLS half of sdc_connect_tls on a connected c: a handshake bounded
 * by c->timeout_ms, checking the certificate against host.  On failure c
 * is closed and errno is ETIMEDOUT (timeout), EPROTO (the handshake
 * failed) or another value from the socket or memory.
 */
int sdc_start_tls(struct sdc *c, const char *host, const char *port,
    struct sdc_tls *tls, char *err);

/*
 * For a TLS connection: "TLSv1.3 TLS_AES_256_GCM_SHA384, server
 * certificate /CN=name serial 03E9" in buf.  -1 for plain TCP.
 */
int sdc_tls_describe(const struct sdc *c, char *buf, size_t len);

/*
 * TLS sessions on non-blocking sockets, for event loops (bench).  read
 * and write are recv/send-like: bytes, 0 at the end of the stream (read),
 * -1 with errno EAGAIN when the session waits (sdc_tls_conn_want says for
 * SDC_WANT_READ, input, or SDC_WANT_WRITE, room to write; a read may wait
 * to write), or -1 with errno and err (may be NULL) describing a failure.
 * handshake: 1 done, 0 call again when want() says, -1 failed.
 * pending: input already decrypted or buffered that poll() would not
 * report.  free sends close_notify if it can and frees the session; the
 * caller closes fd.
 */
#define SDC_WANT_READ  1u
#define SDC_WANT_WRITE 2u
struct sdc_tls_conn *sdc_tls_conn_new(
    struct sdc_tls *t, int fd, const char *host, char *err);
int sdc_tls_conn_handshake(struct sdc_tls_conn *s, char *err);
ssize_t sdc_tls_conn_read(
    struct sdc_tls_conn *s, void *buf, size_t len, char *err);
ssize_t sdc_tls_conn_write(
    struct sdc_tls_conn *s, const void *buf, size_t len, char *err);
unsigned sdc_tls_conn_want(const struct sdc_tls_conn *s);
int sdc_tls_conn_pending(const struct sdc_tls_conn *s);
/* Version and cipher, the server certificate's subject and serial. */
int sdc_tls_conn_describe(const struct sdc_tls_conn *s, char *buf, size_t len);
/* "TLSv1.3" */
const char *sdc_tls_conn_version(const struct sdc_tls_conn *s);
void sdc_tls_conn_free(struct sdc_tls_conn *s);

/*
 * Wrap an already connected stream socket (a socketpair end, an fd from
 * elsewhere): initialise every field of *c as sdc_connect does.  Ownership
 * of fd passes to c; fd -1 makes a closed sdc.
 */
void sdc_attach(struct sdc *c, int fd, int timeout_ms);

/*
 * Close the connection and free the buffer; accepts a closed sdc (one that
 * sdc_connect failed on, or that sdc_attach was given -1).
 */
void sdc_close(struct sdc *c);

/* Send raw bytes (a request built by hand, a partial frame...). */
int sdc_send_raw(struct sdc *c, const void *buf, size_t len, char *err);

/* Encode and send one request with the given request_id. */
int sdc_send(struct sdc *c, uint8_t opcode, uint32_t request_id,
    const void *payload, size_t len, char *err);

/*
 * Receive one response frame.  *resp points into c's buffer and stays
 * valid until the next call on c.  Fails on timeout, on EOF ("connection
 * closed by server"), on a malformed frame, on a frame of another protocol
 * version and on one larger than c->max_frame.  Bytes received before a
 * timeout are kept: a later sdc_recv goes on from there.
 */
int sdc_recv(struct sdc *c, struct proto_resp *resp, char *err);

/*
 * sdc_send and sdc_recv bounded by one deadline shared by several calls:
 * sdc_deadline(c) is now + c->timeout_ms on the monotonic clock (-1: no
 * timeout).  libsocketd makes a round trip of them, with the push frames
 * it skips inside the same bound.
 */
int64_t sdc_deadline(const struct sdc *c);
int sdc_send_until(struct sdc *c, uint8_t opcode, uint32_t request_id,
    const void *payload, size_t len, int64_t deadline, char *err);
int sdc_recv_until(
    struct sdc *c, struct proto_resp *resp, int64_t deadline, char *err);

/*
 * One round trip: send a request with the next request_id, receive the
 * response and check that its version, opcode and request_id match.
 * Returns 0 when a response arrived (whatever its status: check
 * resp->status), -1 otherwise.  timeout_ms bounds the whole round trip.
 * An error response with request_id 0 (BUSY on a refused connection, sent
 * before the server closes) is accepted as the answer, even when sending
 * the request failed because the server had already closed.  Push frames
 * (status OK, request_id 0) before the answer are skipped; a GOAWAY among
 * them sets c->goaway, after which sdc_call fails with ESHUTDOWN before
 * sending anything.  After a
 * failure other than an error status, close the connection: a late
 * response would not match the next request.
 */
int sdc_call(struct sdc *c, uint8_t opcode, const void *payload, size_t len,
    struct proto_resp *resp, char *err);

/*
 * The numeric address of the peer, "127.0.0.1:7411" or "[::1]:7411", in
 * buf[0..len).
 */
int sdc_peer(const struct sdc *c, char *buf, size_t len, char *err);

/*
 * Helpers for the library and its callers: strerror_r (the XSI flavour)
 * into buf, or "error N", returning buf; and a printf into a caller's
 * err[SDC_ERRLEN] (err may be NULL).
 */
const char *sdc_strerror(int e, char *buf, size_t len);
void sdc_seterr(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* SOCKETD_SDCLIENT_H */
