/*
 * bench: the load generator behind "socketd-cli bench".
 *
 * THREADS threads each run an epoll loop over their share of CONNECTIONS
 * non-blocking connections (dealt out round-robin); every connection keeps
 * PIPELINE requests in flight in a closed loop and every answer is checked
 * (version, status, in-order request_id, opcode, payload).  Latency runs
 * from just before the write that carried a request to just after the read
 * that completed its answer, into per-thread histograms (hist.h) merged at
 * the end.
 *
 * With --tls every connection completes its TLS handshake before the run
 * starts (the handshakes are not measured), and the event loops drive
 * each session's non-blocking reads and writes, which may wait for the
 * other direction.
 *
 * With --reconnect a connection that the server closes, resets or drains
 * with GOAWAY (protocol v1.1 push 0x06: no new request on it; the
 * answers in flight are awaited) is replaced by a new one to the same
 * address, and the run goes on; requests that were in flight on a
 * connection that was lost still count as errors, one each.
 *
 * Exit statuses are socketd-cli's: 0 every answer right, 1 wrong answers,
 * 2 usage error, 3 connection failures (connect, TLS handshake, or later:
 * closed, reset, timed out, unparseable frames).
 */
#ifndef SOCKETD_BENCH_H
#define SOCKETD_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sdclient.h"

#define BENCH_CONNS_MAX       1000000u
#define BENCH_PIPELINE_MAX    4096u
#define BENCH_THREADS_MAX     256u
#define BENCH_REQUESTS_MAX    UINT64_C(1000000000000) /* 10^12 */
#define BENCH_DURATION_MAX    86400.0
#define BENCH_WARMUP_MAX      3600.0
#define BENCH_SIZE_MAX        (1048576u - 8u) /* default max_frame_size */
#define BENCH_DEFAULT_CONNS   10u
#define BENCH_DEFAULT_SIZE    64u
#define BENCH_DEFAULT_SECONDS 5.0

struct bench_opts {
	const char *host;
	char port[8];
	int timeout_ms; /* connect; answer stall (0: none) */
	unsigned connections;
	uint64_t requests; /* measured requests; 0: by duration */
	double duration_s; /* measured seconds when requests is 0 */
	unsigned pipeline;
	unsigned threads;
	uint8_t opcode;      /* PROTO_OP_*, or a module's */
	size_t size;         /* payload bytes (echo, --payload); 0 otherwise */
	const char *op_name; /* --op NAME to resolve through OPCODES */
	const uint8_t *payload; /* --payload TEXT, or NULL */
	int module;             /* not a built-in: answers are not judged */
	char op_label[72];      /* for the report: "echo", "hello.upper" */
	double warmup_s;
	int json;
	int help;      /* --help: print bench_usage and stop */
	int tls;       /* --tls (or implied by the options below) */
	int reconnect; /* --reconnect: GOAWAY and lost connections */
	struct sdc_tls_opts tls_opts;
};

/*
 * Parse the bench arguments: argv[0] is the command word ("bench"), as
 * getopt expects; host, port and timeout_ms are the global defaults (TLS
 * is off unless the arguments ask for it).  Returns 0, or -1 with a
 * one-line message in err[0..errlen).
 */
int bench_parse(int argc, char **argv, const char *host, const char *port,
    int timeout_ms, struct bench_opts *o, char *err, size_t errlen);

/* The bench help text. */
void bench_usage(FILE *f);

/* Run the benchmark described by o; the exit status. */
int bench_run(const struct bench_opts *o);

/*
 * "socketd-cli bench": parse (usage errors exit 2), then run.  tls (may
 * be NULL) holds the global TLS options: they turn TLS on, and bench's own
 * --cafile, --cert and --key win over them.
 */
int bench_main(const char *host, const char *port, int timeout_ms,
    const struct sdc_tls_opts *tls, int argc, char **argv);

#endif /* SOCKETD_BENCH_H */
