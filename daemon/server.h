/*
 * server: the running daemon's shared state: the current configuration,
 * the pool, the acceptor and the counters that STATS reports.
 *
 * Configuration: the current config is an immutable, refcounted struct
 * server_cfg.  server_cfg_get() takes a reference under cfg_mu (a leaf
 * lock held for a pointer copy and an increment); the reload path builds a
 * new one, swaps it in under cfg_mu and bumps cfg_gen, so a worker notices
 * a reload with one relaxed load per loop iteration and takes the new
 * reference then.  The old config is freed by whoever drops the last
 * reference (OpenBSD's "parse new, then purge old").
 *
 * Counters: each thread owns its counters (struct wstats in each worker,
 * struct astats in the acceptor) and updates them with relaxed atomic
 * stores; STATS sums them with relaxed loads.  No lock and no locked
 * instruction is on the request path.  Only connections_current is a
 * shared atomic (the acceptor checks it against max_connections), and it
 * changes once per connection, not per request.
 */
#ifndef SOCKETD_SERVER_H
#define SOCKETD_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "pool.h"

struct tls_ctx;

/*
 * The configuration and what was built from it: the TLS context (NULL
 * without tls:// listeners), loaded and published together on reload.
 */
struct server_cfg {
	struct cfg c;
	struct tls_ctx *tls; /* owned; connections hold their own refs */
	int refs;            /* atomic */
};

/* One thread writes, any thread reads: single-writer relaxed counters. */
#define STAT_ADD(field, n)                                                     \
	__atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define STAT_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define STAT_GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

struct wstats {
	uint64_t connections; /* connections this worker took */
	uint64_t connections_now;
	uint64_t requests;
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t timeouts_idle;
	uint64_t timeouts_read;
	uint64_t timeouts_write;
	uint64_t timeouts_shutdown;
	uint64_t too_large;
	uint64_t bad_request;
	uint64_t unknown_opcode;
	uint64_t bad_version;
	uint64_t output_throttled; /* reading paused for the output cap */
	uint64_t resets;           /* connections lost to an I/O error */
	uint64_t tls_handshakes;   /* completed */
	uint64_t tls_handshake_failures;
	uint64_t tls_handshake_timeouts;
	uint64_t loop_ms;     /* heartbeat: w->now each turn; 0: exited */
	uint64_t goaway_sent; /* GOAWAY pushes written */
} __attribute__((aligned(64)));

struct astats {
	uint64_t accepted;
	uint64_t rejected_max_conn; /* BUSY: max_connections */
	uint64_t rejected_no_fd;    /* BUSY: EMFILE/ENFILE, spare fd */
	uint64_t rejected_dropped;  /* closed without an answer */
	uint64_t paused_fd;         /* times accepting paused: no fd */
	uint64_t paused_queue;      /* times accepting paused: queue full */
	uint64_t paused_ms;         /* total time paused */
	uint64_t paused_now;        /* 1 while paused */
	uint64_t accept_errors;
	uint64_t rejected_denied;     /* DENIED: access control */
	uint64_t rejected_per_source; /* BUSY: max_connections_per_source */
} __attribute__((aligned(64)));

struct worker;
struct acceptor;
struct modreg;
struct pool_runner;
struct psub;

struct server {
	const char *cfg_path;
	pthread_mutex_t cfg_mu; /* protects cfg; leaf lock */
	struct server_cfg *cfg;
	uint64_t cfg_gen; /* atomic; bumped after each swap */

	struct pool *pool;
	struct worker *workers; /* nworkers of them, indexed like the pool */
	unsigned nworkers;
	struct acceptor *acc;
	struct srclimit *src;       /* connections per client address */
	struct modreg *mods;        /* the dispatch table; read-only */
	struct pool_runner *runner; /* SD_BLOCKING handlers; may be NULL */
	struct psub *ps;            /* pub/sub (psub.h); NULL: disabled */
	struct procs *procs;        /* handler processes; NULL: none */
	size_t tls_listeners;       /* how many listeners serve TLS */

	int conns_current; /* atomic */
	struct astats astats;
	uint64_t reloads, reload_failures; /* main thread only */
	uint64_t start_mono_ms;
	uint64_t start_real_s;
	uint64_t stop_mono_ms; /* atomic; 0 until shutdown starts */
	/*
	 * Drain (timeouts.drain): set by the main thread on SIGTERM, read
	 * by the admin thread (/readyz, the agent) and the workers.
	 */
	int draining;            /* atomic */
	uint64_t drain_start_ms; /* atomic; monotonic */
	struct admin *admin;     /* the admin listeners' thread, or NULL */
	/*
	 * Test hook: $SOCKETD_TEST_SLOW_WORKER_MS makes a worker sleep that
	 * long before taking each new connection, so that tests can fill
	 * the hand-off queue.  Read once at start-up; 0 in production.
	 */
	unsigned test_slow_worker_ms;
};

/* Take and drop a reference to the current configuration. */
struct server_cfg *server_cfg_get(struct server *s);
void server_cfg_put(struct server_cfg *sc);
/* Publish a new configuration (takes ownership of the reference). */
void server_cfg_publish(struct server *s, struct server_cfg *sc);
/*
 * Wrap a loaded cfg in a refcounted server_cfg (refs = 1), or NULL; set
 * ->tls afterwards (the server_cfg frees it).
 */
struct server_cfg *server_cfg_new(struct cfg *c);

uint64_t now_mono_ms(void);
uint64_t now_real_ns(void);

/* STATS and INFO text (proto_ctx callbacks; arg is the struct server). */
size_t server_stats_text(void *arg, char *buf, size_t cap);
size_t server_info_text(void *arg, char *buf, size_t cap);
size_t server_opcodes_text(void *arg, char *buf, size_t cap);
uint64_t server_now_ns(void *arg);
/*
 * Start-up and stop (main thread; exit through fatal() on failure):
 * the blocking-handler threads and every module's init(), then the
 * workers' state, epoll sets and threads; after pool_join(), the
 * workers' buffers and epoll sets.
 */
void server_start_modules(struct server *s);
void server_start_workers(struct server *s);
void server_stop_workers(struct server *s);

/* Requests answered so far, summed over the workers. */
uint64_t server_requests_total(const struct server *s);

#endif /* SOCKETD_SERVER_H */
