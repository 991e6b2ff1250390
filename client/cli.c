/*
 * socketd-cli: talk to a socketd server from the command line.
 *
 *	socketd-cli [-hV] [-H host] [-p port] [-t seconds] [--tls]
 *	    [--cafile file] [--insecure] [--cert file [--key file]]
 *	    command [arg ...]
 *
 * The bench command parses its own options (bench.c, a second getopt
 * pass over the words after "bench"): there, -t is its thread count.
 *
 * Each command is one entry in the table below: it gets the parsed
 * options and its own arguments, does its own connecting (a benchmark
 * will want many connections) and returns the exit status.  The single
 * requests go through libsocketd (<socketd/client.h>), the library
 * programs link; bench drives its own event loop over the static
 * sdclient pieces (docs/architecture.md).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <socketd/client.h>

#include "bench.h"
#include "opnames.h"
#include "top.h"
#include "proto.h"
#include "pscli.h"
#include "sdclient.h"

#define PROG "socketd-cli"

#define DEFAULT_HOST       "127.0.0.1"
#define DEFAULT_PORT       "7411"
#define DEFAULT_TIMEOUT_MS 5000
#define TIMEOUT_MAX_S      86400.0 /* a day; 0 already means forever */

/* Exit statuses (also in usage()). */
enum {
	CLI_OK = 0,     /* success */
	CLI_SERVER = 1, /* the server answered an error status */
	CLI_USAGE = 2,  /* bad command line */
	CLI_FAIL = 3,   /* connection failure, timeout, protocol error */
};

struct opts {
	const char *host;
	char port[8];
	int timeout_ms; /* 0: wait forever */
	int tls;        /* connect with TLS */
	struct sdc_tls_opts tls_opts;
};

struct cmd {
	const char *name;
	const char *args; /* for usage() */
	const char *help;
	int min_args;
	int max_args; /* -1: no limit */
	int (*run)(const struct opts *, int, char **);
};

static int cmd_ping(const struct opts *, int, char **);
static int cmd_echo(const struct opts *, int, char **);
static int cmd_info(const struct opts *, int, char **);
static int cmd_stats(const struct opts *, int, char **);
static int cmd_time(const struct opts *, int, char **);
static int cmd_bench(const struct opts *, int, char **);
static int cmd_opcodes(const struct opts *, int, char **);
static int cmd_call(const struct opts *, int, char **);
static int cmd_top(const struct opts *, int, char **);
static int cmd_subscribe(const struct opts *, int, char **);
static int cmd_publish(const struct opts *, int, char **);
static int cmd_chat(const struct opts *, int, char **);

static const struct cmd cmds[] = {
    {"ping", "", "measure one round trip", 0, 0, cmd_ping},
    {"echo", "TEXT...", "send TEXT, print what comes back", 1, -1, cmd_echo},
    {"info", "", "print the server's information", 0, 0, cmd_info},
    {"stats", "", "print the server's statistics", 0, 0, cmd_stats},
    {"time", "", "print the server's clock (ISO 8601, UTC)", 0, 0, cmd_time},
    {"opcodes", "", "list the opcodes the server serves", 0, 0, cmd_opcodes},
    {"top", "[OPTION...]", "live rates from the admin listener (top --help)", 0,
	-1, cmd_top},
    {"call", "NAME [PAYLOAD|-]", "call a handler (NAME or 0xNN); - reads stdin",
	1, 2, cmd_call},
    {"bench", "[OPTION...]", "load-test the server (bench --help)", 0, -1,
	cmd_bench},
    {"subscribe", "FILTER...",
	"print messages as TOPIC DATA (--raw, --count N)", 1, -1,
	cmd_subscribe},
    {"publish", "TOPIC [DATA|-]", "publish; print the receivers count", 1, 2,
	cmd_publish},
    {"chat", "ROOM [--name N]", "chat in chat.ROOM; Ctrl-D leaves", 1, 3,
	cmd_chat},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void complain(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
complain(const char *fmt, ...)
{
	va_list ap;

	(void)fflush(stdout);
	(void)fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
}

static void
short_usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: " PROG " [-hV] [-H host] [-p port] [-t seconds]\n"
	    "       [--tls] [--cafile file | --insecure] [--cert file "
	    "[--key file]]\n"
	    "       command [arg ...]\n");
}

