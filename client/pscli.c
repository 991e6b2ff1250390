/*
 * socketd-cli's pub/sub commands (pscli.h).  One connection each; the
 * frames that arrive are answers (in request order) and pushes (MESSAGE,
 * NOTICE) between them, told apart by opcode and status (docs/protocol.md).
 */
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "hist.h"
#include "proto.h"
#include "pscli.h"
#include "sdclient.h"

#define PROG "socketd-cli"

#define OP_SUB   0x10
#define OP_UNSUB 0x11
#define OP_PUB   0x12
#define OP_MSG   0x13
#define OP_NOTE  0x14

enum { OK = 0, SERVER = 1, USAGE = 2, FAIL = 3 };

static void complain(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
complain(const char *fmt, ...)
{
	va_list ap;

	(void)fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
}

static int
dial(const struct pscli_conn *pc, struct sdc *c)
{
	struct sdc_tls *tls = NULL;
	char err[SDC_ERRLEN];
	int rc;

	if (pc->tls && (tls = sdc_tls_new(pc->tls_opts, err)) == NULL) {
		complain("%s", err);
		return USAGE;
	}
	rc = sdc_connect_tls(c, pc->host, pc->port, pc->timeout_ms, tls, err);
	sdc_tls_free(tls);
	if (rc == -1) {
		complain("%s", err);
		return FAIL;
	}
	return OK;
}

static void
status_msg(const struct proto_resp *r, const char *what)
{
	complain("%s: server answered %s: %.*s", what,
	    proto_status_str(r->status),
	    (int)(r->payload_len < 512 ? r->payload_len : 512),
	    (const char *)r->payload);
}

static const char *
notice_name(unsigned reason)
{
	switch (reason) {
	case 1:
		return "SLOW_CONSUMER";
	case 2:
		return "SHUTDOWN";
	case 3:
		return "PERMISSIONS_CHANGED";
	default:
		return "NOTICE";
	}
}

static int
is_push(const struct proto_resp *r)
{
	return r->status == 0 && r->request_id == 0 &&
	    (r->opcode == OP_MSG || r->opcode == OP_NOTE);
}

static void
print_notice(const struct proto_resp *r)
{
	unsigned reason = r->payload_len >= 2 ? proto_get_u16(r->payload) : 0;

	complain("server notice %s: %.*s", notice_name(reason),
	    (int)(r->payload_len >= 2 ? r->payload_len - 2 : 0),
	    (const char *)r->payload + 2);
}

struct message {
	uint32_t sub_id, lost;
	const char *topic;
	size_t tlen;
	const uint8_t *data;
	size_t dlen;
};

static int
parse_message(const struct proto_resp *r, struct message *m)
{
	if (r->payload_len < 10)
		return -1;
	m->sub_id = proto_get_u32(r->payload);
	m->lost = proto_get_u32(r->payload + 4);
	m->tlen = proto_get_u16(r->payload + 8);
	if (10 + m->tlen > r->payload_len)
		return -1;
	m->topic = (const char *)r->payload + 10;
	m->data = r->payload + 10 + m->tlen;
	m->dlen = r->payload_len - 10 - m->tlen;
	return 0;
}

/* Data on one line: printable ASCII as is, the rest escaped. */
static void
print_escaped(FILE *f, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\\')
			(void)fputs("\\\\", f);
		else if (p[i] == '\n')
			(void)fputs("\\n", f);
		else if (p[i] == '\t')
			(void)fputs("\\t", f);
		else if (p[i] < 0x20 || p[i] == 0x7f)
			(void)fprintf(f, "\\x%02x", p[i]);
		else
			(void)fputc(p[i], f);
	}
}

/* Send SUBSCRIBE; the answer is read by the caller. */
static int
send_sub(struct sdc *c, uint32_t rid, uint32_t sub_id, uint8_t opts,
    const char *filter, char *err)
{
	uint8_t p[8 + 65535];
	size_t fl = strlen(filter);

	if (fl > 65535) {
		sdc_seterr(err, "filter too long");
		return -1;
	}
	proto_put_u32(p, sub_id);
	p[4] = opts;
	p[5] = 0;
	proto_put_u16(p + 6, (uint16_t)fl);
	memcpy(p + 8, filter, fl);
	return sdc_send(c, OP_SUB, rid, p, 8 + fl, err);
}

