#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <string.h>

#include "acceptor.h"
#include "dispatch.h"
#include "log.h"
#include "runner.h"
#include "procs.h"
#include "psub.h"
#include "module.h"
#include "proto.h"
#include "server.h"
#include "srclimit.h"
#include "tls.h"
#include "worker.h"

uint64_t
now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct server_cfg *
server_cfg_new(struct cfg *c)
{
	struct server_cfg *sc;

	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	sc->c = *c; /* takes over the strings */
	sc->refs = 1;
	return sc;
}

struct server_cfg *
server_cfg_get(struct server *s)
{
	struct server_cfg *sc;

	pthread_mutex_lock(&s->cfg_mu);
	sc = s->cfg;
	__atomic_fetch_add(&sc->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&s->cfg_mu);
	return sc;
}

void
server_cfg_put(struct server_cfg *sc)
{
	if (sc == NULL)
		return;
	if (__atomic_sub_fetch(&sc->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		cfg_free(&sc->c);
		tls_ctx_free(sc->tls);
		free(sc);
	}
}

void
server_cfg_publish(struct server *s, struct server_cfg *sc)
{
	struct server_cfg *old;

	pthread_mutex_lock(&s->cfg_mu);
	old = s->cfg;
	s->cfg = sc;
	pthread_mutex_unlock(&s->cfg_mu);
	__atomic_add_fetch(&s->cfg_gen, 1, __ATOMIC_RELEASE);
	server_cfg_put(old);
}

uint64_t
server_now_ns(void *arg)
{
	(void)arg;
	return now_real_ns();
}

size_t
server_info_text(void *arg, char *buf, size_t cap)
{
	struct server *s = arg;
	struct server_cfg *sc = server_cfg_get(s);
	size_t off = 0;

	proto_kv_str(buf, cap, &off, "version", SOCKETD_VERSION);
	proto_kv_u64(buf, cap, &off, "protocol", PROTO_VERSION);
	proto_kv_u64(buf, cap, &off, "protocol_minor", PROTO_MINOR);
	proto_kv_u64(buf, cap, &off, "pid", (uint64_t)getpid());
	proto_kv_u64(buf, cap, &off, "uptime_seconds",
	    (now_mono_ms() - s->start_mono_ms) / 1000);
	proto_kv_u64(buf, cap, &off, "started_unix", s->start_real_s);
	proto_kv_u64(buf, cap, &off, "workers", s->nworkers);
	proto_kv_u64(buf, cap, &off, "queue_size", sc->c.queue_size);
	proto_kv_u64(buf, cap, &off, "max_connections", sc->c.max_connections);
	proto_kv_u64(buf, cap, &off, "max_frame_size", sc->c.max_frame_size);
	server_cfg_put(sc);
	psub_info_text(s, buf, cap, &off);
	return off;
}

size_t
server_stats_text(void *arg, char *buf, size_t cap)
{
	struct server *s = arg;
	struct wstats sum = {0};
	struct pool_stats ps;
	const struct astats *as = &s->astats;
	uint64_t rejected;
	size_t off = 0;
	unsigned i;

	for (i = 0; i < s->nworkers; i++) {
		const struct wstats *w = &s->workers[i].st;

		sum.requests += STAT_GET(w->requests);
		sum.bytes_received += STAT_GET(w->bytes_received);
		sum.bytes_sent += STAT_GET(w->bytes_sent);
		sum.timeouts_idle += STAT_GET(w->timeouts_idle);
		sum.timeouts_read += STAT_GET(w->timeouts_read);
		sum.timeouts_write += STAT_GET(w->timeouts_write);
		sum.timeouts_shutdown += STAT_GET(w->timeouts_shutdown);
		sum.too_large += STAT_GET(w->too_large);
		sum.bad_request += STAT_GET(w->bad_request);
		sum.unknown_opcode += STAT_GET(w->unknown_opcode);
		sum.bad_version += STAT_GET(w->bad_version);
		sum.output_throttled += STAT_GET(w->output_throttled);
		sum.resets += STAT_GET(w->resets);
		sum.tls_handshakes += STAT_GET(w->tls_handshakes);
		sum.tls_handshake_failures +=
		    STAT_GET(w->tls_handshake_failures);
		sum.tls_handshake_timeouts +=
		    STAT_GET(w->tls_handshake_timeouts);
	}
	pool_stats(s->pool, &ps);
	rejected = STAT_GET(as->rejected_max_conn) +
	    STAT_GET(as->rejected_no_fd) + STAT_GET(as->rejected_denied) +
	    STAT_GET(as->rejected_per_source);

#define KV(name, v) proto_kv_u64(buf, cap, &off, name, v)
	KV("connections_current",
	    (uint64_t)__atomic_load_n(&s->conns_current, __ATOMIC_RELAXED));
	KV("connections_total", STAT_GET(as->accepted) + rejected);
	KV("connections_accepted", STAT_GET(as->accepted));
	KV("connections_rejected", rejected);
	KV("rejected_max_connections", STAT_GET(as->rejected_max_conn));
	KV("rejected_no_descriptors", STAT_GET(as->rejected_no_fd));
	KV("rejected_denied", STAT_GET(as->rejected_denied));
	KV("rejected_per_source", STAT_GET(as->rejected_per_source));
	KV("rejected_dropped", STAT_GET(as->rejected_dropped));
	KV("sources_current", s->src != NULL ? srclimit_sources(s->src) : 0);
	KV("requests_total", sum.requests);
	KV("bytes_received", sum.bytes_received);
	KV("bytes_sent", sum.bytes_sent);
	KV("errors_bad_request", sum.bad_request);
	KV("errors_unknown_opcode", sum.unknown_opcode);
	KV("errors_unsupported_version", sum.bad_version);
	KV("errors_too_large", sum.too_large);
	KV("connections_reset", sum.resets);
	KV("timeouts_idle", sum.timeouts_idle);
	KV("timeouts_read", sum.timeouts_read);
	KV("timeouts_write", sum.timeouts_write);
	KV("timeouts_shutdown", sum.timeouts_shutdown);
	KV("output_throttled", sum.output_throttled);
	KV("tls_handshakes", sum.tls_handshakes);
	KV("tls_handshake_failures", sum.tls_handshake_failures);
	KV("tls_handshake_timeouts", sum.tls_handshake_timeouts);
	KV("queue_depth", ps.depth);
	KV("queue_high_water", ps.high_water);
	KV("queue_full", ps.refused);
	KV("accept_paused_now", STAT_GET(as->paused_now));
	KV("accept_paused_no_descriptors", STAT_GET(as->paused_fd));
	KV("accept_paused_queue_full", STAT_GET(as->paused_queue));
	KV("accept_paused_ms", STAT_GET(as->paused_ms));
	KV("accept_errors", STAT_GET(as->accept_errors));
	KV("reloads", __atomic_load_n(&s->reloads, __ATOMIC_RELAXED));
	KV("reload_failures",
	    __atomic_load_n(&s->reload_failures, __ATOMIC_RELAXED));
	KV("uptime_seconds", (now_mono_ms() - s->start_mono_ms) / 1000);
#undef KV
	if (s->mods != NULL) {
		dispatch_stats_text(s, buf, cap, &off);
		modreg_stats_text(s->mods, buf, cap, &off);
	}
	psub_stats_text(s, buf, cap, &off);
	procs_stats_text(s->procs, buf, cap, &off);
	return off;
}

size_t
server_opcodes_text(void *arg, char *buf, size_t cap)
{
	struct server *s = arg;

	return modreg_opcodes_text(s->mods, buf, cap);
}

uint64_t
server_requests_total(const struct server *s)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < s->nworkers; i++)
		n += STAT_GET(s->workers[i].st.requests);
	return n;
}