static void
usage(FILE *f)
{
	size_t i;
	char left[32];

	short_usage(f);
	(void)fprintf(f,
	    "\n"
	    "Options:\n"
	    "  -H, --host HOST        server name or address, IPv6 with or "
	    "without [ ]\n"
	    "                         (default " DEFAULT_HOST ")\n"
	    "  -p, --port PORT        server port (default " DEFAULT_PORT ")\n"
	    "  -t, --timeout SECONDS  limit on connecting and on each "
	    "response, decimals\n"
	    "                         allowed, 0 waits forever (default %d)\n"
	    "      --tls              connect with TLS (to a tls:// listener)\n"
	    "      --cafile FILE      check the server's certificate against "
	    "the CA\n"
	    "                         certificates in FILE (default: the "
	    "system's)\n"
	    "      --insecure         do not check the server's certificate\n"
	    "      --cert FILE        client certificate, for servers that "
	    "require one\n"
	    "      --key FILE         its private key (default: in the --cert "
	    "file)\n"
	    "                         --cafile, --insecure, --cert and --key "
	    "imply --tls\n"
	    "  -h, --help             print this help and exit\n"
	    "  -V, --version          print the version and exit\n"
	    "\n"
	    "Commands:\n",
	    DEFAULT_TIMEOUT_MS / 1000);
	for (i = 0; i < NCMDS; i++) {
		(void)snprintf(
		    left, sizeof(left), "%s %s", cmds[i].name, cmds[i].args);
		(void)fprintf(f, "  %-21s  %s\n", left, cmds[i].help);
	}
	(void)fprintf(f,
	    "\n"
	    "Exit status: 0 success, 1 the server answered an error, "
	    "2 usage error (a TLS\n"
	    "file that cannot be loaded too), 3 connection failure, failed "
	    "TLS handshake,\n"
	    "timeout or protocol error.  bench: 1 wrong answers, 3 "
	    "connections that failed\n"
	    "or were lost.\n");
}

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	(void)fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
	short_usage(stderr);
	(void)fputs("Try '" PROG " --help' for more information.\n", stderr);
	return CLI_USAGE;
}

/* A decimal port, 1-65535, nothing else (no sign, no space, no suffix). */
static int
parse_port(const char *s, char *out, size_t len)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return -1;
	(void)snprintf(out, len, "%ld", v);
	return 0;
}

/* Seconds, decimals allowed, 0 (forever) to TIMEOUT_MAX_S; into ms. */
static int
parse_timeout(const char *s, int *ms)
{
	char *end;
	double v;
	int n;

	/* strtod would also take a sign, spaces, hex, "inf" and "nan". */
	if ((*s < '0' || *s > '9') && *s != '.')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0 ||
	    v > TIMEOUT_MAX_S)
		return -1;
	/* Round up: 0.0001 must not become 0, which means forever. */
	n = (int)(v * 1000.0);
	if ((double)n < v * 1000.0)
		n++;
	*ms = n;
	return 0;
}

/* An answer through libsocketd: status and payload (borrowed). */
struct answer {
	unsigned status;
	const uint8_t *payload;
	size_t len;
};

/* Print an error message from the server, control characters replaced. */
static void
server_error(const struct answer *a)
{
	char msg[PROTO_TEXT_MAX + 1], name[32];
	size_t i, n;

	n = a->len < PROTO_TEXT_MAX ? a->len : PROTO_TEXT_MAX;
	for (i = 0; i < n; i++) {
		unsigned char ch = a->payload[i];

		msg[i] = (char)(ch < 0x20 || ch == 0x7f ? '?' : ch);
	}
	msg[n] = '\0';
	if (strcmp(socketd_status_name(a->status), "UNKNOWN") == 0)
		(void)snprintf(name, sizeof(name), "status %u", a->status);
	else
		(void)snprintf(
		    name, sizeof(name), "%s", socketd_status_name(a->status));
	if (n > 0)
		complain("server answered %s: %s", name, msg);
	else
		complain("server answered %s", name);
}

