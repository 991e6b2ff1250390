/*
 * bench.c: "socketd-cli bench", a closed-loop load generator for protocol
 * v1 (see bench.h and the Benchmarking section of README.md).
 *
 * Phases, on one monotonic time line shared by every thread:
 *
 *   setup    the main thread raises RLIMIT_NOFILE, connects every
 *            connection (the first one through sdc_connect, which resolves
 *            the host and picks the address; the others to that address,
 *            at most CONNECT_WINDOW in progress at once, each bounded by
 *            the global --timeout) and hands them out to the threads.
 *   t0       the main thread opens the start gate: all threads start
 *            sending.
 *   warmup   until t_start = t0 + warmup: answers are checked, not counted.
 *   measure  a request sent at or after t_start is counted when its answer
 *            arrives (with -d: before t_end = t_start + duration).  With -n
 *            every connection sends its share of the measured requests and
 *            stops; the run ends with the last answer.
 *   drain    (-d only) from t_end no request is sent; answers still in
 *            flight are checked, not counted, for at most DRAIN_NS; each
 *            connection is closed as soon as it has nothing in flight.
 *
 * TLS (--tls): setup also completes every connection's handshake, each
 * session non-blocking, CONNECT_WINDOW at a time, so that the run measures
 * requests and not handshakes.  In the event loops a session's read may
 * wait for room to write (rd_wants_out: the read is retried on EPOLLOUT)
 * and a write for input (EPOLLIN is always watched, and every read ends
 * with a flush); after a read the session may hold input that epoll will
 * not report, so conn_read reads again while sdc_tls_conn_pending says so.
 *
 * A connection's requests carry consecutive request_ids (skipping 0) and
 * its send timestamps sit in a ring of PIPELINE entries: answers come back
 * in order, so the oldest entry is always the one being answered.  New
 * requests made while handling one event are written with one send(2);
 * they are timestamped just before the send that starts carrying them.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "opnames.h"
#include "hist.h"
#include "proto.h"
#include "sdclient.h"

#define PROG "socketd-cli"

enum {
	EXIT_OK = 0,
	EXIT_ANSWERS = 1, /* wrong answers */
	EXIT_USAGE = 2,
	EXIT_CONN = 3, /* connection failures */
};

#define NS_PER_S       1000000000ull
#define DRAIN_NS       (2 * NS_PER_S)
#define TICK_NS        (100 * 1000000ull) /* sweep for stalls and ends */
#define PROGRESS_NS    NS_PER_S
#define CONNECT_WINDOW 256
#define FD_SPARE       32 /* descriptors besides the connections */
#define MAX_EVENTS     256
#define READ_MAX       65536 /* input buffer when pipelining big answers */
#define HIST_ROWS      20
#define BAR_WIDTH      40
#define ERRMSG         200
#define RETRY_NS       (100 * 1000000ull) /* --reconnect: after a failure */

