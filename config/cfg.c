/*
 * cfg: load socketd's libconfig file into a struct cfg.
 *
 * The file is read with libconfig, then the tree is walked against a table
 * of known settings (root_spec below).  Every setting found is checked for
 * name, type and range; the first problem stops the load and is described
 * in struct cfg_error as "file:line: key: msg".  libconfig itself accepts
 * any name, so the walk is what turns typos into errors.
 *
 * Decisions the rest of socketd relies on:
 * - listen entries are checked for syntax only: "host:port" (host is an
 *   IPv4 address or a name made of letters, digits, '.', '-', '_') or
 *   "[ipv6]:port" (brackets required; an optional %zone is allowed).
 *   "*:port" means every IPv4 address and is stored as "0.0.0.0:port", so
 *   struct cfg never contains a '*'.  Entries must be unique.
 * - A "tls://" prefix makes a listen entry a TLS listener.  struct cfg
 *   keeps the prefix, so comparing, copying and dumping the list need no
 *   second field; uniqueness is judged on the address alone ("x:1" and
 *   "tls://x:1" cannot both be bound).  Any other "scheme://" is an error.
 * - Settings that need others are checked once the whole file is read:
 *   a tls:// listener needs tls.certificate and tls.key (reported at the
 *   listener's line), tls.verify_client needs tls.ca.  The files are not
 *   opened here: the daemon loads them (and reports what is wrong).
 * - Integers may be written as int or int64 (L suffix).  libconfig 1.5
 *   wraps numbers beyond 32 bits written without L before we can see them.
 * - Timeouts are seconds (integer or decimal), rounded to the nearest
 *   millisecond.  0 means none; a positive value below 0.001 is an error.
 * - @include paths are relative to the directory of the main file
 *   (config_set_include_dir), whatever the current directory is.  libconfig
 *   1.5 prefixes that directory even to absolute paths, so absolute
 *   @include paths do not work.
 *
 * Only config/ includes <libconfig.h>.  libconfig is not thread-safe:
 * cfg_load must not run in two threads at once.
 */

#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>

#include <arpa/inet.h>

#include "cfg.h"
#include "cfg_int.h"
#include "pubsub.h"

enum spec_type {
	SPEC_GROUP,   /* a group of further settings (sub) */
	SPEC_LISTEN,  /* the listen list */
	SPEC_UINT,    /* unsigned */
	SPEC_U32,     /* uint32_t */
	SPEC_INT,     /* int */
	SPEC_TIMEOUT, /* seconds in the file, uint32_t milliseconds here */
	SPEC_BOOL,    /* int, 0 or 1 */
	SPEC_LEVEL,   /* enum cfg_log_level */
	SPEC_TARGET,  /* enum cfg_log_target */
	SPEC_STRING,  /* char *, owned; empty means unset */
	SPEC_ALLOW,   /* access.allow: a list of CIDR strings */
	SPEC_DENY,    /* access.deny */
	SPEC_TLSVER,  /* enum cfg_tls_version */
	SPEC_MODULES, /* the modules list */
	SPEC_ADMIN,   /* admin.listen: a list of host:port, may be empty */
	SPEC_AGENT,   /* admin.agent_listen */
	SPEC_SLOW,    /* pubsub.slow_consumer */
	SPEC_PSACL,   /* pubsub.acl */
	SPEC_PROCS,   /* the processes list (cfg_procs.c) */
};

struct spec {
	const char *name; /* NULL ends a table */
	enum spec_type type;
	size_t off;    /* offset of the field in struct cfg */
	long long min; /* SPEC_UINT, SPEC_U32, SPEC_INT, SPEC_TIMEOUT */
	long long max;
	const struct spec *sub; /* SPEC_GROUP */
};

#define FIELD(f) offsetof(struct cfg, f)