/* A client with the command line's timeout and TLS settings. */
static int
new_client(const struct opts *o, struct socketd_client **cp)
{
	struct socketd_client *c;
	const struct sdc_tls_opts *t = &o->tls_opts;

	if ((c = socketd_new()) == NULL) {
		complain("out of memory");
		return CLI_FAIL;
	}
	if (socketd_set_timeout(c, o->timeout_ms) != 0 ||
	    (o->tls && socketd_set_tls(c, 1) != 0) ||
	    (t->cafile != NULL && socketd_set_tls_cafile(c, t->cafile) != 0) ||
	    (t->certfile != NULL &&
		socketd_set_tls_cert(c, t->certfile, t->keyfile) != 0) ||
	    (t->insecure && socketd_set_tls_insecure(c, 1) != 0)) {
		complain("%s", socketd_errmsg(c));
		socketd_free(c);
		return CLI_USAGE;
	}
	*cp = c;
	return CLI_OK;
}

/*
 * Connect and make one call.  On CLI_OK *a is valid until the next call
 * on *cp, which the caller frees, and *rtt_ms (may be NULL) is the round
 * trip time; otherwise the failure was printed and no client is left.
 */
static int
roundtrip(const struct opts *o, struct socketd_client **cp, uint8_t opcode,
    const void *payload, size_t len, struct answer *a, double *rtt_ms)
{
	struct socketd_client *c;
	struct timespec t0, t1;
	int rc;

	if ((rc = new_client(o, &c)) != CLI_OK)
		return rc;
	/* o->port is checked: 1 to 65535. */
	rc = socketd_connect(c, o->host, (unsigned)strtoul(o->port, NULL, 10));
	if (rc != SOCKETD_E_OK) {
		complain("%s", socketd_errmsg(c));
		socketd_free(c);
		/* SOCKETD_E_INVALID: a TLS file that cannot be loaded. */
		return rc == SOCKETD_E_INVALID ? CLI_USAGE : CLI_FAIL;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t0);
	if (socketd_call(c, opcode, payload, len, &a->status, &a->payload,
		&a->len) != SOCKETD_E_OK) {
		complain("%s", socketd_errmsg(c));
		socketd_free(c);
		return CLI_FAIL;
	}
	(void)clock_gettime(CLOCK_MONOTONIC, &t1);
	if (a->status != SOCKETD_STATUS_OK) {
		server_error(a);
		socketd_free(c);
		return CLI_SERVER;
	}
	if (rtt_ms != NULL)
		*rtt_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	*cp = c;
	return CLI_OK;
}

static int
cmd_ping(const struct opts *o, int argc, char **argv)
{
	struct socketd_client *c;
	struct answer a;
	char peer[128];
	const char *tls;
	double ms;
	int rv;

	(void)argc;
	(void)argv;
	if ((rv = roundtrip(o, &c, SOCKETD_OP_PING, NULL, 0, &a, &ms)) != 0)
		return rv;
	if (socketd_peer(c, peer, sizeof(peer)) != SOCKETD_E_OK)
		(void)snprintf(
		    peer, sizeof(peer), "%s port %s", o->host, o->port);
	if ((tls = socketd_tls_version(c)) != NULL)
		(void)printf(
		    "PONG from %s in %.3f ms over %s\n", peer, ms, tls);
	else
		(void)printf("PONG from %s in %.3f ms\n", peer, ms);
	socketd_free(c);
	return CLI_OK;
}

static int
cmd_echo(const struct opts *o, int argc, char **argv)
{
	struct socketd_client *c;
	struct answer a;
	char *text, *p;
	size_t len, n;
	int i, rv;

	/* Several words are joined with spaces, as echo(1) does. */
	if (argc < 1)
		return CLI_USAGE; /* the command table makes sure of it */
	len = 0;
	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if ((text = malloc(len)) == NULL) {
		complain("out of memory for %zu bytes of text", len);
		return CLI_FAIL;
	}
	for (p = text, i = 0; i < argc; i++) {
		n = strlen(argv[i]);
		memcpy(p, argv[i], n);
		p += n;
		*p++ = ' ';
	}
	rv = roundtrip(o, &c, SOCKETD_OP_ECHO, text, len - 1, &a, NULL);
	free(text);
	if (rv != CLI_OK)
		return rv;
	if (a.len > 0)
		(void)fwrite(a.payload, 1, a.len, stdout);
	(void)putchar('\n');
	socketd_free(c);
	return CLI_OK;
}

