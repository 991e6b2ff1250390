/*
 * fuzz_serve: arbitrary bytes through the real server, modules included.
 *
 * Links socketd_core (everything but main()): the workers, the dispatch
 * table, the answer queue, the inbox, the blocking-handler runner, and
 * tests/modules/testmod.so (built with TESTMOD_FUZZ: its sleeps and spins
 * are capped at a few milliseconds) loaded at 0xa0, so every handler kind
 * and every path of a module request (answered, never answered, answered
 * twice, held until the handler timeout, released from another thread,
 * pushed) is reachable from the input.
 *
 * Each input is one connection: a socketpair whose server end is handed
 * to the pool as if the acceptor had accepted it.  The input is written
 * (while the answers are read, so that neither side blocks), then the
 * write side is shut.  Invariants:
 *   - the server answers, then closes: never hangs (10 s);
 *   - every answer is a well-formed v1 response with a known status;
 *   - answers come in request order: one per request the decoder finds
 *     in the input, with its opcode and request_id, up to and including
 *     a TOO_LARGE, after which the server closes;
 *   - frames with request_id 0 and status 0 are pushes of a push opcode.
 * ASan/UBSan (the fuzz build) catch the memory errors on the way.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "conn.h"
#include "fuzz.h"
#include "log.h"
#include "module.h"
#include "pool.h"
#include "proto.h"
#include "server.h"
#include "srclimit.h"
#include "worker.h"

#ifndef FUZZ_TESTMOD
#error "FUZZ_TESTMOD: the path of testmod_fuzz.so"
#endif

#define TM        0xa0
#define TM_NOTE   (TM + 12)
#define MAX_FRAME 65536
#define DEADLINE  10000 /* ms for one input */

static struct server srv;

static void
start_server(void)
{
	static struct cfg c;
	struct cfg_error err;
	static struct cfg_module m;
	char msg[1024];

	log_init("fuzz_serve", 0, LOG_LEVEL_ERROR);
	FUZZ_CHECK(cfg_defaults(&c, &err) == 0);
	c.workers = 2;
	c.max_frame_size = MAX_FRAME;
	c.handler_ms = 20; /* held requests time out quickly */
	c.handler_threads = 2;
	c.handler_queue = 4;
	c.max_inflight = 8;
	c.idle_ms = c.read_ms = c.write_ms = 5000;
	m.name = (char *)"testmod";
	m.path = (char *)FUZZ_TESTMOD;
	m.opcode = TM;
	m.file = (char *)"fuzz";
	c.modules = &m;
	c.nmodules = 1;
	pthread_mutex_init(&srv.cfg_mu, NULL);
	srv.start_mono_ms = now_mono_ms();
	srv.nworkers = c.workers;
	FUZZ_CHECK((srv.src = srclimit_new()) != NULL);
	FUZZ_CHECK((srv.mods = calloc(1, sizeof(*srv.mods))) != NULL);
	if (modreg_open(srv.mods, &c, msg, sizeof(msg)) != 0) {
		fprintf(stderr, "%s\n", msg);
		abort();
	}
	FUZZ_CHECK((srv.cfg = server_cfg_new(&c)) != NULL);
	server_start_modules(&srv);
	server_start_workers(&srv);
}

struct expect {
	uint8_t opcode;
	uint32_t id;
	int last; /* TOO_LARGE: the server closes after it */
};

/* What the decoder will find in the input: one answer each. */
static size_t
expected(const uint8_t *d, size_t n, struct expect *ex, size_t cap)
{
	struct proto_req req;
	size_t off = 0, used, k = 0;
	enum proto_status st;

	while (off < n && k < cap) {
		st = proto_decode_req(d + off, n - off, MAX_FRAME, &req, &used);
		if (st == PROTO_AGAIN)
			break;
		ex[k].opcode = req.opcode;
		ex[k].id = req.request_id;
		ex[k].last = st == PROTO_TOO_LARGE;
		k++;
		if (st == PROTO_TOO_LARGE)
			break;
		off += used;
	}
	return k;
}

static int64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Check the answers in buf[0..len) against ex; the count seen. */
static size_t
check_answers(
    const uint8_t *buf, size_t len, const struct expect *ex, size_t nex)
{
	struct proto_resp r;
	size_t off = 0, used, k = 0;
	enum proto_status st;

	while (off < len) {
		st = proto_decode_resp(
		    buf + off, len - off, SIZE_MAX, &r, &used);
		FUZZ_CHECK(st == PROTO_OK); /* whole frames only, then EOF */
		FUZZ_CHECK(r.version == PROTO_VERSION);
		FUZZ_CHECK(r.status <= PROTO_NOT_SUBSCRIBED);
		off += used;
		if (r.request_id == 0 && r.status == PROTO_OK &&
		    r.opcode == TM_NOTE)
			continue; /* a push from testmod.push */
		FUZZ_CHECK(k < nex);
		FUZZ_CHECK(r.opcode == ex[k].opcode);
		FUZZ_CHECK(r.request_id == ex[k].id);
		if (ex[k].last)
			FUZZ_CHECK(r.status == PROTO_TOO_LARGE);
		k++;
	}
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int started;
	static struct expect ex[8192];
	struct pollfd pfd;
	struct conn *c;
	uint8_t *out = NULL;
	size_t nex, sent = 0, got = 0, cap = 0;
	int sv[2], shut = 0;
	int64_t deadline;
	ssize_t n;

	if (!started) {
		start_server();
		started = 1;
	}
	nex = expected(data, size, ex, sizeof(ex) / sizeof(ex[0]));
	if (nex == sizeof(ex) / sizeof(ex[0]))
		return 0; /* too many to track; not interesting */
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	FUZZ_CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	FUZZ_CHECK((c = conn_new(sv[0])) != NULL);
	__atomic_fetch_add(&srv.conns_current, 1, __ATOMIC_RELAXED);
	FUZZ_CHECK(pool_submit(srv.pool, c) == 0);

	deadline = ms_now() + DEADLINE;
	for (;;) {
		if (sent == size && !shut) {
			FUZZ_CHECK(shutdown(sv[1], SHUT_WR) == 0);
			shut = 1;
		}
		pfd.fd = sv[1];
		pfd.events = POLLIN | (shut ? 0 : POLLOUT);
		FUZZ_CHECK(ms_now() < deadline); /* the server hung */
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if ((pfd.revents & POLLOUT) && !shut) {
			n = send(sv[1], data + sent, size - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n == -1 && errno == EPIPE)
				sent = size; /* closed after TOO_LARGE */
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			if (got == cap) {
				cap = cap ? cap * 2 : 65536;
				FUZZ_CHECK((out = realloc(out, cap)) != NULL);
			}
			n = recv(sv[1], out + got, cap - got, 0);
			if (n == 0 || (n == -1 && errno == ECONNRESET))
				break;
			if (n > 0)
				got += (size_t)n;
		}
	}
	/* Everything answered, or everything up to TOO_LARGE. */
	FUZZ_CHECK(check_answers(out, got, ex, nex) == nex);
	close(sv[1]);
	free(out);
	return 0;
}