/* The workers' state and epoll sets, then their threads; exits on failure. */
void
server_start_workers(struct server *srv)
{
	struct pool_params pp;
	unsigned i;
	int rc;

	/*
	 * Cache-line aligned: each worker writes its own struct on every
	 * request, and a neighbour sharing a line would bounce it between
	 * cores (struct worker's size is a multiple of 64 already).
	 */
	srv->workers = aligned_alloc(64, srv->nworkers * sizeof(*srv->workers));
	if (srv->workers == NULL)
		fatalx("out of memory");
	memset(srv->workers, 0, srv->nworkers * sizeof(*srv->workers));
	if (srv->cfg->c.pubsub_enabled && psub_init(srv) != 0)
		fatal("cannot set up pub/sub");
	for (i = 0; i < srv->nworkers; i++)
		if (worker_init(&srv->workers[i], srv) != 0)
			fatal("cannot set up worker %u", i);
	memset(&pp, 0, sizeof(pp));
	pp.workers = srv->nworkers;
	pp.queue_size = srv->cfg->c.queue_size;
	pp.name = "worker";
	if ((rc = pool_create(&srv->pool, &pp, worker_main, srv)) != 0) {
		errno = -rc;
		fatal("cannot start %u worker threads", srv->nworkers);
	}
}

/*
 * The blocking-handler threads (when a module has a BLOCKING handler),
 * then every module's init(); exits on failure.
 */
void
server_start_modules(struct server *srv)
{
	const struct cfg *c = &srv->cfg->c;
	const struct sd_api *api = dispatch_api(srv);
	char err[512];
	unsigned op;
	int rc, blocking = 0;

	for (op = 0; op < 256; op++)
		blocking |= srv->mods->ops[op].kind == OP_BLOCKING;
	if (blocking &&
	    (rc = pool_runner_create(&srv->runner, c->handler_threads,
		 c->handler_queue, "handler", dispatch_run_blocking, srv)) !=
		0) {
		errno = -rc;
		fatal("cannot start %u handler threads", c->handler_threads);
	}
	if (modreg_init(srv->mods, api, err, sizeof(err)) != 0) {
		pool_runner_destroy(srv->runner);
		srv->runner = NULL;
		modreg_fini(srv->mods);
		fatalx("%s", err);
	}
	for (op = 0; op < srv->mods->nmods; op++)
		log_info("module %s %s loaded from %s (opcodes 0x%02x-0x%02x)",
		    srv->mods->mods[op].name,
		    srv->mods->mods[op].d->version != NULL
			? srv->mods->mods[op].d->version
			: "",
		    srv->mods->mods[op].path, srv->mods->mods[op].opcode,
		    srv->mods->mods[op].opcode + srv->mods->mods[op].nhandlers +
			srv->mods->mods[op].npushes - 1);
}

/* After pool_join(): the workers' buffers and epoll sets. */
void
server_stop_workers(struct server *srv)
{
	unsigned i;

	for (i = 0; i < srv->nworkers; i++)
		worker_fini(&srv->workers[i]);
	psub_fini(srv);
}