static const struct spec timeouts_spec[] = {
    {"idle", SPEC_TIMEOUT, FIELD(idle_ms), 0, CFG_TIMEOUT_MAX_S, NULL},
    {"read", SPEC_TIMEOUT, FIELD(read_ms), 0, CFG_TIMEOUT_MAX_S, NULL},
    {"write", SPEC_TIMEOUT, FIELD(write_ms), 0, CFG_TIMEOUT_MAX_S, NULL},
    {"shutdown", SPEC_TIMEOUT, FIELD(shutdown_ms), 0, CFG_TIMEOUT_MAX_S, NULL},
    {"handshake", SPEC_TIMEOUT, FIELD(handshake_ms), 0, CFG_TIMEOUT_MAX_S,
	NULL},
    {"handler", SPEC_TIMEOUT, FIELD(handler_ms), 0, CFG_TIMEOUT_MAX_S, NULL},
    {"drain", SPEC_TIMEOUT, FIELD(drain_ms), 0, CFG_TIMEOUT_MAX_S, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec tcp_spec[] = {
    {"nodelay", SPEC_BOOL, FIELD(tcp_nodelay), 0, 0, NULL},
    {"keepalive", SPEC_BOOL, FIELD(tcp_keepalive), 0, 0, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec log_spec[] = {
    {"level", SPEC_LEVEL, FIELD(log_level), 0, 0, NULL},
    {"target", SPEC_TARGET, FIELD(log_target), 0, 0, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec access_spec[] = {
    {"allow", SPEC_ALLOW, 0, 0, 0, NULL},
    {"deny", SPEC_DENY, 0, 0, 0, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec tls_spec[] = {
    {"certificate", SPEC_STRING, FIELD(tls_certificate), 0, 0, NULL},
    {"key", SPEC_STRING, FIELD(tls_key), 0, 0, NULL},
    {"ca", SPEC_STRING, FIELD(tls_ca), 0, 0, NULL},
    {"verify_client", SPEC_BOOL, FIELD(tls_verify_client), 0, 0, NULL},
    {"min_version", SPEC_TLSVER, FIELD(tls_min_version), 0, 0, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec admin_spec[] = {
    {"listen", SPEC_ADMIN, 0, 0, 0, NULL},
    {"agent_listen", SPEC_AGENT, 0, 0, 0, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec pubsub_spec[] = {
    {"enabled", SPEC_BOOL, FIELD(pubsub_enabled), 0, 0, NULL},
    {"max_subscriptions", SPEC_UINT, FIELD(pubsub_max_subs), 1, 1000000, NULL},
    {"max_pending", SPEC_U32, FIELD(pubsub_max_pending), 1024,
	1024 * 1024 * 1024, NULL},
    {"slow_consumer", SPEC_SLOW, 0, 0, 0, NULL},
    {"acl", SPEC_PSACL, 0, 0, 0, NULL},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const struct spec root_spec[] = {
    {"listen", SPEC_LISTEN, 0, 0, 0, NULL},
    {"workers", SPEC_UINT, FIELD(workers), 0, CFG_WORKERS_MAX, NULL},
    {"queue_size", SPEC_UINT, FIELD(queue_size), 1, CFG_QUEUE_MAX, NULL},
    {"max_connections", SPEC_UINT, FIELD(max_connections), 1, CFG_CONN_MAX,
	NULL},
    {"max_frame_size", SPEC_U32, FIELD(max_frame_size), CFG_FRAME_MIN,
	CFG_FRAME_MAX, NULL},
    {"backlog", SPEC_INT, FIELD(backlog), 1, CFG_BACKLOG_MAX, NULL},
    {"timeouts", SPEC_GROUP, 0, 0, 0, timeouts_spec},
    {"tcp", SPEC_GROUP, 0, 0, 0, tcp_spec},
    {"log", SPEC_GROUP, 0, 0, 0, log_spec},
    {"max_connections_per_source", SPEC_UINT, FIELD(max_conn_per_source), 0,
	CFG_CONN_MAX, NULL},
    {"access", SPEC_GROUP, 0, 0, 0, access_spec},
    {"tls", SPEC_GROUP, 0, 0, 0, tls_spec},
    {"user", SPEC_STRING, FIELD(user), 0, 0, NULL},
    {"group", SPEC_STRING, FIELD(group), 0, 0, NULL},
    {"pid_file", SPEC_STRING, FIELD(pid_file), 0, 0, NULL},
    {"modules", SPEC_MODULES, 0, 0, 0, NULL},
    {"processes", SPEC_PROCS, 0, 0, 0, NULL},
    {"module_dir", SPEC_STRING, FIELD(module_dir), 0, 0, NULL},
    {"handler_threads", SPEC_UINT, FIELD(handler_threads), 1,
	CFG_HANDLER_THREADS_MAX, NULL},
    {"handler_queue", SPEC_UINT, FIELD(handler_queue), 1, CFG_QUEUE_MAX, NULL},
    {"max_inflight", SPEC_UINT, FIELD(max_inflight), 1, CFG_INFLIGHT_MAX, NULL},
    {"admin", SPEC_GROUP, 0, 0, 0, admin_spec},
    {"pubsub", SPEC_GROUP, 0, 0, 0, pubsub_spec},
    {NULL, SPEC_GROUP, 0, 0, 0, NULL},
};

static const char *const level_names[] = {
    [CFG_LOG_ERROR] = "error",
    [CFG_LOG_WARNING] = "warning",
    [CFG_LOG_INFO] = "info",
    [CFG_LOG_DEBUG] = "debug",
};

static const char *const target_names[] = {
    [CFG_LOG_STDERR] = "stderr",
    [CFG_LOG_SYSLOG] = "syslog",
};

static const char *const slow_names[] = {"disconnect", "drop"};

static const char *const tls_version_names[] = {
    [CFG_TLS_1_2] = "1.2",
    [CFG_TLS_1_3] = "1.3",
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const default_listen[] = {"127.0.0.1:7411", "[::1]:7411"};
/* The admin listeners are on, on loopback only, unless the file says []. */
#define DEFAULT_ADMIN_LISTEN "127.0.0.1:9411"
#define DEFAULT_AGENT_LISTEN "127.0.0.1:9412"

/*
 * Fill err: the parts, then the whole text "file:line: key: msg", leaving
 * out the line when 0 and the file or key when empty.
 */
static void
error_set(struct cfg_error *err, const char *file, int line, const char *key,
    const char *msg)
{
	size_t n = 0;
	int r;

	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->line = line;
	snprintf(err->key, sizeof(err->key), "%s", key ? key : "");
	snprintf(err->msg, sizeof(err->msg), "%s", msg);

	err->text[0] = '\0';
	if (err->file[0] != '\0') {
		if (line > 0)
			r = snprintf(err->text, sizeof(err->text),
			    "%s:%d: ", err->file, line);
		else
			r = snprintf(
			    err->text, sizeof(err->text), "%s: ", err->file);
		if (r > 0)
			n = (size_t)r;
	}
	if (err->key[0] != '\0' && n < sizeof(err->text)) {
		r = snprintf(
		    err->text + n, sizeof(err->text) - n, "%s: ", err->key);
		if (r > 0)
			n += (size_t)r;
	}
	if (n < sizeof(err->text))
		snprintf(err->text + n, sizeof(err->text) - n, "%s", err->msg);
}

/*
 * The file name to report for a name libconfig recorded.  An @include'd
 * file is recorded as written, relative to the include directory; make it
 * a path the user can open.
 */
static void
report_path(const struct loader *ld, const char *name, char *buf, size_t cap)
{
	if (name == NULL || strcmp(name, ld->path) == 0 || name[0] == '/' ||
	    strcmp(ld->dir, ".") == 0)
		snprintf(buf, cap, "%s", name ? name : ld->path);
	else
		snprintf(buf, cap, "%s/%s", ld->dir, name);
}

/* Report a problem with setting s, whose dotted name is key. */
void
cfg_fail(const struct loader *ld, const config_setting_t *s, const char *key,
    const char *fmt, ...)
{
	char file[sizeof(ld->err->file)];
	char msg[sizeof(ld->err->msg)];
	va_list ap;

	report_path(ld, config_setting_source_file(s), file, sizeof(file));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	error_set(ld->err, file, (int)config_setting_source_line(s), key, msg);
}

static int
is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int
is_xdigit(int ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'f') ||
	    (ch >= 'A' && ch <= 'F');
}

static int
is_name_char(int ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') ||
	    (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-' || ch == '_';
}

/* Check a port string: 1 to 65535 in decimal.  NULL if fine. */
static const char *
check_port(const char *p)
{
	unsigned long v = 0;
	size_t i;

	if (*p == '\0')
		return "missing port (expected host:port or [ipv6]:port)";
	for (i = 0; p[i] != '\0'; i++) {
		if (!is_digit((unsigned char)p[i]) || i >= 5)
			return "port must be a number from 1 to 65535";
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return "port must be a number from 1 to 65535";
	return NULL;
}

/*
 * Check the syntax of one listen entry.  Returns NULL if fine, else what
 * is wrong.  No lookups: names are resolved by whoever binds.
 */
static const char *
check_listen(const char *s)
{
	const char *end, *p, *zone;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL)
			return "missing ']' after the IPv6 address";
		if (end == s + 1)
			return "empty address in [ ]";
		zone = memchr(s, '%', (size_t)(end - s));
		for (p = s + 1; p < (zone ? zone : end); p++)
			if (!is_xdigit((unsigned char)*p) && *p != ':' &&
			    *p != '.')
				return "not an IPv6 address inside [ ]";
		if (memchr(s, ':', (size_t)(end - s)) == NULL)
			return "not an IPv6 address inside [ ]";
		if (zone != NULL) {
			if (zone + 1 == end)
				return "empty zone after '%'";
			for (p = zone + 1; p < end; p++)
				if (!is_name_char((unsigned char)*p))
					return "bad character in zone";
		}
		if (end[1] != ':')
			return "missing port (expected [ipv6]:port)";
		return check_port(end + 2);
	}

	end = strrchr(s, ':');
	if (end == NULL)
		return "missing port (expected host:port or [ipv6]:port)";
	if (memchr(s, ':', (size_t)(end - s)) != NULL)
		return "an IPv6 address needs brackets, as in [::1]:7411";
	if (end == s)
		return "empty host (use *:port for all IPv4 addresses)";
	if (!(end == s + 1 && s[0] == '*'))
		for (p = s; p < end; p++)
			if (!is_name_char((unsigned char)*p))
				return "bad character in host";
	return check_port(end + 1);
}

static int
load_listen(const struct loader *ld, const config_setting_t *s, const char *key,
    struct cfg *c)
{
	const config_setting_t *e;
	const char *v, *addr, *why, *scheme;
	size_t i, j, n, plen;
	int len, tls;

	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		cfg_fail(ld, s, key, "expected a list of strings");
		return -1;
	}
	len = config_setting_length(s);
	if (len == 0) {
		cfg_fail(ld, s, key, "expected at least one address");
		return -1;
	}
	if (len > CFG_LISTEN_MAX) {
		cfg_fail(ld, s, key, "at most %d addresses, not %d",
		    CFG_LISTEN_MAX, len);
		return -1;
	}
	n = (size_t)len;

	for (i = 0; i < c->nlisten; i++) {
		free(c->listen[i]);
		c->listen[i] = NULL;
	}
	c->nlisten = 0;

	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (e == NULL || config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_fail(
			    ld, e ? e : s, key, "expected a list of strings");
			return -1;
		}
		v = config_setting_get_string(e);
		addr = cfg_listen_addr(v, &tls);
		if (!tls && (scheme = strstr(v, "://")) != NULL) {
			cfg_fail(ld, e, key,
			    "\"%.100s\": unknown scheme \"%.*s\" (only "
			    "\"" CFG_TLS_PREFIX "\" may precede an address)",
			    v, (int)(scheme + 3 - v > 20 ? 20 : scheme + 3 - v),
			    v);
			return -1;
		}
		if ((why = check_listen(addr)) != NULL) {
			cfg_fail(ld, e, key, "\"%.100s\": %s", v, why);
			return -1;
		}
		plen = (size_t)(addr - v);
		if (addr[0] == '*') {
			/* "*:port": all IPv4 addresses. */
			len = snprintf(
			    NULL, 0, "%.*s0.0.0.0%s", (int)plen, v, addr + 1);
			c->listen[i] = malloc((size_t)len + 1);
			if (c->listen[i] != NULL)
				snprintf(c->listen[i], (size_t)len + 1,
				    "%.*s0.0.0.0%s", (int)plen, v, addr + 1);
		} else
			c->listen[i] = strdup(v);
		if (c->listen[i] == NULL) {
			cfg_fail(ld, e, key, "out of memory");
			return -1;
		}
		c->nlisten = i + 1;
		for (j = 0; j < i; j++)
			if (strcmp(cfg_listen_addr(c->listen[j], NULL),
				cfg_listen_addr(c->listen[i], NULL)) == 0) {
				cfg_fail(
				    ld, e, key, "\"%.100s\": listed twice", v);
				return -1;
			}
	}
	return 0;
}

/*
 * admin.listen / admin.agent_listen: 0 to CFG_ADMIN_LISTEN_MAX plain
 * "host:port" entries (an empty list turns that listener off).
 */
static int
load_admin_listen(const struct loader *ld, const config_setting_t *s,
    const char *key, char **list, size_t *nlist)
{
	const config_setting_t *e;
	const char *v, *why;
	size_t i, j, n;
	int len;

	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		cfg_fail(ld, s, key, "expected a list of strings");
		return -1;
	}
	len = config_setting_length(s);
	if (len > CFG_ADMIN_LISTEN_MAX) {
		cfg_fail(ld, s, key, "at most %d addresses, not %d",
		    CFG_ADMIN_LISTEN_MAX, len);
		return -1;
	}
	for (i = 0; i < *nlist; i++) {
		free(list[i]);
		list[i] = NULL;
	}
	*nlist = 0;
	n = (size_t)len;
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (e == NULL || config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_fail(
			    ld, e ? e : s, key, "expected a list of strings");
			return -1;
		}
		v = config_setting_get_string(e);
		if (strstr(v, "://") != NULL) {
			cfg_fail(ld, e, key,
			    "\"%.100s\": no scheme here (the admin listeners "
			    "serve plain HTTP and text; keep them on loopback "
			    "or a management network)",
			    v);
			return -1;
		}
		if ((why = check_listen(v)) != NULL) {
			cfg_fail(ld, e, key, "\"%.100s\": %s", v, why);
			return -1;
		}
		if (v[0] == '*' && v[1] == ':') {
			len = snprintf(NULL, 0, "0.0.0.0%s", v + 1);
			if ((list[i] = malloc((size_t)len + 1)) != NULL)
				snprintf(list[i], (size_t)len + 1, "0.0.0.0%s",
				    v + 1);
		} else {
			list[i] = strdup(v);
		}
		if (list[i] == NULL) {
			cfg_fail(ld, e, key, "out of memory");
			return -1;
		}
		*nlist = i + 1;
		for (j = 0; j < i; j++)
			if (strcmp(list[j], list[i]) == 0) {
				cfg_fail(
				    ld, e, key, "\"%.100s\": listed twice", v);
				return -1;
			}
	}
	return 0;
}

/* An integer setting: int or int64 in [sp->min, sp->max]. */
static int
load_int(const struct loader *ld, const config_setting_t *s, const char *key,
    const struct spec *sp, struct cfg *c)
{
	long long v;
	char *field = (char *)c + sp->off;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		goto bad;
	v = config_setting_get_int64(s);
	if (v < sp->min || v > sp->max)
		goto bad;
	switch (sp->type) {
	case SPEC_UINT:
		*(unsigned *)(void *)field = (unsigned)v;
		break;
	case SPEC_U32:
		*(uint32_t *)(void *)field = (uint32_t)v;
		break;
	default:
		*(int *)(void *)field = (int)v;
		break;
	}
	return 0;
bad:
	cfg_fail(ld, s, key, "must be an integer from %lld to %lld", sp->min,
	    sp->max);
	return -1;
}

/* Seconds, integer or decimal, stored as milliseconds. */
static int
load_timeout(const struct loader *ld, const config_setting_t *s,
    const char *key, const struct spec *sp, struct cfg *c)
{
	double f;
	long long v;
	uint32_t ms;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = config_setting_get_int64(s);
		if (v < sp->min || v > sp->max)
			goto bad;
		ms = (uint32_t)(v * 1000);
		break;
	case CONFIG_TYPE_FLOAT:
		f = config_setting_get_float(s);
		/* Written so that NaN fails too. */
		if (!(f >= (double)sp->min && f <= (double)sp->max))
			goto bad;
		if (f > 0 && f < 0.001) {
			cfg_fail(ld, s, key,
			    "must be 0 (none) or at least 0.001 seconds");
			return -1;
		}
		ms = (uint32_t)(f * 1000.0 + 0.5);
		break;
	default:
		goto bad;
	}
	*(uint32_t *)(void *)((char *)c + sp->off) = ms;
	return 0;
bad:
	cfg_fail(ld, s, key, "must be a number of seconds from %lld to %lld",
	    sp->min, sp->max);
	return -1;
}

/* A string that must be one of names[]; stores the index. */
static int
load_enum(const struct loader *ld, const config_setting_t *s, const char *key,
    const char *const *names, size_t nnames, int *out)
{
	char list[128];
	const char *v;
	size_t i, n = 0;
	int r;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(s);
		for (i = 0; i < nnames; i++)
			if (strcmp(v, names[i]) == 0) {
				*out = (int)i;
				return 0;
			}
	}
	list[0] = '\0';
	for (i = 0; i < nnames && n < sizeof(list); i++) {
		r = snprintf(list + n, sizeof(list) - n, "%s\"%s\"",
		    i == 0 ? "" : (i + 1 == nnames ? " or " : ", "), names[i]);
		if (r > 0)
			n += (size_t)r;
	}
	cfg_fail(ld, s, key, "must be %s", list);
	return -1;
}

int
cfg_cidr_parse(const char *s, struct cfg_cidr *out)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix, max;
	char *end;

	memset(out, 0, sizeof(*out));
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, out->addr) == 1)
		out->v6 = 0;
	else if (inet_pton(AF_INET6, host, out->addr) == 1)
		out->v6 = 1;
	else
		return -1;
	max = out->v6 ? 128 : 32;
	prefix = max;
	if (slash != NULL) {
		if (!is_digit((unsigned char)slash[1]))
			return -1;
		errno = 0;
		prefix = strtoul(slash + 1, &end, 10);
		if (errno != 0 || *end != '\0' || prefix > max)
			return -1;
	}
	out->prefix = (unsigned)prefix;
	return 0;
}

static int
load_cidrs(const struct loader *ld, const config_setting_t *s, const char *key,
    struct cfg_cidr *list, size_t *n)
{
	const config_setting_t *e;
	const char *v;
	int i, len;

	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		cfg_fail(ld, s, key,
		    "expected a list of addresses (\"10.0.0.0/8\")");
		return -1;
	}
	len = config_setting_length(s);
	if (len > CFG_ACL_MAX) {
		cfg_fail(
		    ld, s, key, "at most %d entries, not %d", CFG_ACL_MAX, len);
		return -1;
	}
	*n = 0;
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (e == NULL || config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_fail(ld, e ? e : s, key,
			    "expected a list of addresses (\"10.0.0.0/8\")");
			return -1;
		}
		v = config_setting_get_string(e);
		if (cfg_cidr_parse(v, &list[i]) != 0) {
			cfg_fail(ld, e, key,
			    "\"%.100s\": not an IPv4 or IPv6 address with an "
			    "optional /prefix",
			    v);
			return -1;
		}
		*n = (size_t)i + 1;
	}
	return 0;
}

static int
cidr_match(const struct cfg_cidr *net, int v6, const uint8_t *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;
	uint8_t mask;

	if (net->v6 != v6)
		return 0;
	if (memcmp(net->addr, addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

int
cfg_access_allows(const struct cfg *c, int v6, const uint8_t *addr)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	size_t i;
	int allowed;

	if (v6 && memcmp(addr, mapped, sizeof(mapped)) == 0) {
		v6 = 0;
		addr += 12;
	}
	for (i = 0; i < c->ndeny; i++)
		if (cidr_match(&c->deny[i], v6, addr))
			return 0;
	allowed = c->nallow == 0;
	for (i = 0; i < c->nallow && !allowed; i++)
		allowed = cidr_match(&c->allow[i], v6, addr);
	return allowed;
}

int
cfg_cidr_contains(const struct cfg_cidr *net, const uint8_t *addr16)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (memcmp(addr16, mapped, sizeof(mapped)) == 0)
		return cidr_match(net, 0, addr16 + 12);
	return cidr_match(net, 1, addr16);
}

/* A string setting; "" leaves it unset (NULL). */
static int
load_string(const struct loader *ld, const config_setting_t *s, const char *key,
    const struct spec *sp, struct cfg *c)
{
	char **field = (char **)(void *)((char *)c + sp->off);
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_fail(ld, s, key, "must be a string in double quotes");
		return -1;
	}
	v = config_setting_get_string(s);
	free(*field);
	*field = NULL;
	if (v[0] == '\0')
		return 0;
	if (strlen(v) > 4095) {
		cfg_fail(ld, s, key, "must be shorter than 4096 bytes");
		return -1;
	}
	if ((*field = strdup(v)) == NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	return 0;
}

/* A setting's dotted name, cut to fit (error messages only). */
void
cfg_keyf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

/* A name of [a-z0-9_], 1-64 bytes: module, handler and setting names. */
int
cfg_good_name(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
			(s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return 0;
	return n > 0 && n <= 64;
}

char *
cfg_source_file(const struct loader *ld, const config_setting_t *s)
{
	char file[sizeof(ld->err->file)];

	report_path(ld, config_setting_source_file(s), file, sizeof(file));
	return strdup(file);
}

/* modules.NAME.settings: typed values, judged later against the module. */
static int
load_msettings(const struct loader *ld, const config_setting_t *grp,
    const char *prefix, struct cfg_module *m)
{
	const config_setting_t *s;
	struct cfg_msetting *v;
	char key[sizeof(ld->err->key)];
	const char *name;
	int i, n;

	if (!config_setting_is_group(grp)) {
		cfg_fail(ld, grp, prefix, "expected a group { ... }");
		return -1;
	}
	n = config_setting_length(grp);
	if (n > CFG_MSETTINGS_MAX) {
		cfg_fail(ld, grp, prefix, "more than %d settings",
		    CFG_MSETTINGS_MAX);
		return -1;
	}
	if (n > 0 && (m->settings = calloc((size_t)n, sizeof(*v))) == NULL) {
		cfg_fail(ld, grp, prefix, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(grp, (unsigned)i);
		name = config_setting_name(s);
		cfg_keyf(key, sizeof(key), "%s.%s", prefix, name ? name : "");
		v = &m->settings[m->nsettings];
		if ((v->name = strdup(name ? name : "")) == NULL ||
		    (v->file = cfg_source_file(ld, s)) == NULL) {
			free(v->name);
			cfg_fail(ld, s, key, "out of memory");
			return -1;
		}
		v->line = (int)config_setting_source_line(s);
		m->nsettings++;
		switch (config_setting_type(s)) {
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			v->type = CFG_MVAL_INT;
			v->i = config_setting_get_int64(s);
			break;
		case CONFIG_TYPE_FLOAT:
			v->type = CFG_MVAL_FLOAT;
			v->f = config_setting_get_float(s);
			break;
		case CONFIG_TYPE_BOOL:
			v->type = CFG_MVAL_BOOL;
			v->i = config_setting_get_bool(s) ? 1 : 0;
			break;
		case CONFIG_TYPE_STRING:
			v->type = CFG_MVAL_STRING;
			if ((v->s = strdup(config_setting_get_string(s))) ==
			    NULL) {
				cfg_fail(ld, s, key, "out of memory");
				return -1;
			}
			break;
		default:
			cfg_fail(ld, s, key,
			    "must be a number, true or false, or a string");
			return -1;
		}
	}
	return 0;
}

/*
 * The head of a list entry (modules, processes): where it is written and
 * its name, [a-z0-9_] of 1-64 bytes, checked before the other keys are
 * reported under it.  *name is the setting's string (not a copy).
 */
int
cfg_entry_head(const struct loader *ld, const config_setting_t *e,
    const char *key, const char *what, char **file, int *line,
    const char **name)
{
	const config_setting_t *s;

	*line = (int)config_setting_source_line(e);
	if ((*file = cfg_source_file(ld, e)) == NULL) {
		cfg_fail(ld, e, key, "out of memory");
		return -1;
	}
	if ((s = config_setting_get_member(e, "name")) == NULL ||
	    config_setting_type(s) != CONFIG_TYPE_STRING ||
	    !cfg_good_name(config_setting_get_string(s))) {
		cfg_fail(ld, s != NULL ? s : e, key,
		    "every %s needs name = \"...\" of 1-64 characters "
		    "a-z, 0-9 and _",
		    what);
		return -1;
	}
	*name = config_setting_get_string(s);
	return 0;
}

static int
load_module(const struct loader *ld, const config_setting_t *e, const char *key,
    struct cfg *c, struct cfg_module *m)
{
	const config_setting_t *s;
	char k[sizeof(ld->err->key)];
	const char *name;
	long long v;
	size_t j;
	int i, n;

	if (!config_setting_is_group(e)) {
		cfg_fail(ld, e, key,
		    "each entry must be a group { name = ...; path = ...; "
		    "opcode = ...; }");
		return -1;
	}
	if (cfg_entry_head(ld, e, key, "module", &m->file, &m->line, &name) ==
	    -1)
		return -1;
	for (j = 0; j + 1 < c->nmodules; j++) /* the last one is m */
		if (strcmp(c->modules[j].name, name) == 0) {
			cfg_fail(
			    ld, e, key, "module \"%s\" is listed twice", name);
			return -1;
		}
	if ((m->name = strdup(name)) == NULL) {
		cfg_fail(ld, e, key, "out of memory");
		return -1;
	}
	n = config_setting_length(e);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(e, (unsigned)i);
		name = config_setting_name(s);
		cfg_keyf(
		    k, sizeof(k), "modules.%s.%s", m->name, name ? name : "");
		if (strcmp(name, "name") == 0)
			continue;
		if (strcmp(name, "path") == 0) {
			if (config_setting_type(s) != CONFIG_TYPE_STRING ||
			    config_setting_get_string(s)[0] == '\0') {
				cfg_fail(
				    ld, s, k, "must be a file name in quotes");
				return -1;
			}
			free(m->path);
			if ((m->path = strdup(config_setting_get_string(s))) ==
			    NULL) {
				cfg_fail(ld, s, k, "out of memory");
				return -1;
			}
		} else if (strcmp(name, "opcode") == 0) {
			if (config_setting_type(s) != CONFIG_TYPE_INT &&
			    config_setting_type(s) != CONFIG_TYPE_INT64)
				v = -1;
			else
				v = config_setting_get_int64(s);
			if (v < 0x80 || v > 0xff) {
				cfg_fail(ld, s, k,
				    "must be an opcode from 0x80 to 0xff");
				return -1;
			}
			m->opcode = (unsigned)v;
		} else if (strcmp(name, "settings") == 0) {
			if (load_msettings(ld, s, k, m) == -1)
				return -1;
		} else {
			cfg_fail(ld, s, k,
			    "unknown setting (a module entry has name, path, "
			    "opcode and settings)");
			return -1;
		}
	}
	if (m->path == NULL || m->opcode == 0) {
		cfg_keyf(k, sizeof(k), "modules.%s", m->name);
		cfg_fail(ld, e, k, "missing %s",
		    m->path == NULL ? "path" : "opcode");
		return -1;
	}
	return 0;
}

static int
load_modules(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg *c)
{
	char k[sizeof(ld->err->key)];
	int i, n;

	if (!config_setting_is_list(s)) {
		cfg_fail(ld, s, key, "expected a list ( { ... }, ... )");
		return -1;
	}
	n = config_setting_length(s);
	if (n > CFG_MODULES_MAX) {
		cfg_fail(ld, s, key, "more than %d modules", CFG_MODULES_MAX);
		return -1;
	}
	if (n > 0 &&
	    (c->modules = calloc((size_t)n, sizeof(*c->modules))) == NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		cfg_keyf(k, sizeof(k), "%s[%d]", key, i);
		c->nmodules++;
		if (load_module(ld, config_setting_get_elem(s, (unsigned)i), k,
			c, &c->modules[i]) == -1)
			return -1;
	}
	return 0;
}

static int
load_group(const struct loader *ld, const config_setting_t *grp,
    const char *prefix, const struct spec *specs, struct cfg *c)
{
	const config_setting_t *s;
	const struct spec *sp;
	const char *name;
	char key[sizeof(ld->err->key)];
	int i, n, v;

	n = config_setting_length(grp);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(grp, (unsigned)i);
		if (s == NULL)
			continue;
		name = config_setting_name(s);
		if (name == NULL)
			name = "";
		if (prefix != NULL)
			snprintf(key, sizeof(key), "%s.%s", prefix, name);
		else
			snprintf(key, sizeof(key), "%s", name);

		for (sp = specs; sp->name != NULL; sp++)
			if (strcmp(sp->name, name) == 0)
				break;
		if (sp->name == NULL) {
			cfg_fail(ld, s, key, "unknown setting");
			return -1;
		}

		switch (sp->type) {
		case SPEC_GROUP:
			if (!config_setting_is_group(s)) {
				cfg_fail(
				    ld, s, key, "expected a group { ... }");
				return -1;
			}
			if (load_group(ld, s, key, sp->sub, c) == -1)
				return -1;
			break;
		case SPEC_LISTEN:
			if (load_listen(ld, s, key, c) == -1)
				return -1;
			break;
		case SPEC_UINT:
		case SPEC_U32:
		case SPEC_INT:
			if (load_int(ld, s, key, sp, c) == -1)
				return -1;
			break;
		case SPEC_TIMEOUT:
			if (load_timeout(ld, s, key, sp, c) == -1)
				return -1;
			break;
		case SPEC_BOOL:
			if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
				cfg_fail(ld, s, key, "must be true or false");
				return -1;
			}
			*(int *)(void *)((char *)c + sp->off) =
			    config_setting_get_bool(s) ? 1 : 0;
			break;
		case SPEC_LEVEL:
			if (load_enum(ld, s, key, level_names,
				NITEMS(level_names), &v) == -1)
				return -1;
			c->log_level = (enum cfg_log_level)v;
			break;
		case SPEC_TARGET:
			if (load_enum(ld, s, key, target_names,
				NITEMS(target_names), &v) == -1)
				return -1;
			c->log_target = (enum cfg_log_target)v;
			break;
		case SPEC_STRING:
			if (load_string(ld, s, key, sp, c) == -1)
				return -1;
			break;
		case SPEC_ALLOW:
			if (load_cidrs(ld, s, key, c->allow, &c->nallow) == -1)
				return -1;
			break;
		case SPEC_DENY:
			if (load_cidrs(ld, s, key, c->deny, &c->ndeny) == -1)
				return -1;
			break;
		case SPEC_TLSVER:
			if (load_enum(ld, s, key, tls_version_names,
				NITEMS(tls_version_names), &v) == -1)
				return -1;
			c->tls_min_version = (enum cfg_tls_version)v;
			break;
		case SPEC_MODULES:
			if (load_modules(ld, s, key, c) == -1)
				return -1;
			break;
		case SPEC_ADMIN:
			if (load_admin_listen(ld, s, key, c->admin_listen,
				&c->nadmin_listen) == -1)
				return -1;
			break;
		case SPEC_AGENT:
			if (load_admin_listen(ld, s, key, c->agent_listen,
				&c->nagent_listen) == -1)
				return -1;
			break;
		case SPEC_SLOW:
			if (load_enum(ld, s, key, slow_names,
				NITEMS(slow_names), &v) == -1)
				return -1;
			c->pubsub_slow_drop = v;
			break;
		case SPEC_PSACL:
			if (cfg_load_psacl(ld, s, key, c) == -1)
				return -1;
			break;
		case SPEC_PROCS:
			if (cfg_load_procs(ld, s, key, c) == -1)
				return -1;
			break;
		}
	}
	return 0;
}

int
cfg_defaults(struct cfg *c, struct cfg_error *err)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NITEMS(default_listen); i++) {
		if ((c->listen[i] = strdup(default_listen[i])) == NULL) {
			cfg_free(c);
			if (err != NULL)
				error_set(err, "", 0, "", "out of memory");
			return -1;
		}
		c->nlisten = i + 1;
	}
	c->admin_listen[0] = strdup(DEFAULT_ADMIN_LISTEN);
	c->agent_listen[0] = strdup(DEFAULT_AGENT_LISTEN);
	if (c->admin_listen[0] == NULL || c->agent_listen[0] == NULL) {
		cfg_free(c);
		if (err != NULL)
			error_set(err, "", 0, "", "out of memory");
		return -1;
	}
	c->nadmin_listen = c->nagent_listen = 1;
	c->workers = 0;
	c->queue_size = 1024;
	c->max_connections = 10000;
	c->max_frame_size = 1048576;
	c->backlog = 511;
	c->idle_ms = 60 * 1000;
	c->read_ms = 10 * 1000;
	c->write_ms = 10 * 1000;
	c->shutdown_ms = 10 * 1000;
	c->handshake_ms = 10 * 1000;
	c->tcp_nodelay = 1;
	c->tcp_keepalive = 1;
	c->log_level = CFG_LOG_INFO;
	c->log_target = CFG_LOG_STDERR;
	c->tls_min_version = CFG_TLS_1_2;
	c->handler_threads = 8;
	c->handler_queue = 1024;
	c->max_inflight = 64;
	c->handler_ms = 30 * 1000;
	c->pubsub_enabled = 1;
	c->pubsub_max_subs = 1024;
	c->pubsub_max_pending = 4u << 20;
	c->pubsub_slow_drop = 0;
	return 0;
}