static int
send_pub(struct sdc *c, uint32_t rid, const char *topic, const void *data,
    size_t dlen, char *err)
{
	size_t tl = strlen(topic);
	uint8_t *p;
	int rc;

	if (tl > 65535 || (p = malloc(2 + tl + dlen)) == NULL) {
		sdc_seterr(err, "topic too long or out of memory");
		return -1;
	}
	proto_put_u16(p, (uint16_t)tl);
	/* Payload bytes, not a C string: no NUL wanted. */
	// NOLINTNEXTLINE(bugprone-not-null-terminated-result)
	memcpy(p + 2, topic, tl);
	if (dlen > 0)
		memcpy(p + 2 + tl, data, dlen);
	rc = sdc_send(c, OP_PUB, rid, p, 2 + tl + dlen, err);
	free(p);
	return rc;
}

/* The answer to request rid, printing pushes met on the way. */
static int
await(struct sdc *c, uint32_t rid, struct proto_resp *r, char *err,
    void (*on_push)(const struct proto_resp *, void *), void *arg)
{
	for (;;) {
		if (sdc_recv(c, r, err) == -1)
			return -1;
		if (is_push(r)) {
			if (on_push != NULL)
				on_push(r, arg);
			continue;
		}
		if (r->request_id != rid) {
			sdc_seterr(err,
			    "server answered request %" PRIu32
			    ", expected %" PRIu32,
			    r->request_id, rid);
			return -1;
		}
		return 0;
	}
}

/*
 * Options anywhere among the operands: "--name X", "--name=X", flags.
 * Operands are moved to the front of argv[1..]; returns their count, or
 * -1 (printed).  want_arg[i] says whether names[i] takes a value.
 */
static int
split_args(const char *cmd, int argc, char **argv, const char *const *names,
    const int *want_arg, const char **vals, int *flags)
{
	int i, k, nop = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *eq;
		size_t len;

		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			argv[1 + nop++] = argv[i];
			continue;
		}
		eq = strchr(a, '=');
		len = eq != NULL ? (size_t)(eq - a) : strlen(a);
		for (k = 0; names[k] != NULL; k++)
			if (strlen(names[k]) == len &&
			    strncmp(a, names[k], len) == 0)
				break;
		if (names[k] == NULL) {
			complain("%s: unknown option '%s'", cmd, a);
			return -1;
		}
		if (!want_arg[k]) {
			flags[k] = 1;
			continue;
		}
		if (eq != NULL) {
			vals[k] = eq + 1;
		} else if (i + 1 < argc) {
			vals[k] = argv[++i];
		} else {
			complain("%s: %s needs a value", cmd, a);
			return -1;
		}
	}
	return nop;
}

/* --- subscribe --- */

struct subst {
	int raw;
	long count, seen;
};

static void
sub_push(const struct proto_resp *r, void *arg)
{
	struct subst *s = arg;
	struct message m;

	if (r->opcode == OP_NOTE) {
		print_notice(r);
		return;
	}
	if (parse_message(r, &m) != 0 || (s->count > 0 && s->seen >= s->count))
		return;
	if (m.lost > 0)
		complain("%" PRIu32 " messages lost before this one (the "
			 "server's slow-consumer policy)",
		    m.lost);
	if (s->raw) {
		(void)fwrite(m.data, 1, m.dlen, stdout);
	} else {
		(void)fwrite(m.topic, 1, m.tlen, stdout);
		(void)fputc(' ', stdout);
		print_escaped(stdout, m.data, m.dlen);
		(void)fputc('\n', stdout);
	}
	(void)fflush(stdout);
	s->seen++;
}

