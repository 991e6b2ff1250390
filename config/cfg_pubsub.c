/*
 * The pub/sub permission rules, pubsub.acl: read and checked here with
 * file and line (each pattern is a valid filter, each rule names a peer
 * network or a TLS client CN), copied and freed with the rest of the
 * configuration.  The daemon applies them (daemon/psub.c).
 *
 *     pubsub: { acl = (
 *       { peer = "10.0.0.0/8"; publish = [ "chat.>" ]; subscribe = [ "chat.>"
 * ]; }, { tls_cn = "alice"; deny_publish = [ "audit.>" ]; }
 *     ); };
 */
#include <stdlib.h>
#include <string.h>

#include "cfg_int.h"
#include "pubsub.h"

static const char *const ps_list_names[] = {
    [CFG_PS_PUBLISH] = "publish",
    [CFG_PS_SUBSCRIBE] = "subscribe",
    [CFG_PS_DENY_PUBLISH] = "deny_publish",
    [CFG_PS_DENY_SUBSCRIBE] = "deny_subscribe",
};

static int
load_patterns(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg_psacl *r, enum cfg_ps_list l)
{
	const config_setting_t *e;
	enum pubsub_err pe;
	const char *v;
	int i, n;

	if (!config_setting_is_list(s) && !config_setting_is_array(s)) {
		cfg_fail(
		    ld, s, key, "expected a list of filters ([ \"chat.>\" ])");
		return -1;
	}
	n = config_setting_length(s);
	if (n > CFG_PSACL_PATTERNS) {
		cfg_fail(ld, s, key, "at most %d filters, not %d",
		    CFG_PSACL_PATTERNS, n);
		return -1;
	}
	if (n > 0 && (r->pat[l] = calloc((size_t)n, sizeof(char *))) == NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, (unsigned)i);
		if (e == NULL || config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_fail(ld, e ? e : s, key,
			    "expected a list of filters ([ \"chat.>\" ])");
			return -1;
		}
		v = config_setting_get_string(e);
		if ((pe = pubsub_filter_check(v, strlen(v))) != PUBSUB_OK) {
			cfg_fail(ld, e, key,
			    "\"%.100s\": not a valid filter: %s", v,
			    pubsub_err_str(pe));
			return -1;
		}
		if ((r->pat[l][i] = strdup(v)) == NULL) {
			cfg_fail(ld, e, key, "out of memory");
			return -1;
		}
		r->npat[l] = (size_t)i + 1;
	}
	return 0;
}

static int
load_psrule(const struct loader *ld, const config_setting_t *e, const char *key,
    struct cfg_psacl *r)
{
	const config_setting_t *s;
	char k[sizeof(ld->err->key)];
	const char *name, *v;
	int i, n, l;

	if (!config_setting_is_group(e)) {
		cfg_fail(ld, e, key,
		    "each rule must be a group { peer = ...; publish = [ ... "
		    "]; ... }");
		return -1;
	}
	r->line = (int)config_setting_source_line(e);
	if ((r->file = cfg_source_file(ld, e)) == NULL) {
		cfg_fail(ld, e, key, "out of memory");
		return -1;
	}
	n = config_setting_length(e);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(e, (unsigned)i);
		name = config_setting_name(s);
		cfg_keyf(k, sizeof(k), "%s.%s", key, name ? name : "");
		for (l = 0; l < CFG_PS_LISTS; l++)
			if (strcmp(name, ps_list_names[l]) == 0)
				break;
		if (l < CFG_PS_LISTS) {
			if (r->pat[l] != NULL) {
				cfg_fail(ld, s, k, "listed twice");
				return -1;
			}
			if (load_patterns(ld, s, k, r, (enum cfg_ps_list)l) ==
			    -1)
				return -1;
			continue;
		}
		if (strcmp(name, "peer") == 0) {
			if (config_setting_type(s) != CONFIG_TYPE_STRING ||
			    cfg_cidr_parse(
				config_setting_get_string(s), &r->peer) != 0) {
				cfg_fail(ld, s, k,
				    "must be an IPv4 or IPv6 network "
				    "(\"10.0.0.0/8\")");
				return -1;
			}
			r->has_peer = 1;
		} else if (strcmp(name, "tls_cn") == 0) {
			if (config_setting_type(s) != CONFIG_TYPE_STRING ||
			    (v = config_setting_get_string(s))[0] == '\0') {
				cfg_fail(
				    ld, s, k, "must be a non-empty string");
				return -1;
			}
			if ((r->tls_cn = strdup(v)) == NULL) {
				cfg_fail(ld, s, k, "out of memory");
				return -1;
			}
		} else {
			cfg_fail(ld, s, k,
			    "unknown setting (a rule has peer, tls_cn, "
			    "publish, subscribe, deny_publish and "
			    "deny_subscribe)");
			return -1;
		}
	}
	if (!r->has_peer && r->tls_cn == NULL) {
		cfg_fail(ld, e, key,
		    "a rule needs peer = \"CIDR\" or tls_cn = \"NAME\" (whom "
		    "it applies to)");
		return -1;
	}
	return 0;
}

