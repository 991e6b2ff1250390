/*
 * cfg_int.h: what the files of config/ share while loading (not
 * installed, not seen outside config/).  cfg.c holds the loader and the
 * settings tables; lists with their own structure (processes) are loaded
 * in files of their own with these helpers.
 */
#ifndef SOCKETD_CFG_INT_H
#define SOCKETD_CFG_INT_H

#include <libconfig.h>

#include "cfg.h"

#if defined(__GNUC__)
#define CFG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CFG_PRINTF(f, a)
#endif

/* State of one cfg_load call. */
struct loader {
	const char *path; /* the main file, as given */
	const char *dir;  /* its directory: the @include base */
	struct cfg_error *err;
};

/* Report a problem with setting s, whose dotted name is key. */
void cfg_fail(const struct loader *ld, const config_setting_t *s,
    const char *key, const char *fmt, ...) CFG_PRINTF(4, 5);
/* A setting's dotted name, cut to fit (error messages only). */
void cfg_keyf(char *buf, size_t cap, const char *fmt, ...) CFG_PRINTF(3, 4);
/* A name of [a-z0-9_], 1-64 bytes. */
int cfg_good_name(const char *s);
/* The file s was written in, as the user can open it; malloc'ed. */
char *cfg_source_file(const struct loader *ld, const config_setting_t *s);

/* A list entry's file, line and name (cfg.c); 0, or -1 reported. */
int cfg_entry_head(const struct loader *ld, const config_setting_t *e,
    const char *key, const char *what, char **file, int *line,
    const char **name);

/* cfg_procs.c */
int cfg_load_procs(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg *c);
/* Names shared with the modules list, after both are loaded; 0 or -1. */
int cfg_check_proc_names(
    const struct loader *ld, const config_t *lc, const struct cfg *c);
void cfg_free_procs(struct cfg_proc *p, size_t n);
int cfg_copy_procs(struct cfg *dst, const struct cfg *src);

/* cfg_pubsub.c: pubsub.acl */
int cfg_load_psacl(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg *c);
void cfg_free_psacl(struct cfg_psacl *a, size_t n);
int cfg_copy_psacl(struct cfg *dst, const struct cfg *src);

/* *dst = a copy of src (NULL stays NULL); 0 or -1. */
int cfg_dup_str(char **dst, const char *src);

#endif /* SOCKETD_CFG_INT_H */
