/*
 * socketd-cli top: every INTERVAL seconds, GET /metrics from the admin
 * listener and print the rates that matter, as redis-cli --stat and
 * varnishstat do: requests/s (all, and the busiest opcodes), errors/s,
 * connections, bytes/s, the hand-off and handler queues, requests in
 * flight, and the p99 of the requests answered in the interval (from the
 * duration histogram's buckets).  A terminal gets the screen redrawn; a
 * pipe or file gets one line per interval.
 */
#include <sys/socket.h>
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "top.h"

#define PROG         "socketd-cli"
#define MAX_BODY     (4u << 20)
#define DEFAULT_PORT "9411"

static void
complain(const char *msg)
{
	(void)fprintf(stderr, PROG ": top: %s\n", msg);
}

/* ---- parsing (pure) ---- */

int
top_parse(struct top_sample *s, const char *text, size_t len)
{
	const char *p = text, *end = text + len, *eol, *sp;
	char **nk;
	double *nv;
	size_t klen;

	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		if (p == eol || *p == '#')
			continue;
		/* The value follows the last space (labels may hold spaces). */
		for (sp = eol - 1; sp > p && *sp != ' '; sp--)
			;
		if (sp <= p)
			continue;
		klen = (size_t)(sp - p);
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 256;
			if ((nk = realloc(s->keys, s->cap * sizeof(*nk))) ==
			    NULL)
				return -1;
			s->keys = nk;
			if ((nv = realloc(s->vals, s->cap * sizeof(*nv))) ==
			    NULL)
				return -1;
			s->vals = nv;
		}
		if ((s->keys[s->n] = strndup(p, klen)) == NULL)
			return -1;
		s->vals[s->n] = strtod(sp + 1, NULL);
		s->n++;
	}
	return 0;
}

void
top_sample_free(struct top_sample *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s->vals);
	memset(s, 0, sizeof(*s));
}

double
top_get(const struct top_sample *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->keys[i], key) == 0)
			return s->vals[i];
	return -1;
}

/* Whether key is name, or name{...}. */
static int
is_series(const char *key, const char *name)
{
	size_t n = strlen(name);

	return strncmp(key, name, n) == 0 && (key[n] == '\0' || key[n] == '{');
}

double
top_sum(const struct top_sample *s, const char *name, const char *match)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < s->n; i++)
		if (is_series(s->keys[i], name) &&
		    (match == NULL || strstr(s->keys[i], match) != NULL))
			sum += s->vals[i];
	return sum;
}

/* The le="..." bound of a bucket key, or -2 when it has none. */
static double
bucket_le(const char *key)
{
	const char *le = strstr(key, "le=\"");

	if (le == NULL)
		return -2;
	le += 4;
	if (strncmp(le, "+Inf", 4) == 0)
		return 1e300;
	return strtod(le, NULL);
}

double
top_quantile(const struct top_sample *a, const struct top_sample *b,
    const char *name, double q)
{
	double les[64], cum[64], total, want, le, d;
	char bucket[128];
	size_t i, j, n = 0;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	/* The distinct bounds, from b. */
	for (i = 0; i < b->n; i++) {
		if (!is_series(b->keys[i], bucket) ||
		    (le = bucket_le(b->keys[i])) < -1)
			continue;
		for (j = 0; j < n && les[j] != le; j++)
			;
		if (j == n && n < 64)
			les[n++] = le;
	}
	total = 0;
	for (j = 0; j < n; j++) {
		/* Each bound summed over the other labels, then the delta. */
		cum[j] = 0;
		for (i = 0; i < b->n; i++)
			if (is_series(b->keys[i], bucket) &&
			    bucket_le(b->keys[i]) == les[j])
				cum[j] += b->vals[i];
		for (i = 0; i < a->n; i++)
			if (is_series(a->keys[i], bucket) &&
			    bucket_le(a->keys[i]) == les[j])
				cum[j] -= a->vals[i];
		if (les[j] >= 1e300)
			total = cum[j];
	}
	if (total <= 0)
		return -1;
	want = q * total;
	d = 1e300;
	for (j = 0; j < n; j++)
		if (cum[j] >= want && les[j] < d)
			d = les[j];
	return d;
}

/* ---- fetching ---- */

/* strerror_r (XSI) into a static buffer: top is single-threaded. */
static const char *
errtext(int e)
{
	static char buf[128];

	if (strerror_r(e, buf, sizeof(buf)) != 0)
		snprintf(buf, sizeof(buf), "error %d", e);
	return buf;
}

