/*
 * The processes list: handler programs socketd starts and supervises
 * (daemon/procs.c does the running; this file only reads and checks).
 *
 *     processes = (
 *       { name = "py"; command = [ "/usr/bin/python3", "/srv/h.py" ];
 *         opcode = 0xa0; instances = 4; max_inflight = 32;
 *         user = "nobody"; restart_delay = 1; env = { FOO = "bar"; }; }
 *     );
 *
 * What can be judged from the file is judged here, with file and line:
 * names, the command (an absolute path: there is no shell and no PATH
 * search), ranges, environment names.  Whether the program exists and
 * runs, and which handlers it serves, the daemon finds out when it starts
 * it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_int.h"

static int
env_name_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (!((s[n] >= 'A' && s[n] <= 'Z') ||
			(s[n] >= 'a' && s[n] <= 'z') || s[n] == '_' ||
			(n > 0 && s[n] >= '0' && s[n] <= '9')))
			return 0;
	return n > 0 && n <= 128;
}

static int
load_command(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg_proc *p)
{
	const config_setting_t *e;
	const char *v;
	int i, n;

	n = (config_setting_is_array(s) || config_setting_is_list(s))
	    ? config_setting_length(s)
	    : -1;
	if (n < 1 || n > CFG_PROC_ARGS_MAX) {
		cfg_fail(ld, s, key,
		    "must be a list of 1 to %d strings: [ "
		    "\"/path/to/program\", "
		    "\"argument\", ... ] (no shell runs it)",
		    CFG_PROC_ARGS_MAX);
		return -1;
	}
	if ((p->argv = calloc((size_t)n + 1, sizeof(char *))) == NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_fail(ld, e, key, "argument %d must be a string", i);
			return -1;
		}
		v = config_setting_get_string(e);
		if (i == 0 && v[0] != '/') {
			cfg_fail(ld, e, key,
			    "\"%.200s\" must be an absolute path: socketd runs "
			    "the program itself, without a shell or PATH",
			    v);
			return -1;
		}
		if (strlen(v) > 4095) {
			cfg_fail(
			    ld, e, key, "argument %d is over 4095 bytes", i);
			return -1;
		}
		if ((p->argv[i] = strdup(v)) == NULL) {
			cfg_fail(ld, e, key, "out of memory");
			return -1;
		}
		p->argc++;
	}
	return 0;
}

static int
load_env(const struct loader *ld, const config_setting_t *s, const char *key,
    struct cfg_proc *p)
{
	const config_setting_t *e;
	const char *name, *v;
	size_t len;
	int i, n;

	if (!config_setting_is_group(s)) {
		cfg_fail(ld, s, key, "expected a group { NAME = \"value\"; }");
		return -1;
	}
	n = config_setting_length(s);
	if (n > CFG_PROC_ENV_MAX) {
		cfg_fail(
		    ld, s, key, "more than %d variables", CFG_PROC_ENV_MAX);
		return -1;
	}
	if ((p->env = calloc((size_t)n + 1, sizeof(char *))) == NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		name = config_setting_name(e);
		if (name == NULL || !env_name_ok(name)) {
			cfg_fail(ld, e, key, "bad variable name");
			return -1;
		}
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_fail(ld, e, key,
			    "%s must be a string in double quotes", name);
			return -1;
		}
		v = config_setting_get_string(e);
		len = strlen(name) + 1 + strlen(v) + 1;
		if (len > 8192) {
			cfg_fail(ld, e, key, "%s is over 8 KiB", name);
			return -1;
		}
		if ((p->env[i] = malloc(len)) == NULL) {
			cfg_fail(ld, e, key, "out of memory");
			return -1;
		}
		/* Both lengths were measured above. */
		memcpy(p->env[i], name, strlen(name));
		p->env[i][strlen(name)] = '=';
		memcpy(p->env[i] + strlen(name) + 1, v, strlen(v) + 1);
		p->nenv++;
	}
	return 0;
}

