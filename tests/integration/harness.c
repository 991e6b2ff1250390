/*
 * harness.c: start, stop and talk to the real socketd for the integration
 * tests.  See harness.h for the contract.
 *
 * Everything here is bounded in time: socket operations poll() with a
 * deadline and then use MSG_DONTWAIT, process waits poll waitpid(WNOHANG)
 * against a deadline and fall back to SIGKILL.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "proto.h"
#include "sdclient.h"

#define READY_MS     5000 /* a new daemon must accept within this */
#define STOP_MS      10000
#define MAX_FRAME_RD (64u << 20) /* h_read_frame refuses larger frames */
#define CONF_MAX     8192

struct h_ctx {
	struct h_daemon *d[H_MAX_DAEMONS];
	size_t nd;
	int *fds;
	size_t nfds, capfds;
	struct sdc **sdcs;
	size_t nsdcs, capsdcs;
	char scratch[256];
};

/*
 * A test that fails longjmps out of its body and leaks what it allocated:
 * LeakSanitizer would only add noise to the failure.  socketd's own leaks
 * still count: it is another program, with its own defaults.
 */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}

int64_t
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
h_sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Milliseconds left before deadline, never negative. */
static int
left_ms(int64_t deadline)
{
	int64_t l = deadline - h_now_ms();

	return l > 0 ? (int)l : 0;
}

/* poll one fd until events or the deadline: 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline, short *revents)
{
	struct pollfd p;
	int n;

	for (;;) {
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		n = poll(&p, 1, left_ms(deadline));
		if (n > 0) {
			if (revents != NULL)
				*revents = p.revents;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

static void
mkdtemp_in(char *buf, size_t cap)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(buf, cap, "%s/socketd-it.XXXXXX", tmp);
	if (mkdtemp(buf) == NULL)
		fail_msg("mkdtemp %s: %s", buf, strerror(errno));
}

/* Remove the files in dir (not recursive) and dir itself. */
static void
rm_dir(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *dp;

	if (dir[0] == '\0' || getenv("SOCKETD_IT_KEEP") != NULL)
		return;
	if ((dp = opendir(dir)) != NULL) {
		while ((e = readdir(dp)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			(void)unlink(path);
		}
		closedir(dp);
	}
	(void)rmdir(dir);
}

int
h_group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int
h_setup(void **state)
{
	struct h_ctx *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	*state = t;
	return 0;
}

int
h_teardown(void **state)
{
	struct h_ctx *t = *state;
	size_t i;
	int st, bad = 0, this;
	pid_t pid;

	if (t == NULL)
		return 0;
	/* Clients first: a server lingering on them then sees EOF. */
	for (i = 0; i < t->nsdcs; i++) {
		sdc_close(t->sdcs[i]);
		free(t->sdcs[i]);
	}
	for (i = 0; i < t->nfds; i++)
		if (t->fds[i] != -1)
			(void)close(t->fds[i]);
	for (i = 0; i < t->nd; i++) {
		this = 0;
		pid = t->d[i]->pid;
		if (pid > 0 && (st = h_stop(t->d[i], STOP_MS)) != 0) {
			print_error("socketd (pid %ld) exited with status %d "
				    "when stopped at teardown\n",
			    (long)pid, st);
			this = 1;
		}
		/* The sanitizers report to stderr, that is the log. */
		if (h_log_count(t->d[i], "Sanitizer", NULL) > 0 ||
		    h_log_count(t->d[i], "runtime error:", NULL) > 0 ||
		    h_log_count(t->d[i], "==", "Invalid ") > 0 ||
		    h_log_count(t->d[i], "==", "uninitialised") > 0 ||
		    h_log_count(t->d[i], "==", "definitely lost") > 0) {
			print_error("socketd's log has a sanitizer or "
				    "valgrind report\n");
			this = 1;
		}
		if (this)
			h_log_dump(t->d[i]);
		bad |= this;
		rm_dir(t->d[i]->dir);
		free(t->d[i]);
	}
	rm_dir(t->scratch);
	free(t->fds);
	free(t->sdcs);
	free(t);
	*state = NULL;
	return bad ? -1 : 0;
}

const char *
h_scratch(struct h_ctx *t)
{
	if (t->scratch[0] == '\0')
		mkdtemp_in(t->scratch, sizeof(t->scratch));
	return t->scratch;
}

void
h_track(struct h_ctx *t, int fd)
{
	int *n;
	size_t i;

	for (i = 0; i < t->nfds; i++)
		if (t->fds[i] == -1) {
			t->fds[i] = fd;
			return;
		}
	if (t->nfds == t->capfds) {
		t->capfds = t->capfds ? t->capfds * 2 : 64;
		n = realloc(t->fds, t->capfds * sizeof(*n));
		assert_non_null(n);
		t->fds = n;
	}
	t->fds[t->nfds++] = fd;
}

static void
untrack(struct h_ctx *t, int fd)
{
	size_t i;

	for (i = t->nfds; i > 0; i--)
		if (t->fds[i - 1] == fd) {
			t->fds[i - 1] = -1;
			return;
		}
}

void
h_close(struct h_ctx *t, int fd)
{
	if (fd < 0)
		return;
	untrack(t, fd);
	(void)close(fd);
}

void
h_close_reset(struct h_ctx *t, int fd)
{
	struct linger lg = {1, 0};

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	h_close(t, fd);
}

int
h_free_port(int need_v6)
{
	/*
	 * The ports handed out last: a test that asks for two ports before
	 * binding either would otherwise be given the same one twice.
	 */
	static int recent[16];
	static unsigned nrecent;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	socklen_t sl;
	int i, fd, fd6, one = 1, port;
	unsigned k;

	for (i = 0; i < 100; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd >= 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = 0;
		sl = sizeof(sin);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1) {
			close(fd);
			continue;
		}
		port = ntohs(sin.sin_port);
		for (k = 0; k < 16 && recent[k] != port; k++)
			;
		if (k < 16) {
			close(fd);
			continue;
		}
		recent[nrecent++ % 16] = port;
		if (!need_v6) {
			close(fd);
			return port;
		}
		fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd6 >= 0);
		(void)setsockopt(
		    fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_addr = in6addr_loopback;
		sin6.sin6_port = htons((uint16_t)port);
		if (bind(fd6, (struct sockaddr *)&sin6, sizeof(sin6)) == 0) {
			close(fd6);
			close(fd);
			return port;
		}
		close(fd6);
		close(fd);
	}
	fail_msg("no free loopback port found");
	return -1;
}