/* INFO and STATS: the server's text as is (a final newline if missing). */
static int
print_text(const struct opts *o, uint8_t opcode)
{
	struct socketd_client *c;
	struct answer a;
	int rv;

	if ((rv = roundtrip(o, &c, opcode, NULL, 0, &a, NULL)) != 0)
		return rv;
	if (a.len > 0) {
		(void)fwrite(a.payload, 1, a.len, stdout);
		if (a.payload[a.len - 1] != '\n')
			(void)putchar('\n');
	}
	socketd_free(c);
	return CLI_OK;
}

static int
cmd_info(const struct opts *o, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return print_text(o, SOCKETD_OP_INFO);
}

static int
cmd_stats(const struct opts *o, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return print_text(o, SOCKETD_OP_STATS);
}

/* ns since the epoch as 2026-11-21T12:34:56.123456789Z. */
static int
format_time(uint64_t ns, char *buf, size_t len)
{
	struct tm tm;
	time_t secs;
	size_t n;
	int m;

	secs = (time_t)(ns / 1000000000u);
	if ((uint64_t)secs != ns / 1000000000u || gmtime_r(&secs, &tm) == NULL)
		return -1;
	if ((n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0)
		return -1;
	m = snprintf(buf + n, len - n, ".%09" PRIu64 "Z", ns % 1000000000u);
	if (m < 0 || (size_t)m >= len - n)
		return -1;
	return 0;
}

static int
cmd_time(const struct opts *o, int argc, char **argv)
{
	struct socketd_client *c;
	struct answer a;
	char when[64];
	uint64_t ns;
	int rv;

	(void)argc;
	(void)argv;
	if ((rv = roundtrip(o, &c, SOCKETD_OP_TIME, NULL, 0, &a, NULL)) != 0)
		return rv;
	if (a.len != 8) {
		complain("protocol error: TIME answer of %zu bytes, expected 8",
		    a.len);
		socketd_free(c);
		return CLI_FAIL;
	}
	ns = (uint64_t)proto_get_u32(a.payload) << 32 |
	    proto_get_u32(a.payload + 4);
	socketd_free(c);
	if (format_time(ns, when, sizeof(when)) == -1) {
		complain("protocol error: server time %" PRIu64 " ns is out of "
			 "range",
		    ns);
		return CLI_FAIL;
	}
	(void)printf("%s\n", when);
	return CLI_OK;
}

static int
cmd_opcodes(const struct opts *o, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return print_text(o, PROTO_OP_OPCODES);
}

/* All of standard input, for "call NAME -". */
static uint8_t *
read_stdin(size_t *len)
{
	uint8_t *buf = NULL, *nb;
	size_t cap = 0, n;

	*len = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > SDC_MAX_FRAME_DEFAULT ||
			    (nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + *len, 1, cap - *len, stdin);
		*len += n;
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		free(buf);
		return NULL;
	}
	return buf != NULL ? buf : malloc(1);
}

/*
 * call NAME|0xNN [PAYLOAD | -]: the answer's bytes on stdout as they are;
 * an error status prints its name and message and exits 1.
 */
