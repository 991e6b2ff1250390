/*
 * log: the daemon's only way to speak to the operator (OpenBSD log.c API).
 *
 * Thread-safe: each line is formatted on the caller's stack and written
 * with one write(2) (stderr) or one syslog(3) call.  log_warn and fatal
 * append the text of errno; the x variants do not.  errno is preserved.
 */
#ifndef SOCKETD_LOG_H
#define SOCKETD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

#define LOG_ATTR(f, a) __attribute__((format(printf, f, a)))

/* strerror(e) without strerror's shared buffer: safe in any thread. */
const char *log_errstr(int e, char *buf, size_t len);
/* The same into a buffer that lives until the end of the caller's block. */
#define LOG_ERRSTR(e) log_errstr((e), (char[128]){0}, 128)

/* Start logging to stderr (to_syslog 0) or syslog; ident is argv[0]'s name. */
void log_init(const char *ident, int to_syslog, enum log_level level);
void log_setlevel(enum log_level level);
enum log_level log_getlevel(void);

void log_warn(const char *fmt, ...) LOG_ATTR(1, 2);
void log_warnx(const char *fmt, ...) LOG_ATTR(1, 2);
void log_errx(const char *fmt, ...) LOG_ATTR(1, 2);
void log_info(const char *fmt, ...) LOG_ATTR(1, 2);
void log_debug(const char *fmt, ...) LOG_ATTR(1, 2);
void fatal(const char *fmt, ...) LOG_ATTR(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_ATTR(1, 2) __attribute__((noreturn));

/*
 * Rate limiting for conditions that can repeat thousands of times a second
 * (EMFILE, ...): log_ratelimit() returns 1 at most once per interval and
 * reports in *suppressed how many calls were swallowed since.  Single
 * thread per struct.
 */
struct log_ratelimit {
	uint64_t next_ms;
	uint64_t suppressed;
};
int log_ratelimit(struct log_ratelimit *rl, uint64_t now_ms,
    uint64_t interval_ms, uint64_t *suppressed);

#endif /* SOCKETD_LOG_H */