void
h_write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	FILE *f;

	f = fopen(path, "w");
	if (f == NULL)
		fail_msg("open %s: %s", path, strerror(errno));
	if (fwrite(text, 1, len, f) != len || fclose(f) != 0)
		fail_msg("write %s: %s", path, strerror(errno));
}

/* Append src to dst[*n..cap), replacing "PORT" with port. */
static void
append_subst(char *dst, size_t cap, size_t *n, const char *src, int port)
{
	char num[16];
	size_t nl;
	int r;

	r = snprintf(num, sizeof(num), "%d", port);
	assert_true(r > 0);
	nl = (size_t)r;
	while (*src != '\0') {
		if (strncmp(src, "PORT", 4) == 0) {
			assert_true(*n + nl < cap);
			memcpy(dst + *n, num, nl);
			*n += nl;
			src += 4;
		} else {
			assert_true(*n + 1 < cap);
			dst[(*n)++] = *src++;
		}
	}
	dst[*n] = '\0';
}

/* "\"127.0.0.1:PORT\"" for a port above 0, else nothing. */
static void
admin_list(char *buf, size_t len, int port)
{
	if (port > 0)
		snprintf(buf, len, "\"127.0.0.1:%d\"", port);
	else
		buf[0] = '\0';
}

void
h_write_config(const struct h_daemon *d, const struct h_opts *o)
{
	static const struct h_opts defaults;
	char text[CONF_MAX], admin[160], a1[40], a2[40];
	size_t n = 0;

	if (o == NULL)
		o = &defaults;
	text[0] = '\0';
	append_subst(text, sizeof(text), &n,
	    "# written by the socketd integration tests\nlisten = ", d->port);
	append_subst(text, sizeof(text), &n,
	    o->listen != NULL ? o->listen : "[ \"127.0.0.1:PORT\" ]", d->port);
	append_subst(text, sizeof(text), &n, ";\n", d->port);
	if (o->extra != NULL) {
		append_subst(text, sizeof(text), &n, o->extra, d->port);
		append_subst(text, sizeof(text), &n, "\n", d->port);
	}
	/* The admin listeners: off unless the test asks for them. */
	admin_list(a1, sizeof(a1), o->admin_port);
	admin_list(a2, sizeof(a2), o->agent_port);
	snprintf(admin, sizeof(admin),
	    "admin: { listen = [ %s ]; agent_listen = [ %s ]; };\n", a1, a2);
	append_subst(text, sizeof(text), &n, admin, d->port);
	append_subst(text, sizeof(text), &n, "log: { level = \"", d->port);
	append_subst(text, sizeof(text), &n,
	    o->level != NULL ? o->level : "debug", d->port);
	append_subst(text, sizeof(text), &n, "\"; };\n", d->port);
	h_write_file(d->conf, text);
}