/* Opcode names accepted by --op, in the protocol's order. */
static const struct {
	const char *name;
	uint8_t opcode;
} ops[] = {
    {"ping", PROTO_OP_PING},
    {"echo", PROTO_OP_ECHO},
    {"info", PROTO_OP_INFO},
    {"stats", PROTO_OP_STATS},
    {"time", PROTO_OP_TIME},
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* Why an answer or a connection was counted as an error. */
enum bench_err {
	E_VERSION,     /* an answer in another protocol version */
	E_STATUS,      /* status other than OK */
	E_ID,          /* request_id out of order */
	E_OPCODE,      /* opcode not the request's */
	E_PAYLOAD,     /* wrong payload length or bytes */
	E_UNSOLICITED, /* an answer with nothing in flight, or request_id 0 */
	E_LOST,        /* closed, reset, send/recv failure */
	E_FRAME,       /* a frame that cannot be parsed: stream lost */
	E_TIMEOUT,     /* no answer within --timeout */
	E_NKINDS,
};

static const char *const err_names[E_NKINDS] = {
    "wrong protocol version",
    "error status",
    "wrong request_id",
    "wrong opcode",
    "wrong payload",
    "unsolicited answer",
    "connection lost",
    "malformed frame",
    "answer timed out",
};

enum phase {
	PH_WARMUP,
	PH_MEASURE,
	PH_DRAIN,
};

/* One request in flight. */
struct slot {
	uint64_t sent_ns; /* 0 until its send */
	int counted;      /* sent in the measured window */
};

struct bconn {
	int fd;                   /* -1 once closed */
	struct sdc_tls_conn *tls; /* NULL: plain TCP */
	int rd_wants_out;         /* a TLS read waits for writability */
	unsigned idx;             /* connection number, for messages */
	int want_out;             /* EPOLLOUT requested */
	int refused;              /* the server said BUSY/DENIED with id 0 */
	uint32_t next_id;         /* request_id of the next request */
	uint32_t expect_id;       /* request_id the next answer must carry */
	uint64_t sent_seq;        /* requests made so far */
	uint64_t recv_seq;        /* answers received so far */
	unsigned inflight;        /* made and not yet answered */
	unsigned unstamped;       /* made and not yet handed to send(2) */
	uint64_t quota;           /* -n: measured requests still to make */
	uint64_t progress_ns;     /* last read, or start of waiting: may be
				     a little after the thread's now */
	const uint8_t *payload;   /* echo: this connection's pattern */
	struct slot *ring;        /* PIPELINE slots, by sequence number */
	uint8_t *out;             /* requests not yet sent */
	size_t out_off, out_len, out_cap;
	uint8_t *in; /* a partial answer */
	size_t in_len, in_cap;
	/* --reconnect */
	int goaway;     /* GOAWAY seen: nothing new; replace when idle */
	int connecting; /* a non-blocking connect in progress */
	int waiting;    /* no socket: connect again at retry_ns */
	uint64_t retry_ns;
};

struct bench;

struct bthread {
	struct bench *b;
	pthread_t tid;
	int started;
	int ep;
	struct bconn *conns;
	size_t nconns;
	size_t open;
	enum phase phase;
	uint64_t now; /* at the top of the loop iteration */
	struct hist *hist;
	/* Read by the progress line: single writer, relaxed. */
	_Atomic uint64_t answers;
	_Atomic uint64_t errors;
	atomic_int finished;
	/* Read after join. */
	uint64_t counted;
	uint64_t kinds[E_NKINDS];
	uint64_t lost;
	uint64_t undrained;
	uint64_t last_ns; /* the last counted answer */
	uint64_t end_ns;
	char first_err[ERRMSG];
	uint64_t goaways, reconnects, reconnect_failures, lost_requests;
};

struct bench {
	const struct bench_opts *o;
	int dmode; /* by duration (-d), not by count (-n) */
	size_t frame_len;
	size_t in_cap;
	uint8_t *pattern; /* echo payloads: size + 256 bytes */
	uint64_t t0, t_start, t_end, drain_end;
	/* The start gate: the threads wait for go (or cancel) under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int go, cancel;
	struct bthread *threads;
	unsigned nthreads;
	struct sockaddr_storage addr; /* the server, for --reconnect */
	socklen_t addrlen;
};

static void complain(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void fmt_err(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void record_err(struct bthread *t, const struct bconn *c,
    enum bench_err kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_lost(struct bthread *t, struct bconn *c, enum bench_err kind,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int set_nodelay(int fd);
static void conn_fill(struct bthread *t, struct bconn *c);
static void conn_flush(struct bthread *t, struct bconn *c);

static void
complain(const char *fmt, ...)
{
	va_list ap;

	(void)fflush(stdout);
	(void)fputs(PROG ": bench: ", stderr);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
}

static void
fmt_err(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / NS_PER_S);
	ts.tv_nsec = (long)(ns % NS_PER_S);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Single-writer counters: a plain load and store, visible to readers. */
static void
bump(_Atomic uint64_t *a, uint64_t n)
{
	atomic_store_explicit(a,
	    atomic_load_explicit(a, memory_order_relaxed) + n,
	    memory_order_relaxed);
}

static uint64_t
peek(_Atomic uint64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

/* ---------------------------------------------------------------- */
/* Options */

/* A name OPCODES could list: [a-z0-9_.], 1 to 64 bytes. */
static int
good_op_name(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
			(s[n] >= '0' && s[n] <= '9') || s[n] == '_' ||
			s[n] == '.'))
			return 0;
	return n > 0 && n <= 64;
}

void
bench_usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: " PROG " [-H HOST] [-p PORT] [-t SECONDS] bench "
	    "[-H HOST] [-p PORT]\n"
	    "           [-c N] [-n N | -d SECONDS] [-P N] [-t N] [--op OP] "
	    "[--size BYTES]\n"
	    "           [--warmup SECONDS] [--json] [--tls] [--cafile FILE] "
	    "[--insecure]\n"
	    "           [--cert FILE [--key FILE]] [--reconnect]\n"
	    "       " PROG " bench --op publish [--publishers N] "
	    "[--subscribers N]\n"
	    "           [--topics N] [--size BYTES] [--rate R] "
	    "[--duration SECONDS]\n"
	    "\n"
	    "Load-test a socketd server: N connections spread over the "
	    "threads, each\n"
	    "keeping a pipeline of requests in flight; every answer is "
	    "checked.\n"
	    "\n"
	    "After the word bench, -t is the number of threads; the global "
	    "-t/--timeout\n"
	    "(before bench) bounds each connect and each wait for an "
	    "answer.\n"
	    "\n"
	    "  -H, --host HOST         server (default: the global -H)\n"
	    "  -p, --port PORT         port (default: the global -p)\n"
	    "  -c, --connections N     connections, 1 to %u (default %u)\n"
	    "  -n, --requests N        measured requests in all, spread "
	    "over the\n"
	    "                          connections, 1 to 10^12\n"
	    "  -d, --duration SECONDS  measure for this long, 0.001 to "
	    "%.0f, decimals\n"
	    "                          allowed (default %.0f when there is "
	    "no -n)\n"
	    "  -P, --pipeline N        requests in flight per connection, "
	    "1 to %u\n"
	    "                          (default 1)\n"
	    "  -t, --threads N         client threads, each with an epoll "
	    "loop, 1 to %u\n"
	    "                          (default 1; at most one per "
	    "connection)\n"
	    "      --op OP             ping, echo, time, info, stats, or a "
	    "handler by name\n"
	    "                          (hello.upper) or opcode (0x80) "
	    "(default ping)\n"
	    "      --payload TEXT      the request payload (echo and "
	    "handlers)\n"
	    "      --size BYTES        echo payload, 0 to %u (default %u; "
	    "echo only)\n"
	    "      --warmup SECONDS    run this long unmeasured first, 0 "
	    "to %.0f\n"
	    "                          (default 1 with -d, 0 with -n)\n"
	    "      --json              print one JSON object instead of the "
	    "report\n"
	    "      --reconnect         replace connections the server closes "
	    "or drains\n"
	    "                          (GOAWAY) and go on; requests lost "
	    "still count\n"
	    "                          as errors (plain TCP only)\n"
	    "      --tls               connect with TLS; the handshakes are "
	    "done before\n"
	    "                          the run and not measured (default: "
	    "the global --tls)\n"
	    "      --cafile FILE       CA certificates to check the server "
	    "with\n"
	    "      --insecure          do not check the server's certificate\n"
	    "      --cert FILE         client certificate (mutual TLS)\n"
	    "      --key FILE          its private key (default: in the --cert "
	    "file)\n"
	    "                          --cafile, --insecure, --cert and --key "
	    "imply --tls\n"
	    "  -h, --help              print this help and exit\n"
	    "\n"
	    "Pub/sub (--op publish): publishers and subscribers on "
	    "topics bench.tK;\n"
	    "reports published and delivered messages/s, publish-to-deliver "
	    "latency\n"
	    "percentiles (each payload carries its send time), messages "
	    "lost and out\n"
	    "of order (per publisher).  The global -H, -p and --tls "
	    "options apply.\n"
	    "\n"
	    "      --publishers N      publishing connections, 1 to 10000 "
	    "(default 1);\n"
	    "                          publisher i publishes to "
	    "bench.t(i mod topics)\n"
	    "      --subscribers N     subscribing connections, 1 to 10000 "
	    "(default 1);\n"
	    "                          subscriber j subscribes to "
	    "bench.t(j mod topics)\n"
	    "      --topics N          topics to spread them over, 1 to "
	    "10000 (default 1)\n"
	    "      --size BYTES        message data size, 16 to 1048576 "
	    "(default 128)\n"
	    "      --rate R            publishes per second in all, paced "
	    "open loop;\n"
	    "                          0 (default): as fast as the server "
	    "answers, with\n"
	    "                          up to 256 unanswered publishes per "
	    "publisher\n"
	    "      --duration SECONDS  publish for this long, 0.1 to 86400 "
	    "(default 5)\n"
	    "\n"
	    "Exit status: 0 every answer was right, 1 some answers were "
	    "wrong, 2 usage\n"
	    "error, 3 a connection failed (to connect, or later: closed, "
	    "reset, timed\n"
	    "out, malformed frames).\n",
	    BENCH_CONNS_MAX, BENCH_DEFAULT_CONNS, BENCH_DURATION_MAX,
	    BENCH_DEFAULT_SECONDS, BENCH_PIPELINE_MAX, BENCH_THREADS_MAX,
	    BENCH_SIZE_MAX, BENCH_DEFAULT_SIZE, BENCH_WARMUP_MAX);
}

/* Decimal digits only (no sign, space or suffix), min to max. */
static int
parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	const char *p;
	char *end;

	if (*s == '\0')
		return -1;
	for (p = s; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* Seconds as digits with at most one '.', from min to max. */
static int
parse_seconds(const char *s, double min, double max, double *out)
{
	const char *p;
	char *end;
	int digits = 0, dots = 0;
	double v;

	for (p = s; *p != '\0'; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && dots++ == 0)
			continue;
		else
			return -1;
	}
	if (digits == 0)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_port(const char *s, char *out, size_t len)
{
	uint64_t v;

	if (parse_count(s, 1, 65535, &v) == -1)
		return -1;
	(void)snprintf(out, len, "%" PRIu64, v);
	return 0;
}

enum {
	OPT_OP = 256,
	OPT_SIZE,
	OPT_PAYLOAD,
	OPT_WARMUP,
	OPT_JSON,
	OPT_TLS,
	OPT_CAFILE,
	OPT_INSECURE,
	OPT_CERT,
	OPT_KEY,
	OPT_RECONNECT,
};

int
/* Long but linear: splitting it would scatter one sequence. */
// NOLINTNEXTLINE(readability-function-size)
bench_parse(int argc, char **argv, const char *host, const char *port,
    int timeout_ms, struct bench_opts *o, char *err, size_t errlen)
{
	static const struct option longopts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"connections", required_argument, NULL, 'c'},
	    {"requests", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, 'd'},
	    {"pipeline", required_argument, NULL, 'P'},
	    {"threads", required_argument, NULL, 't'},
	    {"op", required_argument, NULL, OPT_OP},
	    {"size", required_argument, NULL, OPT_SIZE},
	    {"payload", required_argument, NULL, OPT_PAYLOAD},
	    {"warmup", required_argument, NULL, OPT_WARMUP},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"cafile", required_argument, NULL, OPT_CAFILE},
	    {"insecure", no_argument, NULL, OPT_INSECURE},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"reconnect", no_argument, NULL, OPT_RECONNECT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	size_t i;
	int ch, have_n = 0, have_d = 0, have_size = 0, have_warmup = 0;
	int have_payload = 0;
	uint8_t num;

	memset(o, 0, sizeof(*o));
	o->host = host;
	(void)snprintf(o->port, sizeof(o->port), "%s", port);
	o->timeout_ms = timeout_ms;
	o->connections = BENCH_DEFAULT_CONNS;
	o->duration_s = BENCH_DEFAULT_SECONDS;
	o->pipeline = 1;
	o->threads = 1;
	o->opcode = PROTO_OP_PING;
	o->size = BENCH_DEFAULT_SIZE;
	(void)snprintf(o->op_label, sizeof(o->op_label), "ping");

	/*
	 * A second getopt pass over other arguments: optind 0 makes glibc
	 * (and musl) start afresh.  '+': no permuting, ':': report a
	 * missing argument as ':'.
	 */
	optind = 0;
	opterr = 0;
	/* The main thread, before any other starts. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	while ((ch = getopt_long(
		    argc, argv, "+:H:p:c:n:d:P:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H':
			if (*optarg == '\0') {
				fmt_err(err, errlen, "empty host name");
				return -1;
			}
			o->host = optarg;
			break;
		case 'p':
			if (parse_port(optarg, o->port, sizeof(o->port)) ==
			    -1) {
				fmt_err(err, errlen,
				    "bad port '%s': expected a number from "
				    "1 to 65535",
				    optarg);
				return -1;
			}
			break;
		case 'c':
			if (parse_count(optarg, 1, BENCH_CONNS_MAX, &v) == -1) {
				fmt_err(err, errlen,
				    "bad connection count '%s': expected a "
				    "number from 1 to %u",
				    optarg, BENCH_CONNS_MAX);
				return -1;
			}
			o->connections = (unsigned)v;
			break;
		case 'n':
			if (parse_count(optarg, 1, BENCH_REQUESTS_MAX,
				&o->requests) == -1) {
				fmt_err(err, errlen,
				    "bad request count '%s': expected a "
				    "number from 1 to %" PRIu64,
				    optarg, BENCH_REQUESTS_MAX);
				return -1;
			}
			have_n = 1;
			break;
		case 'd':
			if (parse_seconds(optarg, 0.001, BENCH_DURATION_MAX,
				&o->duration_s) == -1) {
				fmt_err(err, errlen,
				    "bad duration '%s': expected seconds "
				    "from 0.001 to %.0f, e.g. 5 or 0.5",
				    optarg, BENCH_DURATION_MAX);
				return -1;
			}
			have_d = 1;
			break;
		case 'P':
			if (parse_count(optarg, 1, BENCH_PIPELINE_MAX, &v) ==
			    -1) {
				fmt_err(err, errlen,
				    "bad pipeline depth '%s': expected a "
				    "number from 1 to %u",
				    optarg, BENCH_PIPELINE_MAX);
				return -1;
			}
			o->pipeline = (unsigned)v;
			break;
		case 't':
			if (parse_count(optarg, 1, BENCH_THREADS_MAX, &v) ==
			    -1) {
				fmt_err(err, errlen,
				    "bad thread count '%s': expected a "
				    "number from 1 to %u (after bench, -t "
				    "is --threads; put the timeout before "
				    "bench)",
				    optarg, BENCH_THREADS_MAX);
				return -1;
			}
			o->threads = (unsigned)v;
			break;
		case OPT_OP:
			for (i = 0; i < NOPS; i++)
				if (strcmp(optarg, ops[i].name) == 0)
					break;
			o->op_name = NULL;
			o->module = 0;
			if (i < NOPS) {
				o->opcode = ops[i].opcode;
			} else if (opnames_number(optarg, &num) == 1) {
				o->opcode = num;
				o->module = 1;
			} else if (opnames_number(optarg, &num) == 0 &&
			    good_op_name(optarg)) {
				o->op_name = optarg; /* resolved later */
				o->module = 1;
			} else {
				fmt_err(err, errlen,
				    "bad operation '%s': expected ping, "
				    "echo, time, info, stats, a handler's "
				    "name or 0xNN",
				    optarg);
				return -1;
			}
			(void)snprintf(
			    o->op_label, sizeof(o->op_label), "%s", optarg);
			break;
		case OPT_PAYLOAD:
			if (strlen(optarg) > BENCH_SIZE_MAX) {
				fmt_err(err, errlen,
				    "--payload of %zu bytes: at most %u",
				    strlen(optarg), BENCH_SIZE_MAX);
				return -1;
			}
			o->payload = (const uint8_t *)optarg;
			o->size = strlen(optarg);
			have_payload = 1;
			break;
		case OPT_SIZE:
			if (parse_count(optarg, 0, BENCH_SIZE_MAX, &v) == -1) {
				fmt_err(err, errlen,
				    "bad size '%s': expected bytes from 0 "
				    "to %u",
				    optarg, BENCH_SIZE_MAX);
				return -1;
			}
			o->size = (size_t)v;
			have_size = 1;
			break;
		case OPT_WARMUP:
			if (parse_seconds(optarg, 0, BENCH_WARMUP_MAX,
				&o->warmup_s) == -1) {
				fmt_err(err, errlen,
				    "bad warmup '%s': expected seconds from "
				    "0 to %.0f, e.g. 1 or 0.5",
				    optarg, BENCH_WARMUP_MAX);
				return -1;
			}
			have_warmup = 1;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_RECONNECT:
			o->reconnect = 1;
			break;
		case OPT_TLS:
			o->tls = 1;
			break;
		case OPT_CAFILE:
		case OPT_CERT:
		case OPT_KEY:
			if (*optarg == '\0') {
				fmt_err(err, errlen,
				    "option %s: empty file name",
				    argv[optind - 1]);
				return -1;
			}
			if (ch == OPT_CAFILE)
				o->tls_opts.cafile = optarg;
			else if (ch == OPT_CERT)
				o->tls_opts.certfile = optarg;
			else
				o->tls_opts.keyfile = optarg;
			o->tls = 1;
			break;
		case OPT_INSECURE:
			o->tls_opts.insecure = 1;
			o->tls = 1;
			break;
		case 'h':
			o->help = 1;
			return 0;
		case ':':
			fmt_err(err, errlen, "option %s needs an argument",
			    argv[optind - 1]);
			return -1;
		default:
			if (optopt != 0 && optopt < 256)
				fmt_err(
				    err, errlen, "unknown option -%c", optopt);
			else
				fmt_err(err, errlen, "unknown option %s",
				    argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fmt_err(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (o->tls_opts.keyfile != NULL && o->tls_opts.certfile == NULL) {
		fmt_err(err, errlen, "--key needs --cert");
		return -1;
	}
	if (o->tls_opts.insecure && o->tls_opts.cafile != NULL) {
		fmt_err(
		    err, errlen, "--insecure and --cafile exclude each other");
		return -1;
	}
	if (o->reconnect && o->tls) {
		fmt_err(err, errlen,
		    "--reconnect does not work with --tls (yet): reconnects "
		    "are plain TCP");
		return -1;
	}
	if (have_n && have_d) {
		fmt_err(err, errlen,
		    "-n (a request count) and -d (a duration) exclude each "
		    "other");
		return -1;
	}
	if (have_payload && have_size) {
		fmt_err(err, errlen, "--payload and --size exclude each other");
		return -1;
	}
	if (have_payload && !o->module && o->opcode != PROTO_OP_ECHO) {
		fmt_err(err, errlen,
		    "--payload applies to --op echo and module handlers only");
		return -1;
	}
	if (o->module && !have_payload)
		o->size = 0;
	if (o->opcode != PROTO_OP_ECHO && !o->module) {
		if (have_size) {
			fmt_err(
			    err, errlen, "--size applies to --op echo only");
			return -1;
		}
		o->size = 0;
	}
	if (have_n)
		o->duration_s = 0;
	if (!have_warmup)
		o->warmup_s = have_n ? 0 : 1;
	return 0;
}

/* ---------------------------------------------------------------- */
/* The event loop (one per thread) */

static enum phase
phase_at(const struct bench *b, uint64_t now)
{
	if (now < b->t_start)
		return PH_WARMUP;
	if (b->dmode && now >= b->t_end)
		return PH_DRAIN;
	return PH_MEASURE;
}

static void
record_err(struct bthread *t, const struct bconn *c, enum bench_err kind,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	t->kinds[kind]++;
	bump(&t->errors, 1);
	if (t->first_err[0] != '\0')
		return;
	n = snprintf(
	    t->first_err, sizeof(t->first_err), "connection %u: ", c->idx);
	if (n < 0 || (size_t)n >= sizeof(t->first_err))
		return;
	va_start(ap, fmt);
	(void)vsnprintf(
	    t->first_err + n, sizeof(t->first_err) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void
conn_close(struct bthread *t, struct bconn *c)
{
	if (c->fd < 0)
		return;
	sdc_tls_conn_free(c->tls); /* close_notify, if it can */
	c->tls = NULL;
	(void)close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	t->open--;
}

/* Whether c still has requests to make in this phase. */
static int
wants_more(const struct bthread *t, const struct bconn *c)
{
	return t->phase == PH_WARMUP ||
	    (t->phase == PH_MEASURE && (t->b->dmode || c->quota > 0));
}

/* --reconnect: a new socket to the same address, connecting. */
static void
start_connect(struct bthread *t, struct bconn *c)
{
	const struct bench *b = t->b;
	struct epoll_event ev;
	int fd, r;

	c->waiting = 0;
	fd = socket(
	    b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto retry;
	r = connect(fd, (const struct sockaddr *)&b->addr, b->addrlen);
	if (r == -1 && errno != EINPROGRESS) {
		(void)close(fd);
		goto retry;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
		(void)close(fd);
		goto retry;
	}
	c->fd = fd;
	c->connecting = 1;
	c->want_out = 1;
	c->progress_ns = t->now;
	return;
retry:
	t->reconnect_failures++;
	c->waiting = 1;
	c->retry_ns = t->now + RETRY_NS;
}

/* --reconnect: drop c's socket and state, and connect again if needed. */
static void
conn_reopen(struct bthread *t, struct bconn *c)
{
	if (c->fd >= 0) {
		sdc_tls_conn_free(c->tls);
		c->tls = NULL;
		(void)close(c->fd);
		c->fd = -1;
	}
	c->connecting = c->goaway = c->refused = 0;
	c->want_out = c->rd_wants_out = 0;
	c->inflight = c->unstamped = 0;
	c->recv_seq = c->sent_seq;
	c->out_off = c->out_len = c->in_len = 0;
	c->next_id = c->expect_id = 1;
	if (!wants_more(t, c)) {
		t->open--; /* finished */
		return;
	}
	t->reconnects++;
	start_connect(t, c);
}

/* The connect finished (or failed). */
static void
conn_connected(struct bthread *t, struct bconn *c)
{
	struct epoll_event ev;
	socklen_t sl = sizeof(int);
	int e = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1)
		e = errno;
	if (e == EINPROGRESS)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (e != 0 || epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		(void)close(c->fd);
		c->fd = -1;
		c->connecting = 0;
		t->reconnect_failures++;
		c->waiting = 1;
		c->retry_ns = t->now + RETRY_NS;
		return;
	}
	(void)set_nodelay(c->fd);
	c->connecting = 0;
	c->want_out = 0;
	c->progress_ns = t->now;
	conn_fill(t, c);
	conn_flush(t, c);
}

/*
 * --reconnect: c was closed, reset or timed out.  Each request in flight
 * is lost and counts as an error; a clean close with nothing in flight
 * costs nothing.  Then a new connection takes c's place.
 */
static void
lost_reconnect(
    struct bthread *t, struct bconn *c, enum bench_err kind, const char *msg)
{
	if (c->inflight > 0 || kind != E_LOST) {
		record_err(t, c, kind, "%s (%u request%s lost)", msg,
		    c->inflight, c->inflight == 1 ? "" : "s");
		if (c->inflight > 1) {
			t->kinds[kind] += c->inflight - 1;
			bump(&t->errors, c->inflight - 1);
		}
		t->lost_requests += c->inflight;
		t->lost++;
	}
	conn_reopen(t, c);
}

static void
conn_lost(struct bthread *t, struct bconn *c, enum bench_err kind,
    const char *fmt, ...)
{
	char msg[ERRMSG];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (t->b->o->reconnect && !c->refused) {
		lost_reconnect(t, c, kind, msg);
		return;
	}
	/* After a refusal (already an error) the close is expected. */
	if (!c->refused)
		record_err(t, c, kind, "%s", msg);
	t->lost++;
	conn_close(t, c);
}

static int
may_send(const struct bthread *t, const struct bconn *c)
{
	if (c->inflight >= t->b->o->pipeline || c->goaway || c->connecting)
		return 0;
	switch (t->phase) {
	case PH_WARMUP:
		return 1;
	case PH_MEASURE:
		return t->b->dmode || c->quota > 0;
	default:
		return 0;
	}
}

/* Nothing more to do on c: close it. */
static int
conn_done(const struct bthread *t, const struct bconn *c)
{
	if (c->inflight > 0)
		return 0;
	if (t->phase == PH_DRAIN)
		return 1;
	return t->phase == PH_MEASURE && !t->b->dmode && c->quota == 0;
}

/* Make as many requests as the pipeline and the phase allow. */
static void
conn_fill(struct bthread *t, struct bconn *c)
{
	const struct bench *b = t->b;
	const struct bench_opts *o = b->o;
	struct slot *s;

	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	while (may_send(t, c)) {
		/* out_cap holds PIPELINE frames: this always fits. */
		(void)proto_encode_req(c->out + c->out_len,
		    c->out_cap - c->out_len, o->opcode, c->next_id, c->payload,
		    o->size);
		c->out_len += b->frame_len;
		s = &c->ring[c->sent_seq % o->pipeline];
		s->sent_ns = 0;
		s->counted = t->phase == PH_MEASURE;
		if (s->counted && !b->dmode)
			c->quota--;
		if (c->inflight == 0)
			c->progress_ns = t->now; /* the stall clock starts */
		c->sent_seq++;
		c->inflight++;
		c->unstamped++;
		if (++c->next_id == 0)
			c->next_id = 1;
	}
}

/* EPOLLOUT: output that can go, or a TLS read that waits for it. */
static int
wants_out(const struct bconn *c)
{
	if (c->rd_wants_out)
		return 1;
	if (c->out_off >= c->out_len)
		return 0;
	/* A TLS write that waits for input would spin on EPOLLOUT. */
	return c->tls == NULL || sdc_tls_conn_want(c->tls) != SDC_WANT_READ;
}

static void
set_events(struct bthread *t, struct bconn *c, int want_out)
{
	struct epoll_event ev;

	if (want_out == c->want_out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
	ev.data.ptr = c;
	if (epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = want_out;
}

/* Send what is pending, stamping the requests it starts to carry. */
static void
conn_flush(struct bthread *t, struct bconn *c)
{
	unsigned p = t->b->o->pipeline;
	char eb[128], terr[SDC_ERRLEN];
	uint64_t now;
	ssize_t n;

	if (c->out_off < c->out_len) {
		now = mono_ns();
		for (; c->unstamped > 0; c->unstamped--)
			c->ring[(c->sent_seq - c->unstamped) % p].sent_ns = now;
		if (c->tls != NULL)
			n = sdc_tls_conn_write(c->tls, c->out + c->out_off,
			    c->out_len - c->out_off, terr);
		else
			n = send(c->fd, c->out + c->out_off,
			    c->out_len - c->out_off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_off += (size_t)n;
			if (c->out_off == c->out_len)
				c->out_off = c->out_len = 0;
		} else if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			if (errno == EPROTO && c->tls != NULL)
				conn_lost(t, c, E_LOST, "TLS error: %s", terr);
			else if (errno == EPIPE)
				conn_lost(t, c, E_LOST,
				    "connection closed by server");
			else if (errno == ECONNRESET)
				conn_lost(
				    t, c, E_LOST, "connection reset by server");
			else
				conn_lost(t, c, E_LOST, "send: %s",
				    sdc_strerror(errno, eb, sizeof(eb)));
			return;
		}
	}
	set_events(t, c, wants_out(c));
}

/* Printable copy of an error answer's text, for messages. */
static const char *
answer_text(const struct proto_resp *r, char *buf, size_t len)
{
	size_t i, n;

	n = r->payload_len < len - 1 ? r->payload_len : len - 1;
	for (i = 0; i < n; i++) {
		unsigned char ch = r->payload[i];

		buf[i] = (char)(ch < 0x20 || ch > 0x7e ? '?' : ch);
	}
	buf[n] = '\0';
	return buf;
}

/* Check one answer against what c expects; -1 if right, else the kind. */
static int
check_answer(const struct bench *b, const struct bconn *c,
    const struct proto_resp *r, char *msg, size_t len)
{
	const struct bench_opts *o = b->o;
	char text[64];
	size_t i;

	if (r->version != PROTO_VERSION) {
		fmt_err(msg, len, "answer in protocol version %u, expected %d",
		    (unsigned)r->version, PROTO_VERSION);
		return E_VERSION;
	}
	if (r->status != PROTO_OK) {
		fmt_err(msg, len, "request_id %" PRIu32 " answered %s: %s",
		    r->request_id, proto_status_str(r->status),
		    answer_text(r, text, sizeof(text)));
		return E_STATUS;
	}
	if (r->request_id != c->expect_id) {
		fmt_err(msg, len,
		    "answer with request_id %" PRIu32 ", expected %" PRIu32,
		    r->request_id, c->expect_id);
		return E_ID;
	}
	if (r->opcode != o->opcode) {
		fmt_err(msg, len,
		    "request_id %" PRIu32 " answered with opcode %u, "
		    "expected %u",
		    r->request_id, (unsigned)r->opcode, (unsigned)o->opcode);
		return E_OPCODE;
	}
	if (o->module)
		return -1; /* a handler's answer is its own business */
	switch (o->opcode) {
	case PROTO_OP_ECHO:
		if (r->payload_len != o->size) {
			fmt_err(msg, len,
			    "request_id %" PRIu32 ": echo of %zu bytes, "
			    "sent %zu",
			    r->request_id, r->payload_len, o->size);
			return E_PAYLOAD;
		}
		if (o->size > 0 &&
		    memcmp(r->payload, c->payload, o->size) != 0) {
			for (i = 0; r->payload[i] == c->payload[i]; i++)
				;
			fmt_err(msg, len,
			    "request_id %" PRIu32 ": echo byte %zu is "
			    "0x%02x, sent 0x%02x",
			    r->request_id, i, r->payload[i], c->payload[i]);
			return E_PAYLOAD;
		}
		break;
	case PROTO_OP_PING:
		if (r->payload_len != 0) {
			fmt_err(msg, len,
			    "request_id %" PRIu32 ": PING answer with %zu "
			    "bytes of payload",
			    r->request_id, r->payload_len);
			return E_PAYLOAD;
		}
		break;
	case PROTO_OP_TIME:
		if (r->payload_len != 8) {
			fmt_err(msg, len,
			    "request_id %" PRIu32 ": TIME answer of %zu "
			    "bytes, expected 8",
			    r->request_id, r->payload_len);
			return E_PAYLOAD;
		}
		break;
	default: /* INFO, STATS: some "name value" lines */
		if (r->payload_len == 0) {
			fmt_err(msg, len,
			    "request_id %" PRIu32 ": empty %s answer",
			    r->request_id, o->op_label);
			return E_PAYLOAD;
		}
		break;
	}
	return -1;
}

static void
on_answer(struct bthread *t, struct bconn *c, const struct proto_resp *r,
    uint64_t now)
{
	const struct bench *b = t->b;
	const struct slot *s;
	char msg[ERRMSG], text[64];
	int kind;

	/*
	 * A push (protocol v1.1: status OK, request_id 0; no request has
	 * id 0): ignored, as unknown pushes must be, except GOAWAY, which
	 * is counted and, with --reconnect, obeyed.
	 */
	if (r->request_id == 0 && r->status == PROTO_OK &&
	    r->version == PROTO_VERSION) {
		if (r->opcode == PROTO_OP_GOAWAY) {
			t->goaways++;
			c->goaway = b->o->reconnect;
		}
		return;
	}
	/* BUSY or DENIED before closing: it answers no request. */
	if (r->request_id == 0 && r->status != PROTO_OK &&
	    r->version == PROTO_VERSION) {
		if (!c->refused)
			record_err(t, c, E_UNSOLICITED,
			    "the server refused the connection: %s: %s",
			    proto_status_str(r->status),
			    answer_text(r, text, sizeof(text)));
		c->refused = 1;
		return;
	}
	if (c->inflight == 0) {
		record_err(t, c, E_UNSOLICITED,
		    "an answer (request_id %" PRIu32 ") to no request",
		    r->request_id);
		return;
	}
	s = &c->ring[c->recv_seq % b->o->pipeline];
	kind = check_answer(b, c, r, msg, sizeof(msg));
	if (kind >= 0)
		record_err(t, c, (enum bench_err)kind, "%s", msg);
	/* Right or wrong, it is the answer to the oldest request. */
	if (s->counted && (!b->dmode || now < b->t_end) && s->sent_ns != 0) {
		hist_record(t->hist, now - s->sent_ns);
		t->counted++;
		t->last_ns = now;
	}
	c->recv_seq++;
	c->inflight--;
	if (++c->expect_id == 0)
		c->expect_id = 1;
	bump(&t->answers, 1);
}

static void
conn_read(struct bthread *t, struct bconn *c)
{
	struct proto_resp r;
	enum proto_status st;
	size_t off, used;
	uint64_t now;
	char eb[128], terr[SDC_ERRLEN];
	ssize_t n;

again:
	/* in_cap holds the largest answer: never full between reads. */
	if (c->in_len == c->in_cap) {
		conn_lost(t, c, E_FRAME, "an answer larger than %zu bytes",
		    c->in_cap);
		return;
	}
	c->rd_wants_out = 0;
	if (c->tls != NULL)
		n = sdc_tls_conn_read(
		    c->tls, c->in + c->in_len, c->in_cap - c->in_len, terr);
	else
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len,
		    MSG_DONTWAIT);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (c->tls != NULL) {
				c->rd_wants_out = errno == EAGAIN &&
				    sdc_tls_conn_want(c->tls) == SDC_WANT_WRITE;
				set_events(t, c, wants_out(c));
			}
			return;
		}
		if (c->tls != NULL && errno == EPROTO)
			conn_lost(t, c, E_LOST, "TLS error: %s", terr);
		else if (errno == ECONNRESET)
			conn_lost(t, c, E_LOST, "connection reset by server");
		else
			conn_lost(t, c, E_LOST, "recv: %s",
			    sdc_strerror(errno, eb, sizeof(eb)));
		return;
	}
	if (n == 0) {
		conn_lost(t, c, E_LOST, "connection closed by server%s",
		    c->in_len > 0 ? " in the middle of an answer" : "");
		return;
	}
	now = mono_ns();
	c->in_len += (size_t)n;
	c->progress_ns = now;
	for (off = 0;; off += used) {
		st = proto_decode_resp(c->in + off, c->in_len - off,
		    c->in_cap - PROTO_LEN_SIZE, &r, &used);
		if (st == PROTO_AGAIN)
			break;
		if (st == PROTO_TOO_LARGE) {
			conn_lost(t, c, E_FRAME,
			    "an answer of %" PRIu32 " bytes, more than "
			    "the %zu expected at most",
			    proto_get_u32(c->in + off),
			    c->in_cap - PROTO_LEN_SIZE);
			return;
		}
		if (st != PROTO_OK && st != PROTO_UNSUPPORTED_VERSION) {
			conn_lost(t, c, E_FRAME,
			    "a frame of %" PRIu32 " bytes, shorter than "
			    "the %d-byte header",
			    proto_get_u32(c->in + off), PROTO_HDR_SIZE);
			return;
		}
		on_answer(t, c, &r, now);
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (c->goaway && c->inflight == 0) {
		/* Drained: every answer is in; move to a new connection. */
		conn_reopen(t, c);
		return;
	}
	conn_fill(t, c);
	conn_flush(t, c);
	if (c->fd >= 0 && conn_done(t, c)) {
		conn_close(t, c);
		return;
	}
	/* TLS input already off the socket: epoll will not report it. */
	if (c->fd >= 0 && c->tls != NULL && sdc_tls_conn_pending(c->tls))
		goto again;
}

/* Close finished connections; fail those that wait too long. */
static void
sweep(struct bthread *t)
{
	const struct bench_opts *o = t->b->o;
	uint64_t limit = (uint64_t)o->timeout_ms * 1000000u;
	struct bconn *c;
	size_t i;

	for (i = 0; i < t->nconns; i++) {
		c = &t->conns[i];
		if (c->waiting) {
			if (!wants_more(t, c)) {
				c->waiting = 0;
				t->open--;
			} else if (t->now >= c->retry_ns) {
				start_connect(t, c);
			}
			continue;
		}
		if (c->fd < 0)
			continue;
		if (c->connecting &&
		    (!wants_more(t, c) ||
			(limit > 0 && t->now > c->progress_ns + limit))) {
			if (wants_more(t, c))
				t->reconnect_failures++;
			(void)close(c->fd);
			c->fd = -1;
			c->connecting = 0;
			if (wants_more(t, c)) {
				c->waiting = 1;
				c->retry_ns = t->now + RETRY_NS;
			} else {
				t->open--;
			}
			continue;
		}
		if (conn_done(t, c))
			conn_close(t, c);
		else if (limit > 0 && c->inflight > 0 &&
		    t->now > c->progress_ns + limit)
			conn_lost(t, c, E_TIMEOUT,
			    "no answer for %d ms with %u requests in flight",
			    o->timeout_ms, c->inflight);
	}
}

/* epoll_wait's timeout: until the next sweep or phase boundary. */
static int
wait_ms(const struct bthread *t, uint64_t next_sweep)
{
	const struct bench *b = t->b;
	uint64_t until = next_sweep;

	if (t->phase == PH_WARMUP && b->t_start < until)
		until = b->t_start;
	if (t->phase == PH_MEASURE && b->dmode && b->t_end < until)
		until = b->t_end;
	if (t->phase == PH_DRAIN && b->drain_end < until)
		until = b->drain_end;
	if (until <= t->now)
		return 0;
	return (int)((until - t->now + 999999u) / 1000000u);
}

static void *
thread_main(void *arg)
{
	struct bthread *t = arg;
	struct bench *b = t->b;
	struct epoll_event evs[MAX_EVENTS];
	struct bconn *c;
	uint64_t next_sweep;
	enum phase ph;
	char eb[128];
	int i, n;
	size_t k;

	(void)pthread_mutex_lock(&b->mu);
	while (!b->go)
		(void)pthread_cond_wait(&b->cv, &b->mu);
	(void)pthread_mutex_unlock(&b->mu);
	if (b->cancel) {
		atomic_store(&t->finished, 1);
		return NULL;
	}
	t->now = mono_ns();
	t->phase = phase_at(b, t->now);
	for (k = 0; k < t->nconns; k++) {
		c = &t->conns[k];
		c->progress_ns = t->now;
		conn_fill(t, c);
		conn_flush(t, c);
	}
	sweep(t);
	next_sweep = t->now + TICK_NS;
	while (t->open > 0) {
		n = epoll_wait(t->ep, evs, MAX_EVENTS, wait_ms(t, next_sweep));
		if (n == -1 && errno != EINTR) {
			/* Cannot go on: count every open connection lost. */
			for (k = 0; k < t->nconns; k++)
				if (t->conns[k].fd >= 0)
					conn_lost(t, &t->conns[k], E_LOST,
					    "epoll_wait: %s",
					    sdc_strerror(
						errno, eb, sizeof(eb)));
			break;
		}
		t->now = mono_ns();
		if ((ph = phase_at(b, t->now)) != t->phase) {
			t->phase = ph;
			sweep(t);
		}
		for (i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (c->connecting) {
				if (c->fd >= 0)
					conn_connected(t, c);
				continue;
			}
			if (c->fd >= 0 &&
			    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				conn_read(t, c);
			if (c->fd >= 0 && (evs[i].events & EPOLLOUT) &&
			    c->rd_wants_out)
				conn_read(t, c);
			if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
				conn_flush(t, c);
		}
		if (t->now >= next_sweep) {
			sweep(t);
			next_sweep = t->now + TICK_NS;
		}
		if (t->phase == PH_DRAIN && t->now >= b->drain_end) {
			for (k = 0; k < t->nconns; k++) {
				c = &t->conns[k];
				if (c->fd >= 0) {
					t->undrained += c->inflight;
					conn_close(t, c);
				} else if (c->waiting) {
					c->waiting = 0;
					t->open--;
				}
			}
		}
	}
	t->end_ns = mono_ns();
	atomic_store(&t->finished, 1);
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Setup */

/*
 * Raise the soft RLIMIT_NOFILE to the hard limit; fail with a message if
 * need descriptors still do not fit.
 */
static int
raise_nofile(const struct bench_opts *o, uint64_t need)
{
	struct rlimit rl, nr;
	char eb[128];

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		complain("getrlimit(RLIMIT_NOFILE): %s",
		    sdc_strerror(errno, eb, sizeof(eb)));
		return -1;
	}
	if (rl.rlim_cur != rl.rlim_max) {
		nr = rl;
		nr.rlim_cur = rl.rlim_max;
		if (rl.rlim_max == RLIM_INFINITY)
			nr.rlim_cur = need > rl.rlim_cur ? need : rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &nr) == 0)
			rl = nr;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		complain("-c %u needs about %" PRIu64 " file descriptors, "
			 "but the limit is %llu (the hard limit, ulimit "
			 "-Hn, is %llu): use at most -c %llu",
		    o->connections, need, (unsigned long long)rl.rlim_cur,
		    (unsigned long long)rl.rlim_max,
		    rl.rlim_cur > need - o->connections
			? (unsigned long long)(rl.rlim_cur -
			      (need - o->connections))
			: 0ull);
		return -1;
	}
	return 0;
}

static int
set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A connected socket and, with TLS, its session (handshake complete). */
struct bsock {
	int fd; /* -1: not connected */
	struct sdc_tls_conn *tls;
};

/* A connection being set up: TCP connect, then the TLS handshake. */
struct pending {
	int fd; /* -1: free slot */
	size_t idx;
	uint64_t deadline;        /* 0: none */
	struct sdc_tls_conn *tls; /* non-NULL: connected, handshaking */
};

/* The connection setup, shared by the helpers below. */
struct setup {
	const struct bench_opts *o;
	struct sdc_tls *tls; /* NULL: plain TCP */
	char host[256];      /* o->host without [ ]: the name to verify */
	int ep;
	struct bsock *socks;
	uint64_t *failures;
	char *first; /* the first failure's message */
	size_t len;
};

static void setup_failed(struct setup *su, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
setup_failed(struct setup *su, const char *fmt, ...)
{
	va_list ap;

	if ((*su->failures)++ > 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(su->first, su->len, fmt, ap);
	va_end(ap);
}

static void
connect_failed(struct setup *su, int e)
{
	char eb[128];

	setup_failed(su, "connect to %s port %s: %s", su->o->host, su->o->port,
	    e == ETIMEDOUT ? "timed out" : sdc_strerror(e, eb, sizeof(eb)));
}

static void
pending_drop(struct setup *su, struct pending *p)
{
	(void)epoll_ctl(su->ep, EPOLL_CTL_DEL, p->fd, NULL);
	sdc_tls_conn_free(p->tls);
	(void)close(p->fd);
	p->tls = NULL;
	p->fd = -1;
}

/*
 * Advance the pending connection in slot i after an event: 1 ready (moved
 * into socks, slot freed), 0 still pending (waits for what it needs), -1
 * failed (counted, closed, slot freed).
 */
static int
advance(struct setup *su, struct pending *pend, size_t i)
{
	struct pending *p = &pend[i];
	struct epoll_event ev;
	char terr[SDC_ERRLEN];
	socklen_t el;
	int soerr, r;

	if (p->tls == NULL) {
		/* The TCP connect has finished: how? */
		el = sizeof(soerr);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == -1)
			soerr = errno;
		if (soerr != 0) {
			connect_failed(su, soerr);
			pending_drop(su, p);
			return -1;
		}
		(void)set_nodelay(p->fd);
		if (su->tls != NULL &&
		    (p->tls = sdc_tls_conn_new(
			 su->tls, p->fd, su->host, terr)) == NULL) {
			setup_failed(su, "%s", terr);
			pending_drop(su, p);
			return -1;
		}
	}
	if (p->tls != NULL && (r = sdc_tls_conn_handshake(p->tls, terr)) != 1) {
		if (r == -1) {
			setup_failed(su, "TLS handshake with %s port %s: %s",
			    su->host, su->o->port, terr);
			pending_drop(su, p);
			return -1;
		}
		memset(&ev, 0, sizeof(ev));
		ev.events = sdc_tls_conn_want(p->tls) == SDC_WANT_WRITE
		    ? EPOLLOUT
		    : EPOLLIN;
		ev.data.u64 = i;
		if (epoll_ctl(su->ep, EPOLL_CTL_MOD, p->fd, &ev) == -1) {
			connect_failed(su, errno);
			pending_drop(su, p);
			return -1;
		}
		return 0;
	}
	(void)epoll_ctl(su->ep, EPOLL_CTL_DEL, p->fd, NULL);
	su->socks[p->idx].fd = p->fd;
	su->socks[p->idx].tls = p->tls;
	p->fd = -1;
	p->tls = NULL;
	return 1;
}

/*
 * The first connection, through sdc_connect_tls: it resolves the host,
 * picks the address and says clearly what went wrong.  Its address goes
 * to *ss for the others.  0, or -1 with the message printed.
 */
static int
connect_first(struct setup *su, struct sockaddr_storage *ss, socklen_t *sl)
{
	const struct bench_opts *o = su->o;
	char err[SDC_ERRLEN], eb[128];
	struct sdc c;
	int fl;

	if (sdc_connect_tls(
		&c, o->host, o->port, o->timeout_ms, su->tls, err) == -1) {
		complain("no connection: %s", err);
		setup_failed(su, "%s", err);
		return -1;
	}
	/* sdc owns nothing else before any I/O: take fd and session. */
	su->socks[0].fd = c.fd;
	su->socks[0].tls = c.tls;
	c.tls = NULL;
	if (getpeername(c.fd, (struct sockaddr *)ss, sl) == -1 ||
	    (fl = fcntl(c.fd, F_GETFL)) == -1 ||
	    fcntl(c.fd, F_SETFL, fl | O_NONBLOCK) == -1) {
		complain("connect to %s port %s: %s", o->host, o->port,
		    sdc_strerror(errno, eb, sizeof(eb)));
		sdc_tls_conn_free(su->socks[0].tls);
		(void)close(c.fd);
		su->socks[0].fd = -1;
		su->socks[0].tls = NULL;
		return -1;
	}
	return 0;
}

/*
 * Connect o->connections sockets into socks[] (fd -1 where connecting
 * failed), with tls (may be NULL) completing each one's TLS handshake.
 * Returns how many connected; *failures and first (the first failure's
 * message) describe the others.  0 means none: the message is printed.
 */
static size_t
/* Long but linear: splitting it would scatter one sequence. */
// NOLINTNEXTLINE(readability-function-size)
connect_all(const struct bench_opts *o, struct sdc_tls *tls,
    struct bsock *socks, uint64_t *failures, char *first, size_t len,
    struct sockaddr_storage *addr, socklen_t *addrlen)
{
	struct pending pend[CONNECT_WINDOW];
	struct epoll_event evs[CONNECT_WINDOW], ev;
	struct sockaddr_storage ss;
	struct setup su;
	socklen_t sl = sizeof(ss);
	char eb[128];
	size_t next, ok, npend, i, hlen;
	uint64_t now, soonest;
	int fd, n, j, ms, r;

	memset(&su, 0, sizeof(su));
	su.o = o;
	su.tls = tls;
	su.ep = -1;
	su.socks = socks;
	su.failures = failures;
	su.first = first;
	su.len = len;
	hlen = strlen(o->host);
	if (hlen >= 2 && o->host[0] == '[' && o->host[hlen - 1] == ']')
		(void)snprintf(su.host, sizeof(su.host), "%.*s",
		    (int)(hlen - 2), o->host + 1);
	else
		(void)snprintf(su.host, sizeof(su.host), "%s", o->host);
	*failures = 0;
	first[0] = '\0';
	for (i = 0; i < o->connections; i++) {
		socks[i].fd = -1;
		socks[i].tls = NULL;
	}
	if (connect_first(&su, &ss, &sl) == -1) {
		*failures = o->connections;
		return 0;
	}
	*addr = ss;
	*addrlen = sl;
	ok = 1;
	if (o->connections == 1)
		return ok;

	if ((su.ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		complain(
		    "epoll_create1: %s", sdc_strerror(errno, eb, sizeof(eb)));
		sdc_tls_conn_free(socks[0].tls);
		(void)close(socks[0].fd);
		socks[0].fd = -1;
		socks[0].tls = NULL;
		*failures = o->connections;
		return 0;
	}
	for (i = 0; i < CONNECT_WINDOW; i++) {
		pend[i].fd = -1;
		pend[i].tls = NULL;
	}
	npend = 0;
	next = 1;
	while (next < o->connections || npend > 0) {
		/* Start connects while the window has room. */
		for (i = 0; next < o->connections && npend < CONNECT_WINDOW;
		     next++) {
			fd = socket(ss.ss_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd == -1) {
				connect_failed(&su, errno);
				continue;
			}
			r = connect(fd, (struct sockaddr *)&ss, sl);
			if (r == -1 && errno != EINPROGRESS) {
				connect_failed(&su, errno);
				(void)close(fd);
				continue;
			}
			while (pend[i].fd != -1)
				i++;
			memset(&ev, 0, sizeof(ev));
			ev.events = EPOLLOUT;
			ev.data.u64 = i;
			if (epoll_ctl(su.ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
				connect_failed(&su, errno);
				(void)close(fd);
				continue;
			}
			pend[i].fd = fd;
			pend[i].idx = next;
			pend[i].deadline = o->timeout_ms > 0
			    ? mono_ns() + (uint64_t)o->timeout_ms * 1000000u
			    : 0;
			npend++;
			/* Connected at once: go on to the handshake. */
			if (r == 0 && (r = advance(&su, pend, i)) != 0) {
				npend--;
				ok += r == 1;
			}
		}
		if (npend == 0)
			continue;
		/* Wait for completions, until the soonest deadline. */
		now = mono_ns();
		soonest = 0;
		for (i = 0; i < CONNECT_WINDOW; i++)
			if (pend[i].fd != -1 && pend[i].deadline != 0 &&
			    (soonest == 0 || pend[i].deadline < soonest))
				soonest = pend[i].deadline;
		ms = -1;
		if (soonest != 0)
			ms = soonest <= now
			    ? 0
			    : (int)((soonest - now + 999999u) / 1000000u);
		n = epoll_wait(su.ep, evs, CONNECT_WINDOW, ms);
		if (n == -1 && errno != EINTR) {
			complain("epoll_wait: %s",
			    sdc_strerror(errno, eb, sizeof(eb)));
			break;
		}
		for (j = 0; j < n; j++) {
			i = (size_t)evs[j].data.u64;
			if (pend[i].fd == -1)
				continue;
			if ((r = advance(&su, pend, i)) != 0) {
				npend--;
				ok += r == 1;
			}
		}
		now = mono_ns();
		for (i = 0; i < CONNECT_WINDOW; i++)
			if (pend[i].fd != -1 && pend[i].deadline != 0 &&
			    now >= pend[i].deadline) {
				if (pend[i].tls != NULL)
					setup_failed(&su,
					    "TLS handshake with %s port %s: "
					    "timed out",
					    su.host, o->port);
				else
					connect_failed(&su, ETIMEDOUT);
				pending_drop(&su, &pend[i]);
				npend--;
			}
	}
	/* Only after an epoll_wait failure: give up on the rest. */
	for (i = 0; i < CONNECT_WINDOW; i++)
		if (pend[i].fd != -1) {
			connect_failed(&su, EIO);
			pending_drop(&su, &pend[i]);
		}
	for (; next < o->connections; next++)
		connect_failed(&su, EIO);
	(void)close(su.ep);
	return ok;
}

/* Deterministic echo payloads: connection i sends pattern + i % 251. */
static uint8_t *
make_pattern(size_t size)
{
	uint8_t *p;
	size_t i;

	if ((p = malloc(size + 256)) == NULL)
		return NULL;
	for (i = 0; i < size + 256; i++)
		p[i] = (uint8_t)(i * 167u + (i >> 8) * 61u + 29u);
	return p;
}

static int
conn_init(
    struct bench *b, struct bconn *c, const struct bsock *sk, unsigned idx)
{
	const struct bench_opts *o = b->o;

	memset(c, 0, sizeof(*c));
	c->fd = sk->fd;
	c->tls = sk->tls;
	c->idx = idx;
	c->next_id = 1;
	c->expect_id = 1;
	c->payload = o->payload != NULL ? o->payload
	    : b->pattern != NULL        ? b->pattern + idx % 251u
					: NULL;
	c->out_cap = (size_t)o->pipeline * b->frame_len;
	c->in_cap = b->in_cap;
	c->ring = calloc(o->pipeline, sizeof(*c->ring));
	c->out = malloc(c->out_cap);
	c->in = malloc(c->in_cap);
	if (c->ring == NULL || c->out == NULL || c->in == NULL)
		return -1;
	return 0;
}

static void
conn_free(struct bconn *c)
{
	sdc_tls_conn_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		(void)close(c->fd);
	c->fd = -1;
	free(c->ring);
	free(c->out);
	free(c->in);
}

/* ---------------------------------------------------------------- */
/* Report */

struct totals {
	struct hist *hist;
	uint64_t requests, errors, lost, undrained;
	uint64_t kinds[E_NKINDS];
	uint64_t connected, connect_failures;
	uint64_t goaways, reconnects, reconnect_failures, lost_requests;
	double duration_s, rps;
	const char *first_err;
};

static double
us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void
print_json(const struct bench *b, const struct totals *r)
{
	const struct bench_opts *o = b->o;
	const struct hist *h = r->hist;

	(void)printf("{\"op\":\"%s\",\"connections\":%u,\"pipeline\":%u,"
		     "\"threads\":%u,\"size\":%zu,\"duration_s\":%.3f,"
		     "\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 ","
		     "\"rps\":%.1f,\"latency_us\":{\"p50\":%.3f,"
		     "\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
		     "\"max\":%.3f,\"mean\":%.3f},"
		     "\"goaways\":%" PRIu64 ",\"reconnects\":%" PRIu64
		     ",\"reconnect_failures\":%" PRIu64
		     ",\"lost_requests\":%" PRIu64 ","
		     "\"connect_failures\":%" PRIu64 ","
		     "\"connections_lost\":%" PRIu64 "}\n",
	    o->op_label, o->connections, o->pipeline, b->nthreads, o->size,
	    r->duration_s, r->requests, r->errors, r->rps,
	    us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
	    us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)),
	    us(h->max), hist_mean(h) / 1000.0, r->goaways, r->reconnects,
	    r->reconnect_failures, r->lost_requests, r->connect_failures,
	    r->lost);
}

static void
print_histogram(const struct hist *h)
{
	struct hist_row rows[HIST_ROWS];
	uint64_t top = 0, cum = 0;
	size_t n, i, bar, k;
	char bars[BAR_WIDTH + 1];

	n = hist_rows(h, rows, HIST_ROWS);
	for (i = 0; i < n; i++)
		if (rows[i].count > top)
			top = rows[i].count;
	(void)printf("\nlatency distribution (us):\n"
		     "%12s %12s %10s %8s %8s\n",
	    "from", "to", "count", "%", "cum %");
	for (i = 0; i < n; i++) {
		cum += rows[i].count;
		bar = (size_t)(((double)rows[i].count * (double)BAR_WIDTH) /
			(double)top +
		    0.5);
		for (k = 0; k < bar; k++)
			bars[k] = '#';
		if (bar == 0 && rows[i].count > 0)
			bars[bar++] = '.'; /* some, less than half a # */
		bars[bar] = '\0';
		(void)printf("%12.3f %12.3f %10" PRIu64 " %7.2f%% %7.2f%% %s\n",
		    us(rows[i].lo), us(rows[i].hi), rows[i].count,
		    100.0 * (double)rows[i].count / (double)h->count,
		    100.0 * (double)cum / (double)h->count, bars);
	}
}

static void
print_text(const struct bench *b, const struct totals *r)
{
	const struct bench_opts *o = b->o;
	const struct hist *h = r->hist;
	char what[96];

	if (o->opcode == PROTO_OP_ECHO)
		(void)snprintf(
		    what, sizeof(what), "echo of %zu bytes", o->size);
	else
		(void)snprintf(what, sizeof(what), "%s", o->op_label);
	(void)printf("bench %s port %s: %s, %u connection%s, pipeline %u, "
		     "%u thread%s\n",
	    o->host, o->port, what, o->connections,
	    o->connections == 1 ? "" : "s", o->pipeline, b->nthreads,
	    b->nthreads == 1 ? "" : "s");
	if (o->warmup_s > 0)
		(void)printf("  duration     %.3f s (after %.3f s of warmup)\n",
		    r->duration_s, o->warmup_s);
	else
		(void)printf("  duration     %.3f s\n", r->duration_s);
	(void)printf("  requests     %" PRIu64 "\n", r->requests);
	(void)printf("  requests/s   %.1f\n", r->rps);
	(void)printf("  errors       %" PRIu64 "\n", r->errors);
	(void)printf("  connections  %" PRIu64 " connected, %" PRIu64
		     " failed to connect, %" PRIu64 " lost\n",
	    r->connected, r->connect_failures, r->lost);
	if (o->reconnect || r->goaways > 0)
		(void)printf("  reconnects   %" PRIu64 " (GOAWAY %" PRIu64
			     ", failed connects %" PRIu64
			     ", requests lost %" PRIu64 ")\n",
		    r->reconnects, r->goaways, r->reconnect_failures,
		    r->lost_requests);
	if (h->count == 0) {
		(void)printf("\nno latency measured\n");
		return;
	}
	(void)printf("\nlatency (us): p50 %.1f  p90 %.1f  p99 %.1f  "
		     "p99.9 %.1f  max %.1f  mean %.1f\n",
	    us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
	    us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)),
	    us(h->max), hist_mean(h) / 1000.0);
	print_histogram(h);
}

/* The error summary on stderr (both output modes). */
static void
print_errors(const struct totals *r)
{
	char buf[512];
	size_t off = 0;
	int i, n;

	if (r->errors == 0)
		return;
	for (i = 0; i < E_NKINDS; i++) {
		if (r->kinds[i] == 0)
			continue;
		n = snprintf(buf + off, sizeof(buf) - off, "%s%" PRIu64 " %s",
		    off > 0 ? ", " : "", r->kinds[i], err_names[i]);
		if (n < 0 || (size_t)n >= sizeof(buf) - off)
			break;
		off += (size_t)n;
	}
	complain("%" PRIu64 " error%s (%s); the first: %s", r->errors,
	    r->errors == 1 ? "" : "s", buf,
	    r->first_err != NULL ? r->first_err : "?");
}

/* ---------------------------------------------------------------- */
/* Run */

static const char *
phase_label(const struct bench *b, uint64_t now)
{
	switch (phase_at(b, now)) {
	case PH_WARMUP:
		return "warmup";
	case PH_MEASURE:
		return "running";
	default:
		return "draining";
	}
}

/* Wait for the threads, with a progress line on a terminal. */
static void
watch(struct bench *b)
{
	uint64_t now, next_tick, last_ns, last_answers, answers, errors;
	double rate;
	int tty, done, shown = 0;
	unsigned i;

	tty = isatty(STDERR_FILENO);
	next_tick = b->t0 + PROGRESS_NS;
	last_ns = b->t0;
	last_answers = 0;
	for (;;) {
		done = 1;
		for (i = 0; i < b->nthreads; i++)
			if (!atomic_load(&b->threads[i].finished))
				done = 0;
		if (done)
			break;
		sleep_ns(50 * 1000000ull);
		now = mono_ns();
		if (!tty || now < next_tick)
			continue;
		answers = errors = 0;
		for (i = 0; i < b->nthreads; i++) {
			answers += peek(&b->threads[i].answers);
			errors += peek(&b->threads[i].errors);
		}
		rate = (double)(answers - last_answers) * 1e9 /
		    (double)(now - last_ns);
		(void)fprintf(stderr,
		    "\r%7.1f s  %-8s  %10.0f requests/s  %" PRIu64
		    " error%s   ",
		    (double)(now - b->t0) / 1e9, phase_label(b, now), rate,
		    errors, errors == 1 ? "" : "s");
		(void)fflush(stderr);
		shown = 1;
		last_answers = answers;
		last_ns = now;
		next_tick += PROGRESS_NS;
		if (next_tick < now)
			next_tick = now + PROGRESS_NS;
	}
	if (shown) {
		(void)fprintf(stderr, "\r%70s\r", "");
		(void)fflush(stderr);
	}
}

static void
add_totals(struct bench *b, struct totals *r)
{
	uint64_t end = 0, last = 0;
	struct bthread *t;
	unsigned i;
	int k;

	for (i = 0; i < b->nthreads; i++) {
		t = &b->threads[i];
		hist_merge(r->hist, t->hist);
		r->requests += t->counted;
		r->errors += peek(&t->errors);
		r->lost += t->lost;
		r->undrained += t->undrained;
		r->goaways += t->goaways;
		r->reconnects += t->reconnects;
		r->reconnect_failures += t->reconnect_failures;
		r->lost_requests += t->lost_requests;
		for (k = 0; k < E_NKINDS; k++)
			r->kinds[k] += t->kinds[k];
		if (r->first_err == NULL && t->first_err[0] != '\0')
			r->first_err = t->first_err;
		if (t->end_ns > end)
			end = t->end_ns;
		if (t->counted > 0 && t->last_ns > last)
			last = t->last_ns;
	}
	if (b->dmode) {
		/* The whole window, unless every connection ended early. */
		if (end > b->t_end)
			end = b->t_end;
	} else {
		end = last;
	}
	r->duration_s =
	    end > b->t_start ? (double)(end - b->t_start) / 1e9 : 0.0;
	r->rps = r->duration_s > 0 ? (double)r->requests / r->duration_s : 0;
}

int
/* Long but linear: splitting it would scatter one sequence. */
// NOLINTNEXTLINE(readability-function-size)
bench_run(const struct bench_opts *o)
{
	struct bench b;
	struct totals r;
	struct bthread *t;
	char first_connect[ERRMSG], eb[128];
	uint64_t per, extra;
	size_t nconn, k, resp_body;
	unsigned i, idx;
	struct bsock *socks = NULL;
	struct sdc_tls *tls = NULL;
	char terr[SDC_ERRLEN];
	int rv = EXIT_CONN, gate = 0, e;

	memset(&b, 0, sizeof(b));
	memset(&r, 0, sizeof(r));
	b.o = o;
	b.dmode = o->requests == 0;
	b.frame_len = PROTO_FRAME_MIN + o->size;
	/* The largest answer expected: the echo, or a text (or error). */
	resp_body = PROTO_HDR_SIZE +
	    (o->size > PROTO_TEXT_MAX ? o->size : PROTO_TEXT_MAX);
	b.in_cap = (size_t)o->pipeline * b.frame_len;
	if (b.in_cap > READ_MAX)
		b.in_cap = READ_MAX;
	if (b.in_cap < PROTO_LEN_SIZE + resp_body)
		b.in_cap = PROTO_LEN_SIZE + resp_body;

	if (raise_nofile(o, (uint64_t)o->connections + o->threads + FD_SPARE) ==
	    -1)
		return EXIT_USAGE;
	if (o->tls && (tls = sdc_tls_new(&o->tls_opts, terr)) == NULL) {
		complain("%s", terr);
		return EXIT_USAGE;
	}
	if ((socks = calloc(o->connections, sizeof(*socks))) == NULL ||
	    (r.hist = malloc(sizeof(*r.hist))) == NULL) {
		complain("out of memory");
		goto out;
	}
	for (idx = 0; idx < o->connections; idx++)
		socks[idx].fd = -1;
	hist_init(r.hist);
	if (o->opcode == PROTO_OP_ECHO && o->payload == NULL &&
	    (b.pattern = make_pattern(o->size)) == NULL) {
		complain("out of memory for the echo payload");
		goto out;
	}

	nconn = connect_all(o, tls, socks, &r.connect_failures, first_connect,
	    sizeof(first_connect), &b.addr, &b.addrlen);
	r.connected = nconn;
	if (nconn == 0)
		goto out; /* already said why */
	if (r.connect_failures > 0)
		complain("%" PRIu64 " of %u connections failed; the first: %s",
		    r.connect_failures, o->connections, first_connect);

	/* Deal the connections out round-robin. */
	b.nthreads = o->threads < nconn ? o->threads : (unsigned)nconn;
	/* nthreads >= 1: bench_parse refuses 0. */
	// NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI)
	b.threads = calloc(b.nthreads, sizeof(*b.threads));
	if (b.threads == NULL) {
		// nthreads >= 1 (bench_parse)
		complain("out of memory");
		goto out;
	}
	for (i = 0; i < b.nthreads; i++) {
		t = &b.threads[i];
		t->b = &b;
		t->ep = -1;
		t->nconns = nconn / b.nthreads + (i < nconn % b.nthreads);
		/* nconns >= 1: threads never outnumber connections. */
		// NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI)
		t->conns = calloc(t->nconns, sizeof(*t->conns));
		t->hist = malloc(sizeof(*t->hist));
		if (t->conns == NULL || t->hist == NULL) {
			complain("out of memory");
			goto out;
		}
		for (k = 0; k < t->nconns; k++)
			t->conns[k].fd = -1;
		hist_init(t->hist);
		if ((t->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
			complain("epoll_create1: %s",
			    sdc_strerror(errno, eb, sizeof(eb)));
			goto out;
		}
	}
	per = b.dmode ? 0 : o->requests / nconn;
	extra = b.dmode ? 0 : o->requests % nconn;
	for (idx = 0, k = 0; idx < o->connections; idx++) {
		struct epoll_event ev;
		struct bconn *c;

		if (socks[idx].fd == -1)
			continue;
		t = &b.threads[k % b.nthreads];
		c = &t->conns[k / b.nthreads];
		/* c owns the socket and the session from here, even if this
		 * fails. */
		if (conn_init(&b, c, &socks[idx], idx) == -1) {
			socks[idx].fd = -1;
			socks[idx].tls = NULL;
			complain(
			    "out of memory for %u connections", o->connections);
			goto out;
		}
		socks[idx].fd = -1;
		socks[idx].tls = NULL;
		c->quota = per + (k < extra);
		t->open++;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) == -1) {
			complain("epoll_ctl: %s",
			    sdc_strerror(errno, eb, sizeof(eb)));
			goto out;
		}
		k++;
	}

	(void)pthread_mutex_init(&b.mu, NULL);
	(void)pthread_cond_init(&b.cv, NULL);
	gate = 1;
	for (i = 0; i < b.nthreads; i++) {
		if ((e = pthread_create(&b.threads[i].tid, NULL, thread_main,
			 &b.threads[i])) != 0) {
			complain("pthread_create: %s",
			    sdc_strerror(e, eb, sizeof(eb)));
			goto out; /* opens the gate with cancel set */
		}
		b.threads[i].started = 1;
	}
	(void)pthread_mutex_lock(&b.mu);
	b.t0 = mono_ns();
	b.t_start = b.t0 + (uint64_t)llround(o->warmup_s * 1e9);
	b.t_end = b.t_start + (uint64_t)llround(o->duration_s * 1e9);
	b.drain_end = b.t_end + DRAIN_NS;
	b.go = 1;
	(void)pthread_cond_broadcast(&b.cv);
	(void)pthread_mutex_unlock(&b.mu);
	watch(&b);
	for (i = 0; i < b.nthreads; i++) {
		(void)pthread_join(b.threads[i].tid, NULL);
		b.threads[i].started = 0;
	}

	add_totals(&b, &r);
	if (o->json)
		print_json(&b, &r);
	else
		print_text(&b, &r);
	print_errors(&r);
	if (r.undrained > 0)
		complain("%" PRIu64 " answers still in flight after the %d s "
			 "drain were abandoned",
		    r.undrained, (int)(DRAIN_NS / NS_PER_S));
	if (r.lost > 0)
		complain("%" PRIu64 " connection%s lost during the run", r.lost,
		    r.lost == 1 ? "" : "s");
	if (r.connect_failures > 0 || r.lost > 0)
		rv = EXIT_CONN;
	else if (r.errors > 0)
		rv = EXIT_ANSWERS;
	else
		rv = EXIT_OK;
out:
	if (gate) {
		/* Threads still waiting at the gate (a failed start) quit. */
		(void)pthread_mutex_lock(&b.mu);
		if (!b.go)
			b.go = b.cancel = 1;
		(void)pthread_cond_broadcast(&b.cv);
		(void)pthread_mutex_unlock(&b.mu);
		for (i = 0; i < b.nthreads; i++)
			if (b.threads[i].started)
				(void)pthread_join(b.threads[i].tid, NULL);
		(void)pthread_cond_destroy(&b.cv);
		(void)pthread_mutex_destroy(&b.mu);
	}
	for (i = 0; b.threads != NULL && i < b.nthreads; i++) {
		t = &b.threads[i];
		for (k = 0; t->conns != NULL && k < t->nconns; k++)
			conn_free(&t->conns[k]);
		free(t->conns);
		free(t->hist);
		if (t->ep >= 0)
			(void)close(t->ep);
	}
	free(b.threads);
	if (socks != NULL)
		for (idx = 0; idx < o->connections; idx++)
			if (socks[idx].fd >= 0) {
				sdc_tls_conn_free(socks[idx].tls);
				(void)close(socks[idx].fd);
			}
	free(socks);
	sdc_tls_free(tls);
	free(r.hist);
	free(b.pattern);
	return rv;
}

