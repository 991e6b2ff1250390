/*
 * Faults: slow senders, clients that reset mid-frame and mid-response,
 * reloads and a stop under load.  Each test is bounded in time, uses
 * loopback only and checks the defence it names: remove the defence and
 * the test fails.
 */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proto.h"

#define T(state) ((struct h_ctx *)*(state))

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * p99 of n sequential PING round trips on c, in microseconds.  When nslow
 * > 0, byte b of a frame goes to each of the nslow slow connections,
 * spread evenly between the pings and outside the timed part: slow
 * senders trickle, they do not all send in the same microsecond.
 */
static int64_t
ping_p99(struct sdc *c, int n, const int *slow, int nslow, const uint8_t *b)
{
	struct proto_resp resp;
	char err[SDC_ERRLEN];
	int64_t *lat, t0, p99;
	int i, j = 0;

	lat = calloc((size_t)n, sizeof(*lat));
	assert_non_null(lat);
	for (i = 0; i < n; i++) {
		for (; j < (int)((int64_t)nslow * (i + 1) / n); j++)
			(void)send(slow[j], b, 1, MSG_NOSIGNAL);
		t0 = now_us();
		if (sdc_call(c, PROTO_OP_PING, NULL, 0, &resp, err) != 0)
			fail_msg("PING %d: %s", i, err);
		assert_int_equal(resp.status, PROTO_OK);
		lat[i] = now_us() - t0;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	p99 = lat[(n * 99) / 100];
	free(lat);
	return p99;
}

/* Open file descriptors of pid (from /proc/PID/fd). */
static int
fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

#define NSLOW 2000

static void
test_slow_senders_do_not_slow_others(void **state)
{
	static const struct h_opts o = {.level = "info",
	    .extra = "workers = 2;\ntimeouts: { read = 3; idle = 0; };"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc_settled(T(state), d);
	int *fds, i, round, closed = 0;
	int64_t before, after, base, loaded[2], limit;
	size_t len;
	uint8_t *req;

	before = ping_p99(c, 2000, NULL, 0, NULL);
	fds = calloc(NSLOW, sizeof(*fds));
	assert_non_null(fds);
	/*
	 * In batches that fit the listen backlog, each waited for: 2,000
	 * SYNs at once overflow it and the rest retry only after a second.
	 */
	for (i = 0; i < NSLOW; i++) {
		fds[i] = h_connect_nb(T(state), "127.0.0.1", d->port);
		if ((i + 1) % 250 == 0 &&
		    h_stat_wait(c, "connections_current", (uint64_t)i + 2,
			10000) != (uint64_t)i + 2)
			fail_msg(
			    "%d connections not accepted within 10 s", i + 1);
	}
	req = h_req(PROTO_OP_PING, 1, NULL, 0, &len);
	/* Each sends one byte a second: a frame would take 12 s. */
	for (round = 0; round < 2; round++) {
		int64_t start = h_now_ms();

		loaded[round] = ping_p99(c, 1000, fds, NSLOW, req + round);
		if (h_now_ms() - start < 1000)
			h_sleep_ms((int)(1000 - (h_now_ms() - start)));
	}
	free(req);
	/* timeouts.read = 3 cuts them all, though bytes keep arriving. */
	assert_int_equal(h_stat_wait(c, "timeouts_read", NSLOW, 10000), NSLOW);
	for (i = 0; i < NSLOW; i++) {
		if (h_wait_eof(fds[i], 2000, NULL) == H_EOF)
			closed++;
	}
	assert_int_equal(closed, NSLOW);
	assert_int_equal(h_stat(c, "connections_current"), 1);
	free(fds);

	/*
	 * The unloaded p99 is measured before the slow senders came and
	 * after they left, and the higher one is the reference, so that a
	 * machine that got busier meanwhile does not count against socketd.
	 * The bar is 2x that, with a floor of 1 ms so that scheduler noise
	 * on a busy 2-core machine cannot fail a sub-millisecond reference.
	 */
	after = ping_p99(c, 2000, NULL, 0, NULL);
	base = before > after ? before : after;
	limit = 2 * (base > 1000 ? base : 1000);
	for (round = 0; round < 2; round++) {
		print_message("# second %d: p99 %" PRId64 " us beside %d slow "
			      "senders; unloaded %" PRId64
			      " us before, %" PRId64 " us after\n",
		    round, loaded[round], NSLOW, before, after);
		/* Under valgrind the daemon is 20-50x slower: report only. */
		if (loaded[round] > limit &&
		    getenv("SOCKETD_IT_VALGRIND") == NULL)
			fail_msg("p99 %" PRId64 " us beside slow senders, more "
				 "than 2x the unloaded %" PRId64 " us",
			    loaded[round], base);
	}
}

static void
test_reset_clients_leak_nothing(void **state)
{
	static const struct h_opts o = {.level = "info"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc_settled(T(state), d);
	static uint8_t big[512 * 1024];
	uint8_t *req;
	size_t len;
	int fds0, fd, i, k;

	fds0 = fd_count(d->pid);
	assert_true(fds0 > 0);
	for (i = 0; i < 100; i++) {
		fd = h_connect(T(state), "127.0.0.1", d->port, H_IO_TIMEOUT);
		assert_true(fd != -1);
		if (i % 2 == 0) {
			/* Mid-frame: a header promising 100 bytes, then RST. */
			req = h_req(PROTO_OP_ECHO, 1, big, 100, &len);
			assert_int_equal(
			    h_send_all(fd, req, 30, H_IO_TIMEOUT), 0);
			free(req);
		} else {
			/* Mid-response: 16 answers of 512 KiB, none read. */
			req = h_req(PROTO_OP_ECHO, 1, big, sizeof(big), &len);
			for (k = 0; k < 16; k++)
				if (h_send_all(fd, req, len, 200) != 0)
					break;
			free(req);
		}
		h_close_reset(T(state), fd);
	}
	assert_int_equal(h_stat_wait(c, "connections_current", 1, 10000), 1);
	/* Every descriptor came back (the count settles within a moment). */
	for (i = 0; i < 50 && fd_count(d->pid) != fds0; i++)
		h_sleep_ms(100);
	assert_int_equal(fd_count(d->pid), fds0);
	h_ping(c);
}

/* Run socketd-cli bench in the background; output to path. */
static pid_t
start_bench(int port, const char *path, const char *dur)
{
	char portbuf[16];
	pid_t pid;
	int fd;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd == -1)
			_exit(126);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		execl(SOCKETD_CLI, "socketd-cli", "-p", portbuf, "bench", "-c",
		    "50", "-P", "4", "-d", dur, "--warmup", "0", "--op", "echo",
		    "--size", "32", "--json", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
wait_child(pid_t pid, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int ws;

	while (h_now_ms() < deadline) {
		if (waitpid(pid, &ws, WNOHANG) == pid)
			return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
		h_sleep_ms(20);
	}
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, &ws, 0);
	return -1;
}

static void
test_reloads_under_load_lose_nothing(void **state)
{
	static const struct h_opts o = {.level = "info"};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc_settled(T(state), d);
	char path[300], *out;
	pid_t bench;
	int i, st;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/bench.json", h_scratch(T(state)));
	bench = start_bench(d->port, path, "4");
	h_sleep_ms(500);
	for (i = 0; i < 20; i++) {
		h_signal(d, SIGHUP);
		h_sleep_ms(120);
	}
	st = wait_child(bench, 30000);
	f = fopen(path, "r");
	assert_non_null(f);
	out = calloc(1, 8192);
	assert_non_null(out);
	n = (long)fread(out, 1, 8191, f);
	fclose(f);
	out[n] = '\0';
	print_message("# bench: %s", out);
	if (st != 0 || strstr(out, "\"errors\":0,") == NULL ||
	    strstr(out, "\"connections_lost\":0") == NULL)
		fail_msg("bench under 20 reloads: exit %d, %s", st, out);
	free(out);
	assert_int_equal(h_stat_wait(c, "reloads", 20, 5000), 20);
	assert_int_equal(h_stat(c, "reload_failures"), 0);
}

#define NLOAD 50

/*
 * SIGTERM while 50 connections keep pipelining: every connection gets a
 * gap-free, in-order prefix of answers, then an orderly EOF (no reset
 * that could eat answers), and the daemon exits 0.
 */
static void
test_sigterm_under_load_answers_in_order(void **state)
{
	static const struct h_opts o = {.level = "info"};
	struct h_daemon *d = h_start(T(state), &o);
	struct pollfd pfd[NLOAD];
	uint32_t sent[NLOAD], got[NLOAD];
	uint8_t *rbuf[NLOAD];
	size_t rlen[NLOAD];
	int eof[NLOAD], i, n, open = NLOAD, killed = 0;
	int64_t t0 = h_now_ms();
	uint64_t total = 0;

	for (i = 0; i < NLOAD; i++) {
		pfd[i].fd = h_connect_nb(T(state), "127.0.0.1", d->port);
		pfd[i].events = POLLIN | POLLOUT;
		sent[i] = got[i] = 0;
		rbuf[i] = malloc(1 << 16);
		assert_non_null(rbuf[i]);
		rlen[i] = 0;
		eof[i] = 0;
	}
	while (open > 0) {
		if (h_now_ms() - t0 > 20000)
			fail_msg("connections still open 20 s into the test");
		if (!killed && h_now_ms() - t0 > 1000) {
			h_signal(d, SIGTERM);
			killed = 1;
		}
		n = poll(pfd, NLOAD, 100);
		assert_true(n >= 0);
		for (i = 0; i < NLOAD; i++) {
			if (eof[i])
				continue;
			if ((pfd[i].revents & POLLOUT) && !killed &&
			    sent[i] - got[i] < 64) {
				uint8_t *req;
				size_t len;

				req = h_req(
				    PROTO_OP_PING, sent[i] + 1, NULL, 0, &len);
				if (send(pfd[i].fd, req, len, MSG_NOSIGNAL) ==
				    (ssize_t)len)
					sent[i]++;
				free(req);
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(pfd[i].fd, rbuf[i] + rlen[i],
				    (1 << 16) - rlen[i], 0);

				if (r < 0 && errno == EAGAIN)
					continue;
				if (r < 0)
					fail_msg("connection %d: %s after %u "
						 "answers",
					    i, strerror(errno), got[i]);
				if (r == 0) {
					eof[i] = 1;
					open--;
					pfd[i].events = 0;
					continue;
				}
				rlen[i] += (size_t)r;
				while (rlen[i] >= PROTO_FRAME_MIN) {
					uint32_t id =
					    proto_get_u32(rbuf[i] + 8);

					assert_int_equal(
					    proto_get_u32(rbuf[i]), 8);
					assert_int_equal(
					    proto_get_u16(rbuf[i] + 6), 0);
					if (id != got[i] + 1)
						fail_msg(
						    "connection %d: answer "
						    "%u after %u",
						    i, id, got[i]);
					got[i]++;
					total++;
					memmove(rbuf[i], rbuf[i] + 12,
					    rlen[i] - 12);
					rlen[i] -= 12;
				}
			}
			if (killed)
				pfd[i].events &= ~POLLOUT;
		}
	}
	for (i = 0; i < NLOAD; i++) {
		assert_int_equal(rlen[i], 0);
		assert_true(got[i] <= sent[i]);
		free(rbuf[i]);
	}
	print_message("# %" PRIu64 " answers before the stop\n", total);
	assert_true(total > 0);
	assert_int_equal(h_wait_exit(d, 10000), 0);
}

#define NQUEUE 12

/*
 * Queue full: one worker made slow by the test hook, a queue of 2.  The
 * acceptor must pause (not spin, not refuse, not grow) while new clients
 * wait in the kernel backlog, and every one is served in the end.
 */
static void
test_queue_full_waits_in_backlog_and_loses_nothing(void **state)
{
	static const char *const env[] = {
	    "SOCKETD_TEST_SLOW_WORKER_MS=100", NULL};
	static const struct h_opts o = {.level = "info",
	    .extra = "workers = 1;\nqueue_size = 2;",
	    .env = env};
	struct h_daemon *d = h_start(T(state), &o);
	struct sdc *c = h_sdc_settled(T(state), d);
	struct h_frame f;
	int fds[NQUEUE], i;

	for (i = 0; i < NQUEUE; i++) {
		fds[i] = h_connect_nb(T(state), "127.0.0.1", d->port);
		assert_true(fds[i] != -1);
	}
	for (i = 0; i < NQUEUE; i++) {
		struct pollfd p = {.fd = fds[i], .events = POLLOUT};

		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_int_equal(h_send_req(fds[i], PROTO_OP_PING,
				     100 + (uint32_t)i, NULL, 0),
		    0);
	}
	/* 12 x 100 ms of a slow worker: every request answered, in time. */
	for (i = 0; i < NQUEUE; i++) {
		if (h_read_frame(fds[i], &f, 20000) != 0)
			fail_msg(
			    "connection %d: no answer: %s", i, strerror(errno));
		assert_int_equal(f.status, PROTO_OK);
		assert_int_equal(f.request_id, 100 + (uint32_t)i);
		h_frame_free(&f);
	}
	assert_int_equal(h_stat(c, "queue_high_water"), 2);
	assert_true(h_stat(c, "queue_full") >= 1);
	assert_true(h_stat(c, "accept_paused_queue_full") >= 1);
	assert_int_equal(h_stat(c, "connections_rejected"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_slow_senders_do_not_slow_others, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reset_clients_leak_nothing, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_reloads_under_load_lose_nothing, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_sigterm_under_load_answers_in_order, h_setup, h_teardown),
	    cmocka_unit_test_setup_teardown(
		test_queue_full_waits_in_backlog_and_loses_nothing, h_setup,
		h_teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_faults", tests, h_group_setup, NULL);
}
