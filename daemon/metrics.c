/*
 * /metrics (metrics.h): every counter socketd keeps, in the Prometheus
 * text format.  Runs on the admin thread; reads the workers' and the
 * acceptor's single-writer counters with relaxed loads, the pool's and
 * the runner's under their own locks, the modules' stats hooks under
 * their lock.  Label values come from bounded sets only: opcodes socketd
 * serves (at most 256, named by the dispatch table), statuses, fixed
 * reasons, worker numbers.
 */
#include <sys/resource.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "dispatch.h"
#include "metrics.h"
#include "module.h"
#include "procs.h"
#include "psub.h"
#include "pool.h"
#include "proto.h"
#include "runner.h"
#include "srclimit.h"
#include "worker.h"

#define STATS_TEXT_MAX (64 * 1024)

void
met_batch(struct wmetrics *m, const uint8_t *ops, unsigned n, uint64_t t0)
{
	uint64_t ns = met_now_ns() - t0;
	unsigned b = pt_bucket(ns), i, j;

	/* A pipeline is mostly one opcode: one add per run of them. */
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && ops[j] == ops[i]; j++)
			;
		STAT_ADD(m->hist[ops[i]][b], j - i);
		STAT_ADD(m->hist_sum_ns[ops[i]], ns * (j - i));
	}
}

/* "UNKNOWN_OPCODE" -> "unknown_opcode"; statuses above 13 are "other". */
static void
status_label(unsigned st, char *buf, size_t len)
{
	const char *s = st < MET_NSTATUS - 1 ? proto_status_str(st) : "other";
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a'
							   : s[i]);
	buf[i] = '\0';
}

/* The opcode label: the dispatch table's name, or "unknown"/"invalid". */
static const char *
op_label(const struct server *s, unsigned op)
{
	if (op == MET_OP_INVALID)
		return "invalid";
	if (s->mods->ops[op].kind == OP_NONE)
		return "unknown";
	return s->mods->ops[op].name;
}

/* A served opcode has its own series; the others are summed as unknown. */
static int
own_series(const struct server *s, unsigned op)
{
	return op == MET_OP_INVALID || s->mods->ops[op].kind != OP_NONE;
}

static void
one(struct pt_buf *b, const char *name, const char *type, const char *help,
    uint64_t v)
{
	pt_family(b, name, type, help);
	pt_u64(b, name, NULL, v);
}

static void
labelled(struct pt_buf *b, const char *name, const char *key, const char *value,
    uint64_t v)
{
	char l[160] = "";

	(void)pt_label(l, sizeof(l), key, value);
	pt_u64(b, name, l, v);
}

/* Requests by opcode and status; histograms by opcode. */
static void
requests(struct server *s, struct pt_buf *b)
{
	static uint64_t req[MET_OPS][MET_NSTATUS]; /* admin thread only */
	static uint64_t hist[256][PT_NBOUNDS + 1], sum[256];
	uint64_t unk[MET_NSTATUS] = {0}, uh[PT_NBOUNDS + 1] = {0}, us = 0;
	char l[200], st[32];
	unsigned w, op, k;

	memset(req, 0, sizeof(req));
	memset(hist, 0, sizeof(hist));
	memset(sum, 0, sizeof(sum));
	for (w = 0; w < s->nworkers; w++) {
		const struct wmetrics *m = s->workers[w].met;

		for (op = 0; op < MET_OPS; op++)
			for (k = 0; k < MET_NSTATUS; k++)
				req[op][k] += STAT_GET(m->req[op][k]);
		for (op = 0; op < 256; op++) {
			for (k = 0; k <= PT_NBOUNDS; k++)
				hist[op][k] += STAT_GET(m->hist[op][k]);
			sum[op] += STAT_GET(m->hist_sum_ns[op]);
		}
	}
	pt_family(b, "socketd_requests_total", "counter",
	    "Requests answered, by opcode and answer status (opcode unknown: "
	    "opcodes socketd does not serve; invalid: frames it could not "
	    "decode).");
	for (op = 0; op < MET_OPS; op++) {
		if (!own_series(s, op)) {
			for (k = 0; k < MET_NSTATUS; k++)
				unk[k] += req[op][k];
			continue;
		}
		for (k = 0; k < MET_NSTATUS; k++) {
			/* status="ok" always; the others once they happen. */
			if (req[op][k] == 0 &&
			    (k != PROTO_OK || op == MET_OP_INVALID ||
				s->mods->ops[op].kind == OP_PUSH))
				continue;
			status_label(k, st, sizeof(st));
			l[0] = '\0';
			(void)pt_label(l, sizeof(l), "opcode", op_label(s, op));
			(void)pt_label(l, sizeof(l), "status", st);
			pt_u64(b, "socketd_requests_total", l, req[op][k]);
		}
	}
	for (k = 0; k < MET_NSTATUS; k++) {
		if (unk[k] == 0)
			continue;
		status_label(k, st, sizeof(st));
		l[0] = '\0';
		(void)pt_label(l, sizeof(l), "opcode", "unknown");
		(void)pt_label(l, sizeof(l), "status", st);
		pt_u64(b, "socketd_requests_total", l, unk[k]);
	}

	pt_family(b, "socketd_request_duration_seconds", "histogram",
	    "Time from the start of the batch of input holding a request to "
	    "its answer being queued, by opcode.");
	for (op = 0; op < 256; op++) {
		if (s->mods->ops[op].kind == OP_NONE) {
			for (k = 0; k <= PT_NBOUNDS; k++)
				uh[k] += hist[op][k];
			us += sum[op];
			continue;
		}
		if (s->mods->ops[op].kind == OP_PUSH)
			continue;
		l[0] = '\0';
		(void)pt_label(l, sizeof(l), "opcode", op_label(s, op));
		pt_histogram(b, "socketd_request_duration_seconds", l, hist[op],
		    sum[op]);
	}
	pt_histogram(b, "socketd_request_duration_seconds",
	    "opcode=\"unknown\"", uh, us);
}