/* --op NAME: ask the server once, before the run. */
static int
resolve_op(struct bench_opts *o)
{
	struct sdc_tls *tls = NULL;
	struct sdc c;
	char err[SDC_ERRLEN];
	int rc;

	if (o->tls && (tls = sdc_tls_new(&o->tls_opts, err)) == NULL) {
		complain("%s", err);
		return -1;
	}
	rc = sdc_connect_tls(&c, o->host, o->port, o->timeout_ms, tls, err);
	sdc_tls_free(tls);
	if (rc == -1) {
		complain("%s", err);
		return -1;
	}
	rc = opnames_resolve(&c, o->op_name, &o->opcode, err);
	sdc_close(&c);
	if (rc == -1)
		complain("%s", err);
	return rc;
}

int
bench_main(const char *host, const char *port, int timeout_ms,
    const struct sdc_tls_opts *tls, int argc, char **argv)
{
	struct bench_opts o;
	char err[256];

	if (bench_parse(argc, argv, host, port, timeout_ms, &o, err,
		sizeof(err)) == -1) {
		(void)fprintf(stderr,
		    PROG " bench: %s\n"
			 "Try '" PROG " bench --help' for more information.\n",
		    err);
		return EXIT_USAGE;
	}
	if (o.help) {
		bench_usage(stdout);
		return EXIT_OK;
	}
	/* The global TLS options, unless bench's own say otherwise. */
	if (tls != NULL) {
		o.tls = 1;
		if (o.tls_opts.cafile == NULL && !o.tls_opts.insecure) {
			o.tls_opts.cafile = tls->cafile;
			o.tls_opts.insecure = tls->insecure;
		}
		if (o.tls_opts.certfile == NULL) {
			o.tls_opts.certfile = tls->certfile;
			o.tls_opts.keyfile = tls->keyfile;
		}
	}
	if (o.op_name != NULL && resolve_op(&o) != 0)
		return EXIT_CONN;
	return bench_run(&o);
}