/* The first tls:// element of the listen list in the file, or NULL. */
static const config_setting_t *
tls_listen_elem(const config_t *lc)
{
	const config_setting_t *l, *e;
	int i, n, tls;

	if ((l = config_lookup(lc, "listen")) == NULL)
		return NULL;
	n = config_setting_length(l);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(l, (unsigned)i);
		if (e != NULL && config_setting_type(e) == CONFIG_TYPE_STRING) {
			(void)cfg_listen_addr(
			    config_setting_get_string(e), &tls);
			if (tls)
				return e;
		}
	}
	return NULL;
}

/*
 * Settings that need other settings, checked once everything is read.
 * Reported at the setting that makes the other one necessary.
 */
static int
check_dependencies(
    const struct loader *ld, const config_t *lc, const struct cfg *c)
{
	const config_setting_t *e, *s;
	const char *need = NULL;

	if (cfg_tls_listeners(c) > 0 &&
	    (c->tls_certificate == NULL || c->tls_key == NULL)) {
		need =
		    c->tls_certificate == NULL ? "tls.certificate" : "tls.key";
		/* Defaults have no tls:// entry: it is in the file. */
		if ((e = tls_listen_elem(lc)) != NULL) {
			cfg_fail(ld, e, need,
			    "not set, and listen \"%.100s\" needs it",
			    config_setting_get_string(e));
			return -1;
		}
		error_set(ld->err, ld->path, 0, need,
		    "not set, and a tls:// listener needs it");
		return -1;
	}
	if (c->tls_verify_client && c->tls_ca == NULL) {
		/* false by default: true came from the file. */
		s = config_lookup(lc, "tls.verify_client");
		if (s == NULL)
			s = config_root_setting(lc);
		cfg_fail(ld, s, "tls.verify_client",
		    "needs tls.ca, the CA certificates that client "
		    "certificates are checked against");
		return -1;
	}
	return 0;
}