int
pscli_subscribe(const struct pscli_conn *pc, int argc, char **argv)
{
	static const char *const names[] = {"--raw", "--count", NULL};
	static const int want[] = {0, 1};
	const char *vals[2] = {NULL, NULL};
	int flags[2] = {0, 0};
	struct subst st = {0, 0, 0};
	struct proto_resp r;
	char err[SDC_ERRLEN], *end;
	struct sdc c;
	int i, rc, nop;

	if ((nop = split_args(
		 "subscribe", argc, argv, names, want, vals, flags)) < 0)
		return USAGE;
	st.raw = flags[0];
	if (vals[1] != NULL) {
		errno = 0;
		st.count = strtol(vals[1], &end, 10);
		if (errno != 0 || *end != '\0' || st.count < 1) {
			complain("--count: expected a positive number, not "
				 "'%s'",
			    vals[1]);
			return USAGE;
		}
	}
	if (nop == 0) {
		complain("subscribe: give at least one FILTER (\"chat.>\")");
		return USAGE;
	}
	argc = 1 + nop;
	optind = 1;
	if ((rc = dial(pc, &c)) != OK)
		return rc;
	for (i = optind; i < argc; i++) {
		uint32_t id = (uint32_t)(i - optind + 1);

		if (send_sub(&c, id, id, 0, argv[i], err) == -1 ||
		    await(&c, id, &r, err, sub_push, &st) == -1) {
			complain("%s", err);
			sdc_close(&c);
			return FAIL;
		}
		if (r.status != PROTO_OK) {
			status_msg(&r, argv[i]);
			sdc_close(&c);
			return SERVER;
		}
		complain("subscribed to %s", argv[i]);
	}
	c.timeout_ms = 0; /* wait for messages as long as it takes */
	while (st.count == 0 || st.seen < st.count) {
		if (sdc_recv(&c, &r, err) == -1) {
			complain("%s", err);
			sdc_close(&c);
			return FAIL;
		}
		if (is_push(&r))
			sub_push(&r, &st);
	}
	sdc_close(&c);
	return OK;
}

/* --- publish --- */

static uint8_t *
slurp(FILE *f, size_t *len)
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
		n = fread(buf + *len, 1, cap - *len, f);
		*len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		return NULL;
	}
	return buf != NULL ? buf : malloc(1);
}

int
pscli_publish(const struct pscli_conn *pc, int argc, char **argv)
{
	struct proto_resp r;
	char err[SDC_ERRLEN];
	uint8_t *in = NULL;
	const void *data = "";
	size_t len = 0;
	struct sdc c;
	int rc;

	if (argc == 2 && strcmp(argv[1], "-") == 0) {
		if ((in = slurp(stdin, &len)) == NULL) {
			complain("cannot read the data from standard input");
			return FAIL;
		}
		data = in;
	} else if (argc == 2) {
		data = argv[1];
		len = strlen(argv[1]);
	}
	if ((rc = dial(pc, &c)) != OK) {
		free(in);
		return rc;
	}
	if (send_pub(&c, 1, argv[0], data, len, err) == -1 ||
	    await(&c, 1, &r, err, NULL, NULL) == -1) {
		complain("%s", err);
		free(in);
		sdc_close(&c);
		return FAIL;
	}
	free(in);
	if (r.status != PROTO_OK || r.payload_len != 4) {
		status_msg(&r, argv[0]);
		sdc_close(&c);
		return r.status != PROTO_OK ? SERVER : FAIL;
	}
	(void)printf("%" PRIu32 "\n", proto_get_u32(r.payload));
	sdc_close(&c);
	return OK;
}

/* --- chat --- */

struct chat {
	struct sdc c;
	const char *topic;
	const char *name;
	uint32_t next_id;
	int tty;
	int gone; /* the server said goodbye */
};

static void
chat_frame(struct chat *ch, const struct proto_resp *r)
{
	struct message m;

	if (r->opcode == OP_NOTE && is_push(r)) {
		print_notice(r);
		ch->gone = 1;
		return;
	}
	if (r->opcode == OP_MSG && is_push(r)) {
		if (parse_message(r, &m) != 0)
			return;
		if (m.lost > 0)
			(void)printf("(%" PRIu32 " messages lost)\n", m.lost);
		print_escaped(stdout, m.data, m.dlen);
		(void)fputc('\n', stdout);
		(void)fflush(stdout);
		return;
	}
	if (r->status != PROTO_OK)
		status_msg(r, "publish");
}

static int
chat_say(struct chat *ch, const char *text)
{
	char line[4096], err[SDC_ERRLEN];
	int n;

	n = snprintf(line, sizeof(line), "%s: %s", ch->name, text);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (send_pub(&ch->c, ch->next_id++, ch->topic, line, (size_t)n, err) ==
	    -1) {
		complain("%s", err);
		return -1;
	}
	return 0;
}

