/*
 * <socketd/module.h>: socketd's loadable handler modules, ABI 1.0.
 *
 * A module is a shared object that exports one data symbol,
 * `socketd_module`, a struct sd_module.  socketd reads that descriptor
 * (its name, ABI, settings schema and handler table) before it runs any
 * module code, so `socketd -t` checks a configuration without calling the
 * module.  The module sees socketd only through this header and the
 * struct sd_api table handed to init(); nothing else in the daemon is
 * reachable or stable.
 *
 *     #include <socketd/module.h>
 *     static const struct sd_api *api;
 *     static void upper(struct sd_req *r) { ... api->reply(r, 0, p, n); }
 *     static const struct sd_handler handlers[] = {
 *         {"upper", SD_SYNC, upper}, {NULL, 0, NULL}};
 *     static int init(struct sd_mod *m, const struct sd_api *a,
 *         const struct sd_settings *s, char *err, size_t errlen)
 *     { api = a; return 0; }
 *     SD_MODULE_EXPORT = {SD_MODULE_HEADER, .name = "hello",
 *         .version = "1.0", .handlers = handlers, .init = init};
 *
 * Build: cc -shared -fPIC $(pkg-config --cflags socketd-module) -o x.so x.c
 *
 * ABI rule: a module built against ABI major M, minor m loads into a
 * socketd of ABI major M and minor >= m.  Structs here only grow at the
 * end (their size is recorded: struct sd_api.size, struct
 * sd_module.size); enum values are never renumbered.  A mismatch is
 * refused at load with a message naming the module, its ABI and
 * socketd's.
 *
 * Threads (the one table to remember; docs/modules.md has it too):
 *   init, reload, fini, stats        the main thread (stats: any thread
 *                                    that asks, serialised by socketd)
 *   SD_SYNC handler, conn_close      the worker that owns the connection
 *   SD_ASYNC handler                 that worker; the reply from any thread
 *   SD_BLOCKING handler              a handler thread (handler_threads)
 *   reply, push, log                 any thread, the module's own included
 *   conn_state                       the owning worker only (SYNC, ASYNC)
 *
 * Requests: every request gets exactly one reply.
 *   SD_SYNC      reply before the handler returns, on the worker; must not
 *                block (more than 100 ms is logged, naming the handler).
 *   SD_BLOCKING  reply before the handler returns; may block.  A full
 *                handler queue answers OVERLOADED without calling it.
 *   SD_ASYNC     reply now or later, from any thread, exactly once.
 * A SYNC or BLOCKING handler that returns without replying gets INTERNAL
 * sent for it.  The struct sd_req stays valid until its reply, even if
 * the connection closes or timeouts.handler answers TIMEOUT first: the
 * reply is then dropped and counted (replies_dropped), never a
 * use-after-free.  After reply() returns, the request is gone: do not
 * touch it again.
 *
 * Memory: the request payload belongs to socketd and is valid until the
 * reply.  reply() and push() copy their data.  Settings strings are valid
 * during the init or reload call only.
 *
 * Modules are never unloaded (no dlclose): fini() must stop the threads
 * and timers the module started.  A module runs inside socketd's process
 * with all of its privileges: it can do anything socketd can.
 */
#ifndef SOCKETD_MODULE_H
#define SOCKETD_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SD_ABI_MAJOR    1
#define SD_ABI_MINOR    0
#define SD_MODULE_MAGIC 0x53444d4fu /* "SDMO" */

/* Opaque: one loaded module, one request, a settings set, a STATS sink. */
struct sd_mod;
struct sd_req;
struct sd_settings;
struct sd_stats;

