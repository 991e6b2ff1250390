/*
 * Loading modules and the dispatch table (module.h).
 *
 * Everything a bad module could get wrong is checked here, on the main
 * thread, before a worker can reach it, and reported with the file and
 * line of its entry in socketd.conf: the file (missing, not a regular
 * file, writable by group or others, or in such a directory), the
 * symbol, the ABI, the descriptor's names and kinds, opcodes outside
 * 0x80-0xff or overlapping another module's, and each setting against
 * the schema the module declares.  dlopen() runs no module function of
 * ours; the descriptor is data.
 */
#include <sys/stat.h>

#include <stddef.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "module.h"
#include "psub.h"
#include "proto.h"

#ifndef SOCKETD_MODULE_DIR
#define SOCKETD_MODULE_DIR "/usr/lib/socketd/modules"
#endif

/* struct sd_module as ABI 1.0 defined it: up to and including fini. */
#define SD_MODULE_SIZE_1_0                                                     \
	(offsetof(struct sd_module, fini) +                                    \
	    sizeof(((struct sd_module *)0)->fini))

#define STR_(x) #x
#define STR(x)  STR_(x)

static void msgf(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf for messages that may be cut (paths are long). */
static void
msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

const char *
modreg_abi_str(void)
{
	return STR(SD_ABI_MAJOR) "." STR(SD_ABI_MINOR);
}

static int
good_name(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
			(s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
			return 0;
	return n > 0 && n <= 64;
}

static void
builtins(struct modreg *r)
{
	const char *name;
	unsigned op;

	for (op = 0; op < 0x80; op++) {
		if ((name = proto_opcode_str(op)) == NULL)
			continue;
		r->ops[op].kind = OP_BUILTIN;
		snprintf(r->ops[op].name, sizeof(r->ops[op].name), "%s", name);
	}
	/* The core push: the server's drain notice (protocol v1.1). */
	r->ops[PROTO_OP_GOAWAY].kind = OP_PUSH;
	snprintf(r->ops[PROTO_OP_GOAWAY].name,
	    sizeof(r->ops[PROTO_OP_GOAWAY].name), "goaway");
}

/* Refuse what others could have replaced (sshd's StrictModes). */
static int
check_perms(const char *path, char *why, size_t len)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	if (stat(path, &st) == -1) {
		msgf(why, len, "%s: %s", path, LOG_ERRSTR(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		msgf(why, len, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		msgf(why, len,
		    "%s: writable by %s: refusing to load it (chmod go-w)",
		    path, (st.st_mode & S_IWOTH) ? "everyone" : "its group");
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		msgf(why, len,
		    "%s: owned by uid %u, neither root nor socketd's user: "
		    "refusing to load it",
		    path, (unsigned)st.st_uid);
		return -1;
	}
	if (realpath(path, dir) == NULL) {
		msgf(why, len, "%s: %s", path, LOG_ERRSTR(errno));
		return -1;
	}
	/* Every directory up to /: none may let others swap the file. */
	while ((slash = strrchr(dir, '/')) != NULL) {
		*(slash == dir ? slash + 1 : slash) = '\0';
		if (stat(dir, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)) &&
		    !(st.st_mode & S_ISVTX)) {
			msgf(why, len,
			    "directory %s is writable by %s: refusing to load "
			    "modules from it",
			    dir,
			    (st.st_mode & S_IWOTH) ? "everyone" : "its group");
			return -1;
		}
		if (slash == dir)
			break;
	}
	return 0;
}

/* Parse a default or range-check a value; 0 or -1 with why. */
static int
parse_default(
    const struct sd_setting *sp, struct sd_setval *v, char *why, size_t len)
{
	const char *d = sp->def != NULL ? sp->def : "";
	char *end;

	errno = 0;
	switch (sp->type) {
	case SD_SET_INT:
		v->i = strtoll(d, &end, 0);
		if (errno != 0 || end == d || *end != '\0')
			goto bad;
		break;
	case SD_SET_FLOAT:
		v->f = strtod(d, &end);
		if (errno != 0 || end == d || *end != '\0' || !isfinite(v->f))
			goto bad;
		break;
	case SD_SET_BOOL:
		if (strcmp(d, "true") == 0)
			v->i = 1;
		else if (strcmp(d, "false") == 0 || *d == '\0')
			v->i = 0;
		else
			goto bad;
		break;
	case SD_SET_STRING:
		if ((v->s = strdup(d)) == NULL) {
			msgf(why, len, "out of memory");
			return -1;
		}
		break;
	default:
		msgf(why, len, "setting %s has an unknown type %d", sp->name,
		    (int)sp->type);
		return -1;
	}
	return 0;
bad:
	msgf(why, len, "setting %s: bad default \"%s\"", sp->name, d);
	return -1;
}

static const char *
type_words(enum sd_setting_type t)
{
	switch (t) {
	case SD_SET_INT:
		return "an integer";
	case SD_SET_FLOAT:
		return "a number";
	case SD_SET_BOOL:
		return "true or false";
	default:
		return "a string in double quotes";
	}
}

static int
has_range(const struct sd_setting *sp)
{
	return sp->min != 0 || sp->max != 0;
}

/* Take the file's value for sp; 0, or -1 with why. */
static int
take_value(const struct sd_setting *sp, const struct cfg_msetting *ms,
    struct sd_setval *v, char *why, size_t len)
{
	double x = 0;

	switch (sp->type) {
	case SD_SET_INT:
		if (ms->type != CFG_MVAL_INT)
			goto type;
		v->i = ms->i;
		x = (double)ms->i;
		break;
	case SD_SET_FLOAT:
		if (ms->type == CFG_MVAL_INT)
			v->f = (double)ms->i;
		else if (ms->type == CFG_MVAL_FLOAT)
			v->f = ms->f;
		else
			goto type;
		x = v->f;
		break;
	case SD_SET_BOOL:
		if (ms->type != CFG_MVAL_BOOL)
			goto type;
		v->i = ms->i;
		return 0;
	default:
		if (ms->type != CFG_MVAL_STRING)
			goto type;
		x = (double)strlen(ms->s);
		if (has_range(sp) && (x < sp->min || x > sp->max)) {
			msgf(why, len, "must be a string of %.0f to %.0f bytes",
			    sp->min, sp->max);
			return -1;
		}
		free(v->s);
		if ((v->s = strdup(ms->s)) == NULL) {
			msgf(why, len, "out of memory");
			return -1;
		}
		return 0;
	}
	if (has_range(sp) && !(x >= sp->min && x <= sp->max)) {
		msgf(why, len, "must be %s from %.15g to %.15g",
		    type_words(sp->type), sp->min, sp->max);
		return -1;
	}
	return 0;
type:
	msgf(why, len, "must be %s", type_words(sp->type));
	return -1;
}

static void
settings_free(struct sd_settings *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		free(s->v[i].s);
	free(s);
}

/* The module's own default must be in its own range. */
static int
check_default(const struct sd_setting *sp, const struct sd_setval *v, char *why,
    size_t len)
{
	double x;

	if (!has_range(sp) || sp->type == SD_SET_BOOL)
		return 0;
	x = sp->type == SD_SET_INT     ? (double)v->i
	    : sp->type == SD_SET_FLOAT ? v->f
				       : (double)strlen(v->s);
	if (x >= sp->min && x <= sp->max)
		return 0;
	msgf(why, len,
	    "setting %s: default \"%s\" is outside its range %g to %g",
	    sp->name, sp->def != NULL ? sp->def : "", sp->min, sp->max);
	return -1;
}

/*
 * The module's settings from cm, checked against d's schema; NULL with
 * err ("file:line: modules.hello.settings.x: why").
 */
static struct sd_settings *
settings_build(const struct sd_module *d, const struct cfg_module *cm,
    char *err, size_t len)
{
	const struct sd_setting *sp;
	const struct cfg_msetting *ms;
	struct sd_settings *s;
	char why[256], names[256];
	size_t n = 0, i, j, off;

	for (sp = d->settings; sp != NULL && sp->name != NULL; sp++)
		n++;
	if ((s = calloc(1, sizeof(*s) + n * sizeof(s->v[0]))) == NULL) {
		msgf(err, len, "%s:%d: modules.%s: out of memory", cm->file,
		    cm->line, cm->name);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		sp = &d->settings[i];
		s->v[i].name = sp->name;
		s->v[i].type = sp->type;
		s->n = i + 1;
		if (!good_name(sp->name) ||
		    parse_default(sp, &s->v[i], why, sizeof(why)) != 0 ||
		    check_default(sp, &s->v[i], why, sizeof(why)) != 0) {
			msgf(err, len, "%s:%d: modules.%s: %s", cm->file,
			    cm->line, cm->name,
			    good_name(sp->name) ? why
						: "a setting has a bad name");
			settings_free(s);
			return NULL;
		}
	}
	for (j = 0; j < cm->nsettings; j++) {
		ms = &cm->settings[j];
		for (i = 0; i < n; i++)
			if (strcmp(s->v[i].name, ms->name) == 0)
				break;
		if (i == n) {
			off = 0;
			names[0] = '\0';
			for (i = 0; i < n && off < sizeof(names); i++)
				off += (size_t)snprintf(names + off,
				    sizeof(names) - off, "%s%s", i ? ", " : "",
				    s->v[i].name);
			msgf(err, len,
			    "%s:%d: modules.%s.settings.%s: unknown setting "
			    "(module %s has %s)",
			    ms->file, ms->line, cm->name, ms->name, cm->name,
			    n ? names : "none");
			settings_free(s);
			return NULL;
		}
		if (take_value(
			&d->settings[i], ms, &s->v[i], why, sizeof(why)) != 0) {
			msgf(err, len, "%s:%d: modules.%s.settings.%s: %s",
			    ms->file, ms->line, cm->name, ms->name, why);
			settings_free(s);
			return NULL;
		}
	}
	return s;
}

/* Check the descriptor itself; 0 or -1 with why. */
static int
check_descriptor(const struct sd_module *d, const struct cfg_module *cm,
    unsigned *nh, unsigned *np, char *why, size_t len)
{
	const struct sd_handler *h;
	const char *const *p;

	if (d->magic != SD_MODULE_MAGIC) {
		msgf(why, len,
		    "socketd_module is not a socketd module descriptor (bad "
		    "magic number)");
		return -1;
	}
	/*
	 * A module of an older minor has a shorter descriptor: the fields of
	 * ABI 1.0 must be there; later ones (none yet) would be read only
	 * below d->size.
	 */
	if (d->abi_major != SD_ABI_MAJOR || d->abi_minor > SD_ABI_MINOR ||
	    d->size < SD_MODULE_SIZE_1_0) {
		msgf(why, len,
		    "module %s was built for module ABI %u.%u; this socketd "
		    "provides ABI %s (rebuild it against this socketd's "
		    "<socketd/module.h>)",
		    good_name(d->name) ? d->name : cm->name,
		    (unsigned)d->abi_major, (unsigned)d->abi_minor,
		    modreg_abi_str());
		return -1;
	}
	if (!good_name(d->name)) {
		msgf(why, len,
		    "the descriptor's name is not 1-64 "
		    "characters a-z, 0-9 and _");
		return -1;
	}
	if (strcmp(d->name, cm->name) != 0) {
		msgf(why, len,
		    "the file holds module \"%s\", not \"%s\" (set name = "
		    "\"%s\")",
		    d->name, cm->name, d->name);
		return -1;
	}
	*nh = *np = 0;
	for (h = d->handlers; h != NULL && h->name != NULL; h++, (*nh)++) {
		if (good_name(h->name) &&
		    strlen(d->name) + 1 + strlen(h->name) > 64) {
			msgf(why, len,
			    "%s.%s is longer than the 64 bytes OPCODES allows",
			    d->name, h->name);
			return -1;
		}
		if (!good_name(h->name) || h->fn == NULL ||
		    (h->kind != SD_SYNC && h->kind != SD_BLOCKING &&
			h->kind != SD_ASYNC)) {
			msgf(why, len,
			    "handler %u has a bad name, kind or function", *nh);
			return -1;
		}
	}
	for (p = d->pushes; p != NULL && *p != NULL; p++, (*np)++)
		if (!good_name(*p) || strlen(d->name) + 1 + strlen(*p) > 64) {
			msgf(why, len, "push opcode %u has a bad name", *np);
			return -1;
		}
	if (*nh == 0) {
		msgf(why, len, "the module declares no handlers");
		return -1;
	}
	if (cm->opcode + *nh + *np - 1 > 0xff) {
		msgf(why, len,
		    "%u handlers and %u push opcodes from opcode 0x%02x run "
		    "past 0xff",
		    *nh, *np, cm->opcode);
		return -1;
	}
	return 0;
}

static int
open_one(struct modreg *r, const struct cfg *c, size_t k, char *err, size_t len)
{
	const struct cfg_module *cm = &c->modules[k];
	struct sd_mod *m = &r->mods[k];
	const struct sd_module *d;
	char path[PATH_MAX], why[512];
	unsigned i, nh, np, op;
	void *h;

	r->nmods = k + 1; /* modreg_free() frees what this one gets */
	if (cm->path[0] == '/')
		snprintf(path, sizeof(path), "%s", cm->path);
	else
		snprintf(path, sizeof(path), "%s/%s",
		    c->module_dir != NULL ? c->module_dir : SOCKETD_MODULE_DIR,
		    cm->path);
	if (check_perms(path, why, sizeof(why)) != 0)
		goto fail;
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) == NULL) {
		/* Main thread, before any other exists (or under -t). */
		// NOLINTNEXTLINE(concurrency-mt-unsafe)
		msgf(why, sizeof(why), "cannot load: %s", dlerror());
		goto fail;
	}
	if ((d = dlsym(h, "socketd_module")) == NULL) {
		msgf(why, sizeof(why),
		    "%s: no socketd_module symbol (is it a socketd module? "
		    "SD_MODULE_EXPORT defines it)",
		    path);
		goto fail;
	}
	if (check_descriptor(d, cm, &nh, &np, why, sizeof(why)) != 0)
		goto fail;
	for (i = 0; i < nh + np; i++) {
		op = cm->opcode + i;
		if (r->ops[op].kind != OP_NONE) {
			msgf(why, sizeof(why),
			    "opcode 0x%02x (%s.%s) is taken by %s", op, d->name,
			    i < nh ? d->handlers[i].name : d->pushes[i - nh],
			    r->ops[op].name);
			goto fail;
		}
	}
	m->d = d;
	m->index = (unsigned)k;
	m->line = cm->line;
	m->opcode = cm->opcode;
	m->nhandlers = nh;
	m->npushes = np;
	if ((m->name = strdup(cm->name)) == NULL ||
	    (m->path = strdup(path)) == NULL ||
	    (m->file = strdup(cm->file)) == NULL) {
		msgf(why, sizeof(why), "out of memory");
		goto fail;
	}
	if ((m->set = settings_build(d, cm, err, len)) == NULL)
		return -1;
	for (i = 0; i < nh + np; i++) {
		struct op *o = &r->ops[cm->opcode + i];

		o->mod = m;
		o->index = (uint8_t)i;
		if (i < nh) {
			o->kind = d->handlers[i].kind == SD_BLOCKING
			    ? OP_BLOCKING
			    : d->handlers[i].kind == SD_ASYNC ? OP_ASYNC
							      : OP_SYNC;
			o->fn = d->handlers[i].fn;
			snprintf(o->name, sizeof(o->name), "%s.%s", d->name,
			    d->handlers[i].name);
		} else {
			o->kind = OP_PUSH;
			snprintf(o->name, sizeof(o->name), "%s.%s", d->name,
			    d->pushes[i - nh]);
		}
	}
	return 0;
fail:
	msgf(err, len, "%s:%d: modules.%s: %s", cm->file, cm->line, cm->name,
	    why);
	return -1;
}

int
modreg_open(struct modreg *r, const struct cfg *c, char *err, size_t len)
{
	size_t k;

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->stats_mu, NULL);
	builtins(r);
	if (c->pubsub_enabled)
		psub_ops(r);
	if (c->nmodules == 0)
		return 0;
	if ((r->mods = calloc(c->nmodules, sizeof(*r->mods))) == NULL) {
		msgf(err, len, "out of memory");
		return -1;
	}
	for (k = 0; k < c->nmodules; k++)
		if (open_one(r, c, k, err, len) != 0)
			return -1;
	return 0;
}