int
cfg_load_psacl(const struct loader *ld, const config_setting_t *s,
    const char *key, struct cfg *c)
{
	char k[sizeof(ld->err->key)];
	int i, n;

	if (!config_setting_is_list(s)) {
		cfg_fail(ld, s, key, "expected a list ( { ... }, ... )");
		return -1;
	}
	n = config_setting_length(s);
	if (n > CFG_PSACL_MAX) {
		cfg_fail(ld, s, key, "more than %d rules", CFG_PSACL_MAX);
		return -1;
	}
	cfg_free_psacl(c->pubsub_acl, c->pubsub_nacl);
	c->pubsub_acl = NULL;
	c->pubsub_nacl = 0;
	if (n > 0 &&
	    (c->pubsub_acl = calloc((size_t)n, sizeof(*c->pubsub_acl))) ==
		NULL) {
		cfg_fail(ld, s, key, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		cfg_keyf(k, sizeof(k), "%s[%d]", key, i);
		c->pubsub_nacl++;
		if (load_psrule(ld, config_setting_get_elem(s, (unsigned)i), k,
			&c->pubsub_acl[i]) == -1)
			return -1;
	}
	return 0;
}

void
cfg_free_psacl(struct cfg_psacl *a, size_t n)
{
	size_t i, j;
	int l;

	for (i = 0; a != NULL && i < n; i++) {
		for (l = 0; l < CFG_PS_LISTS; l++) {
			for (j = 0; j < a[i].npat[l]; j++)
				free(a[i].pat[l][j]);
			free(a[i].pat[l]);
		}
		free(a[i].tls_cn);
		free(a[i].file);
	}
	free(a);
}

int
cfg_copy_psacl(struct cfg *dst, const struct cfg *src)
{
	struct cfg_psacl *a;
	size_t i, j;
	int l;

	dst->pubsub_acl = NULL;
	dst->pubsub_nacl = 0;
	if (src->pubsub_nacl == 0)
		return 0;
	if ((a = calloc(src->pubsub_nacl, sizeof(*a))) == NULL)
		return -1;
	dst->pubsub_acl = a;
	for (i = 0; i < src->pubsub_nacl; i++) {
		const struct cfg_psacl *r = &src->pubsub_acl[i];

		dst->pubsub_nacl = i + 1;
		a[i].has_peer = r->has_peer;
		a[i].peer = r->peer;
		a[i].line = r->line;
		if (cfg_dup_str(&a[i].tls_cn, r->tls_cn) != 0 ||
		    cfg_dup_str(&a[i].file, r->file) != 0)
			return -1;
		for (l = 0; l < CFG_PS_LISTS; l++) {
			if (r->npat[l] == 0)
				continue;
			if ((a[i].pat[l] =
				    calloc(r->npat[l], sizeof(char *))) == NULL)
				return -1;
			for (j = 0; j < r->npat[l]; j++) {
				a[i].npat[l] = j + 1;
				if (cfg_dup_str(
					&a[i].pat[l][j], r->pat[l][j]) != 0)
					return -1;
			}
		}
	}
	return 0;
}

const char *
cfg_ps_list_str(enum cfg_ps_list l)
{
	return (unsigned)l < CFG_PS_LISTS ? ps_list_names[l] : "?";
}