/* Wire statuses a handler may answer with (protocol v1.1). */
enum sd_status {
	SD_STATUS_OK = 0,
	SD_STATUS_UNKNOWN_OPCODE = 1,
	SD_STATUS_BAD_REQUEST = 2,
	SD_STATUS_TOO_LARGE = 3,
	SD_STATUS_BUSY = 4,
	SD_STATUS_INTERNAL = 5,
	SD_STATUS_DENIED = 7,
	SD_STATUS_TIMEOUT = 8,
	SD_STATUS_OVERLOADED = 9,
	SD_STATUS_FORBIDDEN = 11,
	SD_STATUS_LIMIT_EXCEEDED = 12,
};

/* Results of sd_api calls. */
enum sd_result {
	SD_OK = 0,
	SD_EGONE = -1,  /* the connection has closed */
	SD_EFULL = -2,  /* its pending output is over the push limit */
	SD_EINVAL = -3, /* a bad argument, or called where it is not allowed */
	SD_ENOMEM = -4,
};

/* How a handler runs (see "Requests" above). */
enum sd_kind {
	SD_SYNC = 0,
	SD_BLOCKING = 1,
	SD_ASYNC = 2,
};

enum sd_log_level {
	SD_LOG_ERROR = 0,
	SD_LOG_WARNING = 1,
	SD_LOG_INFO = 2,
	SD_LOG_DEBUG = 3,
};

/* Types of module settings. */
enum sd_setting_type {
	SD_SET_INT = 1,    /* int64_t; range [min, max] */
	SD_SET_FLOAT = 2,  /* double; range [min, max] */
	SD_SET_BOOL = 3,   /* true or false */
	SD_SET_STRING = 4, /* length in [min, max] bytes */
};

/*
 * One setting of the module's `settings` group in socketd.conf.  The core
 * checks the type and the range (also under `socketd -t`) and reports a
 * bad value with file and line; an unknown key is an error too.
 */
struct sd_setting {
	const char *name; /* [a-z0-9_]; NULL ends the table */
	enum sd_setting_type type;
	const char
	    *def; /* default as written in the file: "10", "hi", "true" */
	double min, max;  /* both 0: no bound */
	const char *help; /* one line, for error messages; may be NULL */
};

typedef void sd_handler_fn(struct sd_req *r);

struct sd_handler {
	const char *name; /* [a-z0-9_]; served as MODULE.NAME; NULL ends */
	enum sd_kind kind;
	sd_handler_fn *fn;
};

/*
 * Identity of a request's connection, filled by sd_api.conn_identity
 * during the handler call (any kind; for SD_BLOCKING socketd takes a copy
 * before the handler thread runs it).  Strings belong to socketd: valid
 * until the handler returns (SD_SYNC, SD_ASYNC) or until the reply
 * (SD_BLOCKING); copy what you keep longer.
 */
struct sd_conn_identity {
	int family;              /* AF_INET or AF_INET6 */
	uint8_t addr[16];        /* IPv4 in addr[0..3] */
	uint16_t port;           /* host byte order */
	const char *listener;    /* "127.0.0.1:7411", as configured */
	const char *tls_subject; /* verified client certificate subject, or
				    NULL (no TLS, or not verified) */
};

/*
 * What socketd offers the module: handed to init(), valid for the life of
 * the process.  Fields are only appended; test `size` before using a field
 * newer than your minor version (SD_API_HAS).
 */
struct sd_api {
	uint32_t size; /* sizeof(struct sd_api) in socketd */
	uint16_t abi_major, abi_minor;

	/* The request: valid from the handler call to the reply. */
	const uint8_t *(*payload)(const struct sd_req *r, size_t *len);
	uint8_t (*opcode)(const struct sd_req *r);
	/* The connection's handle: never reused, never 0. */
	uint64_t (*conn)(const struct sd_req *r);
	int (*conn_identity)(
	    const struct sd_req *r, struct sd_conn_identity *out);
	/*
	 * This module's per-connection pointer (NULL until set); the owning
	 * worker only (SD_SYNC and SD_ASYNC handler calls), else NULL.  When
	 * the connection closes, conn_close() gets the value.
	 */
	void **(*conn_state)(struct sd_req *r);

