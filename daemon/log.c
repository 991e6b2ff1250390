#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/*
 * Set once by log_init() before any thread starts; only the level changes
 * later (on reload), through atomic loads and stores.
 */
static const char *log_ident = "socketd";
static int log_to_syslog;
static int log_to_journal; /* stderr is the journal: <N> prefixes */
static int log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warning", "info", "debug"};
static const int level_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

/*
 * Whether stderr is connected to the journal: systemd sets JOURNAL_STREAM
 * to "device:inode" of the stream it connected (systemd.exec(5)); compare
 * it with stderr so that a variable inherited by a child is not trusted.
 */
static int
stderr_is_journal(void)
{
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

const char *
log_errstr(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	return strerror_r(e, buf, len);
#else
	if (strerror_r(e, buf, len) != 0)
		(void)snprintf(buf, len, "error %d", e);
	return buf;
#endif
}

void
log_init(const char *ident, int to_syslog, enum log_level level)
{
	log_ident = ident;
	log_to_syslog = to_syslog;
	log_to_journal = !to_syslog && stderr_is_journal();
	log_setlevel(level);
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_setlevel(enum log_level level)
{
	__atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum log_level
log_getlevel(void)
{
	return (enum log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static void
vlog(enum log_level level, int with_errno, const char *fmt, va_list ap)
{
	char line[1024], ebuf[128], ts[32];
	const char *etext = NULL;
	int saved = errno;
	struct timespec now;
	struct tm tm;
	size_t n = 0;
	int r;

	if ((int)level > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
		return;
	if (with_errno) {
		/* GNU strerror_r may return a static string, not ebuf. */
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
		etext = strerror_r(saved, ebuf, sizeof(ebuf));
#else
		if (strerror_r(saved, ebuf, sizeof(ebuf)) != 0)
			snprintf(ebuf, sizeof(ebuf), "error %d", saved);
		etext = ebuf;
#endif
	}
	if (log_to_journal) {
		/* sd-daemon(3) prefixes; the journal adds time and PID. */
		r = snprintf(line, sizeof(line), "<%d>%s: ", level_prio[level],
		    level_names[level]);
		if (r > 0)
			n = (size_t)r;
	} else if (!log_to_syslog) {
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld]: %s: ", ts,
		    now.tv_nsec / 1000000, log_ident, (long)getpid(),
		    level_names[level]);
		if (r > 0)
			n = (size_t)r;
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (etext != NULL) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", etext);
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	if (log_to_syslog) {
		syslog(level_prio[level], "%s", line);
	} else {
		line[n++] = '\n';
		/* One write per line keeps lines whole across threads. */
		(void)!write(STDERR_FILENO, line, n);
	}
	errno = saved;
}

#define LOGFN(name, level, with_errno)                                         \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(level, with_errno, fmt, ap);                              \
		va_end(ap);                                                    \
	}

LOGFN(log_warn, LOG_LEVEL_WARNING, 1)
LOGFN(log_warnx, LOG_LEVEL_WARNING, 0)
LOGFN(log_errx, LOG_LEVEL_ERROR, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 1, fmt, ap);
	va_end(ap);
	/* Only for what cannot be survived: the process goes, all threads. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	exit(1);
}

int
log_ratelimit(struct log_ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
    uint64_t *suppressed)
{
	if (now_ms < rl->next_ms) {
		rl->suppressed++;
		return 0;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->next_ms = now_ms + interval_ms;
	return 1;
}