/* The modules' own STATS lines ("MODULE_name value") as one gauge. */
static void
module_stats(struct server *s, struct pt_buf *b)
{
	char *text, *line, *nl, *sp, l[200];
	size_t off = 0, k, n;
	int fam = 0;

	if (s->mods->nmods == 0 || (text = malloc(STATS_TEXT_MAX)) == NULL)
		return;
	modreg_stats_text(s->mods, text, STATS_TEXT_MAX - 1, &off);
	text[off] = '\0';
	for (line = text; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		*nl = '\0';
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp = '\0';
		for (k = 0; k < s->mods->nmods; k++) {
			n = strlen(s->mods->mods[k].name);
			if (strncmp(line, s->mods->mods[k].name, n) == 0 &&
			    line[n] == '_')
				break;
		}
		if (k == s->mods->nmods)
			continue;
		if (!fam) {
			pt_family(b, "socketd_module_stat", "gauge",
			    "What each module's stats hook reports, by module "
			    "and name (as in STATS).");
			fam = 1;
		}
		l[0] = '\0';
		(void)pt_label(l, sizeof(l), "module", s->mods->mods[k].name);
		(void)pt_label(l, sizeof(l), "name", line + n + 1);
		pt_u64(b, "socketd_module_stat", l, strtoull(sp + 1, NULL, 10));
	}
	free(text);
}