static int
decode_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return -1;
}

/* In a forked child: close every descriptor from 3 up. */
static void
close_from(int first)
{
	struct rlimit rl;
	rlim_t fd, max = 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur;
	if (max > 65536)
		max = 65536;
	for (fd = (rlim_t)first; fd < max; fd++)
		(void)close((int)fd);
}

/* In the child: environment, inherited socket, descriptors closed. */
static void
child_env(const struct h_daemon *d, const struct h_opts *o)
{
	const char *const *e;
	struct stat st;
	char buf[64];

	for (e = o->env; e != NULL && *e != NULL; e++)
		(void)putenv((char *)(uintptr_t)*e);
	if (o->journal && fstat(STDERR_FILENO, &st) == 0) {
		snprintf(buf, sizeof(buf), "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
		(void)setenv("JOURNAL_STREAM", buf, 1);
	}
	(void)d;
	if (o->listen_fd > 0) {
		if (o->listen_fd != 3 && dup2(o->listen_fd, 3) == -1)
			_exit(124);
		/* dup2 clears close-on-exec; fd 3 itself may still have it. */
		if (fcntl(3, F_SETFD, 0) == -1)
			_exit(124);
		snprintf(buf, sizeof(buf), "%ld", (long)getpid());
		(void)setenv("LISTEN_PID", buf, 1);
		(void)setenv("LISTEN_FDS", "1", 1);
		close_from(4);
	} else {
		close_from(3);
	}
}

static void
child_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
}

static void
spawn(struct h_daemon *d, const struct h_opts *o)
{
	struct rlimit rl;
	pid_t pid;
	int fd;

	(void)unlink(d->log);
	pid = fork();
	if (pid == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd == -1)
			_exit(126);
		(void)dup2(fd, STDERR_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		if ((fd = open("/dev/null", O_RDONLY)) != -1)
			(void)dup2(fd, STDIN_FILENO);
		child_env(d, o);
		child_signals();
		if (o->nofile > 0) {
			rl.rlim_cur = rl.rlim_max = (rlim_t)o->nofile;
			if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
				_exit(125);
		}
		/*
		 * SOCKETD_IT_VALGRIND=1 runs the daemon under memcheck; its
		 * report goes to stderr, the log, which teardown checks.
		 */
		if (getenv("SOCKETD_IT_VALGRIND") != NULL)
			execlp("valgrind", "valgrind", "--quiet",
			    "--error-exitcode=99", "--leak-check=full",
			    "--errors-for-leak-kinds=definite,indirect",
			    "--show-leak-kinds=definite,indirect", SOCKETD_BIN,
			    "-c", d->conf, (char *)NULL);
		else
			execl(SOCKETD_BIN, "socketd", "-c", d->conf,
			    (char *)NULL);
		_exit(127);
	}
	d->pid = pid;
	d->status = -1;
}

/* Try one TCP connect to host:port within timeout_ms; 0 connected. */
static int
probe(const char *host, int port, int timeout_ms)
{
	int fd;

	fd = h_connect(NULL, host, port, timeout_ms);
	if (fd == -1)
		return -1;
	close(fd);
	return 0;
}

/*
 * 0 ready; -2 the daemon exited (status recorded); -1 timed out.
 *
 * A connect to the probe address is not enough: socketd binds its
 * listeners one after another, and the kernel completes handshakes on
 * the first while the next is not bound yet (a dual-stack test then met
 * ECONNREFUSED on ::1 under valgrind).  socketd logs "ready" after the
 * last one, so wherever log.level shows info lines, wait for that too.
 */
/*
 * Under memcheck (20-50 times slower) start-up with modules loaded (a
 * dlopen, their init, the handler threads) can take longer than
 * READY_MS on a busy machine.
 */
static int
ready_ms(void)
{
	return getenv("SOCKETD_IT_VALGRIND") != NULL ? 4 * READY_MS : READY_MS;
}

static int
wait_ready(struct h_daemon *d, const struct h_opts *o)
{
	const char *host = o->probe_host ? o->probe_host : "127.0.0.1";
	int64_t deadline = h_now_ms() + ready_ms();
	int ws, want_line, probed = 0;
	pid_t r;

	want_line = o->level == NULL || strcmp(o->level, "debug") == 0 ||
	    strcmp(o->level, "info") == 0;

	for (;;) {
		r = waitpid(d->pid, &ws, WNOHANG);
		if (r == d->pid) {
			d->pid = 0;
			d->status = decode_status(ws);
			return -2;
		}
		/* One probe only: each is a connection the daemon counts. */
		if (!probed && probe(host, d->port, 200) == 0)
			probed = 1;
		if (probed &&
		    (!want_line || h_log_count(d, " ready: ", NULL) > 0))
			return 0;
		if (h_now_ms() >= deadline)
			return -1;
		h_sleep_ms(20);
	}
}

