/*
 * cfg: socketd's configuration, loaded from a libconfig file into a plain
 * struct.
 *
 * This is the only module that includes <libconfig.h>; nothing outside it
 * ever sees a libconfig type.  It knows nothing of sockets, threads or
 * logging: errors come back in struct cfg_error for the caller to report.
 *
 * Return convention: 0 on success, -1 on error with *err filled in.
 * A struct cfg owns its strings; cfg_free() releases them.  Loading is not
 * thread-safe (libconfig is not): load in one thread, then publish the
 * finished struct read-only.
 */
#ifndef SOCKETD_CFG_H
#define SOCKETD_CFG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_DEFAULT_PATH  "/etc/socketd.conf"
#define CFG_LISTEN_MAX    16
#define CFG_WORKERS_MAX   1024
#define CFG_QUEUE_MAX     1048576
#define CFG_CONN_MAX      10000000
#define CFG_FRAME_MIN     8
#define CFG_FRAME_MAX     (256u * 1024 * 1024)
#define CFG_BACKLOG_MAX   65535
#define CFG_TIMEOUT_MAX_S 86400 /* one day */
/* A listen entry with this prefix is a TLS listener ("tls://[::]:7412"). */
#define CFG_TLS_PREFIX     "tls://"
#define CFG_TLS_PREFIX_LEN 6

enum cfg_log_level {
	CFG_LOG_ERROR = 0,
	CFG_LOG_WARNING,
	CFG_LOG_INFO,
	CFG_LOG_DEBUG,
};

enum cfg_log_target {
	CFG_LOG_STDERR = 0,
	CFG_LOG_SYSLOG,
};

/* tls.min_version */
enum cfg_tls_version {
	CFG_TLS_1_2 = 0,
	CFG_TLS_1_3,
};

#define CFG_ACL_MAX 64 /* entries in access.allow and in access.deny */

/* An IPv4 or IPv6 network: addr (network byte order) and prefix length. */
struct cfg_cidr {
	int v6; /* 0: IPv4 (addr[0..3]), 1: IPv6 (addr[0..15]) */
	uint8_t addr[16];
	unsigned prefix; /* 0..32 or 0..128 */
};

#define CFG_MODULES_MAX         32
#define CFG_MSETTINGS_MAX       64
#define CFG_HANDLER_THREADS_MAX 1024
#define CFG_INFLIGHT_MAX        65536
#define CFG_ADMIN_LISTEN_MAX    4 /* admin.listen, admin.agent_listen */

/* A value from a module's settings group, typed as written in the file. */
enum cfg_mval_type {
	CFG_MVAL_INT = 1,
	CFG_MVAL_FLOAT,
	CFG_MVAL_BOOL,
	CFG_MVAL_STRING,
};

struct cfg_msetting {
	char *name;
	enum cfg_mval_type type;
	long long i; /* INT, BOOL */
	double f;    /* FLOAT */
	char *s;     /* STRING */
	char *file;  /* where it was written */
	int line;
};

/* One entry of the modules list; checked against the module by the daemon. */
struct cfg_module {
	char *name;
	char *path;
	unsigned opcode; /* 0x80..0xff */
	char *file;      /* where the entry is */
	int line;
	struct cfg_msetting *settings;
	size_t nsettings;
};

/*
 * One entry of the processes list: a supervised handler program
 * (daemon/procs.c).  argv and env are NULL-terminated; env entries are
 * "NAME=value".
 */
#define CFG_PROCS_MAX          32
#define CFG_PROC_ARGS_MAX      64
#define CFG_PROC_ENV_MAX       64
#define CFG_PROC_INSTANCES_MAX 64
#define CFG_PROC_INFLIGHT_MAX  1024
#define CFG_PROC_DELAY_MAX_S   60
struct cfg_proc {
	char *name;
	char **argv; /* argv[0] is an absolute path */
	size_t argc;
	char **env;
	size_t nenv;
	unsigned opcode;       /* 0x80..0xff: its handler 0 */
	unsigned instances;    /* copies of the program */
	unsigned max_inflight; /* requests sent to one copy at a time */
	char *user;            /* NULL: socketd's own */
	uint32_t restart_delay_ms;
	char *file; /* where the entry is */
	int line;
};