int
modreg_init(struct modreg *r, const struct sd_api *api, char *err, size_t len)
{
	char why[256];
	size_t k;

	for (k = 0; k < r->nmods; k++) {
		struct sd_mod *m = &r->mods[k];

		why[0] = '\0';
		if (m->d->init != NULL &&
		    m->d->init(m, api, m->set, why, sizeof(why)) != 0) {
			msgf(err, len,
			    "%s:%d: modules.%s: module %s (%s): init "
			    "failed: %s",
			    m->file, m->line, m->name, m->name, m->path,
			    why[0] != '\0' ? why : "no reason given");
			return -1;
		}
		m->inited = 1;
	}
	return 0;
}

int
modreg_reload(struct modreg *r, const struct cfg *c, char *err, size_t len)
{
	struct sd_settings **next;
	char why[256];
	size_t k;
	int rc = 0, built;

	if (r->nmods == 0)
		return 0;
	if ((next = calloc(r->nmods, sizeof(struct sd_settings *))) == NULL) {
		msgf(err, len, "out of memory");
		return -1;
	}
	for (k = 0; k < r->nmods && rc == 0; k++)
		if ((next[k] = settings_build(
			 r->mods[k].d, &c->modules[k], err, len)) == NULL)
			rc = -1;
	built = rc == 0;
	/* Only when every module's settings passed; then every reload. */
	for (k = 0; k < r->nmods && built; k++) {
		struct sd_mod *m = &r->mods[k];

		why[0] = '\0';
		if (m->d->reload == NULL) {
			if (next[k]->n > 0)
				log_info("module %s has no reload hook: its "
					 "settings change at the next restart",
				    m->name);
			continue;
		} else if (m->d->reload(m, next[k], why, sizeof(why)) != 0) {
			if (rc == 0)
				msgf(err, len,
				    "module %s refused its new settings: %s",
				    m->name,
				    why[0] != '\0' ? why : "no reason given");
			rc = -1;
			continue;
		}
		settings_free(m->set);
		m->set = next[k];
		next[k] = NULL;
	}
	for (k = 0; k < r->nmods; k++)
		settings_free(next[k]);
	free(next);
	return rc;
}

