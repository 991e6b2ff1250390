/*
 * harness: run the real socketd binary and talk to it over loopback.
 *
 * Each test gets a struct h_ctx (cmocka state, from h_setup) that records
 * everything the test starts: daemons, temporary directories, sockets and
 * sdclient connections.  h_teardown closes the sockets first (so that
 * lingering server connections see EOF), then stops every daemon by PID
 * (SIGTERM, then SIGKILL after a deadline) and removes the directories,
 * whether the test passed or failed.  Every wait here has a timeout.
 *
 * Helpers that cannot usefully fail (starting a daemon, opening a temp
 * dir) assert with cmocka; the socket helpers return a status so that
 * tests can assert on the exact outcome (EOF, reset, timeout...).
 */
#ifndef SOCKETD_IT_HARNESS_H
#define SOCKETD_IT_HARNESS_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "sdclient.h"

#define H_MAX_DAEMONS 4
#define H_IO_TIMEOUT  5000 /* ms: default bound on one socket operation */

struct h_daemon {
	pid_t pid; /* 0 once reaped */
	int port;
	int status;    /* exit status once reaped (see h_stop) */
	char dir[256]; /* mkdtemp directory: config and log */
	char conf[320];
	char log[320];
};

/* How to configure and start a daemon; a zeroed struct is the default. */
struct h_opts {
	/* Settings appended to the base config; "PORT" becomes the port. */
	const char *extra;
	/* The listen list; NULL: [ "127.0.0.1:PORT" ]. */
	const char *listen;
	/* log.level; NULL: "debug". */
	const char *level;
	/* > 0: RLIMIT_NOFILE soft and hard limit set in the child. */
	long nofile;
	/* Where the readiness probe connects; NULL: "127.0.0.1". */
	const char *probe_host;
	/* The port must also be free on ::1. */
	int need_v6;
	/* > 0: use this port instead of picking a free one. */
	int port;
	/* NULL-terminated "NAME=value" strings added to the environment. */
	const char *const *env;
	/* > 0: pass this socket as fd 3 with LISTEN_PID and LISTEN_FDS=1. */
	int listen_fd;
	/* Set JOURNAL_STREAM to the log file's device:inode (stderr). */
	int journal;
	/*
	 * The admin listeners (admin.listen, admin.agent_listen) on
	 * 127.0.0.1 at these ports; 0: off (the tests never take the
	 * default ports 9411 and 9412).
	 */
	int admin_port;
	int agent_port;
};

struct h_ctx;

/* cmocka setup/teardown for every test: *state is a struct h_ctx. */
int h_setup(void **state);
int h_teardown(void **state);
/* Once per test program: ignore SIGPIPE. */
int h_group_setup(void **state);

/* A scratch directory owned by the test (removed at teardown). */
const char *h_scratch(struct h_ctx *t);

/* Monotonic milliseconds. */
int64_t h_now_ms(void);
void h_sleep_ms(int ms);

/* A loopback port that was free a moment ago (also on ::1 if need_v6). */
int h_free_port(int need_v6);

/* Write text to path (whole file); asserts. */
void h_write_file(const char *path, const char *text);

/*
 * Start socketd with the config from o (NULL: defaults) and wait until it
 * accepts connections (5 s at most).  Asserts on failure, printing the
 * daemon's log.
 */
struct h_daemon *h_start(struct h_ctx *t, const struct h_opts *o);
/* Rewrite d's config file from o, same port (for SIGHUP tests). */
void h_write_config(const struct h_daemon *d, const struct h_opts *o);
/* Start a daemon and return at once, without waiting until it accepts. */
struct h_daemon *h_spawn(struct h_ctx *t, const struct h_opts *o);
/*
 * Stop by PID: SIGTERM, wait up to timeout_ms (<= 0: 10 s), then SIGKILL.
 * Returns the exit status, 128 + signal if killed by a signal; an already
 * reaped daemon returns its recorded status.
 */
int h_stop(struct h_daemon *d, int timeout_ms);
/* Wait (bounded) for d to exit by itself; -1 on timeout, else as h_stop. */
int h_wait_exit(struct h_daemon *d, int timeout_ms);
/* Send a signal to a running daemon; asserts it is still running. */
void h_signal(struct h_daemon *d, int sig);

/* The daemon's log: a malloc'ed NUL-terminated copy ("" if none). */
char *h_log_read(const struct h_daemon *d);
/* Lines of the log that contain a (and b, if not NULL). */
int h_log_count(const struct h_daemon *d, const char *a, const char *b);
/* Wait up to timeout_ms for a line with a (and b); 1 found, 0 not. */
int h_log_wait(
    const struct h_daemon *d, const char *a, const char *b, int timeout_ms);
/* Print the log through cmocka's print_message (for failures). */
void h_log_dump(const struct h_daemon *d);

/* utime + stime of a process, in ms, from /proc/PID/stat; -1 on error. */
long h_cpu_ms(pid_t pid);

/*
 * sdclient connections owned by the test.  h_sdc asserts that connecting
 * works; h_sdc_try returns NULL (and err) on failure.
 */
struct sdc *h_sdc(struct h_ctx *t, const char *host, int port);
struct sdc *h_sdc_try(
    struct h_ctx *t, const char *host, int port, int timeout_ms, char *err);
void h_sdc_close(struct h_ctx *t, struct sdc *c);
/*
 * The first connection of a test that counts connections: connect and
 * PING, retrying while the server answers BUSY (the readiness probe may
 * still be counted), then wait until connections_current is 1.
 */