/* The directory part of path, malloc'ed: "." if none. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	if ((d = malloc((size_t)(slash - path) + 1)) == NULL)
		return NULL;
	memcpy(d, path, (size_t)(slash - path));
	d[slash - path] = '\0';
	return d;
}

/*
 * libconfig 1.5 opens an @include target without checking it, and when it
 * is a directory its scanner calls exit(2) (upstream issue #292, still in
 * 1.8): a reload would kill the daemon.  So every @include line is checked
 * first, recursively: its target must be a regular file.  A missing
 * target is left for libconfig to report ("cannot open include file").
 * libconfig 1.5 prefixes the include directory to every name, absolute or
 * not, and so does this check.  Returns 0, or -1 with *err filled in.
 */
static int
check_includes(
    const char *file, const char *dir, int depth, struct cfg_error *err)
{
	char *line = NULL, target[4096], msg[sizeof(err->msg)];
	const char *p, *q;
	size_t cap = 0;
	ssize_t n;
	struct stat st;
	int lineno = 0, rc = 0;
	FILE *f;

	if (depth > 10) {
		error_set(err, file, 0, "", "@include nested too deeply");
		return -1;
	}
	if ((f = fopen(file, "r")) == NULL)
		return 0; /* libconfig reports it */
	while (rc == 0 && (n = getline(&line, &cap, f)) != -1) {
		lineno++;
		/* A NUL ends a C string early: the scanner would see "". */
		if (memchr(line, '\0', (size_t)n) != NULL) {
			error_set(err, file, lineno, "",
			    "NUL byte in the configuration");
			rc = -1;
			break;
		}
		/* Loose on purpose: any case, any blank (as the scanner). */
		for (p = line; *p != '\0' && strchr(" \t\r\f\v", *p); p++)
			;
		if (strncasecmp(p, "@include", 8) != 0)
			continue;
		for (p += 8; *p != '\0' && strchr(" \t\r\f\v", *p); p++)
			;
		if (*p != '"' || (q = strchr(p + 1, '"')) == NULL)
			continue; /* a syntax error libconfig reports */
		if (memchr(p + 1, '\\', (size_t)(q - p - 1)) != NULL) {
			/* Escapes could spell any path: not worth decoding. */
			error_set(err, file, lineno, "",
			    "@include names may not contain a backslash");
			rc = -1;
			break;
		}
		snprintf(target, sizeof(target), "%s/%.*s", dir,
		    (int)(q - p - 1), p + 1);
		if (stat(target, &st) != 0)
			continue;
		if (!S_ISREG(st.st_mode)) {
			snprintf(msg, sizeof(msg),
			    "@include \"%.*s\": not a regular file",
			    (int)(q - p - 1 > 200 ? 200 : q - p - 1), p + 1);
			error_set(err, file, lineno, "", msg);
			rc = -1;
		} else {
			rc = check_includes(target, dir, depth + 1, err);
		}
	}
	free(line);
	(void)fclose(f); /* read only */
	return rc;
}