/* A new daemon record, owned by t, with its directory, config and log. */
static struct h_daemon *
new_daemon(struct h_ctx *t)
{
	struct h_daemon *d;

	assert_true(t->nd < H_MAX_DAEMONS);
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	t->d[t->nd++] = d;
	d->status = -1;
	mkdtemp_in(d->dir, sizeof(d->dir));
	snprintf(d->conf, sizeof(d->conf), "%s/socketd.conf", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/socketd.log", d->dir);
	return d;
}

struct h_daemon *
h_spawn(struct h_ctx *t, const struct h_opts *o)
{
	struct h_daemon *d = new_daemon(t);

	d->port = o->port > 0 ? o->port : h_free_port(o->need_v6);
	h_write_config(d, o);
	spawn(d, o);
	return d;
}

struct h_daemon *
h_start(struct h_ctx *t, const struct h_opts *o)
{
	static const struct h_opts defaults;
	struct h_daemon *d;
	char *log;
	int attempt, rc, busy;

	if (o == NULL)
		o = &defaults;
	d = new_daemon(t);
	for (attempt = 0; attempt < 5; attempt++) {
		d->port = o->port > 0 ? o->port : h_free_port(o->need_v6);
		h_write_config(d, o);
		spawn(d, o);
		rc = wait_ready(d, o);
		if (rc == 0)
			return d;
		if (rc == -1) {
			h_log_dump(d);
			(void)h_stop(d, STOP_MS);
			fail_msg("socketd (port %d) did not accept and log "
				 "\"ready\" within %d ms",
			    d->port, ready_ms());
		}
		/* Exited: retry only if someone took the port meanwhile. */
		log = h_log_read(d);
		busy = strstr(log, "Address already in use") != NULL;
		free(log);
		if (!busy)
			break;
	}
	h_log_dump(d);
	fail_msg("socketd exited with status %d before accepting", d->status);
	return NULL;
}

int
h_wait_exit(struct h_daemon *d, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	int ws;
	pid_t r;

	if (d->pid <= 0)
		return d->status;
	for (;;) {
		r = waitpid(d->pid, &ws, WNOHANG);
		if (r == d->pid) {
			d->pid = 0;
			d->status = decode_status(ws);
			return d->status;
		}
		if (r == -1 && errno != EINTR) {
			d->pid = 0;
			return d->status;
		}
		if (h_now_ms() >= deadline)
			return -1;
		h_sleep_ms(5);
	}
}

int
h_stop(struct h_daemon *d, int timeout_ms)
{
	int ws, st;

	if (d->pid <= 0)
		return d->status;
	if (timeout_ms <= 0)
		timeout_ms = STOP_MS;
	(void)kill(d->pid, SIGTERM);
	if ((st = h_wait_exit(d, timeout_ms)) != -1 || d->pid <= 0)
		return st;
	(void)kill(d->pid, SIGKILL);
	while (waitpid(d->pid, &ws, 0) == -1 && errno == EINTR)
		;
	d->pid = 0;
	d->status = decode_status(ws);
	return d->status;
}

void
h_signal(struct h_daemon *d, int sig)
{
	assert_true(d->pid > 0);
	assert_int_equal(kill(d->pid, sig), 0);
}

char *
h_log_read(const struct h_daemon *d)
{
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	fd = open(d->log, O_RDONLY | O_CLOEXEC);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			assert_non_null(nb);
			buf = nb;
		}
		if (fd == -1)
			break;
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			break;
		}
		len += (size_t)n;
	}
	if (fd != -1)
		close(fd);
	buf[len] = '\0';
	return buf;
}

int
h_log_count(const struct h_daemon *d, const char *a, const char *b)
{
	char *log = h_log_read(d), *line, *nl;
	int count = 0;

	for (line = log; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		if (nl != NULL)
			*nl = '\0';
		if (strstr(line, a) != NULL && (b == NULL || strstr(line, b)))
			count++;
		if (nl == NULL)
			break;
	}
	free(log);
	return count;
}

int
h_log_wait(
    const struct h_daemon *d, const char *a, const char *b, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;

	for (;;) {
		if (h_log_count(d, a, b) > 0)
			return 1;
		if (h_now_ms() >= deadline)
			return 0;
		h_sleep_ms(20);
	}
}

void
h_log_dump(const struct h_daemon *d)
{
	char *log = h_log_read(d);
	size_t len = strlen(log);
	const char *p = log;

	if (len > 6000)
		p = log + len - 6000;
	print_message("---- %s (last %zu bytes) ----\n%s---- end of log ----\n",
	    d->log, strlen(p), p);
	free(log);
}

