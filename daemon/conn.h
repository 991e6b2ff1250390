/*
 * conn: one client connection.
 *
 * Ownership: the acceptor creates a conn (conn_new) and hands it to the
 * pool; from the moment a worker takes it, that worker alone reads,
 * writes, times out, closes and frees it (conn_free), exactly once.  No
 * lock protects a conn because no other thread ever touches it.
 *
 * Memory: an idle connection holds only this struct.  Input and output
 * buffers are allocated when there are bytes to hold past one event (a
 * partial frame, output the socket did not take) and freed as soon as they
 * are empty: the worker's scratch buffers carry the common case.
 */
#ifndef SOCKETD_CONN_H
#define SOCKETD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

struct conn;

/* An intrusive doubly linked list node; a list head is a node too. */
struct clink {
	struct conn *prev, *next;
};

struct clist {
	struct conn *head, *tail;
	size_t len;
};

enum conn_flags {
	CONN_EOF = 1 << 0,       /* the peer half-closed: no more input */
	CONN_DRAIN = 1 << 1,     /* answer what is buffered, then close */
	CONN_LINGER = 1 << 2,    /* FIN sent: discard input until EOF */
	CONN_CLOSE = 1 << 3,     /* close once output is flushed */
	CONN_READY = 1 << 4,     /* on the worker's ready list */
	CONN_THROTTLED = 1 << 5, /* reading paused: output over the cap */
	CONN_WANT_OUT = 1 << 6,  /* registered for EPOLLOUT */
	CONN_NO_IN = 1 << 7,     /* not registered for EPOLLIN */
	CONN_IN_RD = 1 << 8,     /* on the read-timeout list */
	CONN_IN_WR = 1 << 9,     /* on the write-timeout list */
	CONN_IN_LG = 1 << 10,    /* on the linger list */
	/* TLS (daemon/tls.h); rare states, so the plain path tests none. */
	CONN_TLS = 1 << 11,         /* accepted on a tls:// listener */
	CONN_HANDSHAKE = 1 << 12,   /* handshake in progress */
	CONN_IN_HS = 1 << 13,       /* on the handshake-timeout list */
	CONN_RD_WANT_OUT = 1 << 14, /* a read waits for writability */
	CONN_WR_WANT_IN = 1 << 15,  /* a write waits for input */
	CONN_IO_MORE = 1 << 16,     /* ready: the transport holds input */
	CONN_HELD = 1 << 17,        /* reading paused: max_inflight */
	CONN_KEEP_OUT = 1 << 18,    /* keep the emptied output buffer (psub) */
};

struct conn_ext;

struct conn {
	int fd;
	uint32_t flags;
	const struct conn_io *io;
	void *io_ctx;

	uint8_t src[16];      /* peer address, IPv4 as ::ffff:a.b.c.d */
	uint8_t src_counted;  /* counted in the server's srclimit table */
	uint8_t listener;     /* index of the listener it came in on */
	uint16_t port;        /* the peer's port */
	struct conn_ext *ext; /* module requests (dispatch.h); NULL: none */

	uint8_t *in; /* unparsed input, from in[in_off] for in_len bytes */
	uint32_t in_off, in_len, in_cap;
	uint8_t *out; /* unsent output, from out[out_off] for out_len bytes */
	uint32_t out_off, out_len, out_cap;

	/*
	 * Monotonic milliseconds, each ordering one timer list.  A TLS
	 * connection is on the handshake list before it can have a partial
	 * frame: that list uses t_read and l_rd too.
	 */
	uint64_t t_active; /* last byte received: the idle list */
	uint64_t t_read;   /* first byte of the pending frame: read list */
	uint64_t t_write;  /* output became pending: write list */
	uint64_t t_linger; /* FIN sent: linger list */
	struct clink l_all, l_rd, l_wr, l_lg, l_rdy;
};

/*
 * A new connection on fd with the plain transport, or NULL.  A worker
 * switches a CONN_TLS connection to io_tls when it takes it.
 */
struct conn *conn_new(int fd);
/* Close the transport and free everything the conn holds. */
void conn_free(struct conn *c);

/* Reserve room for n more bytes of output / input; 0 or -1 (no memory). */
int conn_out_reserve(struct conn *c, size_t n);
int conn_in_append(struct conn *c, const uint8_t *p, size_t n);
/*
 * The unsent part of a scratch buffer of whole frames (len bytes, the
 * first sent of them written): copied from the start of the frame in
 * progress so that c->out[0] starts a frame; 0 or -1 (no memory).
 */
int conn_out_keep(struct conn *c, const uint8_t *p, size_t len, size_t sent);
/*
 * Drop the unsent output after the first frame boundary at least keep
 * bytes past what was sent (the frame in progress always stays, so the
 * peer never sees a torn frame).  Returns the bytes dropped, *frames the
 * frames among them.
 */
size_t conn_out_discard(struct conn *c, size_t keep, unsigned *frames);
/* The peer's address as text for the log ("?" if it cannot be shown). */
const char *conn_peer_str(const struct conn *c, char *buf, size_t len);
/* Drop consumed input / sent output; frees an emptied buffer. */
void conn_in_consume(struct conn *c, size_t n);
void conn_out_consume(struct conn *c, size_t n);

/* Intrusive lists; the link field is chosen by offset. */
#define CLINK(c, off) ((struct clink *)((char *)(c) + (off)))
void clist_push_tail(struct clist *l, struct conn *c, size_t off);
void clist_remove(struct clist *l, struct conn *c, size_t off);

#endif /* SOCKETD_CONN_H */