void
modreg_fini(struct modreg *r)
{
	size_t k;

	for (k = r->nmods; k > 0; k--) {
		struct sd_mod *m = &r->mods[k - 1];

		if (m->inited && m->d->fini != NULL)
			m->d->fini(m);
		m->inited = 0;
	}
}

void
modreg_free(struct modreg *r)
{
	size_t k;

	for (k = 0; k < r->nmods; k++) {
		free(r->mods[k].name);
		free(r->mods[k].path);
		free(r->mods[k].file);
		settings_free(r->mods[k].set);
	}
	free(r->mods);
	r->mods = NULL;
	r->nmods = 0;
	pthread_mutex_destroy(&r->stats_mu);
}

size_t
modreg_opcodes_text(const struct modreg *r, char *buf, size_t cap)
{
	size_t off = 0;
	unsigned op;
	int n;

	for (op = 0; op < 256; op++) {
		const struct op *o = &r->ops[op];

		if (o->kind == OP_NONE)
			continue;
		n = snprintf(buf + off, cap - off, "0x%02x %s%s\n", op, o->name,
		    o->kind == OP_PUSH ? " push" : "");
		if (n < 0 || (size_t)n >= cap - off)
			break; /* whole lines only */
		off += (size_t)n;
	}
	return off;
}