/* An integer member in [lo, hi]; 0 or -1. */
static int
load_uint(const struct loader *ld, const config_setting_t *s, const char *key,
    long long lo, long long hi, unsigned *out)
{
	long long v = lo - 1;

	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64)
		v = config_setting_get_int64(s);
	if (v < lo || v > hi) {
		if (lo == 0x80)
			cfg_fail(
			    ld, s, key, "must be an opcode from 0x80 to 0xff");
		else
			cfg_fail(ld, s, key,
			    "must be an integer from %lld to %lld", lo, hi);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int
load_delay(const struct loader *ld, const config_setting_t *s, const char *key,
    uint32_t *ms)
{
	double f = -1;

	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64)
		f = (double)config_setting_get_int64(s);
	else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		f = config_setting_get_float(s);
	/* Written so that NaN fails too. */
	if (!(f >= 0 && f <= CFG_PROC_DELAY_MAX_S)) {
		cfg_fail(ld, s, key, "must be a number of seconds from 0 to %d",
		    CFG_PROC_DELAY_MAX_S);
		return -1;
	}
	*ms = (uint32_t)(f * 1000.0 + 0.5);
	return 0;
}

static int
load_member(const struct loader *ld, const config_setting_t *s,
    const char *name, const char *k, struct cfg_proc *p)
{
	if (strcmp(name, "command") == 0)
		return load_command(ld, s, k, p);
	if (strcmp(name, "opcode") == 0)
		return load_uint(ld, s, k, 0x80, 0xff, &p->opcode);
	if (strcmp(name, "instances") == 0)
		return load_uint(
		    ld, s, k, 1, CFG_PROC_INSTANCES_MAX, &p->instances);
	if (strcmp(name, "max_inflight") == 0)
		return load_uint(
		    ld, s, k, 1, CFG_PROC_INFLIGHT_MAX, &p->max_inflight);
	if (strcmp(name, "restart_delay") == 0)
		return load_delay(ld, s, k, &p->restart_delay_ms);
	if (strcmp(name, "env") == 0)
		return load_env(ld, s, k, p);
	if (strcmp(name, "user") == 0) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING ||
		    config_setting_get_string(s)[0] == '\0' ||
		    strlen(config_setting_get_string(s)) > 64) {
			cfg_fail(ld, s, k, "must be a user name in quotes");
			return -1;
		}
		free(p->user);
		if ((p->user = strdup(config_setting_get_string(s))) == NULL) {
			cfg_fail(ld, s, k, "out of memory");
			return -1;
		}
		return 0;
	}
	cfg_fail(ld, s, k,
	    "unknown setting (a process entry has name, command, opcode, "
	    "instances, max_inflight, user, restart_delay and env)");
	return -1;
}

static int
load_proc(const struct loader *ld, const config_setting_t *e, const char *key,
    struct cfg *c, struct cfg_proc *p)
{
	const config_setting_t *s;
	char k[sizeof(ld->err->key)];
	const char *name;
	size_t j;
	int i, n;

	if (!config_setting_is_group(e)) {
		cfg_fail(ld, e, key,
		    "each entry must be a group { name = ...; command = "
		    "[ ... ]; opcode = ...; }");
		return -1;
	}
	p->instances = 1;
	p->max_inflight = 32;
	p->restart_delay_ms = 1000;
	if (cfg_entry_head(ld, e, key, "process", &p->file, &p->line, &name) ==
	    -1)
		return -1;
	for (j = 0; j + 1 < c->nprocs; j++) /* the last one is p */
		if (strcmp(c->procs[j].name, name) == 0) {
			cfg_fail(
			    ld, e, key, "process \"%s\" is listed twice", name);
			return -1;
		}
	if ((p->name = strdup(name)) == NULL) {
		cfg_fail(ld, e, key, "out of memory");
		return -1;
	}
	n = config_setting_length(e);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(e, (unsigned)i);
		name = config_setting_name(s);
		if (name == NULL || strcmp(name, "name") == 0)
			continue;
		cfg_keyf(k, sizeof(k), "processes.%s.%s", p->name, name);
		if (load_member(ld, s, name, k, p) == -1)
			return -1;
	}
	if (p->argv == NULL || p->opcode == 0) {
		cfg_keyf(k, sizeof(k), "processes.%s", p->name);
		cfg_fail(ld, e, k, "missing %s",
		    p->argv == NULL ? "command" : "opcode");
		return -1;
	}
	return 0;
}