long
h_cpu_ms(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;
	ssize_t n;
	long tck;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces: fields start after its ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p++;
	/* state is field 3; utime and stime are fields 14 and 15. */
	for (i = 3; i < 14; i++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -1;
	}
	if (sscanf(p, " %llu %llu", &ut, &st) != 2)
		return -1;
	tck = sysconf(_SC_CLK_TCK);
	if (tck <= 0)
		tck = 100;
	return (long)((ut + st) * 1000ull / (unsigned long long)tck);
}

struct sdc *
h_sdc_try(
    struct h_ctx *t, const char *host, int port, int timeout_ms, char *err)
{
	struct sdc *c, **n;
	char p[16];

	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	snprintf(p, sizeof(p), "%d", port);
	if (sdc_connect(c, host, p, timeout_ms, err) == -1) {
		free(c);
		return NULL;
	}
	if (t->nsdcs == t->capsdcs) {
		t->capsdcs = t->capsdcs ? t->capsdcs * 2 : 16;
		n = realloc(t->sdcs, t->capsdcs * sizeof(*n));
		assert_non_null(n);
		t->sdcs = n;
	}
	t->sdcs[t->nsdcs++] = c;
	return c;
}

struct sdc *
h_sdc(struct h_ctx *t, const char *host, int port)
{
	char err[SDC_ERRLEN];
	struct sdc *c;

	c = h_sdc_try(t, host, port, H_IO_TIMEOUT, err);
	if (c == NULL)
		fail_msg("connect %s port %d: %s", host, port, err);
	return c;
}

void
h_sdc_close(struct h_ctx *t, struct sdc *c)
{
	size_t i;

	for (i = 0; i < t->nsdcs; i++)
		if (t->sdcs[i] == c) {
			t->sdcs[i] = t->sdcs[--t->nsdcs];
			break;
		}
	sdc_close(c);
	free(c);
}

struct sdc *
h_sdc_settled(struct h_ctx *t, const struct h_daemon *d)
{
	return h_sdc_settled_on(t, d, "127.0.0.1");
}

struct sdc *
h_sdc_settled_on(struct h_ctx *t, const struct h_daemon *d, const char *host)
{
	int64_t deadline = h_now_ms() + H_IO_TIMEOUT;
	struct proto_resp resp;
	char err[SDC_ERRLEN];
	struct sdc *c;

	for (;;) {
		c = h_sdc(t, host, d->port);
		if (sdc_call(c, PROTO_OP_PING, NULL, 0, &resp, err) == -1)
			fail_msg("PING: %s", err);
		if (resp.status == PROTO_OK)
			break;
		if (resp.status != PROTO_BUSY || h_now_ms() >= deadline)
			fail_msg("PING answered %s: %.*s",
			    proto_status_str(resp.status),
			    (int)resp.payload_len, (const char *)resp.payload);
		h_sdc_close(t, c);
		h_sleep_ms(20);
	}
	assert_int_equal(
	    h_stat_wait(c, "connections_current", 1, H_IO_TIMEOUT), 1);
	return c;
}

void
h_ping(struct sdc *c)
{
	struct proto_resp resp;
	char err[SDC_ERRLEN];

	if (sdc_call(c, PROTO_OP_PING, NULL, 0, &resp, err) == -1)
		fail_msg("PING: %s", err);
	if (resp.status != PROTO_OK)
		fail_msg("PING answered %s: %.*s",
		    proto_status_str(resp.status), (int)resp.payload_len,
		    (const char *)resp.payload);
	assert_int_equal(resp.payload_len, 0);
}

int
h_text_value(
    const uint8_t *text, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), i = 0, j, vlen;

	while (i < len) {
		for (j = i; j < len && text[j] != '\n'; j++)
			;
		if (j - i > nl && memcmp(text + i, name, nl) == 0 &&
		    text[i + nl] == ' ') {
			vlen = j - i - nl - 1;
			if (vlen >= cap)
				vlen = cap - 1;
			memcpy(out, text + i + nl + 1, vlen);
			out[vlen] = '\0';
			return 0;
		}
		i = j + 1;
	}
	return -1;
}

uint64_t
h_stat(struct sdc *c, const char *name)
{
	struct proto_resp resp;
	char err[SDC_ERRLEN], v[64], *end;
	unsigned long long x;

	if (sdc_call(c, PROTO_OP_STATS, NULL, 0, &resp, err) == -1)
		fail_msg("STATS: %s", err);
	if (resp.status != PROTO_OK)
		fail_msg("STATS answered %s: %.*s",
		    proto_status_str(resp.status), (int)resp.payload_len,
		    (const char *)resp.payload);
	if (h_text_value(resp.payload, resp.payload_len, name, v, sizeof(v)) ==
	    -1)
		fail_msg("STATS has no \"%s\":\n%.*s", name,
		    (int)resp.payload_len, (const char *)resp.payload);
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || end == v)
		fail_msg("STATS %s is not a number: \"%s\"", name, v);
	return (uint64_t)x;
}

