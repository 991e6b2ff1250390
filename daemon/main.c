/*
 * socketd: a thread-pool request/response server speaking protocol v1.
 *
 * The main thread parses options, loads the configuration, binds the
 * listeners, starts the worker pool and the acceptor thread, then waits
 * for signals: SIGHUP reloads, SIGTERM and SIGINT stop gracefully.  It
 * runs in the foreground; systemd (or any supervisor) keeps it running.
 */
#include <sys/resource.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acceptor.h"
#include "admin.h"
#include "cfg.h"
#include "dispatch.h"
#include "log.h"
#include "notify.h"
#include "pool.h"
#include "module.h"
#include "privdrop.h"
#include "procs.h"
#include "psub.h"
#include "runner.h"
#include "server.h"
#include "srclimit.h"
#include "tls.h"
#include "worker.h"

/* Descriptors beyond the connections: listeners, epoll, eventfds, lingers. */
#define FD_RESERVE 512
/* How often the systemd STATUS= line is refreshed. */
#define STATUS_INTERVAL_S 5

static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: socketd [-tVh] [-c file]\n"
	    "  -c, --config FILE  configuration file (default %s)\n"
	    "  -t, --test         check the configuration and exit\n"
	    "  -V, --version      print the version and exit\n"
	    "  -h, --help         print this help and exit\n",
	    CFG_DEFAULT_PATH);
}

static void
raise_nofile(unsigned max_connections)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)max_connections + FD_RESERVE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("cannot raise the open file limit to %lu",
			    (unsigned long)rl.rlim_max);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need)
		log_warnx("max_connections %u does not fit in the open file "
			  "limit %lu (need about %lu): connections past it "
			  "are refused; raise LimitNOFILE / ulimit -n or lower "
			  "max_connections",
		    max_connections, (unsigned long)rl.rlim_cur,
		    (unsigned long)need);
}

