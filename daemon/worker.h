/*
 * worker: the body of each pool thread, an epoll loop over the
 * non-blocking connections handed to it (memcached's model).  A request is
 * read, decoded, handled and answered on this one thread.
 */
#ifndef SOCKETD_WORKER_H
#define SOCKETD_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "dispatch.h"
#include "inbox.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "proto.h"
#include "server.h"

struct worker {
	struct server *srv;
	struct pool_worker *pw;
	int epfd;
	struct server_cfg *sc; /* our reference to the config in force */
	uint64_t gen;
	uint64_t now; /* monotonic ms, read once per loop iteration */

	/* Timer lists, each ordered by its timestamp (see conn.h). */
	struct clist all;   /* every connection, by t_active: idle timeout */
	struct clist rd;    /* partial frame pending, by t_read */
	struct clist wr;    /* output pending, by t_write */
	struct clist lg;    /* lingering after our FIN, by t_linger */
	struct clist hs;    /* TLS handshake in progress, by t_read */
	struct clist ready; /* complete frames buffered, not yet answered */

	uint8_t *rbuf; /* scratch input for one read */
	uint8_t *obuf; /* scratch output for one batch of responses */
	size_t obuf_len, obuf_cap;

	struct proto_ctx pctx;
	int draining;
	uint64_t drain_deadline;     /* 0: none */
	struct log_ratelimit rl_tls; /* handshake failures */
	struct wstats st;

	/* Modules (dispatch.h). */
	unsigned index;
	struct inbox inbox;
	struct inbox_msg *local_head, *local_tail; /* replies made here */
	struct conn_ext *answered; /* answers came in: write once per batch */
	struct sd_req *hto_head, *hto_tail; /* pending, by t_start */
	struct sd_req *sreq;                /* the SD_SYNC request, reused */
	struct sd_req *slot;    /* dispatch_slot() until its commit */
	pthread_mutex_t ids_mu; /* the id table: written here, read by push */
	struct conn_ext **ids;
	size_t ids_mask, nids;
	uint64_t next_id;
	int oom; /* a reply made in serve() ran out of memory */
	struct log_ratelimit rl_slow;
	struct hstats hst;

	/* Metrics (metrics.h) and the drain (GOAWAY). */
	struct wmetrics *met; /* owned */
	uint64_t t_batch_ns;  /* start of the batch being served */
	uint8_t hops[64];     /* its built-in requests' opcodes */
	unsigned nh;
	uint64_t goaway_until; /* 0: not in the GOAWAY grace period */
	uint32_t goaway_grace_ms;
};

/*
 * For dispatch.c: the worker's output path.  worker_out_room/commit add
 * to c's pending output (the scratch buffer when nothing is pending);
 * worker_settle flushes and re-arms c, worker_serve_buffered serves what
 * c has buffered first.  Both return 0 or WORKER_CLOSED (c is gone).
 */
#define WORKER_CLOSED (-2)
uint8_t *worker_out_room(struct worker *w, struct conn *c, size_t need);
void worker_out_commit(struct worker *w, struct conn *c, size_t n);
int worker_settle(struct worker *w, struct conn *c);
int worker_serve_buffered(struct worker *w, struct conn *c);
/* Close and free c now (pub/sub: a slow consumer's last second is up). */
void worker_close(struct worker *w, struct conn *c);

/*
 * Allocate the workers' state and epoll sets (before the pool and the
 * acceptor start); 0, or -1 with errno set.
 */
int worker_init(struct worker *w, struct server *srv);
void worker_fini(struct worker *w);

/* pool_worker_fn: arg is the struct server. */
void worker_main(struct pool_worker *pw, void *arg);

#endif /* SOCKETD_WORKER_H */