/* The standard process metrics, from /proc/self. */
static void
process(struct server *s, struct pt_buf *b)
{
	unsigned long long utime = 0, stime = 0, vsize = 0, rss = 0;
	char buf[1024], *p;
	struct rlimit rl;
	struct dirent *de;
	long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	uint64_t fds = 0;
	FILE *f;
	DIR *d;

	if ((f = fopen("/proc/self/stat", "re")) != NULL) {
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL)
			/* After "pid (comm)": fields 3.. ; 14 utime, 15
			 * stime, 23 vsize, 24 rss. */
			(void)sscanf(p + 2,
			    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
			    "%llu %*d %*d %*d %*d %*d %*d %*u %llu %llu",
			    &utime, &stime, &vsize, &rss);
		(void)fclose(f);
	}
	if (tck <= 0)
		tck = 100;
	if (page <= 0)
		page = 4096;
	pt_family(b, "process_cpu_seconds_total", "counter",
	    "User and system CPU time spent, in seconds.");
	pt_nanos(b, "process_cpu_seconds_total", NULL,
	    (utime + stime) * (1000000000ULL / (unsigned long long)tck));
	one(b, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.", rss * (unsigned long long)page);
	one(b, "process_virtual_memory_bytes", "gauge",
	    "Virtual memory size in bytes.", vsize);
	if ((d = opendir("/proc/self/fd")) != NULL) {
		// NOLINTNEXTLINE(concurrency-mt-unsafe): our own DIR stream
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				fds++;
		(void)closedir(d);
		one(b, "process_open_fds", "gauge",
		    "Number of open file descriptors.", fds > 0 ? fds - 1 : 0);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		one(b, "process_max_fds", "gauge",
		    "Maximum number of open file descriptors.",
		    (uint64_t)rl.rlim_cur);
	one(b, "process_start_time_seconds", "gauge",
	    "Start time of the process since the Unix epoch, in seconds.",
	    s->start_real_s);
}

static void
connections(struct server *s, const struct cfg *c, const struct wstats *t,
    struct pt_buf *b)
{
	const struct astats *as = &s->astats;
	uint64_t rej = STAT_GET(as->rejected_max_conn) +
	    STAT_GET(as->rejected_no_fd) + STAT_GET(as->rejected_denied) +
	    STAT_GET(as->rejected_per_source);
	char l[64];
	unsigned i;

	one(b, "socketd_connections_active", "gauge",
	    "Client connections open now.",
	    (uint64_t)__atomic_load_n(&s->conns_current, __ATOMIC_RELAXED));
	one(b, "socketd_connections_limit", "gauge", "max_connections.",
	    c->max_connections);
	one(b, "socketd_connections_total", "counter",
	    "Connections that arrived, accepted or rejected.",
	    STAT_GET(as->accepted) + rej);
	one(b, "socketd_connections_accepted_total", "counter",
	    "Connections accepted.", STAT_GET(as->accepted));
	pt_family(b, "socketd_connections_rejected_total", "counter",
	    "Connections refused right after accept, by reason.");
	labelled(b, "socketd_connections_rejected_total", "reason",
	    "max_connections", STAT_GET(as->rejected_max_conn));
	labelled(b, "socketd_connections_rejected_total", "reason",
	    "no_descriptors", STAT_GET(as->rejected_no_fd));
	labelled(b, "socketd_connections_rejected_total", "reason", "denied",
	    STAT_GET(as->rejected_denied));
	labelled(b, "socketd_connections_rejected_total", "reason",
	    "per_source", STAT_GET(as->rejected_per_source));
	one(b, "socketd_connections_rejected_unanswered_total", "counter",
	    "Refusals closed without their BUSY or DENIED answer.",
	    STAT_GET(as->rejected_dropped));
	one(b, "socketd_sources_active", "gauge",
	    "Client addresses with connections open now.",
	    s->src != NULL ? srclimit_sources(s->src) : 0);
	one(b, "socketd_connections_reset_total", "counter",
	    "Connections lost to an I/O error.", t->resets);
	pt_family(b, "socketd_worker_connections", "gauge",
	    "Connections open now, by worker.");
	for (i = 0; i < s->nworkers; i++) {
		snprintf(l, sizeof(l), "worker=\"%u\"", i);
		pt_u64(b, "socketd_worker_connections", l,
		    STAT_GET(s->workers[i].st.connections_now));
	}
	pt_family(b, "socketd_tls_handshakes_total", "counter",
	    "TLS handshakes, by result.");
	labelled(b, "socketd_tls_handshakes_total", "result", "ok",
	    t->tls_handshakes);
	labelled(b, "socketd_tls_handshakes_total", "result", "failed",
	    t->tls_handshake_failures);
	labelled(b, "socketd_tls_handshakes_total", "result", "timeout",
	    t->tls_handshake_timeouts);
}

static void
saturation(struct server *s, const struct cfg *c, const struct wstats *t,
    struct pt_buf *b)
{
	const struct astats *as = &s->astats;
	struct pool_stats ps;
	uint64_t inflight = 0;
	unsigned i;

	pool_stats(s->pool, &ps);
	one(b, "socketd_workers", "gauge", "Worker threads.", s->nworkers);
	one(b, "socketd_handoff_queue_length", "gauge",
	    "Accepted connections waiting for a worker.", ps.depth);
	one(b, "socketd_handoff_queue_high_water", "gauge",
	    "The most connections that ever waited for a worker.",
	    ps.high_water);
	one(b, "socketd_handoff_queue_capacity", "gauge", "queue_size.",
	    c->queue_size);
	one(b, "socketd_handoff_queue_full_total", "counter",
	    "Hand-offs refused because the queue was full.", ps.refused);
	one(b, "socketd_accept_paused", "gauge",
	    "1 while the acceptor has stopped accepting.",
	    STAT_GET(as->paused_now));
	pt_family(b, "socketd_accept_pauses_total", "counter",
	    "Times accepting paused, by reason.");
	labelled(b, "socketd_accept_pauses_total", "reason", "no_descriptors",
	    STAT_GET(as->paused_fd));
	labelled(b, "socketd_accept_pauses_total", "reason", "queue_full",
	    STAT_GET(as->paused_queue));
	pt_family(b, "socketd_accept_paused_seconds_total", "counter",
	    "Time spent with accepting paused.");
	pt_nanos(b, "socketd_accept_paused_seconds_total", NULL,
	    STAT_GET(as->paused_ms) * 1000000ULL);
	one(b, "socketd_accept_errors_total", "counter",
	    "accept(2) failures other than a descriptor shortage.",
	    STAT_GET(as->accept_errors));
	one(b, "socketd_output_throttled_total", "counter",
	    "Times a connection stopped being read because too much output "
	    "was pending.",
	    t->output_throttled);
	for (i = 0; i < s->nworkers; i++)
		inflight += STAT_GET(s->workers[i].met->inflight);
	one(b, "socketd_requests_in_flight", "gauge",
	    "Module requests accepted and not yet answered.", inflight);
	one(b, "socketd_handler_queue_length", "gauge",
	    "Requests waiting for a blocking-handler thread.",
	    s->runner != NULL ? pool_runner_depth(s->runner) : 0);
	one(b, "socketd_handler_queue_capacity", "gauge", "handler_queue.",
	    c->handler_queue);
}

static void
handlers(struct server *s, struct pt_buf *b, uint64_t *to_handler)
{
	uint64_t ov = 0, dr = 0, pu = 0, pd = 0, sl = 0, to = 0;
	unsigned i;

	for (i = 0; i < s->nworkers; i++) {
		const struct hstats *h = &s->workers[i].hst;

		ov += STAT_GET(h->overloaded);
		to += STAT_GET(h->timeouts);
		dr += STAT_GET(h->replies_dropped);
		pu += STAT_GET(h->pushes);
		pd += STAT_GET(h->pushes_dropped);
		sl += STAT_GET(h->slow);
	}
	*to_handler = to;
	one(b, "socketd_handler_overloaded_total", "counter",
	    "Requests answered OVERLOADED: the handler queue was full.", ov);
	one(b, "socketd_handler_slow_total", "counter",
	    "Worker-thread handler calls that held their worker over 100 ms.",
	    sl);
	one(b, "socketd_handler_replies_dropped_total", "counter",
	    "Handler answers dropped: the request had timed out or its "
	    "connection had closed.",
	    dr);
	pt_family(
	    b, "socketd_pushes_total", "counter", "Module pushes, by result.");
	labelled(b, "socketd_pushes_total", "result", "sent", pu);
	labelled(b, "socketd_pushes_total", "result", "dropped", pd);
}

/* Pub/sub (psub.c), when it is served. */
static void
pubsub(struct server *s, struct pt_buf *b)
{
	struct psub_stats t;

	if (psub_totals(s, &t) != 0)
		return;
	one(b, "socketd_pubsub_subscriptions", "gauge",
	    "Subscriptions held now, all connections.", t.subs);
	one(b, "socketd_pubsub_published_total", "counter",
	    "PUBLISH requests accepted.", t.publish);
	pt_family(b, "socketd_pubsub_messages_total", "counter",
	    "MESSAGE pushes, by result: delivered to a connection's output, or "
	    "dropped (slow consumer).");
	labelled(b, "socketd_pubsub_messages_total", "result", "delivered",
	    t.delivered);
	labelled(
	    b, "socketd_pubsub_messages_total", "result", "dropped", t.dropped);
	one(b, "socketd_pubsub_slow_consumers_total", "counter",
	    "Connections that hit pubsub.max_pending or a write stall.",
	    t.slow);
	one(b, "socketd_pubsub_denied_total", "counter",
	    "Publishes and subscribes refused by the ACL (FORBIDDEN).",
	    t.denied);
	one(b, "socketd_pubsub_pending_bytes", "gauge",
	    "Bytes queued toward subscribers now.", t.pending);
	one(b, "socketd_pubsub_cross_worker_messages_total", "counter",
	    "Messages handed to another worker's inbox.", t.cross);
	one(b, "socketd_pubsub_inbox_batches_total", "counter",
	    "Fan-out batches put into worker inboxes.", t.batches);
	one(b, "socketd_pubsub_publisher_pauses_total", "counter",
	    "Times a publisher was paused because a worker fell behind.",
	    t.pauses);
	one(b, "socketd_pubsub_permission_closes_total", "counter",
	    "Connections closed after a reload took a subscription's "
	    "permission away.",
	    t.revoked);
}

int
metrics_text(struct server *s, struct pt_buf *b)
{
	struct server_cfg *sc = server_cfg_get(s);
	const struct cfg *c = &sc->c;
	struct wstats t;
	uint64_t to_handler = 0, goaway = 0;
	char why[128], l[200] = "";
	unsigned i;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < s->nworkers; i++) {
		const struct wstats *w = &s->workers[i].st;

		t.requests += STAT_GET(w->requests);
		t.bytes_received += STAT_GET(w->bytes_received);
		t.bytes_sent += STAT_GET(w->bytes_sent);
		t.timeouts_idle += STAT_GET(w->timeouts_idle);
		t.timeouts_read += STAT_GET(w->timeouts_read);
		t.timeouts_write += STAT_GET(w->timeouts_write);
		t.timeouts_shutdown += STAT_GET(w->timeouts_shutdown);
		t.too_large += STAT_GET(w->too_large);
		t.bad_request += STAT_GET(w->bad_request);
		t.unknown_opcode += STAT_GET(w->unknown_opcode);
		t.bad_version += STAT_GET(w->bad_version);
		t.output_throttled += STAT_GET(w->output_throttled);
		t.resets += STAT_GET(w->resets);
		t.tls_handshakes += STAT_GET(w->tls_handshakes);
		t.tls_handshake_failures += STAT_GET(w->tls_handshake_failures);
		t.tls_handshake_timeouts += STAT_GET(w->tls_handshake_timeouts);
		goaway += STAT_GET(w->goaway_sent);
	}

	(void)pt_label(l, sizeof(l), "version", SOCKETD_VERSION);
	(void)pt_label(l, sizeof(l), "protocol", "1.1");
	(void)pt_label(l, sizeof(l), "module_abi", modreg_abi_str());
	pt_family(b, "socketd_build_info", "gauge",
	    "Always 1; the labels say which socketd this is.");
	pt_u64(b, "socketd_build_info", l, 1);
	one(b, "socketd_ready", "gauge",
	    "1 while /readyz answers 200: serving and not draining.",
	    (uint64_t)admin_ready(s, why, sizeof(why)));
	one(b, "socketd_draining", "gauge",
	    "1 from SIGTERM (with timeouts.drain) until exit.",
	    (uint64_t)__atomic_load_n(&s->draining, __ATOMIC_RELAXED));
	one(b, "socketd_goaway_sent_total", "counter",
	    "GOAWAY pushes sent to connections while draining.", goaway);

	connections(s, c, &t, b);
	requests(s, b);
	one(b, "socketd_requests_received_total", "counter",
	    "Requests read and handled or handed to a module (STATS "
	    "requests_total).",
	    t.requests);
	one(b, "socketd_received_bytes_total", "counter",
	    "Bytes read from clients.", t.bytes_received);
	one(b, "socketd_sent_bytes_total", "counter", "Bytes sent to clients.",
	    t.bytes_sent);
	pt_family(b, "socketd_protocol_errors_total", "counter",
	    "Requests answered with a protocol error, by error.");
	labelled(b, "socketd_protocol_errors_total", "error", "bad_request",
	    t.bad_request);
	labelled(b, "socketd_protocol_errors_total", "error", "unknown_opcode",
	    t.unknown_opcode);
	labelled(b, "socketd_protocol_errors_total", "error",
	    "unsupported_version", t.bad_version);
	labelled(b, "socketd_protocol_errors_total", "error", "too_large",
	    t.too_large);
	saturation(s, c, &t, b);
	handlers(s, b, &to_handler);
	pubsub(s, b);
	pt_family(b, "socketd_timeouts_total", "counter",
	    "Connections closed and requests answered by a timeout, by "
	    "timeout.");
	labelled(
	    b, "socketd_timeouts_total", "timeout", "idle", t.timeouts_idle);
	labelled(
	    b, "socketd_timeouts_total", "timeout", "read", t.timeouts_read);
	labelled(
	    b, "socketd_timeouts_total", "timeout", "write", t.timeouts_write);
	labelled(b, "socketd_timeouts_total", "timeout", "shutdown",
	    t.timeouts_shutdown);
	labelled(b, "socketd_timeouts_total", "timeout", "handler", to_handler);
	pt_family(b, "socketd_config_reloads_total", "counter",
	    "SIGHUP reloads, by result.");
	labelled(b, "socketd_config_reloads_total", "result", "success",
	    __atomic_load_n(&s->reloads, __ATOMIC_RELAXED));
	labelled(b, "socketd_config_reloads_total", "result", "failure",
	    __atomic_load_n(&s->reload_failures, __ATOMIC_RELAXED));
	module_stats(s, b);
	procs_metrics(s->procs, b);
	process(s, b);
	server_cfg_put(sc);
	return b->oom ? -1 : 0;
}