static unsigned
worker_count(const struct cfg *c)
{
	long n;

	if (c->workers > 0)
		return c->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

#define SWAP_STR(a, b)                                                         \
	do {                                                                   \
		char *t_ = (a);                                                \
		(a) = (b);                                                     \
		(b) = t_;                                                      \
	} while (0)

/* Keep the running values of settings that need a restart. */
static int
keep_restart_settings(struct cfg *nc, const struct cfg *cur)
{
	struct cfg tmp;
	size_t i;

	if (cfg_copy(&tmp, cur) != 0)
		return -1;
	for (i = 0; i < nc->nlisten; i++)
		free(nc->listen[i]);
	for (i = 0; i < tmp.nlisten; i++) {
		nc->listen[i] = tmp.listen[i];
		tmp.listen[i] = NULL;
	}
	nc->nlisten = tmp.nlisten;
	tmp.nlisten = 0;
	/* Swap so that cfg_free(&tmp) frees the new file's values. */
	SWAP_STR(nc->user, tmp.user);
	SWAP_STR(nc->group, tmp.group);
	SWAP_STR(nc->pid_file, tmp.pid_file);
	if (!cfg_same_modules(nc, cur)) {
		struct cfg_module *m = nc->modules;
		size_t n = nc->nmodules;
		char *d = nc->module_dir;

		nc->modules = tmp.modules;
		nc->nmodules = tmp.nmodules;
		nc->module_dir = tmp.module_dir;
		tmp.modules = m;
		tmp.nmodules = n;
		tmp.module_dir = d;
	}
	nc->handler_threads = cur->handler_threads;
	nc->handler_queue = cur->handler_queue;
	nc->workers = cur->workers;
	nc->queue_size = cur->queue_size;
	nc->backlog = cur->backlog;
	nc->log_target = cur->log_target;
	cfg_free(&tmp);
	return 0;
}

/* Load c's certificates and log which one is served; 0 or -1 and err. */
static int
load_tls(const struct cfg *c, struct tls_ctx **out, char *err, size_t len)
{
	char what[512];

	if (tls_ctx_new(c, out, err, len) != 0)
		return -1;
	if (tls_ctx_describe(*out, what, sizeof(what)))
		log_warnx("tls.certificate %s: %s", c->tls_certificate, what);
	else
		log_info("tls.certificate %s: %s", c->tls_certificate, what);
	return 0;
}

static void
reload_failed(struct server *srv, const char *why)
{
	log_errx(
	    "reload failed: %s; the running configuration stays in force", why);
	__atomic_add_fetch(&srv->reload_failures, 1, __ATOMIC_RELAXED);
}

/*
 * SIGHUP: parse the file again and, with tls:// listeners, load the
 * certificates it names; publish both together.  Any failure leaves the
 * running configuration and certificates in force.
 */
static void
reload(struct server *srv)
{
	struct cfg nc;
	struct cfg_error err;
	struct server_cfg *cur, *sc;
	struct tls_ctx *tls = NULL;
	char names[256], terr[512];

	log_info("reloading %s", srv->cfg_path);
	if (cfg_load(srv->cfg_path, &nc, &err) != 0) {
		reload_failed(srv, err.text);
		return;
	}
	cur = server_cfg_get(srv);
	if (cfg_diff_restart(&cur->c, &nc, names, sizeof(names)) > 0)
		log_warnx("reload: %s changed; that needs a restart, so the "
			  "running value stays in force",
		    names);
	if (nc.log_target != cur->c.log_target)
		log_warnx(
		    "reload: log.target changed; that needs a restart, so "
		    "the running value stays in force");
	if (keep_restart_settings(&nc, &cur->c) != 0) {
		server_cfg_put(cur);
		cfg_free(&nc);
		reload_failed(srv, "out of memory");
		return;
	}
	server_cfg_put(cur);
	if (srv->tls_listeners > 0 &&
	    load_tls(&nc, &tls, terr, sizeof(terr)) != 0) {
		cfg_free(&nc);
		log_errx("reload failed: %s; the running configuration and "
			 "certificates stay in force",
		    terr);
		__atomic_add_fetch(&srv->reload_failures, 1, __ATOMIC_RELAXED);
		return;
	}
	/* Last: the modules are the one step that cannot be undone. */
	if (modreg_reload(srv->mods, &nc, terr, sizeof(terr)) != 0) {
		tls_ctx_free(tls);
		cfg_free(&nc);
		reload_failed(srv, terr);
		return;
	}
	procs_reload(srv->procs, &nc);
	if ((sc = server_cfg_new(&nc)) == NULL) {
		tls_ctx_free(tls);
		cfg_free(&nc);
		reload_failed(srv, "out of memory");
		return;
	}
	sc->tls = tls;
	server_cfg_publish(srv, sc);
	log_setlevel((enum log_level)nc.log_level);
	pool_wake(srv->pool); /* new timeouts apply to idle workers too */
	__atomic_add_fetch(&srv->reloads, 1, __ATOMIC_RELAXED);
	log_info("reloaded %s", srv->cfg_path);
}

static int
open_listeners(const struct cfg *c, struct listener *ls)
{
	char err[256];
	size_t i, j;

	for (i = 0; i < c->nlisten; i++) {
		if (listener_open(c->listen[i], c->backlog, &ls[i], err,
			sizeof(err)) != 0) {
			log_errx("%s", err);
			for (j = 0; j < i; j++)
				close(ls[j].fd);
			return -1;
		}
	}
	return 0;
}

/* The systemd STATUS= line: live figures since the previous one. */
static void
send_status(struct server *srv, uint64_t *last_req, uint64_t *last_ms)
{
	uint64_t req = server_requests_total(srv), now = now_mono_ms();
	double rate = 0;

	if (now > *last_ms)
		rate = (double)(req - *last_req) * 1000.0 /
		    (double)(now - *last_ms);
	notify("STATUS=%d connections, %.0f requests/s, %llu requests served",
	    __atomic_load_n(&srv->conns_current, __ATOMIC_RELAXED), rate,
	    (unsigned long long)req);
	*last_req = req;
	*last_ms = now;
}

/* Sockets from the service manager, or bound from the config. */
static int
get_listeners(const struct cfg *c, struct listener *ls, size_t *n)
{
	char err[256];
	int got;

	got = notify_listen_fds(ls, CFG_LISTEN_MAX, err, sizeof(err));
	if (got < 0) {
		log_errx("%s", err);
		return -1;
	}
	if (got > 0) {
		*n = (size_t)got;
		log_info("socket activation: serving %d socket%s passed by the "
			 "service manager; the listen setting is not used",
		    got, got == 1 ? "" : "s");
		return 0;
	}
	*n = c->nlisten;
	return open_listeners(c, ls);
}

/*
 * timeouts.drain: report not ready (/readyz, the agent) and go on
 * serving for that long, so that a load balancer moves new clients
 * elsewhere; another SIGTERM or SIGINT cuts it short, SIGHUP reloads.
 */
static void
drain(struct server *srv, int sig, const sigset_t *sigs)
{
	struct server_cfg *sc = server_cfg_get(srv);
	uint64_t ms = sc->c.drain_ms, end, now;
	struct timespec ts;
	int got;

	server_cfg_put(sc);
	if (ms == 0)
		return;
	__atomic_store_n(&srv->drain_start_ms, now_mono_ms(), __ATOMIC_RELAXED);
	__atomic_store_n(&srv->draining, 1, __ATOMIC_RELEASE);
	log_info("%s received: draining for %.3g s (not ready; still "
		 "serving), then GOAWAY and stop",
	    // NOLINTNEXTLINE(concurrency-mt-unsafe)
	    strsignal(sig), (double)ms / 1000.0);
	notify("STOPPING=1\nSTATUS=draining: not ready, still serving for "
	       "%.3g s",
	    (double)ms / 1000.0);
	end = now_mono_ms() + ms;
	while ((now = now_mono_ms()) < end) {
		ts.tv_sec = (time_t)((end - now) / 1000);
		ts.tv_nsec = (long)((end - now) % 1000) * 1000000L;
		got = sigtimedwait(sigs, NULL, &ts);
		if (got == SIGHUP) {
			reload(srv);
			continue;
		}
		if (got == SIGTERM || got == SIGINT) {
			log_info("%s received while draining: stopping now",
			    // NOLINTNEXTLINE(concurrency-mt-unsafe)
			    strsignal(got));
			break;
		}
	}
}

/* Long but linear: the start and stop sequences, in order. */
static int
// NOLINTNEXTLINE(readability-function-size)
serve(struct server *srv, struct cfg *c)
{
	struct listener ls[CFG_LISTEN_MAX];
	struct timespec tick = {STATUS_INTERVAL_S, 0};
	struct server_cfg *sc;
	struct tls_ctx *tls = NULL;
	uint64_t last_req = 0, last_ms = now_mono_ms();
	char err[512];
	sigset_t sigs;
	unsigned i;
	int sig, rc;
	size_t n;

	raise_nofile(c->max_connections);
	if (get_listeners(c, ls, &n) != 0)
		goto fail;
	for (i = 0; i < n; i++)
		srv->tls_listeners += (size_t)ls[i].tls;
	/* Bound with the others, before privileges are dropped. */
	if (admin_open(srv, c, &srv->admin, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		for (i = 0; i < n; i++)
			close(ls[i].fd);
		goto fail;
	}
	/* Before dropping privileges: the key may be readable by root only. */
	if (srv->tls_listeners > 0 &&
	    load_tls(c, &tls, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		goto fail;
	}
	/* Modules load before privileges are dropped (socketd-module(3)). */
	if ((srv->mods = calloc(1, sizeof(*srv->mods))) == NULL)
		fatalx("out of memory");
	if (modreg_open(srv->mods, c, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		goto fail;
	}
	if (pidfile_write(c->pid_file, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		goto fail;
	}
	/* Listeners are bound: root is no longer needed. */
	rc = privdrop(c->user, c->group, err, sizeof(err));
	if (rc < 0) {
		log_errx("%s; refusing to run on with the privileges socketd "
			 "was started with",
		    err);
		pidfile_remove(c->pid_file);
		goto fail;
	}
	if (rc > 0)
		log_warnx("%s", err);
	if (c->user == NULL && geteuid() == 0)
		log_warnx("running as root: set user in the configuration (or "
			  "User= in the service unit) to drop privileges");

	if ((srv->src = srclimit_new()) == NULL)
		fatalx("out of memory");
	srv->nworkers = worker_count(c);
	if ((srv->cfg = server_cfg_new(c)) == NULL)
		fatalx("out of memory");
	srv->cfg->tls = tls; /* the server_cfg owns it now */
	tls = NULL;
	server_start_modules(srv);
	/* Their handlers join the dispatch table before a worker reads it. */
	if (procs_open(srv, c, &srv->procs, err, sizeof(err)) != 0) {
		log_errx("%s", err);
		procs_free(srv->procs);
		fatalx("cannot start the handler processes");
	}
	server_start_workers(srv);
	if (acceptor_start(srv, ls, n) == NULL)
		fatalx("cannot start the acceptor thread");
	if (admin_start(srv->admin) != 0)
		fatal("cannot start the admin thread");
	for (i = 0; i < n; i++)
		log_info("listening on %s", ls[i].name);
	log_info("socketd %s ready: %u workers, queue_size %u, "
		 "max_connections %u",
	    SOCKETD_VERSION, srv->nworkers, srv->cfg->c.queue_size,
	    srv->cfg->c.max_connections);
	notify("READY=1\nSTATUS=listening on %s%s, %u workers", ls[0].name,
	    n > 1 ? " and more" : "", srv->nworkers);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	for (;;) {
		if (notify_enabled())
			sig = sigtimedwait(&sigs, NULL, &tick);
		else
			sig = sigwaitinfo(&sigs, NULL);
		if (sig == -1) {
			if (errno == EAGAIN)
				send_status(srv, &last_req, &last_ms);
			continue; /* EINTR */
		}
		if (sig == SIGHUP) {
			/* systemd 253+ wants the reload's start time. */
			notify("RELOADING=1\nMONOTONIC_USEC=%llu",
			    (unsigned long long)now_mono_ms() * 1000ULL);
			reload(srv);
			notify("READY=1");
			send_status(srv, &last_req, &last_ms);
			continue;
		}
		break;
	}

	drain(srv, sig, &sigs);
	log_info("%s received: stopping; answering the requests already "
		 "received",
	    // NOLINTNEXTLINE(concurrency-mt-unsafe)
	    strsignal(sig));
	notify("STOPPING=1\nSTATUS=stopping: answering the requests already "
	       "received");
	__atomic_store_n(&srv->stop_mono_ms, now_mono_ms(), __ATOMIC_RELEASE);
	acceptor_stop(srv->acc);
	pool_stop(srv->pool);
	pool_join(srv->pool);
	/* Served until every connection was gone; nothing to report now. */
	admin_stop(srv->admin);
	srv->admin = NULL;
	/* Blocking handlers still queued belong to closed connections. */
	pool_runner_destroy(srv->runner);
	srv->runner = NULL;
	/* Every request was answered or abandoned: the children may go. */
	sc = server_cfg_get(srv);
	procs_stop(srv->procs, sc->c.shutdown_ms);
	server_cfg_put(sc);
	procs_free(srv->procs);
	srv->procs = NULL;
	modreg_fini(srv->mods);
	server_stop_workers(srv);
	/* c's strings went to the first server_cfg; use the one in force. */
	sc = server_cfg_get(srv);
	pidfile_remove(sc->c.pid_file);
	server_cfg_put(sc);
	log_info("stopped");
	return 0;
fail:
	cfg_free(c); /* not handed to a server_cfg yet */
	tls_ctx_free(tls);
	return 1;
}

/* -t: the file is valid; the certificates it names must load too. */
static int
check_only(const char *path, struct cfg *c)
{
	struct modreg mods;
	struct tls_ctx *tls;
	char err[1024];

	if (cfg_tls_listeners(c) > 0) {
		if (tls_ctx_new(c, &tls, err, sizeof(err)) != 0) {
			(void)fprintf(stderr, "socketd: %s\n", err);
			cfg_free(c);
			return 1;
		}
		tls_ctx_free(tls);
	}
	if (modreg_open(&mods, c, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "socketd: %s\n", err);
		modreg_free(&mods);
		cfg_free(c);
		return 1;
	}
	modreg_free(&mods);
	if (procs_check(c, err, sizeof(err)) != 0) {
		(void)fprintf(stderr, "socketd: %s\n", err);
		cfg_free(c);
		return 1;
	}
	printf("socketd: configuration file %s is OK\n", path);
	cfg_free(c);
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct server srv;
	struct cfg c;
	struct cfg_error err;
	const char *path = CFG_DEFAULT_PATH;
	const char *hook;
	sigset_t sigs;
	int ch, test = 0;

	/*
	 * Block signals first of all: the kernel completes connections as
	 * soon as a listener exists, so a client (or a supervisor) may send
	 * SIGHUP or SIGTERM before start-up is over.  They wait, pending,
	 * for sigwaitinfo().  Every thread inherits this mask.
	 */
	sigfillset(&sigs);
	sigdelset(&sigs, SIGSEGV);
	sigdelset(&sigs, SIGBUS);
	sigdelset(&sigs, SIGFPE);
	sigdelset(&sigs, SIGILL);
	sigdelset(&sigs, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &sigs, NULL);
	log_init("socketd", 0, LOG_LEVEL_INFO);
	/* Before any thread exists. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	while ((ch = getopt_long(argc, argv, "c:tVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("socketd %s\nmodule ABI %s\n", SOCKETD_VERSION,
			    modreg_abi_str());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		(void)fprintf(
		    stderr, "socketd: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	if (cfg_load(path, &c, &err) != 0) {
		if (test)
			(void)fprintf(stderr, "socketd: %s\n", err.text);
		else
			log_errx("%s", err.text);
		return 1;
	}
	if (test)
		return check_only(path, &c);
	log_init("socketd", c.log_target == CFG_LOG_SYSLOG,
	    (enum log_level)c.log_level);

	srv.cfg_path = path;
	/* Before any thread exists. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	hook = getenv("SOCKETD_TEST_SLOW_WORKER_MS");
	if (hook != NULL) {
		srv.test_slow_worker_ms = (unsigned)strtoul(hook, NULL, 10);
		log_warnx("test hook: workers sleep %u ms before each new "
			  "connection (SOCKETD_TEST_SLOW_WORKER_MS)",
		    srv.test_slow_worker_ms);
	}
	pthread_mutex_init(&srv.cfg_mu, NULL);
	srv.start_mono_ms = now_mono_ms();
	srv.start_real_s = now_real_ns() / 1000000000u;
	return serve(&srv, &c);
}