int
cfg_load(const char *path, struct cfg *out, struct cfg_error *err)
{
	struct cfg_error scratch;
	struct loader ld;
	struct stat st;
	struct cfg c;
	config_t lc;
	char file[sizeof(err->file)];
	char msg[sizeof(err->msg)];
	char why[128];
	char *dir;
	int rc, e;

	if (err == NULL)
		err = &scratch;
	memset(err, 0, sizeof(*err));
	memset(out, 0, sizeof(*out));
	if (path == NULL)
		path = CFG_DEFAULT_PATH;

	if (cfg_defaults(&c, err) == -1)
		return -1;
	if ((dir = dir_of(path)) == NULL) {
		cfg_free(&c);
		error_set(err, path, 0, "", "out of memory");
		return -1;
	}
	ld.path = path;
	ld.dir = dir;
	ld.err = err;

	if (check_includes(path, dir, 0, err) != 0) {
		free(dir);
		cfg_free(&c);
		return -1;
	}
	config_init(&lc);
	config_set_include_dir(&lc, dir);
	errno = 0;
	if (config_read_file(&lc, path) == CONFIG_TRUE) {
		rc = load_group(
		    &ld, config_root_setting(&lc), NULL, root_spec, &c);
		if (rc == 0)
			rc = check_dependencies(&ld, &lc, &c);
		if (rc == 0)
			rc = cfg_check_proc_names(&ld, &lc, &c);
	} else if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
		e = errno;
		/* libconfig refuses a directory without setting errno. */
		if (e == 0 && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			e = EISDIR;
		else if (e == 0)
			e = EIO;
		/* XSI strerror_r; the GNU one would give "error N". */
		if (strerror_r(e, why, sizeof(why)) != 0)
			snprintf(why, sizeof(why), "error %d", e);
		snprintf(msg, sizeof(msg), "cannot read file: %s", why);
		error_set(err, path, 0, "", msg);
		rc = -1;
	} else {
		report_path(&ld, config_error_file(&lc), file, sizeof(file));
		error_set(err, file, config_error_line(&lc), "",
		    config_error_text(&lc) ? config_error_text(&lc)
					   : "syntax error");
		rc = -1;
	}
	config_destroy(&lc);
	free(dir);

	if (rc == -1) {
		cfg_free(&c);
		return -1;
	}
	*out = c;
	return 0;
}