/* GET /metrics from host:port; the body (malloc'ed) or NULL. */
static char *
fetch(const char *host, const char *port, int timeout_ms, size_t *len,
    char *err, size_t errlen)
{
	static const char req[] =
	    "GET /metrics HTTP/1.0\r\nHost: socketd\r\n\r\n";
	struct addrinfo hints, *res = NULL, *ai;
	struct pollfd pfd;
	char *buf = NULL, *nb, *body;
	size_t got = 0, cap = 0;
	ssize_t n;
	int fd = -1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return NULL;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype, 0)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1) {
		snprintf(err, errlen,
		    "cannot connect to the admin listener %s port %s: %s "
		    "(admin.listen in socketd.conf; --admin HOST:PORT)",
		    host, port, errtext(errno));
		return NULL;
	}
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) !=
	    (ssize_t)(sizeof(req) - 1))
		goto io;
	for (;;) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1) <= 0) {
			snprintf(err, errlen, "GET /metrics: timed out");
			goto fail;
		}
		if (got + 65536 > cap) {
			cap = cap ? cap * 2 : 131072;
			if (cap > MAX_BODY ||
			    (nb = realloc(buf, cap + 1)) == NULL) {
				snprintf(
				    err, errlen, "GET /metrics: too large");
				goto fail;
			}
			buf = nb;
		}
		if ((n = recv(fd, buf + got, cap - got, 0)) < 0)
			goto io;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (buf == NULL || got < 12 || strncmp(buf + 9, "200", 3) != 0 ||
	    (buf[got] = '\0', body = strstr(buf, "\r\n\r\n")) == NULL) {
		snprintf(err, errlen, "GET /metrics: not a 200 answer");
		free(buf);
		return NULL;
	}
	body += 4;
	*len = got - (size_t)(body - buf);
	memmove(buf, body, *len);
	buf[*len] = '\0';
	return buf;
io:
	snprintf(err, errlen, "GET /metrics: %s", errtext(errno));
fail:
	close(fd);
	free(buf);
	return NULL;
}

static int
sample(const char *host, const char *port, int timeout_ms, struct top_sample *s,
    char *err, size_t errlen)
{
	char *body;
	size_t len;
	int rc;

	if ((body = fetch(host, port, timeout_ms, &len, err, errlen)) == NULL)
		return -1;
	rc = top_parse(s, body, len);
	free(body);
	if (rc != 0)
		snprintf(err, errlen, "out of memory");
	return rc;
}

/* ---- the view ---- */

struct oprate {
	char op[64];
	double rate;
};

/* The opcodes' request rates, busiest first; how many. */
static size_t
op_rates(const struct top_sample *a, const struct top_sample *b, double dt,
    struct oprate *out, size_t cap)
{
	static const char name[] = "socketd_requests_total{opcode=\"";
	size_t i, j, n = 0, k;
	const char *op, *q;
	struct oprate t;
	char key[64];

	for (i = 0; i < b->n; i++) {
		if (strncmp(b->keys[i], name, sizeof(name) - 1) != 0)
			continue;
		op = b->keys[i] + sizeof(name) - 1;
		if ((q = strchr(op, '"')) == NULL || (size_t)(q - op) >= 64)
			continue;
		snprintf(key, sizeof(key), "%.*s", (int)(q - op), op);
		for (j = 0; j < n && strcmp(out[j].op, key) != 0; j++)
			;
		if (j == n) {
			if (n == cap)
				continue;
			snprintf(out[n].op, sizeof(out[n].op), "%s", key);
			out[n++].rate = 0;
		}
		out[j].rate += b->vals[i] -
		    (top_get(a, b->keys[i]) > 0 ? top_get(a, b->keys[i]) : 0);
	}
	for (j = 0; j < n; j++)
		out[j].rate /= dt;
	for (j = 1; j < n; j++) /* insertion sort: a handful */
		for (k = j; k > 0 && out[k].rate > out[k - 1].rate; k--) {
			t = out[k];
			out[k] = out[k - 1];
			out[k - 1] = t;
		}
	return n;
}

static double
rate(const struct top_sample *a, const struct top_sample *b, const char *name,
    const char *match, double dt)
{
	return (top_sum(b, name, match) - top_sum(a, name, match)) / dt;
}