static int
cmd_call(const struct opts *o, int argc, char **argv)
{
	struct socketd_client *c;
	struct answer a;
	uint8_t num, *in = NULL;
	unsigned op;
	const void *payload = NULL;
	size_t len = 0;
	int rc, rv = CLI_FAIL;

	if (opnames_number(argv[0], &num) == -1)
		return usage_error(
		    "bad opcode '%s': expected a name or 0x00 to 0xff",
		    argv[0]);
	if (argc == 2 && strcmp(argv[1], "-") == 0) {
		if ((in = read_stdin(&len)) == NULL) {
			complain("cannot read the payload from standard input "
				 "(at most %u bytes)",
			    (unsigned)SDC_MAX_FRAME_DEFAULT);
			return CLI_FAIL;
		}
		payload = in;
	} else if (argc == 2) {
		payload = argv[1];
		len = strlen(argv[1]);
	}
	if ((rv = new_client(o, &c)) != CLI_OK) {
		free(in);
		return rv;
	}
	rv = CLI_FAIL;
	/* o->port is checked: 1 to 65535. */
	if ((rc = socketd_connect(c, o->host,
		 (unsigned)strtoul(o->port, NULL, 10))) != SOCKETD_E_OK) {
		complain("%s", socketd_errmsg(c));
		if (rc == SOCKETD_E_INVALID)
			rv = CLI_USAGE;
		goto out;
	}
	op = num;
	if (opnames_number(argv[0], &num) == 0 &&
	    (rc = socketd_opcode(c, argv[0], &op)) != SOCKETD_E_OK) {
		if (rc == SOCKETD_E_NO_OPCODES)
			complain("the server does not list its opcodes "
				 "(protocol v1.0): give the opcode as 0xNN");
		else if (rc == SOCKETD_E_NOT_FOUND)
			complain("the server has no request named '%s' "
				 "(socketd-cli opcodes lists them)",
			    argv[0]);
		else
			complain("%s", socketd_errmsg(c));
		goto out;
	}
	if (socketd_call(c, op, payload, len, &a.status, &a.payload, &a.len) !=
	    SOCKETD_E_OK) {
		complain("%s", socketd_errmsg(c));
		goto out;
	}
	if (a.status != SOCKETD_STATUS_OK) {
		server_error(&a);
		rv = CLI_SERVER;
		goto out;
	}
	if (a.len > 0)
		(void)fwrite(a.payload, 1, a.len, stdout);
	rv = CLI_OK;
out:
	socketd_free(c);
	free(in);
	return rv;
}

/* top parses its own options, as bench does. */
static int
cmd_top(const struct opts *o, int argc, char **argv)
{
	return top_main(o->host, o->timeout_ms, argc + 1, argv - 1);
}

/*
 * The words after "bench" are its own options; getopt wants the command
 * word in front as argv[0], and argv[-1] is that word.
 */
/* The pub/sub commands live in pscli.c. */
static void
ps_conn(const struct opts *o, struct pscli_conn *pc)
{
	pc->host = o->host;
	pc->port = o->port;
	pc->timeout_ms = o->timeout_ms;
	pc->tls = o->tls;
	pc->tls_opts = &o->tls_opts;
}

static int
cmd_subscribe(const struct opts *o, int argc, char **argv)
{
	struct pscli_conn pc;

	ps_conn(o, &pc);
	return pscli_subscribe(&pc, argc + 1, argv - 1);
}

static int
cmd_publish(const struct opts *o, int argc, char **argv)
{
	struct pscli_conn pc;

	ps_conn(o, &pc);
	return pscli_publish(&pc, argc, argv);
}

static int
cmd_chat(const struct opts *o, int argc, char **argv)
{
	struct pscli_conn pc;

	ps_conn(o, &pc);
	return pscli_chat(&pc, argc + 1, argv - 1);
}

static int
cmd_bench(const struct opts *o, int argc, char **argv)
{
	struct pscli_conn pc;

	if (pscli_is_bench(argc + 1, argv - 1)) {
		ps_conn(o, &pc);
		return pscli_bench(&pc, argc + 1, argv - 1);
	}
	return bench_main(o->host, o->port, o->timeout_ms,
	    o->tls ? &o->tls_opts : NULL, argc + 1, argv - 1);
}

static const struct cmd *
find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

enum {
	OPT_TLS = 256,
	OPT_CAFILE,
	OPT_INSECURE,
	OPT_CERT,
	OPT_KEY,
};