static void
free_modules(struct cfg_module *ms, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < ms[i].nsettings; j++) {
			free(ms[i].settings[j].name);
			free(ms[i].settings[j].s);
			free(ms[i].settings[j].file);
		}
		free(ms[i].settings);
		free(ms[i].name);
		free(ms[i].path);
		free(ms[i].file);
	}
	free(ms);
}

void
cfg_free(struct cfg *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < CFG_LISTEN_MAX; i++)
		free(c->listen[i]);
	for (i = 0; i < CFG_ADMIN_LISTEN_MAX; i++) {
		free(c->admin_listen[i]);
		free(c->agent_listen[i]);
	}
	free(c->user);
	free(c->group);
	free(c->pid_file);
	free(c->tls_certificate);
	free(c->tls_key);
	free(c->tls_ca);
	free(c->module_dir);
	free_modules(c->modules, c->nmodules);
	cfg_free_psacl(c->pubsub_acl, c->pubsub_nacl);
	cfg_free_procs(c->procs, c->nprocs);
	memset(c, 0, sizeof(*c));
}

/* *dst = a copy of src (NULL stays NULL); 0 or -1. */
int
cfg_dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src != NULL && (*dst = strdup(src)) == NULL)
		return -1;
	return 0;
}

static int same_str(const char *a, const char *b);

static int
copy_modules(struct cfg *dst, const struct cfg *src)
{
	const struct cfg_module *sm;
	struct cfg_module *m;
	size_t i, j;

	if (src->nmodules == 0)
		return 0;
	if ((dst->modules = calloc(src->nmodules, sizeof(*m))) == NULL)
		return -1;
	for (i = 0; i < src->nmodules; i++) {
		sm = &src->modules[i];
		m = &dst->modules[i];
		dst->nmodules++;
		m->opcode = sm->opcode;
		m->line = sm->line;
		if (cfg_dup_str(&m->name, sm->name) != 0 ||
		    cfg_dup_str(&m->path, sm->path) != 0 ||
		    cfg_dup_str(&m->file, sm->file) != 0)
			return -1;
		if (sm->nsettings == 0)
			continue;
		if ((m->settings = calloc(
			 sm->nsettings, sizeof(*m->settings))) == NULL)
			return -1;
		for (j = 0; j < sm->nsettings; j++) {
			m->settings[j] = sm->settings[j];
			m->settings[j].name = m->settings[j].s = NULL;
			m->settings[j].file = NULL;
			m->nsettings++;
			if (cfg_dup_str(&m->settings[j].name,
				sm->settings[j].name) != 0 ||
			    cfg_dup_str(&m->settings[j].s, sm->settings[j].s) !=
				0 ||
			    cfg_dup_str(&m->settings[j].file,
				sm->settings[j].file) != 0)
				return -1;
		}
	}
	return 0;
}