int
cfg_load_procs(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg *c)
{
	char k[sizeof(ld->err->key)];
	int i, n;

	if (!config_setting_is_list(s)) {
		cfg_fail(ld, s, key, "expected a list ( { ... }, ... )");
		return -1;
	}
	n = config_setting_length(s);
	if (n > CFG_PROCS_MAX) {
		cfg_fail(ld, s, key, "more than %d processes", CFG_PROCS_MAX);
		return -1;
	}
	cfg_free_procs(c->procs, c->nprocs);
	c->procs = NULL;
	c->nprocs = 0;
	if (n > 0 &&
	    (c->procs = calloc((size_t)n, sizeof(*c->procs))) == NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		cfg_keyf(k, sizeof(k), "%s[%d]", key, i);
		c->nprocs++;
		if (load_proc(ld, config_setting_get_elem(s, (unsigned)i), k, c,
			&c->procs[i]) == -1)
			return -1;
	}
	return 0;
}

/*
 * A process's handlers are served as NAME.HANDLER, as a module's are:
 * the two lists share one name space.
 */
int
cfg_check_proc_names(
    const struct loader *ld, const config_t *lc, const struct cfg *c)
{
	const config_setting_t *list, *e;
	size_t i, j;

	for (i = 0; i < c->nprocs; i++)
		for (j = 0; j < c->nmodules; j++) {
			if (strcmp(c->procs[i].name, c->modules[j].name) != 0)
				continue;
			list = config_lookup(lc, "processes");
			e = list != NULL
			    ? config_setting_get_elem(list, (unsigned)i)
			    : NULL;
			cfg_fail(ld, e != NULL ? e : config_root_setting(lc),
			    "processes", "\"%s\" is also a module's name",
			    c->procs[i].name);
			return -1;
		}
	return 0;
}

static void
free_strv(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
cfg_proc_clear(struct cfg_proc *p)
{
	free(p->name);
	free_strv(p->argv, p->argc);
	free_strv(p->env, p->nenv);
	free(p->user);
	free(p->file);
	memset(p, 0, sizeof(*p));
}

void
cfg_free_procs(struct cfg_proc *p, size_t n)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < n; i++)
		cfg_proc_clear(&p[i]);
	free(p);
}

static int
copy_strv(char ***dst, size_t *ndst, char *const *src, size_t n)
{
	size_t i;

	*dst = NULL;
	*ndst = 0;
	if (src == NULL)
		return 0;
	if ((*dst = calloc(n + 1, sizeof(char *))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if (((*dst)[i] = strdup(src[i])) == NULL)
			return -1;
		(*ndst)++;
	}
	return 0;
}

int
cfg_proc_copy(struct cfg_proc *p, const struct cfg_proc *sp)
{
	*p = *sp;
	p->name = p->user = p->file = NULL;
	p->argv = p->env = NULL;
	p->argc = p->nenv = 0;
	if (cfg_dup_str(&p->name, sp->name) != 0 ||
	    cfg_dup_str(&p->user, sp->user) != 0 ||
	    cfg_dup_str(&p->file, sp->file) != 0 ||
	    copy_strv(&p->argv, &p->argc, sp->argv, sp->argc) != 0 ||
	    copy_strv(&p->env, &p->nenv, sp->env, sp->nenv) != 0) {
		cfg_proc_clear(p);
		return -1;
	}
	return 0;
}

/* dst->procs = a deep copy of src's (dst's own are not freed). */
int
cfg_copy_procs(struct cfg *dst, const struct cfg *src)
{
	size_t i;

	dst->procs = NULL;
	dst->nprocs = 0;
	if (src->nprocs == 0)
		return 0;
	if ((dst->procs = calloc(src->nprocs, sizeof(*dst->procs))) == NULL)
		return -1;
	for (i = 0; i < src->nprocs; i++) {
		if (cfg_proc_copy(&dst->procs[i], &src->procs[i]) != 0)
			return -1;
		dst->nprocs++;
	}
	return 0;
}