uint64_t
h_stat_of(struct h_ctx *t, const struct h_daemon *d, const char *name)
{
	struct sdc *c = h_sdc(t, "127.0.0.1", d->port);
	uint64_t v = h_stat(c, name);

	h_sdc_close(t, c);
	return v;
}

uint64_t
h_stat_wait(struct sdc *c, const char *name, uint64_t want, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	uint64_t v;

	for (;;) {
		v = h_stat(c, name);
		if (v == want || h_now_ms() >= deadline)
			return v;
		h_sleep_ms(20);
	}
}

/* Connect (maybe still in progress when nb); -1 with errno on failure. */
static int
connect_to(const char *host, int port, int nb, int timeout_ms)
{
	struct addrinfo hints, *res = NULL;
	socklen_t sl;
	char p[16];
	int fd, flags, soerr, e, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(p, sizeof(p), "%d", port);
	if ((r = getaddrinfo(host, p, &hints, &res)) != 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(
	    res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		e = errno;
		freeaddrinfo(res);
		errno = e;
		return -1;
	}
	r = connect(fd, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	if (r == -1 && errno != EINPROGRESS && errno != EINTR)
		goto fail;
	if (nb)
		return fd;
	if (r == -1) {
		switch (wait_fd(fd, POLLOUT, h_now_ms() + timeout_ms, NULL)) {
		case 0:
			errno = ETIMEDOUT;
			goto fail;
		case -1:
			goto fail;
		default:
			break;
		}
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			goto fail;
		if (soerr != 0) {
			errno = soerr;
			goto fail;
		}
	}
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1)
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

int
h_connect(struct h_ctx *t, const char *host, int port, int timeout_ms)
{
	int fd = connect_to(host, port, 0, timeout_ms);

	if (fd != -1 && t != NULL)
		h_track(t, fd);
	return fd;
}

int
h_connect_nb(struct h_ctx *t, const char *host, int port)
{
	int fd = connect_to(host, port, 1, 0);

	if (fd != -1 && t != NULL)
		h_track(t, fd);
	return fd;
}

int
h_send_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	const uint8_t *p = buf;
	ssize_t n;
	int r;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR)
			return -1;
		r = wait_fd(fd, POLLOUT, deadline, NULL);
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (r == -1)
			return -1;
	}
	return 0;
}

int
h_recv_exact(int fd, void *buf, size_t len, int timeout_ms, size_t *got)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	uint8_t *p = buf;
	size_t have = 0;
	ssize_t n;
	int r, rv = 0;

	while (have < len) {
		n = recv(fd, p + have, len - have, MSG_DONTWAIT);
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = EPIPE;
			rv = -1;
			break;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			rv = -1;
			break;
		}
		r = wait_fd(fd, POLLIN, deadline, NULL);
		if (r == 0) {
			errno = ETIMEDOUT;
			rv = -1;
			break;
		}
		if (r == -1) {
			rv = -1;
			break;
		}
	}
	if (got != NULL)
		*got = have;
	return rv;
}