/* Frames already whole in the client's buffer (poll will not say). */
static int
chat_buffered(const struct sdc *c, const struct proto_resp *last)
{
	size_t used = 4 + 8 + last->payload_len;

	return c->buf_len > used;
}

int
pscli_chat(const struct pscli_conn *pc, int argc, char **argv)
{
	static const char *const names[] = {"--name", NULL};
	static const int want[] = {1};
	const char *vals[1] = {NULL};
	int flags[1] = {0};
	struct chat ch;
	struct proto_resp r;
	char topic[300], err[SDC_ERRLEN], buf[4096];
	size_t have = 0;
	/* Single-threaded until the chat starts. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	const char *name = getenv("USER");
	struct pollfd pf[2];
	int rc, nop, in_open = 1, optind_ = 1;

	nop = split_args("chat", argc, argv, names, want, vals, flags);
	if (nop < 0)
		return USAGE;
	if (nop != 1) {
		complain("chat: give one ROOM (chat ROOM [--name NAME])");
		return USAGE;
	}
	if (vals[0] != NULL)
		name = vals[0];
	if (name == NULL || name[0] == '\0')
		name = "anonymous";
	memset(&ch, 0, sizeof(ch));
	snprintf(topic, sizeof(topic), "chat.%s", argv[optind_]);
	ch.topic = topic;
	ch.name = name;
	ch.next_id = 2;
	ch.tty = isatty(STDIN_FILENO);
	if ((rc = dial(pc, &ch.c)) != OK)
		return rc;
	/* NO_ECHO: what we say is on our screen already. */
	if (send_sub(&ch.c, 1, 1, 1, topic, err) == -1 ||
	    await(&ch.c, 1, &r, err, NULL, NULL) == -1) {
		complain("%s", err);
		sdc_close(&ch.c);
		return FAIL;
	}
	if (r.status != PROTO_OK) {
		status_msg(&r, topic);
		sdc_close(&ch.c);
		return SERVER;
	}
	if (ch.tty)
		(void)fprintf(stderr,
		    "joined %s as %s; type a line to send it, Ctrl-D to "
		    "leave\n",
		    topic, name);
	snprintf(buf, sizeof(buf), "* %s joined", name);
	(void)send_pub(&ch.c, ch.next_id++, topic, buf, strlen(buf), err);
	ch.c.timeout_ms = pc->timeout_ms;
	while (!ch.gone) {
		pf[0].fd = in_open ? STDIN_FILENO : -1;
		pf[0].events = POLLIN;
		pf[1].fd = ch.c.fd;
		pf[1].events = POLLIN;
		if (poll(pf, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			complain(
			    "poll: %s", sdc_strerror(errno, err, sizeof(err)));
			break;
		}
		if (pf[1].revents) {
			do {
				if (sdc_recv(&ch.c, &r, err) == -1) {
					complain("%s", err);
					sdc_close(&ch.c);
					return FAIL;
				}
				chat_frame(&ch, &r);
			} while (chat_buffered(&ch.c, &r));
		}
		if (in_open && pf[0].revents) {
			ssize_t n = read(
			    STDIN_FILENO, buf + have, sizeof(buf) - 1 - have);
			char *nl, *line;

			if (n <= 0) {
				// NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores)
				in_open = 0;
				if (have > 0) { /* a last line without \n */
					buf[have] = '\0';
					(void)chat_say(&ch, buf);
				}
				break; /* Ctrl-D: leave */
			}
			have += (size_t)n;
			buf[have] = '\0';
			line = buf;
			while ((nl = strchr(line, '\n')) != NULL) {
				*nl = '\0';
				if (nl > line && nl[-1] == '\r')
					nl[-1] = '\0';
				if (line[0] != '\0' && chat_say(&ch, line) != 0)
					ch.gone = 1;
				line = nl + 1;
			}
			have = (size_t)(buf + have - line);
			memmove(buf, line, have);
			if (have == sizeof(buf) - 1) {
				buf[have] = '\0';
				(void)chat_say(&ch, buf); /* an overlong line */
				have = 0;
			}
		}
	}
	if (!ch.gone) {
		snprintf(buf, sizeof(buf), "* %s left", name);
		if (send_pub(&ch.c, ch.next_id, topic, buf, strlen(buf), err) ==
		    0) {
			/* Wait for its answer: it is on its way then. */
			while (sdc_recv(&ch.c, &r, err) == 0 &&
			    !(r.opcode == OP_PUB && r.request_id == ch.next_id))
				chat_frame(&ch, &r);
		}
	}
	sdc_close(&ch.c);
	return OK;
}

/* --- bench --op publish --- */

struct bench {
	const struct pscli_conn *pc;
	unsigned pubs, subs, topics;
	size_t size;
	double rate; /* messages/s in all; 0: as fast as possible */
	double duration;
	int ready; /* subscribers subscribed */
	int go;    /* publishers may start */
	int stop;  /* subscribers stop */
	int failed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t *sent; /* per publisher */
	uint64_t t_start, t_end;
};

struct bsub {
	struct bench *b;
	unsigned idx;
	pthread_t th;
	struct hist h;
	uint64_t got, order, lost, dup;
	uint64_t *next; /* per publisher: the sequence expected */
};

struct bpub {
	struct bench *b;
	unsigned idx;
	pthread_t th;
	uint64_t errors;
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
put64(uint8_t *p, uint64_t v)
{
	proto_put_u32(p, (uint32_t)(v >> 32));
	proto_put_u32(p + 4, (uint32_t)v);
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)proto_get_u32(p) << 32 | proto_get_u32(p + 4);
}

static void
bench_fail(struct bench *b, const char *what, const char *err)
{
	pthread_mutex_lock(&b->mu);
	if (!b->failed)
		complain("bench: %s: %s", what, err);
	b->failed = 1;
	b->go = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void *
bench_sub(void *arg)
{
	struct bsub *s = arg;
	struct bench *b = s->b;
	struct proto_resp r;
	struct message m;
	char topic[64], err[SDC_ERRLEN];
	struct sdc c;
	uint64_t now;
	uint32_t p, seq;

	snprintf(topic, sizeof(topic), "bench.t%u", s->idx % b->topics);
	if (dial(b->pc, &c) != OK) {
		bench_fail(b, "subscriber", "cannot connect");
		return NULL;
	}
	memset(&r, 0, sizeof(r));
	if (send_sub(&c, 1, 1, 0, topic, err) == -1 ||
	    await(&c, 1, &r, err, NULL, NULL) == -1 || r.status != PROTO_OK) {
		bench_fail(b, "subscribe", r.status ? "refused" : err);
		sdc_close(&c);
		return NULL;
	}
	pthread_mutex_lock(&b->mu);
	b->ready++;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
	c.timeout_ms = 200;
	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		if (sdc_recv(&c, &r, err) == -1) {
			if (errno == ETIMEDOUT || errno == EAGAIN)
				continue;
			bench_fail(b, "subscriber", err);
			break;
		}
		if (r.opcode != OP_MSG || parse_message(&r, &m) != 0 ||
		    m.dlen < 16)
			continue;
		now = mono_ns();
		p = proto_get_u32(m.data);
		seq = proto_get_u32(m.data + 4);
		if (p >= b->pubs)
			continue;
		hist_record(&s->h, (now - get64(m.data + 8)) / 1000);
		s->got++;
		s->lost += m.lost;
		if (seq > s->next[p])
			s->lost += seq - s->next[p];
		else if (seq < s->next[p])
			s->order++;
		if (seq >= s->next[p])
			s->next[p] = (uint64_t)seq + 1;
	}
	sdc_close(&c);
	return NULL;
}

static void *
bench_pub(void *arg)
{
	struct bpub *pp = arg;
	struct bench *b = pp->b;
	struct proto_resp r;
	char topic[64], err[SDC_ERRLEN];
	uint8_t *data;
	struct sdc c;
	uint64_t t0, end, n = 0, intended, answered = 0;
	double per = b->rate > 0 ? b->rate / b->pubs : 0;
	const uint64_t window = 256;
	struct timespec ts;

	snprintf(topic, sizeof(topic), "bench.t%u", pp->idx % b->topics);
	if ((data = calloc(1, b->size)) == NULL || dial(b->pc, &c) != OK) {
		free(data);
		bench_fail(b, "publisher", "cannot connect");
		return NULL;
	}
	pthread_mutex_lock(&b->mu);
	while (!b->go)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
	t0 = b->t_start;
	end = t0 + (uint64_t)(b->duration * 1e9);
	proto_put_u32(data, pp->idx);
	while (!b->failed) {
		intended = per > 0 ? t0 + (uint64_t)((double)n * 1e9 / per)
				   : mono_ns();
		if (intended >= end || mono_ns() >= end)
			break;
		if (per > 0 && intended > mono_ns()) {
			ts.tv_sec = (time_t)(intended / 1000000000ULL);
			ts.tv_nsec = (long)(intended % 1000000000ULL);
			(void)clock_nanosleep(
			    CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		}
		proto_put_u32(data + 4, (uint32_t)n);
		put64(data + 8, intended); /* open loop: the intended time */
		if (send_pub(&c, (uint32_t)(n + 1), topic, data, b->size,
			err) == -1) {
			bench_fail(b, "publish", err);
			break;
		}
		n++;
		while (n - answered >= window) {
			if (sdc_recv(&c, &r, err) == -1) {
				bench_fail(b, "publish answer", err);
				goto out;
			}
			if (r.opcode == OP_PUB) {
				answered++;
				pp->errors += r.status != PROTO_OK;
			}
		}
	}
	while (answered < n && sdc_recv(&c, &r, err) == 0)
		if (r.opcode == OP_PUB) {
			answered++;
			pp->errors += r.status != PROTO_OK;
		}
out:
	b->sent[pp->idx] = n;
	sdc_close(&c);
	free(data);
	return NULL;
}

int
pscli_is_bench(int argc, char **argv)
{
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--op") == 0 &&
		    (strcmp(argv[i + 1], "publish") == 0 ||
			strcmp(argv[i + 1], "pubsub.publish") == 0))
			return 1;
	return 0;
}

static int
num_opt(const char *name, const char *v, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (errno != 0 || *end != '\0' || *out < lo || *out > hi) {
		complain("bench: %s: expected a number from %g to %g, not '%s'",
		    name, lo, hi, v);
		return -1;
	}
	return 0;
}

/* Long but linear: options, then the run. */
int
// NOLINTNEXTLINE(readability-function-size)
pscli_bench(const struct pscli_conn *pc, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"op", required_argument, NULL, 'o'},
	    {"publishers", required_argument, NULL, 'P'},
	    {"subscribers", required_argument, NULL, 'S'},
	    {"topics", required_argument, NULL, 'K'},
	    {"size", required_argument, NULL, 's'},
	    {"rate", required_argument, NULL, 'r'},
	    {"duration", required_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b;
	struct bsub *subs = NULL;
	struct bpub *pubs = NULL;
	struct hist all;
	double v, secs;
	uint64_t got = 0, lost = 0, order = 0, errs = 0, expect = 0, pubd = 0;
	unsigned i, j;
	int ch, rc = OK;

	memset(&b, 0, sizeof(b));
	b.pc = pc;
	b.pubs = b.subs = b.topics = 1;
	b.size = 128;
	b.duration = 5;
	optind = 1;
	opterr = 0;
	/* Single-threaded: before the bench threads start. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case 'o':
			break; /* publish: how we got here */
		case 'h':
			bench_usage(stdout);
			return OK;
		case 'P':
		case 'S':
		case 'K':
			if (num_opt(argv[optind - 2], optarg, 1, 10000, &v))
				return USAGE;
			if (ch == 'P')
				b.pubs = (unsigned)v;
			else if (ch == 'S')
				b.subs = (unsigned)v;
			else
				b.topics = (unsigned)v;
			break;
		case 's':
			if (num_opt("--size", optarg, 16, 1 << 20, &v))
				return USAGE;
			b.size = (size_t)v;
			break;
		case 'r':
			if (num_opt("--rate", optarg, 0, 1e9, &b.rate))
				return USAGE;
			break;
		case 'd':
			if (num_opt(
				"--duration", optarg, 0.1, 86400, &b.duration))
				return USAGE;
			break;
		default:
			complain("bench --op publish: unknown option '%s' "
				 "(--publishers N --subscribers M --topics K "
				 "--size BYTES --rate R --duration S)",
			    argv[optind - 1]);
			return USAGE;
		}
	}
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	subs = calloc(b.subs, sizeof(*subs));
	pubs = calloc(b.pubs, sizeof(*pubs));
	b.sent = calloc(b.pubs, sizeof(*b.sent));
	if (subs == NULL || pubs == NULL || b.sent == NULL) {
		complain("bench: out of memory");
		rc = FAIL;
		goto out;
	}
	for (i = 0; i < b.subs; i++) {
		subs[i].b = &b;
		subs[i].idx = i;
		hist_init(&subs[i].h);
		if ((subs[i].next = calloc(b.pubs, sizeof(uint64_t))) == NULL ||
		    pthread_create(&subs[i].th, NULL, bench_sub, &subs[i]) !=
			0) {
			complain("bench: cannot start subscriber %u", i);
			b.subs = i;
			rc = FAIL;
			goto out;
		}
	}
	for (i = 0; i < b.pubs; i++) {
		pubs[i].b = &b;
		pubs[i].idx = i;
		if (pthread_create(&pubs[i].th, NULL, bench_pub, &pubs[i]) != 0)
			abort(); /* cannot unwind the others sensibly */
	}
	/* Start when every subscription is confirmed. */
	pthread_mutex_lock(&b.mu);
	while (b.ready < (int)b.subs && !b.failed)
		pthread_cond_wait(&b.cv, &b.mu);
	b.t_start = mono_ns();
	b.go = 1;
	pthread_cond_broadcast(&b.cv);
	pthread_mutex_unlock(&b.mu);
	for (i = 0; i < b.pubs; i++)
		pthread_join(pubs[i].th, NULL);
	b.t_end = mono_ns();
	/* What is still in flight arrives within a second or is lost. */
	usleep(1000000);
	__atomic_store_n(&b.stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < b.subs; i++)
		pthread_join(subs[i].th, NULL);
	hist_init(&all);
	for (i = 0; i < b.subs; i++) {
		hist_merge(&all, &subs[i].h);
		got += subs[i].got;
		order += subs[i].order;
		for (j = 0; j < b.pubs; j++)
			if (j % b.topics == i % b.topics)
				expect += b.sent[j];
	}
	for (i = 0; i < b.pubs; i++)
		errs += pubs[i].errors;
	lost = expect > got ? expect - got : 0;
	secs = (double)(b.t_end - b.t_start) / 1e9;
	for (i = 0; i < b.pubs; i++)
		pubd += b.sent[i];
	(void)printf("publishers %u, subscribers %u, topics %u, size %zu\n",
	    b.pubs, b.subs, b.topics, b.size);
	if (b.rate > 0)
		(void)printf("offered %.0f msgs/s\n", b.rate);
	else
		(void)printf("offered as fast as possible (256 unanswered "
			     "publishes per publisher)\n");
	(void)printf("published %" PRIu64 " in %.2f s (%.0f msgs/s), "
		     "publish errors %" PRIu64 "\n",
	    pubd, secs, secs > 0 ? (double)pubd / secs : 0.0, errs);
	(void)printf("delivered %" PRIu64 " (%.0f msgs/s), lost %" PRIu64
		     ", order errors %" PRIu64 "\n",
	    got, secs > 0 ? (double)got / secs : 0.0, lost, order);
	(void)printf("latency us: p50 %" PRIu64 " p90 %" PRIu64 " p99 %" PRIu64
		     " p99.9 %" PRIu64 " max %" PRIu64 "\n",
	    hist_percentile(&all, 50), hist_percentile(&all, 90),
	    hist_percentile(&all, 99), hist_percentile(&all, 99.9),
	    all.count ? all.max : 0);
	if (b.failed)
		rc = FAIL;
	else if (lost > 0 || order > 0 || errs > 0)
		rc = SERVER;
out:
	for (i = 0; subs != NULL && i < b.subs; i++)
		free(subs[i].next);
	free(subs);
	free(pubs);
	free(b.sent);
	return rc;
}