static const char *
long_name(int ch)
{
	switch (ch) {
	case 'H':
		return "--host";
	case 'p':
		return "--port";
	case 't':
		return "--timeout";
	case OPT_CAFILE:
		return "--cafile";
	case OPT_CERT:
		return "--cert";
	case OPT_KEY:
		return "--key";
	default:
		return "?";
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'},
	    {"timeout", required_argument, NULL, 't'},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"cafile", required_argument, NULL, OPT_CAFILE},
	    {"insecure", no_argument, NULL, OPT_INSECURE},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o;
	const struct cmd *cmd;
	char eb[128];
	int ch, rv;

	memset(&o, 0, sizeof(o));
	o.host = DEFAULT_HOST;
	(void)snprintf(o.port, sizeof(o.port), "%s", DEFAULT_PORT);
	o.timeout_ms = DEFAULT_TIMEOUT_MS;

	/* '+': options end at the command, so "echo -x" sends "-x". */
	opterr = 0;
	/* Single-threaded main. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	while ((ch = getopt_long(argc, argv, "+:H:p:t:hV", longopts, NULL)) !=
	    // main
	    -1) {
		switch (ch) {
		case 'H':
			if (*optarg == '\0')
				return usage_error("empty host name");
			o.host = optarg;
			break;
		case 'p':
			if (parse_port(optarg, o.port, sizeof(o.port)) == -1)
				return usage_error("bad port '%s': expected a "
						   "number from 1 to 65535",
				    optarg);
			break;
		case 't':
			if (parse_timeout(optarg, &o.timeout_ms) == -1)
				return usage_error(
				    "bad timeout '%s': expected "
				    "seconds from 0 to %.0f, e.g. 5 or 0.5",
				    optarg, TIMEOUT_MAX_S);
			break;
		case OPT_TLS:
			o.tls = 1;
			break;
		case OPT_CAFILE:
		case OPT_CERT:
		case OPT_KEY:
			if (*optarg == '\0')
				return usage_error(
				    "%s: empty file name", long_name(ch));
			if (ch == OPT_CAFILE)
				o.tls_opts.cafile = optarg;
			else if (ch == OPT_CERT)
				o.tls_opts.certfile = optarg;
			else
				o.tls_opts.keyfile = optarg;
			o.tls = 1;
			break;
		case OPT_INSECURE:
			o.tls_opts.insecure = 1;
			o.tls = 1;
			break;
		case 'h':
			usage(stdout);
			return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
		case 'V':
			(void)printf("%s %s\n", PROG, SOCKETD_VERSION);
			return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
		case ':':
			if (optopt >= 256)
				return usage_error(
				    "option %s needs an argument",
				    long_name(optopt));
			return usage_error("option -%c (%s) needs an argument",
			    optopt, long_name(optopt));
		default:
			if (optopt >= 256) /* --tls=x */
				return usage_error(
				    "option %s takes no argument",
				    argv[optind - 1]);
			if (optopt != 0)
				return usage_error(
				    "unknown option -%c", optopt);
			return usage_error(
			    "unknown option %s", argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	if (o.tls_opts.keyfile != NULL && o.tls_opts.certfile == NULL)
		return usage_error("--key needs --cert");
	if (o.tls_opts.insecure && o.tls_opts.cafile != NULL)
		return usage_error(
		    "--insecure and --cafile exclude each other");

	if (argc == 0)
		return usage_error("no command given");
	if ((cmd = find_cmd(argv[0])) == NULL)
		return usage_error("unknown command '%s'", argv[0]);
	if (argc - 1 < cmd->min_args)
		return usage_error("%s: missing argument, expected: %s %s",
		    cmd->name, cmd->name, cmd->args);
	if (cmd->max_args >= 0 && argc - 1 > cmd->max_args)
		return usage_error("%s: unexpected argument '%s'", cmd->name,
		    argv[1 + cmd->max_args]);

	rv = cmd->run(&o, argc - 1, argv + 1);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (strerror_r(errno, eb, sizeof(eb)) != 0)
			(void)snprintf(eb, sizeof(eb), "error %d", errno);
		complain("write to standard output: %s", eb);
		return rv == CLI_OK ? CLI_FAIL : rv;
	}
	return rv;
}