/* struct sd_stats: where the stat() calls of one hook go. */
struct sd_stats {
	const struct sd_mod *m;
	char *buf;
	size_t cap, *off;
};

void
modreg_stat_line(struct sd_stats *st, const char *name, uint64_t value)
{
	char key[160];

	if (st == NULL || !good_name(name))
		return;
	snprintf(key, sizeof(key), "%s_%s", st->m->name, name);
	proto_kv_u64(st->buf, st->cap, st->off, key, value);
}

void
modreg_stats_text(struct modreg *r, char *buf, size_t cap, size_t *off)
{
	struct sd_stats st;
	size_t k;

	pthread_mutex_lock(&r->stats_mu);
	for (k = 0; k < r->nmods; k++) {
		if (r->mods[k].d->stats == NULL || !r->mods[k].inited)
			continue;
		st.m = &r->mods[k];
		st.buf = buf;
		st.cap = cap;
		st.off = off;
		r->mods[k].d->stats(&r->mods[k], &st);
	}
	pthread_mutex_unlock(&r->stats_mu);
}

static const struct sd_setval *
setting(const struct sd_settings *s, const char *name, enum sd_setting_type t)
{
	size_t i;

	if (s == NULL || name == NULL)
		return NULL;
	for (i = 0; i < s->n; i++)
		if (s->v[i].type == t && strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

int64_t
modreg_setting_int(const struct sd_settings *s, const char *name)
{
	const struct sd_setval *v = setting(s, name, SD_SET_INT);

	return v != NULL ? v->i : 0;
}

double
modreg_setting_float(const struct sd_settings *s, const char *name)
{
	const struct sd_setval *v = setting(s, name, SD_SET_FLOAT);

	return v != NULL ? v->f : 0;
}

int
modreg_setting_bool(const struct sd_settings *s, const char *name)
{
	const struct sd_setval *v = setting(s, name, SD_SET_BOOL);

	return v != NULL ? (int)v->i : 0;
}

const char *
modreg_setting_str(const struct sd_settings *s, const char *name)
{
	const struct sd_setval *v = setting(s, name, SD_SET_STRING);

	return v != NULL ? v->s : NULL;
}