enum h_eof
h_wait_eof(int fd, int timeout_ms, size_t *discarded)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	uint8_t buf[65536];
	ssize_t n;

	if (discarded != NULL)
		*discarded = 0;
	for (;;) {
		n = recv(fd, buf, discarded != NULL ? sizeof(buf) : 1,
		    MSG_DONTWAIT | (discarded != NULL ? 0 : MSG_PEEK));
		if (n == 0)
			return H_EOF;
		if (n > 0) {
			if (discarded == NULL)
				return H_DATA;
			*discarded += (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return H_RESET;
		if (wait_fd(fd, POLLIN, deadline, NULL) != 1)
			return H_TIMEOUT;
	}
}

const char *
h_eof_str(enum h_eof e)
{
	switch (e) {
	case H_EOF:
		return "EOF";
	case H_TIMEOUT:
		return "timeout";
	case H_RESET:
		return "reset";
	case H_DATA:
		return "data";
	}
	return "?";
}

int
h_read_frame(int fd, struct h_frame *f, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	uint8_t pre[PROTO_LEN_SIZE], *body;
	uint32_t len;

	memset(f, 0, sizeof(*f));
	if (h_recv_exact(fd, pre, sizeof(pre), timeout_ms, NULL) == -1)
		return -1;
	len = proto_get_u32(pre);
	f->len = len;
	if (len > MAX_FRAME_RD) {
		errno = EPROTO;
		return -1;
	}
	if ((body = malloc((size_t)len + 1)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (h_recv_exact(fd, body, len, left_ms(deadline) + 1, NULL) == -1) {
		free(body);
		return -1;
	}
	if (len < PROTO_HDR_SIZE) {
		free(body);
		errno = EPROTO;
		return -1;
	}
	f->version = body[0];
	f->opcode = body[1];
	f->status = proto_get_u16(body + 2);
	f->request_id = proto_get_u32(body + 4);
	f->payload_len = len - PROTO_HDR_SIZE;
	memmove(body, body + PROTO_HDR_SIZE, f->payload_len);
	body[f->payload_len] = '\0';
	f->payload = body;
	return 0;
}

void
h_frame_free(struct h_frame *f)
{
	free(f->payload);
	f->payload = NULL;
	f->payload_len = 0;
}

void
h_expect_frame(
    int fd, uint8_t opcode, uint16_t status, uint32_t id, struct h_frame *f)
{
	if (h_read_frame(fd, f, H_IO_TIMEOUT) == -1)
		fail_msg("reading a response (expected opcode 0x%02x status "
			 "%u id %" PRIu32 "): %s",
		    opcode, status, id, strerror(errno));
	if (f->version != PROTO_VERSION || f->opcode != opcode ||
	    f->status != status || f->request_id != id)
		fail_msg("got version %u opcode 0x%02x status %u (%s) id "
			 "%" PRIu32 " payload \"%.200s\"; expected version 1 "
			 "opcode 0x%02x status %u (%s) id %" PRIu32,
		    f->version, f->opcode, f->status,
		    proto_status_str(f->status), f->request_id,
		    (const char *)f->payload, opcode, status,
		    proto_status_str(status), id);
}

uint8_t *
h_req(
    uint8_t opcode, uint32_t id, const void *payload, size_t plen, size_t *len)
{
	size_t n = proto_encode_req(NULL, 0, opcode, id, payload, plen);
	uint8_t *buf;

	assert_true(n >= PROTO_FRAME_MIN && n != SIZE_MAX);
	buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(
	    proto_encode_req(buf, n, opcode, id, payload, plen), n);
	*len = n;
	return buf;
}

int
h_send_req(
    int fd, uint8_t opcode, uint32_t id, const void *payload, size_t plen)
{
	size_t len;
	uint8_t *buf = h_req(opcode, id, payload, plen, &len);
	int rv, e;

	rv = h_send_all(fd, buf, len, H_IO_TIMEOUT);
	e = errno;
	free(buf);
	errno = e;
	return rv;
}

/* Read what is available on *fd into buf; close and -1 it at EOF. */
static void
drain_pipe(int *fd, char *buf, size_t cap, size_t *len)
{
	char tmp[4096];
	ssize_t n;
	size_t k;

	n = read(*fd, tmp, sizeof(tmp));
	if (n > 0) {
		k = (size_t)n;
		if (*len + k > cap - 1)
			k = cap - 1 - *len;
		memcpy(buf + *len, tmp, k);
		*len += k;
		buf[*len] = '\0';
		return;
	}
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return;
	close(*fd);
	*fd = -1;
}

void
h_run(char *const argv[], int timeout_ms, struct h_run *r)
{
	int64_t t0 = h_now_ms(), deadline = t0 + timeout_ms;
	int po[2], pe[2], ws, n, i;
	struct pollfd p[2];
	size_t olen = 0, elen = 0;
	pid_t pid, w;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	assert_int_equal(pipe(po), 0);
	assert_int_equal(pipe(pe), 0);
	for (i = 0; i < 2; i++) {
		(void)fcntl(po[i], F_SETFD, FD_CLOEXEC);
		(void)fcntl(pe[i], F_SETFD, FD_CLOEXEC);
	}
	pid = fork();
	if (pid == -1)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		(void)dup2(po[1], STDOUT_FILENO);
		(void)dup2(pe[1], STDERR_FILENO);
		if ((n = open("/dev/null", O_RDONLY)) != -1)
			(void)dup2(n, STDIN_FILENO);
		close_from(3);
		child_signals();
		execv(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (po[0] != -1 || pe[0] != -1) {
		n = 0;
		if (po[0] != -1) {
			p[n].fd = po[0];
			p[n++].events = POLLIN;
		}
		if (pe[0] != -1) {
			p[n].fd = pe[0];
			p[n++].events = POLLIN;
		}
		for (i = 0; i < n; i++)
			p[i].revents = 0;
		if (poll(p, (nfds_t)n, left_ms(deadline)) == 0)
			break;
		for (i = 0; i < n; i++) {
			if (p[i].revents == 0)
				continue;
			if (p[i].fd == po[0])
				drain_pipe(
				    &po[0], r->out, sizeof(r->out), &olen);
			else
				drain_pipe(
				    &pe[0], r->err, sizeof(r->err), &elen);
		}
	}
	for (;;) {
		w = waitpid(pid, &ws, WNOHANG);
		if (w == pid) {
			r->status = decode_status(ws);
			break;
		}
		if (h_now_ms() >= deadline) {
			(void)kill(pid, SIGKILL);
			while (waitpid(pid, &ws, 0) == -1 && errno == EINTR)
				;
			r->status = -1;
			break;
		}
		h_sleep_ms(5);
	}
	if (po[0] != -1)
		close(po[0]);
	if (pe[0] != -1)
		close(pe[0]);
	r->elapsed_ms = (long)(h_now_ms() - t0);
}

int
h_raw(struct h_ctx *t, const struct h_daemon *d)
{
	int fd = h_connect(t, "127.0.0.1", d->port, H_IO_TIMEOUT);

	if (fd == -1)
		fail_msg("connect: %s", strerror(errno));
	return fd;
}

void
h_raw_ping(int fd, uint32_t id)
{
	struct h_frame f;

	if (h_send_req(fd, PROTO_OP_PING, id, NULL, 0) == -1)
		fail_msg("send PING %" PRIu32 ": %s", id, strerror(errno));
	h_expect_frame(fd, PROTO_OP_PING, PROTO_OK, id, &f);
	assert_int_equal(f.payload_len, 0);
	h_frame_free(&f);
}

void
h_expect_refusal(int fd, uint16_t st, const char *msg)
{
	struct h_frame f;
	enum h_eof e;

	h_expect_frame(fd, 0, st, 0, &f);
	if (msg != NULL)
		assert_string_equal((const char *)f.payload, msg);
	h_frame_free(&f);
	e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	if (e != H_EOF)
		fail_msg("after %s: %s, expected EOF", proto_status_str(st),
		    h_eof_str(e));
}

/* --- HTTP, for the admin listener --- */

void
h_http_free(struct h_http *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Send req as is to 127.0.0.1:port and read the answer to EOF. */
void
h_http_raw(struct h_ctx *t, int port, const char *req, struct h_http *r)
{
	struct pollfd pfd;
	char *all = NULL, *sep;
	size_t len = 0, cap = 0;
	int64_t deadline = h_now_ms() + 5000;
	ssize_t n;
	int fd;

	memset(r, 0, sizeof(*r));
	fd = h_connect(t, "127.0.0.1", port, 2000);
	assert_true(fd >= 0);
	assert_int_equal(h_send_all(fd, req, strlen(req), 2000), 0);
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			all = realloc(all, cap);
			assert_non_null(all);
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		assert_true(h_now_ms() < deadline);
		if (poll(&pfd, 1, (int)(deadline - h_now_ms())) <= 0)
			continue;
		n = recv(fd, all + len, cap - len - 1, 0);
		if (n == 0)
			break;
		assert_true(n > 0);
		len += (size_t)n;
	}
	h_close(t, fd);
	assert_non_null(all);
	all[len] = '\0';
	sep = strstr(all, "\r\n\r\n");
	assert_non_null(sep);
	*sep = '\0';
	r->head = strdup(all);
	r->body_len = len - (size_t)(sep + 4 - all);
	r->body = malloc(r->body_len + 1);
	assert_non_null(r->body);
	memcpy(r->body, sep + 4, r->body_len);
	r->body[r->body_len] = '\0';
	assert_int_equal(sscanf(all, "HTTP/1.1 %d ", &r->status), 1);
	free(all);
}

void
h_http_get(struct h_ctx *t, int port, const char *path, struct h_http *r)
{
	char req[512];

	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n",
	    path);
	h_http_raw(t, port, req, r);
}

/* The value of the sample "series" (name{labels} exactly), or -1. */
double
h_sample(const char *body, const char *series)
{
	size_t n = strlen(series);
	const char *p = body;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == body || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

/* Send one request and expect its answer; the payload, owned. */
char *
h_call(int fd, uint8_t op, uint32_t id, const char *payload, uint16_t want)
{
	struct h_frame f;
	char *p;

	assert_int_equal(h_send_req(fd, op, id, payload,
			     payload != NULL ? strlen(payload) : 0),
	    0);
	h_expect_frame(fd, op, want, id, &f);
	p = (char *)f.payload;
	f.payload = NULL;
	h_frame_free(&f);
	return p != NULL ? p : strdup("");
}
