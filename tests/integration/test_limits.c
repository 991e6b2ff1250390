/*
 * Limits and timeouts: many idle connections, max_connections (BUSY),
 * idle / read / write timeouts, back-pressure on a client that never
 * reads, and running out of file descriptors.
 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl != -1);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

#define NIDLE 1000

/* 1,000 idle connections (half of them mid-frame) on 2 workers. */
static void
test_idle_connections_do_not_pin_workers(void **state)
{
	static const struct h_opts o = {.extra = "workers = 2;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *st = h_sdc(T(state), "127.0.0.1", d->port);
	uint8_t partial[PROTO_FRAME_MIN];
	int fds[NIDLE], fd, i;
	int64_t t0, dt;
	uint64_t cur;

	/* An ECHO announcing 100 payload bytes: header only. */
	proto_put_u32(partial, PROTO_HDR_SIZE + 100);
	partial[4] = PROTO_VERSION;
	partial[5] = PROTO_OP_ECHO;
	proto_put_u16(partial + 6, 0);
	proto_put_u32(partial + 8, 1);
	for (i = 0; i < NIDLE; i++) {
		fds[i] = h_connect(T(state), "127.0.0.1", d->port, 5000);
		if (fds[i] == -1)
			fail_msg("connection %d: %s", i, strerror(errno));
		if (i % 2 == 0)
			assert_int_equal(h_send_all(fds[i], partial,
					     sizeof(partial), H_IO_TIMEOUT),
			    0);
	}
	cur = h_stat_wait(st, "connections_current", NIDLE + 1, 10000);
	assert_int_equal(cur, NIDLE + 1);

	t0 = h_now_ms();
	fd = h_raw(T(state), d);
	h_raw_ping(fd, 99);
	dt = h_now_ms() - t0;
	if (dt > 2000)
		fail_msg("a new client waited %" PRId64 " ms for a PONG", dt);
	h_ping(st);

	for (i = 0; i < NIDLE; i++)
		h_close(T(state), fds[i]);
	h_close(T(state), fd);
	cur = h_stat_wait(st, "connections_current", 1, 10000);
	assert_int_equal(cur, 1);
}

static void
test_busy(void **state)
{
	static const struct h_opts o = {.extra = "max_connections = 5;"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c[5];
	int fd, i;

	c[0] = h_sdc_settled(T(state), d);
	for (i = 1; i < 5; i++) {
		c[i] = h_sdc(T(state), "127.0.0.1", d->port);
		h_ping(c[i]);
	}
	fd = h_raw(T(state), d);
	h_expect_refusal(fd, PROTO_BUSY, "max_connections (5) reached");
	h_close(T(state), fd);
	assert_int_equal(h_stat(c[0], "connections_rejected"), 1);
	assert_int_equal(h_stat(c[0], "rejected_max_connections"), 1);
	assert_int_equal(h_stat(c[0], "connections_current"), 5);
	for (i = 0; i < 5; i++)
		h_ping(c[i]);

	/* One goes: there is room for one more, and only one. */
	h_sdc_close(T(state), c[4]);
	assert_int_equal(h_stat_wait(c[0], "connections_current", 4, 5000), 4);
	c[4] = h_sdc(T(state), "127.0.0.1", d->port);
	h_ping(c[4]);
	fd = h_raw(T(state), d);
	h_expect_refusal(fd, PROTO_BUSY, "max_connections (5) reached");
	h_close(T(state), fd);
	assert_int_equal(h_stat(c[0], "connections_rejected"), 2);
}

static void
test_idle_timeout(void **state)
{
	static const struct h_opts o = {.extra = "timeouts: { idle = 1; };"};
	struct h_daemon *d = h_start(T(state), &o);
	int64_t t0, closed_at = -1;
	int quiet, busy;
	uint32_t id = 1;
	enum h_eof e;

	quiet = h_raw(T(state), d);
	busy = h_raw(T(state), d);
	t0 = h_now_ms();
	/* busy pings every 300 ms for 2 s; quiet says nothing. */
	while (h_now_ms() - t0 < 2100) {
		if (closed_at < 0) {
			e = h_wait_eof(quiet, 300, NULL);
			if (e == H_EOF)
				closed_at = h_now_ms() - t0;
			else if (e != H_TIMEOUT)
				fail_msg("silent connection: %s", h_eof_str(e));
		} else {
			h_sleep_ms(300);
		}
		h_raw_ping(busy, id++);
	}
	if (closed_at < 0) {
		e = h_wait_eof(quiet, 2000, NULL);
		if (e != H_EOF)
			fail_msg("silent connection after %" PRId64
				 " ms: %s, expected EOF",
			    h_now_ms() - t0, h_eof_str(e));
		closed_at = h_now_ms() - t0;
	}
	if (closed_at < 500 || closed_at > 3500)
		fail_msg("silent connection closed after %" PRId64
			 " ms; idle is 1 s",
		    closed_at);
	/* The busy one is still served. */
	h_raw_ping(busy, id++);
	assert_int_equal(h_stat_of(T(state), d, "timeouts_idle"), 1);
}

static void
test_read_timeout(void **state)
{
	static const struct h_opts o = {
	    .extra = "timeouts: { read = 1; idle = 0; };"};
	struct h_daemon *d = h_start(T(state), &o);
	int fd = h_raw(T(state), d);
	uint8_t *req;
	int64_t t0, closed_at = -1;
	size_t i;
	enum h_eof e;

	/* A 100-byte frame: 88 bytes of payload. */
	req = malloc(100);
	assert_non_null(req);
	memset(req, 'q', 100);
	proto_put_u32(req, 96);
	req[4] = PROTO_VERSION;
	req[5] = PROTO_OP_ECHO;
	proto_put_u16(req + 6, 0);
	proto_put_u32(req + 8, 5);
	t0 = h_now_ms();
	for (i = 0; i < 100 && h_now_ms() - t0 < 6000; i++) {
		if (h_send_all(fd, req + i, 1, 1000) == -1) {
			closed_at = h_now_ms() - t0;
			break;
		}
		e = h_wait_eof(fd, 200, NULL);
		if (e == H_EOF || e == H_RESET) {
			closed_at = h_now_ms() - t0;
			break;
		}
		if (e == H_DATA)
			fail_msg("an answer to a partial frame");
	}
	free(req);
	if (closed_at < 0)
		fail_msg("still open after %zu bytes in %" PRId64 " ms", i,
		    h_now_ms() - t0);
	if (closed_at < 500 || closed_at > 3500)
		fail_msg("closed after %" PRId64 " ms; read is 1 s", closed_at);
	assert_int_equal(h_stat_of(T(state), d, "timeouts_read"), 1);
	assert_int_equal(h_stat_of(T(state), d, "timeouts_idle"), 0);
}

/*
 * "idle: close a connection that has no request in progress": a request
 * half received is in progress, and it is the read timeout's business.
 */
static void
test_idle_timeout_spares_partial_frame(void **state)
{
	static const struct h_opts o = {
	    .extra = "timeouts: { idle = 1; read = 3; };"};
	struct h_daemon *d = h_start(T(state), &o);
	int fd = h_raw(T(state), d);
	uint8_t hdr[PROTO_FRAME_MIN];
	int64_t t0, dt;
	enum h_eof e;

	/* The header of an ECHO announcing 100 payload bytes, no payload. */
	proto_put_u32(hdr, PROTO_HDR_SIZE + 100);
	hdr[4] = PROTO_VERSION;
	hdr[5] = PROTO_OP_ECHO;
	proto_put_u16(hdr + 6, 0);
	proto_put_u32(hdr + 8, 1);
	assert_int_equal(h_send_all(fd, hdr, sizeof(hdr), H_IO_TIMEOUT), 0);
	t0 = h_now_ms();
	e = h_wait_eof(fd, 8000, NULL);
	dt = h_now_ms() - t0;
	if (e != H_EOF && e != H_RESET)
		fail_msg(
		    "partial frame: %s after %" PRId64 " ms", h_eof_str(e), dt);
	if (dt < 2000)
		fail_msg("a connection with a partial frame was closed after "
			 "%" PRId64 " ms: idle = 1 applied, read = 3 did not "
			 "(timeouts_idle %" PRIu64 ", timeouts_read %" PRIu64
			 ")",
		    dt, h_stat_of(T(state), d, "timeouts_idle"),
		    h_stat_of(T(state), d, "timeouts_read"));
	assert_true(dt < 6000);
	assert_int_equal(h_stat_of(T(state), d, "timeouts_read"), 1);
	assert_int_equal(h_stat_of(T(state), d, "timeouts_idle"), 0);
}

#define BIG (64 * 1024)

/*
 * A client that sends 64 KiB ECHOs and never reads: the server stops
 * reading from it (bounded buffering), keeps serving others, and closes it
 * after the write timeout.
 */
static void
test_never_reading_client(void **state)
{
	static const struct h_opts o = {.extra = "timeouts: { write = 2; };"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *other = h_sdc(T(state), "127.0.0.1", d->port);
	uint8_t *payload, *req;
	size_t n, off = 0, total = 0, at_stall = 0;
	int64_t t0, last = 0, closed_at = -1, stall_at = -1;
	struct pollfd p;
	uint32_t id = 1;
	ssize_t w;
	int fd;

	payload = malloc(BIG);
	assert_non_null(payload);
	memset(payload, 'e', BIG);
	req = h_req(PROTO_OP_ECHO, id, payload, BIG, &n);
	free(payload);
	fd = h_raw(T(state), d);
	set_nonblock(fd);
	t0 = last = h_now_ms();
	while (h_now_ms() - t0 < 15000) {
		w = send(fd, req + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			total += (size_t)w;
			off += (size_t)w;
			last = h_now_ms();
			if (off == n) {
				off = 0;
				proto_put_u32(req + 8, ++id);
			}
			if (total > (64u << 20))
				break;
			continue;
		}
		if (w == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			closed_at = h_now_ms() - t0;
			break;
		}
		if (stall_at < 0 && h_now_ms() - last > 300) {
			/* Stuck: meanwhile another client is served. */
			stall_at = h_now_ms() - t0;
			at_stall = total;
			h_ping(other);
		}
		p.fd = fd;
		p.events = POLLOUT;
		p.revents = 0;
		if (poll(&p, 1, 50) == 1 && (p.revents & (POLLERR | POLLHUP))) {
			closed_at = h_now_ms() - t0;
			break;
		}
	}
	free(req);
	if (total > (64u << 20))
		fail_msg("the server took %zu bytes from a client that never "
			 "reads",
		    total);
	if (stall_at < 0)
		fail_msg("sending never blocked (%zu bytes in %" PRId64 " ms)",
		    total, h_now_ms() - t0);
	if (closed_at < 0)
		fail_msg("not closed %" PRId64 " ms after sending blocked "
			 "(write timeout 2 s)",
		    h_now_ms() - t0 - stall_at);
	print_message("# never-reading client: %zu bytes taken, stalled at "
		      "%" PRId64 " ms (%zu bytes), closed at %" PRId64 " ms\n",
	    total, stall_at, at_stall, closed_at);
	assert_true(total < (64u << 20));
	h_ping(other);
	assert_true(h_stat(other, "output_throttled") >= 1);
	assert_true(h_stat(other, "timeouts_write") >= 1);
}

/*
 * An answer the client does not take is a request in progress too: the
 * write timeout decides, not the idle timeout.
 */
static void
test_idle_timeout_spares_pending_output(void **state)
{
	static const struct h_opts o = {
	    .extra = "timeouts: { idle = 1; write = 3; };"};
	struct h_daemon *d = h_start(T(state), &o);
	uint8_t *payload, *req;
	size_t n, off = 0;
	int64_t t0, last, closed_at = -1;
	struct pollfd p;
	uint32_t id = 1;
	ssize_t w;
	int fd;

	payload = malloc(BIG);
	assert_non_null(payload);
	memset(payload, 'i', BIG);
	req = h_req(PROTO_OP_ECHO, id, payload, BIG, &n);
	free(payload);
	fd = h_raw(T(state), d);
	set_nonblock(fd);
	t0 = last = h_now_ms();
	while (h_now_ms() - t0 < 10000) {
		w = send(fd, req + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			off += (size_t)w;
			last = h_now_ms();
			if (off == n) {
				off = 0;
				proto_put_u32(req + 8, ++id);
			}
			continue;
		}
		if (w == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
			closed_at = h_now_ms();
			break;
		}
		p.fd = fd;
		p.events = POLLOUT;
		p.revents = 0;
		if (poll(&p, 1, 50) == 1 && (p.revents & (POLLERR | POLLHUP))) {
			closed_at = h_now_ms();
			break;
		}
	}
	free(req);
	if (closed_at < 0)
		fail_msg("never closed (write = 3)");
	if (closed_at - last < 2000)
		fail_msg("a connection with answers pending was closed %" PRId64
			 " ms after the last byte it took: idle = 1 applied, "
			 "write = 3 did not (timeouts_idle %" PRIu64
			 ", timeouts_write %" PRIu64 ")",
		    closed_at - last, h_stat_of(T(state), d, "timeouts_idle"),
		    h_stat_of(T(state), d, "timeouts_write"));
	assert_int_equal(h_stat_of(T(state), d, "timeouts_write"), 1);
	assert_int_equal(h_stat_of(T(state), d, "timeouts_idle"), 0);
}

/*
 * A client that reads its answers steadily, only more slowly than the
 * server produces them, keeps output pending on the server for longer than
 * the write timeout, but its socket never "stays full": the write timeout
 * ("longest wait for a client to accept a reply") must not close it.
 */
static void
test_slow_reader_not_timed_out(void **state)
{
	static const struct h_opts o = {.extra = "timeouts: { write = 1; };"};
	const size_t nreq = 256;        /* 16 MiB each way */
	const uint64_t rate = 8u << 20; /* bytes read per second */
	struct h_daemon *d = h_start(T(state), &o);
	uint8_t *payload, *req, *rbuf;
	size_t n, off = 0, sent_req = 0, want, got_bytes = 0, rcv = 65536;
	int64_t t0, now;
	struct pollfd p;
	uint32_t id = 1;
	ssize_t w;
	int fd;

	payload = malloc(BIG);
	rbuf = malloc(BIG);
	assert_non_null(payload);
	assert_non_null(rbuf);
	memset(payload, 's', BIG);
	req = h_req(PROTO_OP_ECHO, id, payload, BIG, &n);
	free(payload);
	want = nreq * n;
	fd = h_raw(T(state), d);
	/* A small receive window: the server's output waits in its buffer. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	set_nonblock(fd);
	t0 = h_now_ms();
	while (got_bytes < want && h_now_ms() - t0 < 20000) {
		if (sent_req < nreq) {
			w = send(fd, req + off, n - off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				off += (size_t)w;
				if (off == n) {
					off = 0;
					sent_req++;
					proto_put_u32(req + 8, ++id);
				}
				continue;
			}
			if (w == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
				break;
		}
		/* Read no faster than rate. */
		now = h_now_ms();
		if ((uint64_t)got_bytes < (uint64_t)(now - t0) * rate / 1000) {
			w = recv(fd, rbuf, BIG, MSG_DONTWAIT);
			if (w > 0) {
				got_bytes += (size_t)w;
				continue;
			}
			if (w == 0 ||
			    (w == -1 && errno != EAGAIN &&
				errno != EWOULDBLOCK))
				break;
		}
		p.fd = fd;
		p.events = sent_req < nreq ? POLLOUT : 0;
		p.revents = 0;
		(void)poll(&p, 1, 5);
	}
	free(req);
	free(rbuf);
	if (got_bytes < want)
		fail_msg("closed or stuck after %zu of %zu answer bytes in "
			 "%" PRId64 " ms, while reading %" PRIu64 " MiB/s "
			 "(write timeout 1 s; timeouts_write %" PRIu64 ")",
		    got_bytes, want, h_now_ms() - t0, rate >> 20,
		    h_stat_of(T(state), d, "timeouts_write"));
	assert_int_equal(h_stat_of(T(state), d, "timeouts_write"), 0);
}

#define FLOOD_PINGS 100000
#define FLOOD_MS    800

/*
 * One worker, one client pipelining PINGs as fast as it can for 0.8 s:
 * another client on the same worker still gets its answers promptly
 * (REQ_BUDGET requests per connection per turn).
 */
static void
test_fairness(void **state)
{
	static const struct h_opts o = {.extra = "workers = 1;"};
	struct h_daemon *d = h_start(T(state), &o);
	int flood = h_raw(T(state), d), probe = h_raw(T(state), d);
	size_t len = FLOOD_PINGS * PROTO_FRAME_MIN, off = 0, i;
	uint64_t sent = 0, got = 0;
	uint8_t *out, *in, ans[PROTO_FRAME_MIN];
	int64_t t0, sent_at = 0, worst = 0, dt;
	int probes = 0, waiting = 0, flooding = 1;
	struct pollfd p[2];
	ssize_t n;

	out = malloc(len);
	in = malloc(1 << 20);
	assert_non_null(out);
	assert_non_null(in);
	for (i = 0; i < FLOOD_PINGS; i++)
		proto_encode_req(out + i * PROTO_FRAME_MIN, PROTO_FRAME_MIN,
		    PROTO_OP_PING, (uint32_t)i, NULL, 0);
	set_nonblock(flood);
	t0 = h_now_ms();
	while ((flooding || got < sent || waiting) &&
	    h_now_ms() - t0 < FLOOD_MS + 10000) {
		if (flooding && h_now_ms() - t0 >= FLOOD_MS &&
		    off % PROTO_FRAME_MIN == 0)
			flooding = 0;
		/* A probe PING every 20 ms while the flood goes on. */
		if (flooding && !waiting && h_now_ms() - sent_at >= 20) {
			if (h_send_req(probe, PROTO_OP_PING, (uint32_t)probes,
				NULL, 0) == -1)
				fail_msg("probe: %s", strerror(errno));
			sent_at = h_now_ms();
			waiting = 1;
		}
		p[0].fd = flood;
		p[0].events = POLLIN | (flooding ? POLLOUT : 0);
		p[1].fd = probe;
		p[1].events = POLLIN;
		p[0].revents = p[1].revents = 0;
		if (poll(p, 2, 20) <= 0)
			continue;
		if (flooding && (p[0].revents & POLLOUT)) {
			n = send(flood, out + off, len - off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0) {
				off = (off + (size_t)n) % len;
				sent += (uint64_t)n;
			}
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = recv(flood, in, 1 << 20, MSG_DONTWAIT);
			if (n > 0)
				got += (uint64_t)n;
			else if (n == 0 || errno != EAGAIN)
				fail_msg("flood connection closed after "
					 "%" PRIu64 " answer bytes",
				    got);
		}
		if (p[1].revents) {
			if (h_recv_exact(probe, ans, sizeof(ans), 5000, NULL) ==
			    -1)
				fail_msg("probe answer: %s", strerror(errno));
			assert_int_equal(
			    proto_get_u32(ans + 8), (uint32_t)probes);
			dt = h_now_ms() - sent_at;
			if (dt > worst)
				worst = dt;
			probes++;
			waiting = 0;
		}
	}
	free(out);
	free(in);
	print_message("# %d probes during a flood of %" PRIu64 " PINGs in "
		      "%" PRId64 " ms; slowest answer %" PRId64 " ms\n",
	    probes, sent / PROTO_FRAME_MIN, h_now_ms() - t0, worst);
	assert_true(got == sent);
	assert_true(probes >= 10);
	if (worst > 1000)
		fail_msg("a PING waited %" PRId64 " ms behind a flood on the "
			 "same worker",
		    worst);
}

#define NFD 100

/* Count the connections that got BUSY; they are closed (h_close). */
static int
count_busy(struct h_ctx *t, int *fds, int n)
{
	struct h_frame f;
	int i, busy = 0;
	enum h_eof e;

	for (i = 0; i < n; i++) {
		if (fds[i] == -1)
			continue;
		e = h_wait_eof(fds[i], 0, NULL);
		if (e == H_TIMEOUT)
			continue; /* accepted and quiet, or still waiting */
		if (e == H_DATA) {
			if (h_read_frame(fds[i], &f, 1000) == -1)
				fail_msg(
				    "connection %d: %s", i, strerror(errno));
			if (f.status != PROTO_BUSY || f.request_id != 0)
				fail_msg("connection %d got status %u id "
					 "%" PRIu32,
				    i, f.status, f.request_id);
			h_frame_free(&f);
		}
		busy++;
		h_close(t, fds[i]);
		fds[i] = -1;
	}
	return busy;
}

/* Open NFD connections without waiting for any of them; all connected. */
static void
open_many(struct h_ctx *t, const struct h_daemon *d, int *fds, int n)
{
	struct pollfd p;
	int i;

	for (i = 0; i < n; i++) {
		fds[i] = h_connect_nb(t, "127.0.0.1", d->port);
		if (fds[i] == -1)
			fail_msg("connection %d: %s", i, strerror(errno));
	}
	for (i = 0; i < n; i++) {
		p.fd = fds[i];
		p.events = POLLOUT;
		p.revents = 0;
		if (poll(&p, 1, 5000) != 1)
			fail_msg("connection %d did not complete", i);
	}
}

static void
test_descriptor_exhaustion(void **state)
{
	static const struct h_opts o = {.nofile = 64};
	struct h_daemon *d = h_start(T(state), &o);
	int fds[NFD], i, fd, ok = 0, busy, n;
	long cpu0, cpu1;
	int64_t t0;
	struct h_frame f;

	open_many(T(state), d, fds, NFD);
	h_sleep_ms(500);
	/* The first ones were accepted long before descriptors ran out. */
	for (i = 0; i < 10; i++)
		h_raw_ping(fds[i], 1000 + (uint32_t)i);
	/* Two seconds of that state cost (almost) no CPU. */
	cpu0 = h_cpu_ms(d->pid);
	assert_true(cpu0 >= 0);
	h_sleep_ms(2000);
	cpu1 = h_cpu_ms(d->pid);
	assert_true(cpu1 >= 0);
	if (cpu1 - cpu0 >= 500)
		fail_msg("socketd used %ld ms of CPU in 2 s while out of "
			 "descriptors",
		    cpu1 - cpu0);
	assert_int_equal(h_wait_exit(d, 0), -1); /* still running */
	for (i = 0; i < 10; i++)
		h_raw_ping(fds[i], 2000 + (uint32_t)i);
	busy = count_busy(T(state), fds, NFD);
	n = h_log_count(d, "Too many open files", NULL);
	print_message("# %d of %d connections refused; %d log lines about "
		      "EMFILE\n",
	    busy, NFD, n);
	if (n < 1 || n > 2) {
		h_log_dump(d);
		fail_msg("%d log lines say \"Too many open files\"; expected "
			 "one",
		    n);
	}

	/*
	 * All but the first 10 leave: new clients are served again.  Those
	 * still waiting in the backlog must go too, or the server, which
	 * accepts them first, could fill up with them again: how many it
	 * holds depends on its descriptor overhead (valgrind alone takes a
	 * dozen of the 64 for itself).
	 */
	for (i = 10; i < NFD; i++) {
		h_close(T(state), fds[i]);
		fds[i] = -1;
	}
	t0 = h_now_ms();
	/* valgrind runs the daemon 20-50x slower: give it more time. */
	while (!ok &&
	    h_now_ms() - t0 < (getenv("SOCKETD_IT_VALGRIND") ? 30000 : 5000)) {
		fd = h_connect(T(state), "127.0.0.1", d->port, 2000);
		if (fd != -1 &&
		    h_send_req(fd, PROTO_OP_PING, 7, NULL, 0) == 0 &&
		    h_read_frame(fd, &f, 2000) == 0) {
			ok = f.status == PROTO_OK && f.request_id == 7;
			h_frame_free(&f);
		}
		h_close(T(state), fd);
		if (!ok)
			h_sleep_ms(100);
	}
	if (!ok)
		fail_msg("no new connection served in time after %d of %d "
			 "clients left",
		    NFD - 10, NFD);
	/* The ones held throughout were served all along. */
	for (i = 0; i < 10; i++)
		h_raw_ping(fds[i], 3000 + (uint32_t)i);
	for (i = 0; i < 10; i++)
		h_close(T(state), fds[i]);
	assert_int_equal(h_stop(d, 0), 0);
}

/*
 * Out of descriptors, accepting pauses for PAUSE_FD_MS (250 ms) after each
 * spare-descriptor refusal, or until a connection closes: the kernel's
 * backlog holds new clients meanwhile (acceptor.c, top comment).  So in one
 * second only a handful of the waiting clients may be refused.
 */
static void
test_descriptor_exhaustion_backlog_waits(void **state)
{
	static const struct h_opts o = {.nofile = 64};
	struct h_daemon *d = h_start(T(state), &o);
	int fds[NFD], busy;

	open_many(T(state), d, fds, NFD);
	h_sleep_ms(1000);
	busy = count_busy(T(state), fds, NFD);
	if (busy > 10)
		fail_msg("%d of %d connections were refused within 1 s: "
			 "accepting did not pause for 250 ms after a refusal",
		    busy, NFD);
}

/*
 * Clients waiting before the workers have started must not take the
 * descriptors the workers need: every descriptor the daemon keeps (each
 * worker's epoll set among them) is made before the acceptor starts.
 * The test hook holds each worker for 200 ms as it starts, long enough
 * for the acceptor to use up a 32-descriptor limit on waiting clients.
 */
static void
test_descriptor_exhaustion_at_start(void **state)
{
	static const char *const env[] = {
	    "SOCKETD_TEST_SLOW_WORKER_MS=200", NULL};
	static const struct h_opts o = {
	    .nofile = 32, .env = env, .extra = "workers = 2;"};
	struct h_daemon *d = h_start(T(state), &o);
	int fds[40], i;

	open_many(T(state), d, fds, 40);
	h_sleep_ms(1000);
	if (h_wait_exit(d, 0) != -1) {
		h_log_dump(d);
		fail_msg("socketd exited when clients took its descriptors "
			 "before the workers started");
	}
	/* The first client was accepted, and is served. */
	h_raw_ping(fds[0], 1);
	for (i = 0; i < 40; i++)
		h_close(T(state), fds[i]);
	assert_int_equal(h_stop(d, 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_idle_connections_do_not_pin_workers, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_busy, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_idle_timeout, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_read_timeout, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_idle_timeout_spares_partial_frame, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_never_reading_client, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_idle_timeout_spares_pending_output, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_slow_reader_not_timed_out, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(test_fairness, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_descriptor_exhaustion, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_descriptor_exhaustion_backlog_waits, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_descriptor_exhaustion_at_start, h_setup, h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_limits", tests, h_group_setup, NULL);
}