/* Pub/sub permissions (pubsub.acl): one rule. */
#define CFG_PSACL_MAX      64 /* rules */
#define CFG_PSACL_PATTERNS 64 /* filters in one list */
enum cfg_ps_list {
	CFG_PS_PUBLISH = 0,
	CFG_PS_SUBSCRIBE,
	CFG_PS_DENY_PUBLISH,
	CFG_PS_DENY_SUBSCRIBE,
	CFG_PS_LISTS,
};

struct cfg_psacl {
	int has_peer;
	struct cfg_cidr peer; /* applies to peers in this network */
	char *tls_cn;         /* or to this verified client CN; NULL: none */
	char **pat[CFG_PS_LISTS]; /* filters, checked by cfg_load */
	size_t npat[CFG_PS_LISTS];
	char *file; /* where the rule is */
	int line;
};

struct cfg {
	/* "host:port" or "[v6]:port", "tls://" in front for TLS. */
	char *listen[CFG_LISTEN_MAX];
	size_t nlisten;
	unsigned workers; /* 0 = one per online CPU */
	unsigned queue_size;
	unsigned max_connections;
	uint32_t max_frame_size; /* bytes of body */
	int backlog;
	/* Timeouts in milliseconds; 0 means none. */
	uint32_t idle_ms;
	uint32_t read_ms;
	uint32_t write_ms;
	uint32_t shutdown_ms;
	uint32_t handshake_ms; /* a TLS handshake must finish within it */
	int tcp_nodelay;
	int tcp_keepalive;
	enum cfg_log_level log_level;
	enum cfg_log_target log_target;
	/* Access control: checked right after accept. */
	struct cfg_cidr allow[CFG_ACL_MAX]; /* empty: every address */
	size_t nallow;
	struct cfg_cidr deny[CFG_ACL_MAX]; /* wins over allow */
	size_t ndeny;
	unsigned max_conn_per_source; /* 0: no limit */
	/* TLS, for the tls:// listeners; paths NULL when unset. */
	char *tls_certificate; /* PEM: the certificate and its chain */
	char *tls_key;         /* PEM: its private key */
	char *tls_ca;          /* PEM: CAs that sign client certificates */
	int tls_verify_client; /* require a client certificate */
	enum cfg_tls_version tls_min_version;
	/* Process; NULL when unset. */
	char *user;     /* drop to this user after binding (when root) */
	char *group;    /* and this group (default: the user's) */
	char *pid_file; /* write the PID here */
	/* Modules (daemon/module.c); module_dir NULL: the built-in default. */
	struct cfg_module *modules;
	size_t nmodules;
	char *module_dir;
	unsigned handler_threads; /* threads for BLOCKING handlers */
	unsigned handler_queue;   /* requests waiting for them */
	unsigned max_inflight;    /* requests in progress per connection */
	uint32_t handler_ms;      /* timeouts.handler; 0: none */
	/*
	 * The admin listeners (daemon/admin.c): HTTP (/metrics, health) and
	 * HAProxy's agent-check; "host:port", no TLS; empty: off.
	 */
	char *admin_listen[CFG_ADMIN_LISTEN_MAX];
	size_t nadmin_listen;
	char *agent_listen[CFG_ADMIN_LISTEN_MAX];
	size_t nagent_listen;
	uint32_t drain_ms; /* timeouts.drain: not ready, still serving */
	/* Pub/sub (daemon/psub.c). */
	int pubsub_enabled;          /* restart to change */
	unsigned pubsub_max_subs;    /* per connection */
	uint32_t pubsub_max_pending; /* bytes queued toward one connection */
	int pubsub_slow_drop;        /* slow_consumer: 0 disconnect, 1 drop */
	struct cfg_psacl *pubsub_acl;
	size_t pubsub_nacl;
	/* Handler processes (daemon/procs.c). */
	struct cfg_proc *procs;
	size_t nprocs;
};