int
cfg_same_modules(const struct cfg *a, const struct cfg *b)
{
	size_t i;

	if (a->nmodules != b->nmodules ||
	    !same_str(a->module_dir, b->module_dir))
		return 0;
	for (i = 0; i < a->nmodules; i++)
		if (strcmp(a->modules[i].name, b->modules[i].name) != 0 ||
		    strcmp(a->modules[i].path, b->modules[i].path) != 0 ||
		    a->modules[i].opcode != b->modules[i].opcode)
			return 0;
	return 1;
}

/* Copy an admin address list; 0 or -1 (what was copied stays counted). */
static int
copy_addrs(char **dst, size_t *ndst, char *const *src, size_t nsrc)
{
	size_t i;

	for (i = 0; i < nsrc && i < CFG_ADMIN_LISTEN_MAX; i++) {
		if ((dst[i] = strdup(src[i])) == NULL)
			return -1;
		*ndst = i + 1;
	}
	return 0;
}

static int
same_addrs(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t i;

	if (na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 0;
	return 1;
}

/*
 * dst is overwritten, not freed first: pass an empty struct.  On failure
 * dst is left empty.
 */
int
cfg_copy(struct cfg *dst, const struct cfg *src)
{
	struct cfg c;
	size_t i;

	if (dst == src)
		return 0;
	c = *src;
	memset(c.listen, 0, sizeof(c.listen));
	c.nlisten = 0;
	memset(c.admin_listen, 0, sizeof(c.admin_listen));
	memset(c.agent_listen, 0, sizeof(c.agent_listen));
	c.nadmin_listen = c.nagent_listen = 0;
	c.user = c.group = c.pid_file = NULL;
	c.tls_certificate = c.tls_key = c.tls_ca = NULL;
	c.module_dir = NULL;
	c.modules = NULL;
	c.nmodules = 0;
	c.procs = NULL;
	c.nprocs = 0;
	c.pubsub_acl = NULL;
	c.pubsub_nacl = 0;
	if (copy_modules(&c, src) != 0 || cfg_copy_psacl(&c, src) != 0 ||
	    cfg_copy_procs(&c, src) != 0 ||
	    cfg_dup_str(&c.module_dir, src->module_dir) != 0 ||
	    cfg_dup_str(&c.user, src->user) != 0 ||
	    cfg_dup_str(&c.group, src->group) != 0 ||
	    cfg_dup_str(&c.pid_file, src->pid_file) != 0 ||
	    cfg_dup_str(&c.tls_certificate, src->tls_certificate) != 0 ||
	    cfg_dup_str(&c.tls_key, src->tls_key) != 0 ||
	    cfg_dup_str(&c.tls_ca, src->tls_ca) != 0) {
		cfg_free(&c);
		memset(dst, 0, sizeof(*dst));
		return -1;
	}
	for (i = 0; i < src->nlisten && i < CFG_LISTEN_MAX; i++) {
		if ((c.listen[i] = strdup(src->listen[i])) == NULL) {
			cfg_free(&c);
			memset(dst, 0, sizeof(*dst));
			return -1;
		}
		c.nlisten = i + 1;
	}
	if (copy_addrs(c.admin_listen, &c.nadmin_listen, src->admin_listen,
		src->nadmin_listen) != 0 ||
	    copy_addrs(c.agent_listen, &c.nagent_listen, src->agent_listen,
		src->nagent_listen) != 0) {
		cfg_free(&c);
		memset(dst, 0, sizeof(*dst));
		return -1;
	}
	*dst = c;
	return 0;
}

static int
has_listen(const struct cfg *c, const char *s)
{
	size_t i;

	for (i = 0; i < c->nlisten; i++)
		if (c->listen[i] != NULL && strcmp(c->listen[i], s) == 0)
			return 1;
	return 0;
}

/* Same set of addresses, in any order. */
static int
same_listen(const struct cfg *a, const struct cfg *b)
{
	size_t i;

	if (a->nlisten != b->nlisten)
		return 0;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen[i] == NULL || !has_listen(b, a->listen[i]))
			return 0;
	for (i = 0; i < b->nlisten; i++)
		if (b->listen[i] == NULL || !has_listen(a, b->listen[i]))
			return 0;
	return 1;
}

static int
same_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

const char *
cfg_key_at(size_t i)
{
	enum { NKEYS = 64 };
	static char names[NKEYS][40];
	static int built;
	const struct spec *sp, *sub;
	size_t n = 0;

	/* Built once from the tables; callers are single-threaded tests. */
	if (!built) {
		for (sp = root_spec; sp->name != NULL && n < NKEYS; sp++) {
			snprintf(names[n++], sizeof(names[0]), "%s", sp->name);
			if (sp->type != SPEC_GROUP)
				continue;
			for (sub = sp->sub; sub->name != NULL && n < NKEYS;
			     sub++)
				snprintf(names[n++], sizeof(names[0]), "%s.%s",
				    sp->name, sub->name);
		}
		for (; n < NKEYS; n++)
			names[n][0] = '\0';
		built = 1;
	}
	if (i >= NKEYS || names[i][0] == '\0')
		return NULL;
	return names[i];
}

/*
 * Settings that need a restart: listen (compared as a set, so reordering
 * does not count), workers, queue_size, backlog and log.target.  Names are
 * listed in that order.  buf may be NULL when cap is 0; a short buffer
 * gets a truncated, NUL-terminated list and the full count is returned.
 */
int
cfg_diff_restart(
    const struct cfg *old, const struct cfg *new_cfg, char *buf, size_t cap)
{
	const char *names[16];
	size_t i, n = 0, len = 0;
	int r;

	if (!same_listen(old, new_cfg))
		names[n++] = "listen";
	if (old->workers != new_cfg->workers)
		names[n++] = "workers";
	if (old->queue_size != new_cfg->queue_size)
		names[n++] = "queue_size";
	if (old->backlog != new_cfg->backlog)
		names[n++] = "backlog";
	if (old->log_target != new_cfg->log_target)
		names[n++] = "log.target";
	if (!same_str(old->user, new_cfg->user))
		names[n++] = "user";
	if (!same_str(old->group, new_cfg->group))
		names[n++] = "group";
	if (!same_str(old->pid_file, new_cfg->pid_file))
		names[n++] = "pid_file";
	if (!cfg_same_modules(old, new_cfg))
		names[n++] = "modules";
	if (old->handler_threads != new_cfg->handler_threads)
		names[n++] = "handler_threads";
	if (old->handler_queue != new_cfg->handler_queue)
		names[n++] = "handler_queue";
	if (!same_addrs(old->admin_listen, old->nadmin_listen,
		new_cfg->admin_listen, new_cfg->nadmin_listen))
		names[n++] = "admin.listen";
	if (!same_addrs(old->agent_listen, old->nagent_listen,
		new_cfg->agent_listen, new_cfg->nagent_listen))
		names[n++] = "admin.agent_listen";
	if (old->pubsub_enabled != new_cfg->pubsub_enabled)
		names[n++] = "pubsub.enabled";

	if (buf != NULL && cap > 0) {
		buf[0] = '\0';
		for (i = 0; i < n && len < cap; i++) {
			r = snprintf(buf + len, cap - len, "%s%s",
			    i == 0 ? "" : ", ", names[i]);
			if (r < 0)
				break;
			len += (size_t)r;
		}
	}
	return (int)n;
}

const char *
cfg_log_level_str(enum cfg_log_level l)
{
	if ((unsigned)l < NITEMS(level_names))
		return level_names[l];
	return "unknown";
}

const char *
cfg_log_target_str(enum cfg_log_target t)
{
	if ((unsigned)t < NITEMS(target_names))
		return target_names[t];
	return "unknown";
}

const char *
cfg_tls_version_str(enum cfg_tls_version v)
{
	if ((unsigned)v < NITEMS(tls_version_names))
		return tls_version_names[v];
	return "unknown";
}

