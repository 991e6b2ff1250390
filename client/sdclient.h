/*
 * sdclient: the client side of socketd protocol v1 over a blocking TCP
 * socket with timeouts.  Shared by socketd-cli and the integration tests.
 *
 * Return convention: 0 on success, -1 on failure with a one-line message
 * in the caller's char err[SDC_ERRLEN] (never a bare errno).  Nothing here
 * exits or logs.
 */
#ifndef SOCKETD_SDCLIENT_H
#define SOCKETD_SDCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define SDC_ERRLEN 256
/* The initial c->max_frame; set c->max_frame after connecting to change. */
#define SDC_MAX_FRAME_DEFAULT (16u << 20)

struct sdc {
	int fd;
	int timeout_ms;   /* for connect, each send and each receive */
	uint32_t next_id; /* request_id of the next sdc_call */
	uint8_t *buf;     /* receive buffer (owned) */
	size_t buf_len;   /* bytes held */
	size_t buf_cap;
	size_t max_frame; /* largest response body accepted */
};

/*
 * Connect to host:port (a name, an IPv4 or an IPv6 literal, with or without
 * brackets), trying each address getaddrinfo returns.  timeout_ms bounds
 * the connect and every later I/O call (0: no timeout).
 */
int sdc_connect(struct sdc *c, const char *host, const char *port,
    int timeout_ms, char *err);

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
 * One round trip: send a request with the next request_id, receive the
 * response and check that its version, opcode and request_id match.
 * Returns 0 when a response arrived (whatever its status: check
 * resp->status), -1 otherwise.  timeout_ms bounds the whole round trip.
 * An error response with request_id 0 (BUSY on a refused connection, sent
 * before the server closes) is accepted as the answer, even when sending
 * the request failed because the server had already closed.  After a
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

#endif /* SOCKETD_SDCLIENT_H */