struct cfg_error {
	char file[256]; /* the file the error is in ("" if none) */
	int line;       /* 0 when unknown */
	char key[64];   /* the setting's path, "" if none */
	char msg[256];  /* what is wrong */
	char text[640]; /* the whole message: "file:line: key: msg" */
};

/* Fill *c with the documented defaults.  Allocates (the listen strings). */
int cfg_defaults(struct cfg *c, struct cfg_error *err);

/*
 * Load path into *out.  Keys that are absent keep their defaults; unknown
 * keys, wrong types and out-of-range values are errors naming the file,
 * the line and the key.  So are missing settings that others need: a
 * tls:// listener without tls.certificate or tls.key, tls.verify_client
 * without tls.ca.  Certificate files are not opened here.  On error *out
 * is left empty (no need to free).
 */
int cfg_load(const char *path, struct cfg *out, struct cfg_error *err);

/* Release what a struct cfg owns; accepts an empty or zeroed struct. */
void cfg_free(struct cfg *c);

/* One processes entry: a deep copy (0 or -1), and its release. */
int cfg_proc_copy(struct cfg_proc *dst, const struct cfg_proc *src);
void cfg_proc_clear(struct cfg_proc *p);

/* Whether two module lists name the same modules, paths and opcodes. */
int cfg_same_modules(const struct cfg *a, const struct cfg *b);

/* Deep copy; 0 or -1 (out of memory). */
int cfg_copy(struct cfg *dst, const struct cfg *src);

/*
 * Which settings differ between old and new that cannot change while
 * running.  Writes a comma-separated list of key names ("listen, workers")
 * into buf and returns how many keys differ (0: the new config can be
 * applied live).
 */
int cfg_diff_restart(
    const struct cfg *old, const struct cfg *new_cfg, char *buf, size_t cap);

/*
 * The i-th setting the loader accepts, as a dotted path ("timeouts.idle"),
 * groups included; NULL past the last.  For documentation checks.
 */
const char *cfg_key_at(size_t i);

/*
 * Whether access control lets the peer in: v6 0 with a 4-byte address or
 * 1 with a 16-byte one.  IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
 * matched as IPv4.  Deny wins; an empty allow list allows every address.
 */
int cfg_access_allows(const struct cfg *c, int v6, const uint8_t *addr);

/*
 * Whether net holds a 16-byte address (IPv4 as ::ffff:a.b.c.d, which
 * an IPv4 network matches).
 */
int cfg_cidr_contains(const struct cfg_cidr *net, const uint8_t *addr16);

/* Parse "10.0.0.0/8", "::1/128" or a bare address; 0 or -1. */
int cfg_cidr_parse(const char *s, struct cfg_cidr *out);

/* The name of a pub/sub ACL list ("deny_publish"). */
const char *cfg_ps_list_str(enum cfg_ps_list l);

/* Names for log levels and targets ("info", "syslog"), TLS versions. */
const char *cfg_log_level_str(enum cfg_log_level l);
const char *cfg_log_target_str(enum cfg_log_target t);
const char *cfg_tls_version_str(enum cfg_tls_version v); /* "1.2" */

/*
 * A listen entry without its "tls://" prefix; *tls (may be NULL) says
 * whether it had one.  Points into entry.
 */
const char *cfg_listen_addr(const char *entry, int *tls);
/* How many of c's listen entries are tls:// listeners. */
size_t cfg_tls_listeners(const struct cfg *c);

/* Write the effective configuration in the file's own syntax (for -t -v). */
int cfg_dump(const struct cfg *c, char *buf, size_t cap);

#endif /* SOCKETD_CFG_H */