const char *
cfg_listen_addr(const char *entry, int *tls)
{
	int t = strncmp(entry, CFG_TLS_PREFIX, CFG_TLS_PREFIX_LEN) == 0;

	if (tls != NULL)
		*tls = t;
	return t ? entry + CFG_TLS_PREFIX_LEN : entry;
}

size_t
cfg_tls_listeners(const struct cfg *c)
{
	size_t i, n = 0;
	int tls;

	for (i = 0; i < c->nlisten; i++) {
		if (c->listen[i] == NULL)
			continue;
		(void)cfg_listen_addr(c->listen[i], &tls);
		n += (size_t)tls;
	}
	return n;
}

/* An append-only writer into a fixed buffer that remembers overflow. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
	int overflow;
};

static void out_printf(struct out *, const char *, ...) CFG_PRINTF(2, 3);

static void
out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	r = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	o->len += (size_t)r;
}

/* A libconfig string literal: quotes and backslashes escaped. */
static void
out_string(struct out *o, const char *s)
{
	out_printf(o, "\"");
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			out_printf(o, "\\%c", *s);
		else
			out_printf(o, "%c", *s);
	}
	out_printf(o, "\"");
}

/* name = "value"; when value is set. */
static void
out_string_setting(
    struct out *o, const char *indent, const char *name, const char *value)
{
	if (value == NULL)
		return;
	out_printf(o, "%s%s = ", indent, name);
	out_string(o, value);
	out_printf(o, ";\n");
}

/* Milliseconds as seconds: "60" or "0.500". */
static void
out_seconds(struct out *o, const char *name, uint32_t ms)
{
	if (ms % 1000 == 0)
		out_printf(
		    o, "\t%s = %lu;\n", name, (unsigned long)(ms / 1000));
	else
		out_printf(o, "\t%s = %lu.%03lu;\n", name,
		    (unsigned long)(ms / 1000), (unsigned long)(ms % 1000));
}

static void
out_cidrs(
    struct out *o, const char *name, const struct cfg_cidr *list, size_t n)
{
	char host[INET6_ADDRSTRLEN];
	size_t i;

	out_printf(o, "\t%s = [ ", name);
	for (i = 0; i < n; i++) {
		if (inet_ntop(list[i].v6 ? AF_INET6 : AF_INET, list[i].addr,
			host, sizeof(host)) == NULL)
			snprintf(host, sizeof(host), "?");
		out_printf(
		    o, "%s\"%s/%u\"", i > 0 ? ", " : "", host, list[i].prefix);
	}
	out_printf(o, " ];\n");
}

static void
out_pubsub(struct out *o, const struct cfg *c)
{
	char host[INET6_ADDRSTRLEN];
	size_t i, j;
	int l;

	out_printf(o,
	    "pubsub: {\n\tenabled = %s;\n\tmax_subscriptions = %u;\n"
	    "\tmax_pending = %lu;\n\tslow_consumer = \"%s\";\n\tacl = (",
	    c->pubsub_enabled ? "true" : "false", c->pubsub_max_subs,
	    (unsigned long)c->pubsub_max_pending,
	    slow_names[c->pubsub_slow_drop ? 1 : 0]);
	for (i = 0; i < c->pubsub_nacl; i++) {
		const struct cfg_psacl *r = &c->pubsub_acl[i];

		out_printf(o, "%s\n\t\t{ ", i > 0 ? "," : "");
		if (r->has_peer) {
			if (inet_ntop(r->peer.v6 ? AF_INET6 : AF_INET,
				r->peer.addr, host, sizeof(host)) == NULL)
				snprintf(host, sizeof(host), "?");
			out_printf(
			    o, "peer = \"%s/%u\"; ", host, r->peer.prefix);
		}
		if (r->tls_cn != NULL) {
			out_printf(o, "tls_cn = ");
			out_string(o, r->tls_cn);
			out_printf(o, "; ");
		}
		for (l = 0; l < CFG_PS_LISTS; l++) {
			if (r->npat[l] == 0)
				continue;
			out_printf(
			    o, "%s = [ ", cfg_ps_list_str((enum cfg_ps_list)l));
			for (j = 0; j < r->npat[l]; j++) {
				if (j > 0)
					out_printf(o, ", ");
				out_string(o, r->pat[l][j]);
			}
			out_printf(o, " ]; ");
		}
		out_printf(o, "}");
	}
	out_printf(o, "%s);\n};\n", c->pubsub_nacl > 0 ? "\n\t" : " ");
}

/*
 * Write c as a libconfig file that cfg_load reads back to the same values.
 * Returns 0, or -1 if buf is too small (it then holds a truncated,
 * NUL-terminated prefix).
 */
int
cfg_dump(const struct cfg *c, char *buf, size_t cap)
{
	struct out o = {buf, cap, 0, 0};
	size_t i;

	if (buf == NULL || cap == 0)
		return -1;
	buf[0] = '\0';

	out_printf(&o, "listen = [ ");
	for (i = 0; i < c->nlisten && i < CFG_LISTEN_MAX; i++) {
		if (i > 0)
			out_printf(&o, ", ");
		out_string(&o, c->listen[i] ? c->listen[i] : "");
	}
	out_printf(&o, " ];\n");
	out_printf(&o, "workers = %u;\n", c->workers);
	out_printf(&o, "queue_size = %u;\n", c->queue_size);
	out_printf(&o, "max_connections = %u;\n", c->max_connections);
	out_printf(
	    &o, "max_frame_size = %lu;\n", (unsigned long)c->max_frame_size);
	out_printf(&o, "backlog = %d;\n", c->backlog);
	out_printf(&o, "timeouts: {\n");
	out_seconds(&o, "idle", c->idle_ms);
	out_seconds(&o, "read", c->read_ms);
	out_seconds(&o, "write", c->write_ms);
	out_seconds(&o, "shutdown", c->shutdown_ms);
	out_seconds(&o, "handshake", c->handshake_ms);
	out_seconds(&o, "drain", c->drain_ms);
	out_printf(&o, "};\n");
	out_printf(&o, "tcp: {\n\tnodelay = %s;\n\tkeepalive = %s;\n};\n",
	    c->tcp_nodelay ? "true" : "false",
	    c->tcp_keepalive ? "true" : "false");
	out_printf(&o, "log: {\n\tlevel = \"%s\";\n\ttarget = \"%s\";\n};\n",
	    cfg_log_level_str(c->log_level), cfg_log_target_str(c->log_target));
	out_printf(
	    &o, "max_connections_per_source = %u;\n", c->max_conn_per_source);
	out_printf(&o, "access: {\n");
	out_cidrs(&o, "allow", c->allow, c->nallow);
	out_cidrs(&o, "deny", c->deny, c->ndeny);
	out_printf(&o, "};\n");
	out_printf(&o, "tls: {\n");
	out_string_setting(&o, "\t", "certificate", c->tls_certificate);
	out_string_setting(&o, "\t", "key", c->tls_key);
	out_string_setting(&o, "\t", "ca", c->tls_ca);
	out_printf(&o, "\tverify_client = %s;\n\tmin_version = \"%s\";\n};\n",
	    c->tls_verify_client ? "true" : "false",
	    cfg_tls_version_str(c->tls_min_version));
	out_string_setting(&o, "", "user", c->user);
	out_string_setting(&o, "", "group", c->group);
	out_string_setting(&o, "", "pid_file", c->pid_file);
	out_printf(&o, "admin: {\n\tlisten = [ ");
	for (i = 0; i < c->nadmin_listen; i++) {
		out_printf(&o, "%s", i > 0 ? ", " : "");
		out_string(&o, c->admin_listen[i]);
	}
	out_printf(&o, " ];\n\tagent_listen = [ ");
	for (i = 0; i < c->nagent_listen; i++) {
		out_printf(&o, "%s", i > 0 ? ", " : "");
		out_string(&o, c->agent_listen[i]);
	}
	out_printf(&o, " ];\n};\n");
	out_pubsub(&o, c);
	return o.overflow ? -1 : 0;
}