	/*
	 * Answer r with status and data (status != 0: a short UTF-8
	 * message).  Exactly once per request.  SD_OK when the answer was
	 * queued; SD_EGONE when the connection has gone or the request
	 * timed out (the answer is dropped; r is freed all the same).
	 */
	int (*reply)(
	    struct sd_req *r, unsigned status, const void *data, size_t len);

	/*
	 * Send an unsolicited frame (request_id 0, status 0) with one of the
	 * module's push opcodes to a connection, from any thread.  SD_OK:
	 * queued (frames from one thread to one connection keep their
	 * order); SD_EGONE: the connection has closed; SD_EFULL: its pending
	 * output is over the push limit (4 MiB); SD_EINVAL: not this
	 * module's push opcode, or more than max_frame_size - 8 bytes.
	 */
	int (*push)(struct sd_mod *m, uint64_t conn, uint8_t opcode,
	    const void *data, size_t len);

	/* Log through socketd's log, prefixed with the module's name. */
	void (*log)(struct sd_mod *m, enum sd_log_level level, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));

	/* Settings, during init() and reload() only. */
	int64_t (*setting_int)(const struct sd_settings *s, const char *name);
	double (*setting_float)(const struct sd_settings *s, const char *name);
	int (*setting_bool)(const struct sd_settings *s, const char *name);
	const char *(*setting_str)(
	    const struct sd_settings *s, const char *name);

	/* In the stats() hook: one STATS line "MODULE_name value". */
	void (*stat)(struct sd_stats *st, const char *name, uint64_t value);

	/* The opcode socketd serves handler (or push) number i on. */
	uint8_t (*opcode_of)(struct sd_mod *m, unsigned i);
};

#define SD_API_HAS(api, field)                                                 \
	((api)->size >= offsetof(struct sd_api, field) + sizeof((api)->field))

/*
 * The descriptor.  Opcodes: the handlers are served on opcode B (from the
 * configuration) upward in table order, then the push opcodes.
 */
struct sd_module {
	uint32_t magic; /* SD_MODULE_MAGIC */
	uint16_t abi_major, abi_minor;
	uint32_t size; /* sizeof(struct sd_module) */

	const char *name;    /* [a-z0-9_]; must match the configuration */
	const char *version; /* free text, logged at load */
	const struct sd_setting *settings; /* NULL-name terminated, or NULL */
	const struct sd_handler *handlers; /* NULL-name terminated */
	const char *const *pushes;         /* push opcode names, NULL ends */

	/*
	 * Main thread, once, before any request; 0, or -1 with a message in
	 * err (start-up then fails naming the module and the message).
	 */
	int (*init)(struct sd_mod *m, const struct sd_api *api,
	    const struct sd_settings *s, char *err, size_t errlen);
	/*
	 * SIGHUP, main thread, while requests are served: take the new
	 * settings (0), or refuse them (-1 and err): the module keeps its old
	 * settings and the reload is reported as failed.  May be NULL.
	 */
	int (*reload)(struct sd_mod *m, const struct sd_settings *s, char *err,
	    size_t errlen);
	/* The connection's pointer was set; the owning worker.  May be NULL. */
	void (*conn_close)(struct sd_mod *m, uint64_t conn, void *state);
	/* Add STATS lines with api->stat(); may be NULL. */
	void (*stats)(struct sd_mod *m, struct sd_stats *st);
	/* Main thread, after every request was answered or abandoned. */
	void (*fini)(struct sd_mod *m);
};

#define SD_MODULE_HEADER                                                       \
	.magic = SD_MODULE_MAGIC, .abi_major = SD_ABI_MAJOR,                   \
	.abi_minor = SD_ABI_MINOR, .size = sizeof(struct sd_module)

#define SD_MODULE_EXPORT                                                       \
	__attribute__((visibility("default")))                                 \
	const struct sd_module socketd_module

#ifdef __cplusplus
}
#endif

#endif /* SOCKETD_MODULE_H */