static void
show(const struct top_sample *a, const struct top_sample *b, double dt, int tty)
{
	struct oprate ops[32];
	double req, err, p99;
	char when[32], p99s[32];
	size_t n, i;
	time_t now = time(NULL);
	struct tm tm;

	n = op_rates(a, b, dt, ops, 32);
	req = rate(a, b, "socketd_requests_total", NULL, dt);
	err = req - rate(a, b, "socketd_requests_total", "status=\"ok\"", dt);
	p99 = top_quantile(a, b, "socketd_request_duration_seconds", 0.99);
	if (p99 < 0)
		snprintf(p99s, sizeof(p99s), "-");
	else if (p99 >= 1e300)
		snprintf(p99s, sizeof(p99s), "> largest bucket");
	else
		snprintf(p99s, sizeof(p99s), "<= %.3g ms", p99 * 1000);
	(void)localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (!tty) {
		(void)printf(
		    "%s req/s %.0f err/s %.0f conns %.0f in_kB/s %.1f "
		    "out_kB/s %.1f queue %.0f handler_queue %.0f inflight "
		    "%.0f p99 %s\n",
		    when, req, err,
		    top_sum(b, "socketd_connections_active", NULL),
		    rate(a, b, "socketd_received_bytes_total", NULL, dt) / 1024,
		    rate(a, b, "socketd_sent_bytes_total", NULL, dt) / 1024,
		    top_sum(b, "socketd_handoff_queue_length", NULL),
		    top_sum(b, "socketd_handler_queue_length", NULL),
		    top_sum(b, "socketd_requests_in_flight", NULL), p99s);
		(void)fflush(stdout);
		return;
	}
	(void)printf("\033[H\033[2J");
	(void)printf(
	    "socketd top  %s  (every %.1f s; Ctrl-C quits)\n\n", when, dt);
	(void)printf("  requests/s   %12.0f     errors/s %10.0f\n", req, err);
	(void)printf("  p99          %12s     in flight %9.0f\n", p99s,
	    top_sum(b, "socketd_requests_in_flight", NULL));
	(void)printf("  connections  %12.0f     new/s %13.0f\n",
	    top_sum(b, "socketd_connections_active", NULL),
	    rate(a, b, "socketd_connections_accepted_total", NULL, dt));
	(void)printf("  received     %9.1f kB/s     sent %11.1f kB/s\n",
	    rate(a, b, "socketd_received_bytes_total", NULL, dt) / 1024,
	    rate(a, b, "socketd_sent_bytes_total", NULL, dt) / 1024);
	(void)printf("  queue        %12.0f     handler queue %5.0f\n",
	    top_sum(b, "socketd_handoff_queue_length", NULL),
	    top_sum(b, "socketd_handler_queue_length", NULL));
	(void)printf("\n  %-24s %12s\n", "opcode", "requests/s");
	for (i = 0; i < n && i < 12; i++)
		if (ops[i].rate > 0 || i < 3)
			(void)printf(
			    "  %-24s %12.0f\n", ops[i].op, ops[i].rate);
	(void)fflush(stdout);
}

static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: " PROG " [-H HOST] top [--admin HOST:PORT] "
	    "[--interval SECONDS] [--count N]\n"
	    "\n"
	    "A live view of the server's rates, from GET /metrics on its "
	    "admin listener\n"
	    "(admin.listen, default port " DEFAULT_PORT " on the -H host).  "
	    "One line per interval\n"
	    "when standard output is not a terminal.\n"
	    "  --admin HOST:PORT   the admin listener ([v6]:port for IPv6)\n"
	    "  --interval SECONDS  0.1 to 3600 (default 1)\n"
	    "  --count N           stop after N intervals (default: run "
	    "until interrupted)\n");
}

int
top_main(const char *host, int timeout_ms, int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"admin", required_argument, NULL, 'a'},
	    {"interval", required_argument, NULL, 'i'},
	    {"count", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct top_sample prev, cur;
	struct timespec ts;
	char ahost[256], aport[16], err[512], *colon, *end;
	double interval = 1;
	long count = -1, i;
	int ch, tty;

	snprintf(ahost, sizeof(ahost), "%s", host);
	snprintf(aport, sizeof(aport), "%s", DEFAULT_PORT);
	optind = 0;
	opterr = 0;
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	while ((ch = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			if ((colon = strrchr(optarg, ':')) == NULL ||
			    colon == optarg || colon[1] == '\0') {
				complain("--admin wants HOST:PORT");
				return 2;
			}
			snprintf(ahost, sizeof(ahost), "%.*s",
			    (int)(colon - optarg), optarg);
			if (ahost[0] == '[' && strlen(ahost) > 2 &&
			    ahost[strlen(ahost) - 1] == ']') {
				memmove(ahost, ahost + 1, strlen(ahost));
				ahost[strlen(ahost) - 1] = '\0';
			}
			snprintf(aport, sizeof(aport), "%s", colon + 1);
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end != '\0' ||
			    !(interval >= 0.1 && interval <= 3600)) {
				complain(
				    "--interval: seconds from 0.1 to 3600");
				return 2;
			}
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end != '\0' || count < 1) {
				complain("--count: a positive number");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		complain("unexpected argument");
		usage(stderr);
		return 2;
	}
	tty = isatty(STDOUT_FILENO);
	memset(&prev, 0, sizeof(prev));
	if (sample(ahost, aport, timeout_ms, &prev, err, sizeof(err)) != 0) {
		complain(err);
		top_sample_free(&prev);
		return 3;
	}
	for (i = 0; count < 0 || i < count; i++) {
		ts.tv_sec = (time_t)interval;
		ts.tv_nsec = (long)((interval - (double)ts.tv_sec) * 1e9);
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		memset(&cur, 0, sizeof(cur));
		if (sample(ahost, aport, timeout_ms, &cur, err, sizeof(err)) !=
		    0) {
			complain(err);
			top_sample_free(&cur);
			top_sample_free(&prev);
			return 3;
		}
		show(&prev, &cur, interval, tty);
		top_sample_free(&prev);
		prev = cur;
	}
	top_sample_free(&prev);
	return 0;
}