struct sdc *h_sdc_settled(struct h_ctx *t, const struct h_daemon *d);
/* The same, connecting to host. */
struct sdc *h_sdc_settled_on(
    struct h_ctx *t, const struct h_daemon *d, const char *host);
/* One PING through sdc_call; asserts an OK answer. */
void h_ping(struct sdc *c);

/*
 * Find "name value\n" in a STATS/INFO text; copy the value into out.
 * Returns 0, or -1 if absent.
 */
int h_text_value(
    const uint8_t *text, size_t len, const char *name, char *out, size_t cap);
/* STATS value by name over c; asserts the call works and the name exists. */
uint64_t h_stat(struct sdc *c, const char *name);
/* Same over a fresh connection to d (closed afterwards). */
uint64_t h_stat_of(struct h_ctx *t, const struct h_daemon *d, const char *name);
/* Poll STATS over c until name == want (or timeout); the last value. */
uint64_t h_stat_wait(
    struct sdc *c, const char *name, uint64_t want, int timeout_ms);

/*
 * Raw sockets (tracked: closed at teardown unless h_close'd).  h_connect
 * returns a blocking socket, connected within timeout_ms, or -1 with
 * errno.  h_connect_nb returns a non-blocking one whose connect may still
 * be in progress.
 */
int h_connect(struct h_ctx *t, const char *host, int port, int timeout_ms);
int h_connect_nb(struct h_ctx *t, const char *host, int port);
void h_close(struct h_ctx *t, int fd);
/* Close with SO_LINGER 0: the peer gets a reset. */
void h_close_reset(struct h_ctx *t, int fd);
/* Track a descriptor made elsewhere (a listener the test holds). */
void h_track(struct h_ctx *t, int fd);

/* All of buf within timeout_ms: 0, or -1 with errno (ETIMEDOUT...). */
int h_send_all(int fd, const void *buf, size_t len, int timeout_ms);
/*
 * Exactly len bytes within timeout_ms: 0, or -1 with errno ETIMEDOUT,
 * ECONNRESET (or another error), or EPIPE for EOF; *got (may be NULL)
 * says how many arrived.
 */
int h_recv_exact(int fd, void *buf, size_t len, int timeout_ms, size_t *got);

enum h_eof {
	H_EOF = 0,     /* orderly end of stream */
	H_TIMEOUT = 1, /* nothing happened in time */
	H_RESET = 2,   /* ECONNRESET or another socket error */
	H_DATA = 3,    /* bytes arrived (only when discarded is NULL) */
};
/*
 * Wait for the end of the stream.  With discarded non-NULL, bytes that
 * arrive first are read, counted and dropped.
 */
enum h_eof h_wait_eof(int fd, int timeout_ms, size_t *discarded);
const char *h_eof_str(enum h_eof e);

/* One response frame read off a raw socket. */
struct h_frame {
	uint32_t len; /* the length prefix */
	uint8_t version;
	uint8_t opcode;
	uint16_t status;
	uint32_t request_id;
	uint8_t *payload; /* NUL-terminated copy; owned */
	size_t payload_len;
};
/* 0, or -1 with errno as h_recv_exact (EPROTO for a body < 8 bytes). */
int h_read_frame(int fd, struct h_frame *f, int timeout_ms);
void h_frame_free(struct h_frame *f);
/* Read one frame and assert its opcode, status and request_id. */
void h_expect_frame(
    int fd, uint8_t opcode, uint16_t status, uint32_t id, struct h_frame *f);

/* Connect to 127.0.0.1:d->port (tracked by t) or fail the test. */
int h_raw(struct h_ctx *t, const struct h_daemon *d);
/* PING with id on fd; assert an empty PONG with that id. */
void h_raw_ping(int fd, uint32_t id);
/* Expect one frame with status st, opcode and request_id 0, payload msg
 * (unless NULL), then an orderly EOF: a BUSY or DENIED refusal. */
void h_expect_refusal(int fd, uint16_t st, const char *msg);

/* Encode a request into a malloc'ed buffer (*len set); asserts. */
uint8_t *h_req(
    uint8_t opcode, uint32_t id, const void *payload, size_t plen, size_t *len);
/* Encode and send one request. */
int h_send_req(
    int fd, uint8_t opcode, uint32_t id, const void *payload, size_t plen);

/* Run a program to completion (bounded), capturing its output. */
struct h_run {
	int status; /* exit status; 128 + signal; -1 timed out (killed) */
	long elapsed_ms;
	char out[16384]; /* stdout, NUL-terminated, truncated */
	char err[16384]; /* stderr */
};
void h_run(char *const argv[], int timeout_ms, struct h_run *r);

/* HTTP/1.1 to the admin listener on 127.0.0.1 (asserts on failure). */
struct h_http {
	int status;
	char *head; /* status line and headers */
	char *body;
	size_t body_len;
};
void h_http_free(struct h_http *r);
/* Send req as is to 127.0.0.1:port and read the answer to EOF. */
void h_http_raw(struct h_ctx *t, int port, const char *req, struct h_http *r);
void h_http_get(struct h_ctx *t, int port, const char *path, struct h_http *r);
/* The value of the sample "series" (name{labels} exactly), or -1. */
double h_sample(const char *body, const char *series);

/*
 * Send one request (payload a string or NULL) on a raw socket and expect
 * its answer with status want; returns the payload, NUL-terminated and
 * owned by the caller ("" when empty).
 */
char *h_call(
    int fd, uint8_t op, uint32_t id, const char *payload, uint16_t want);

#endif /* SOCKETD_IT_HARNESS_H */
