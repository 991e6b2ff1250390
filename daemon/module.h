/*
 * module: loading socketd modules (<socketd/module.h>) and the dispatch
 * table that built-in opcodes and module handlers share.
 *
 * Life: modreg_open() (main thread, before privileges are dropped; also
 * `socketd -t`) resolves each configured file, refuses a group- or
 * world-writable file or directory, dlopen()s it, checks the descriptor
 * (magic, ABI, names, handler kinds), the opcode ranges and the settings
 * against the module's schema, all without calling module code.
 * modreg_init() calls each init(); modreg_reload() each reload() on
 * SIGHUP; modreg_fini() each fini() after the workers have stopped.
 * Nothing is ever dlclose()d.
 *
 * After modreg_init() the table is read-only: workers read ops[] without
 * a lock.  A module's settings pointer is swapped on the main thread only.
 */
#ifndef SOCKETD_MODULE_INT_H
#define SOCKETD_MODULE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <socketd/module.h>

#include "cfg.h"

enum op_kind {
	OP_NONE = 0, /* UNKNOWN_OPCODE */
	OP_BUILTIN,  /* proto_handle() */
	OP_PUSH,     /* server-to-client only: a request is BAD_REQUEST */
	OP_SYNC,     /* module handlers, by enum sd_kind */
	OP_BLOCKING,
	OP_ASYNC,
};

struct op {
	uint8_t kind;  /* enum op_kind */
	uint8_t index; /* handler or push number within its module */
	struct sd_mod *mod;
	sd_handler_fn *fn;
	char name[80]; /* "ping", "hello.upper" */
};

/* One value of a module's settings (the schema's order). */
struct sd_setval {
	const char *name;
	enum sd_setting_type type;
	int64_t i;
	double f;
	char *s;
};

struct sd_settings {
	size_t n;
	struct sd_setval v[];
};

struct sd_mod {
	const struct sd_module *d;
	char *name;
	char *path; /* as opened */
	char *file; /* the configuration file and line of its entry */
	int line;
	unsigned index;
	unsigned opcode, nhandlers, npushes;
	struct sd_settings *set; /* in force */
	int inited;
};

struct modreg {
	struct op ops[256];
	struct sd_mod *mods;
	size_t nmods;
	pthread_mutex_t stats_mu; /* serialises the modules' stats() hooks */
};

/*
 * Built-ins only; then open c's modules.  0, or -1 with err filled:
 * "file:line: modules.NAME: reason".
 */
int modreg_open(struct modreg *r, const struct cfg *c, char *err, size_t len);
/* Call every init(); 0, or -1 with err naming the module. */
int modreg_init(
    struct modreg *r, const struct sd_api *api, char *err, size_t len);
/*
 * SIGHUP with c's settings (the module list unchanged).  Every module's
 * settings are checked first: a bad one fails the reload before any
 * module sees it.  Then each reload() in turn; one that refuses keeps its
 * old settings and fails the reload (-1, err) after the rest have run.
 */
int modreg_reload(struct modreg *r, const struct cfg *c, char *err, size_t len);
void modreg_fini(struct modreg *r);
/* Free what modreg_open built (not the loaded objects: never unloaded). */
void modreg_free(struct modreg *r);

/* OPCODES text: "0xNN name[ push]\n" in opcode order. */
size_t modreg_opcodes_text(const struct modreg *r, char *buf, size_t cap);
/* The modules' own STATS lines, appended at *off. */
void modreg_stats_text(struct modreg *r, char *buf, size_t cap, size_t *off);

/* The module ABI this socketd provides, for -V: "1.0". */
const char *modreg_abi_str(void);

/* The sd_api functions implemented here. */
void modreg_stat_line(struct sd_stats *st, const char *name, uint64_t value);
int64_t modreg_setting_int(const struct sd_settings *s, const char *name);
double modreg_setting_float(const struct sd_settings *s, const char *name);
int modreg_setting_bool(const struct sd_settings *s, const char *name);
const char *modreg_setting_str(const struct sd_settings *s, const char *name);
#endif /* SOCKETD_MODULE_INT_H */
