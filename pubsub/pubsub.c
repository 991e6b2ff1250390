/*
 * pubsub.h's functions.  The trie has one node per distinct filter prefix;
 * a node's literal children are kept sorted (binary search), its '*' and
 * '>' children apart.  Matching a topic of k tokens visits at most the
 * nodes on the paths the topic can take: unrelated filters cost nothing
 * (no scan over every pattern, the Redis PSUBSCRIBE problem).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub.h"

struct tok {
	const char *p;
	size_t len;
};

struct pubsub_node {
	struct pubsub_node *parent;
	struct pubsub_node **kids; /* literal children, sorted */
	struct pubsub_node *star, *gt;
	struct pubsub_entry *subs;
	uint32_t nkids; /* kids holds the power of two above (child_make) */
	uint16_t toklen;
	char tok[]; /* not NUL-terminated */
};

struct reg_entry {
	struct pubsub_entry e; /* first */
	unsigned w;
	uint32_t count;
};

struct pubsub_reg {
	struct pubsub_trie t;
	unsigned nworkers;
	uint64_t total;
};

static const char *const err_text[] = {
    [PUBSUB_OK] = "ok",
    [PUBSUB_E_EMPTY] = "empty topic or filter",
    [PUBSUB_E_LONG] = "longer than 255 bytes",
    [PUBSUB_E_TOKENS] = "more than 32 tokens",
    [PUBSUB_E_EMPTY_TOKEN] = "empty token: \"a..b\" or a '.' at either end",
    [PUBSUB_E_BYTE] = "byte outside 0x21-0x7e",
    [PUBSUB_E_WILDCARD] = "'*' or '>' must be a whole token",
    [PUBSUB_E_GT_NOT_LAST] = "'>' must be the last token",
    [PUBSUB_E_TOPIC_WILD] = "a published topic cannot contain '*' or '>'",
    [PUBSUB_E_SHORT] = "payload too short",
    [PUBSUB_E_LENGTH] = "length field does not match the payload",
    [PUBSUB_E_SUB_ID] = "sub_id must not be 0",
    [PUBSUB_E_OPTIONS] = "unknown option bits or non-zero reserved byte",
};

const char *
pubsub_err_str(enum pubsub_err e)
{
	if ((unsigned)e >= sizeof(err_text) / sizeof(err_text[0]))
		return "unknown error";
	return err_text[e];
}

int
pubsub_err_is_topic(enum pubsub_err e)
{
	return e >= PUBSUB_E_EMPTY && e <= PUBSUB_E_TOPIC_WILD;
}

/* Split and check; *n tokens into tk (PUBSUB_TOKENS_MAX of them). */
static enum pubsub_err
split(const char *s, size_t len, int filter, struct tok *tk, size_t *n)
{
	size_t i, start = 0, k = 0;
	unsigned char ch;

	if (len == 0)
		return PUBSUB_E_EMPTY;
	if (len > PUBSUB_NAME_MAX)
		return PUBSUB_E_LONG;
	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			ch = (unsigned char)s[i];
			if (ch < 0x21 || ch > 0x7e)
				return PUBSUB_E_BYTE;
			continue;
		}
		if (i == start)
			return PUBSUB_E_EMPTY_TOKEN;
		if (k == PUBSUB_TOKENS_MAX)
			return PUBSUB_E_TOKENS;
		tk[k].p = s + start;
		tk[k].len = i - start;
		k++;
		start = i + 1;
	}
	for (i = 0; i < k; i++) {
		int wild =
		    tk[i].len == 1 && (tk[i].p[0] == '*' || tk[i].p[0] == '>');

		if (!wild &&
		    (memchr(tk[i].p, '*', tk[i].len) != NULL ||
			memchr(tk[i].p, '>', tk[i].len) != NULL))
			return filter ? PUBSUB_E_WILDCARD : PUBSUB_E_TOPIC_WILD;
		if (wild && !filter)
			return PUBSUB_E_TOPIC_WILD;
		if (wild && tk[i].p[0] == '>' && i != k - 1)
			return PUBSUB_E_GT_NOT_LAST;
	}
	*n = k;
	return PUBSUB_OK;
}

enum pubsub_err
pubsub_topic_check(const char *t, size_t len)
{
	struct tok tk[PUBSUB_TOKENS_MAX];
	size_t n;

	return split(t, len, 0, tk, &n);
}

enum pubsub_err
pubsub_filter_check(const char *f, size_t len)
{
	struct tok tk[PUBSUB_TOKENS_MAX];
	size_t n;

	return split(f, len, 1, tk, &n);
}

int
pubsub_topic_reserved(const char *t, size_t len)
{
	return len > 0 && t[0] == '$';
}

static int
is_star(const struct tok *t)
{
	return t->len == 1 && t->p[0] == '*';
}

static int
is_gt(const struct tok *t)
{
	return t->len == 1 && t->p[0] == '>';
}

static int
is_wild(const struct tok *t)
{
	return is_star(t) || is_gt(t);
}

static int
same_tok(const struct tok *a, const struct tok *b)
{
	return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* A literal first token in the server's namespace. */
static int
dollar(const struct tok *t)
{
	return !is_wild(t) && t->p[0] == '$';
}

int
pubsub_match(const char *f, size_t flen, const char *t, size_t tlen)
{
	struct tok ft[PUBSUB_TOKENS_MAX], tt[PUBSUB_TOKENS_MAX];
	size_t nf, nt, i;

	if (split(f, flen, 1, ft, &nf) != PUBSUB_OK ||
	    split(t, tlen, 0, tt, &nt) != PUBSUB_OK)
		return 0;
	if (is_wild(&ft[0]) && dollar(&tt[0]))
		return 0;
	for (i = 0; i < nf; i++) {
		if (is_gt(&ft[i]))
			return nt > i;
		if (i >= nt)
			return 0;
		if (!is_star(&ft[i]) && !same_tok(&ft[i], &tt[i]))
			return 0;
	}
	return nf == nt;
}

int
pubsub_covers(const char *a, size_t alen, const char *b, size_t blen)
{
	struct tok at[PUBSUB_TOKENS_MAX], bt[PUBSUB_TOKENS_MAX];
	size_t na, nb, i;

	if (split(a, alen, 1, at, &na) != PUBSUB_OK ||
	    split(b, blen, 1, bt, &nb) != PUBSUB_OK)
		return 0;
	/* b reaches '$' topics that a wildcard-first a never matches. */
	if (is_wild(&at[0]) && dollar(&bt[0]))
		return 0;
	for (i = 0; i < na; i++) {
		if (is_gt(&at[i]))
			return nb > i;
		if (i >= nb)
			return 0;
		if (is_star(&at[i])) {
			if (is_gt(&bt[i]))
				return 0; /* b takes several tokens here */
			continue;
		}
		if (is_wild(&bt[i]) || !same_tok(&at[i], &bt[i]))
			return 0;
	}
	return na == nb;
}

int
pubsub_overlaps(const char *a, size_t alen, const char *b, size_t blen)
{
	struct tok at[PUBSUB_TOKENS_MAX], bt[PUBSUB_TOKENS_MAX];
	size_t na, nb, i;

	if (split(a, alen, 1, at, &na) != PUBSUB_OK ||
	    split(b, blen, 1, bt, &nb) != PUBSUB_OK)
		return 0;
	if ((is_wild(&at[0]) && dollar(&bt[0])) ||
	    (is_wild(&bt[0]) && dollar(&at[0])))
		return 0;
	for (i = 0; i < na && i < nb; i++) {
		if (is_gt(&at[i]) || is_gt(&bt[i]))
			return 1;
		if (is_star(&at[i]) || is_star(&bt[i]))
			continue;
		if (!same_tok(&at[i], &bt[i]))
			return 0;
	}
	return na == nb;
}

/* --- payloads --- */

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

enum pubsub_err
pubsub_parse_subscribe(const uint8_t *p, size_t len, struct pubsub_sub_req *out)
{
	size_t flen;

	memset(out, 0, sizeof(*out));
	if (len < 8)
		return PUBSUB_E_SHORT;
	flen = (size_t)p[6] << 8 | p[7];
	if (len != 8 + flen)
		return PUBSUB_E_LENGTH;
	out->sub_id = get32(p);
	out->options = p[4];
	if (out->sub_id == 0)
		return PUBSUB_E_SUB_ID;
	if ((p[4] & ~PUBSUB_OPT_NO_ECHO) != 0 || p[5] != 0)
		return PUBSUB_E_OPTIONS;
	out->filter = (const char *)p + 8;
	out->filter_len = flen;
	return pubsub_filter_check(out->filter, flen);
}

enum pubsub_err
pubsub_parse_unsubscribe(const uint8_t *p, size_t len, uint32_t *sub_id)
{
	*sub_id = 0;
	if (len < 4)
		return PUBSUB_E_SHORT;
	if (len != 4)
		return PUBSUB_E_LENGTH;
	*sub_id = get32(p);
	return PUBSUB_OK;
}

enum pubsub_err
pubsub_parse_publish(const uint8_t *p, size_t len, struct pubsub_pub_req *out)
{
	size_t tlen;

	memset(out, 0, sizeof(*out));
	if (len < 2)
		return PUBSUB_E_SHORT;
	tlen = (size_t)p[0] << 8 | p[1];
	if (tlen > len - 2)
		return PUBSUB_E_LENGTH;
	out->topic = (const char *)p + 2;
	out->topic_len = tlen;
	out->data = p + 2 + tlen;
	out->data_len = len - 2 - tlen;
	return pubsub_topic_check(out->topic, tlen);
}

void
pubsub_msg_head(uint8_t *dst, uint32_t sub_id, uint32_t lost, size_t tlen)
{
	put32(dst, sub_id);
	put32(dst + 4, lost);
	dst[8] = (uint8_t)(tlen >> 8);
	dst[9] = (uint8_t)tlen;
}

size_t
pubsub_encode_message(uint8_t *dst, size_t cap, uint32_t sub_id, uint32_t lost,
    const char *topic, size_t tlen, const uint8_t *data, size_t dlen)
{
	size_t n = PUBSUB_MSG_HDR + tlen + dlen;

	if (n > cap)
		return n;
	pubsub_msg_head(dst, sub_id, lost, tlen);
	if (tlen > 0)
		memcpy(dst + PUBSUB_MSG_HDR, topic, tlen);
	if (dlen > 0)
		memcpy(dst + PUBSUB_MSG_HDR + tlen, data, dlen);
	return n;
}

size_t
pubsub_encode_notice(
    uint8_t *dst, size_t cap, unsigned reason, const char *text)
{
	size_t tl = strlen(text), n = 2 + tl;

	if (n > cap)
		return n;
	dst[0] = (uint8_t)(reason >> 8);
	dst[1] = (uint8_t)reason;
	memcpy(dst + 2, text, tl);
	return n;
}

/* --- the trie --- */

static struct pubsub_node *
node_new(struct pubsub_node *parent, const struct tok *t)
{
	struct pubsub_node *n;
	size_t sz = offsetof(struct pubsub_node, tok) + t->len;

	/*
	 * From the end of the fields, not sizeof (which pads): a token of
	 * up to 10 bytes then fits a 64-byte malloc chunk, not an 80-byte
	 * one, in every trie node of every distinct filter.
	 */
	if ((n = calloc(1, sz > sizeof(*n) ? sz : sizeof(*n))) == NULL)
		return NULL;
	n->parent = parent;
	n->toklen = (uint16_t)t->len;
	memcpy(n->tok, t->p, t->len);
	return n;
}

static int
tok_cmp(const struct pubsub_node *n, const struct tok *t)
{
	if (n->toklen != t->len)
		return n->toklen < t->len ? -1 : 1;
	return memcmp(n->tok, t->p, t->len);
}

/* Index of t among n's literal kids, or where it would go (*found 0). */
static uint32_t
kid_find(const struct pubsub_node *n, const struct tok *t, int *found)
{
	uint32_t lo = 0, hi = n->nkids, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = tok_cmp(n->kids[mid], t);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static struct pubsub_node *
child(const struct pubsub_node *n, const struct tok *t)
{
	int found;
	uint32_t i;

	if (is_star(t))
		return n->star;
	if (is_gt(t))
		return n->gt;
	i = kid_find(n, t, &found);
	return found ? n->kids[i] : NULL;
}

static struct pubsub_node *
child_make(struct pubsub_trie *tr, struct pubsub_node *n, const struct tok *t)
{
	struct pubsub_node *k, **slot = NULL, **nk;
	uint32_t i, ncap;
	int found;

	if ((k = child(n, t)) != NULL)
		return k;
	if (is_star(t))
		slot = &n->star;
	else if (is_gt(t))
		slot = &n->gt;
	/*
	 * No capacity field (4 bytes a node): kids is resized as nkids
	 * reaches 0 or a power of two, to twice that.  Removals never shrink
	 * it, and nkids cannot climb past a power of two without passing
	 * it, so the array always holds one more.
	 */
	if (slot == NULL && (n->nkids & (n->nkids - 1)) == 0) {
		ncap = n->nkids ? n->nkids * 2 : 2;
		if (ncap < n->nkids ||
		    (nk = realloc(n->kids, ncap * sizeof(*nk))) == NULL)
			return NULL;
		n->kids = nk;
	}
	if ((k = node_new(n, t)) == NULL)
		return NULL;
	tr->nodes++;
	if (slot != NULL) {
		*slot = k;
		return k;
	}
	i = kid_find(n, t, &found);
	memmove(n->kids + i + 1, n->kids + i, (n->nkids - i) * sizeof(k));
	n->kids[i] = k;
	n->nkids++;
	return k;
}

void
pubsub_trie_init(struct pubsub_trie *t)
{
	memset(t, 0, sizeof(*t));
}

static void
node_free(struct pubsub_node *n)
{
	uint32_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkids; i++)
		node_free(n->kids[i]);
	node_free(n->star);
	node_free(n->gt);
	free(n->kids);
	free(n);
}

void
pubsub_trie_fini(struct pubsub_trie *t)
{
	node_free(t->root);
	memset(t, 0, sizeof(*t));
}

static void
detach(struct pubsub_node *p, struct pubsub_node *n)
{
	struct tok t = {n->tok, n->toklen};
	uint32_t i;
	int found;

	if (p->star == n) {
		p->star = NULL;
		return;
	}
	if (p->gt == n) {
		p->gt = NULL;
		return;
	}
	i = kid_find(p, &t, &found);
	if (!found)
		return;
	memmove(p->kids + i, p->kids + i + 1, (p->nkids - i - 1) * sizeof(n));
	p->nkids--;
	if (p->nkids == 0) {
		free(p->kids);
		p->kids = NULL;
	}
}

/* Free n and its ancestors while they hold nothing. */
static void
prune(struct pubsub_trie *t, struct pubsub_node *n)
{
	struct pubsub_node *p;

	while (n != NULL && n->subs == NULL && n->nkids == 0 &&
	    n->star == NULL && n->gt == NULL) {
		p = n->parent;
		if (p != NULL)
			detach(p, n);
		else
			t->root = NULL;
		free(n->kids);
		free(n);
		t->nodes--;
		n = p;
	}
}

int
pubsub_trie_insert(
    struct pubsub_trie *t, const char *f, size_t flen, struct pubsub_entry *e)
{
	struct tok tk[PUBSUB_TOKENS_MAX];
	struct pubsub_node *n;
	size_t nt, i;
	static const struct tok root = {"", 0};

	if (split(f, flen, 1, tk, &nt) != PUBSUB_OK)
		return -1;
	if (t->root == NULL) {
		if ((t->root = node_new(NULL, &root)) == NULL)
			return -1;
		t->nodes++;
	}
	n = t->root;
	for (i = 0; i < nt; i++) {
		struct pubsub_node *k = child_make(t, n, &tk[i]);

		if (k == NULL) {
			prune(t, n); /* the empty nodes made so far */
			return -1;
		}
		n = k;
	}
	e->node = n;
	e->prev = NULL;
	e->next = n->subs;
	if (n->subs != NULL)
		n->subs->prev = e;
	n->subs = e;
	t->entries++;
	return 0;
}

void
pubsub_trie_remove(struct pubsub_trie *t, struct pubsub_entry *e)
{
	struct pubsub_node *n = e->node;

	if (n == NULL)
		return;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		n->subs = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	e->next = e->prev = NULL;
	e->node = NULL;
	t->entries--;
	prune(t, n);
}

struct pubsub_entry *
pubsub_trie_exact(const struct pubsub_trie *t, const char *f, size_t flen)
{
	struct tok tk[PUBSUB_TOKENS_MAX];
	struct pubsub_node *n = t->root;
	size_t nt, i;

	if (n == NULL || split(f, flen, 1, tk, &nt) != PUBSUB_OK)
		return NULL;
	for (i = 0; i < nt && n != NULL; i++)
		n = child(n, &tk[i]);
	return n != NULL ? n->subs : NULL;
}

struct pubsub_entry *
pubsub_trie_next_exact(const struct pubsub_entry *e)
{
	return e->next;
}

static size_t
emit(struct pubsub_node *n, pubsub_match_fn *fn, void *arg)
{
	struct pubsub_entry *e, *nx;
	size_t k = 0;

	for (e = n->subs; e != NULL; e = nx) {
		nx = e->next;
		fn(e, arg);
		k++;
	}
	return k;
}

static size_t
walk(const struct pubsub_node *n, const struct tok *tk, size_t i, size_t nt,
    pubsub_match_fn *fn, void *arg)
{
	struct pubsub_node *k;
	size_t got = 0;

	if (i == nt)
		return emit((struct pubsub_node *)n, fn, arg);
	/* The '$' rule: wildcards at the root skip the server's topics. */
	if (n->gt != NULL && !(i == 0 && tk[0].p[0] == '$'))
		got += emit(n->gt, fn, arg);
	if (n->star != NULL && !(i == 0 && tk[0].p[0] == '$'))
		got += walk(n->star, tk, i + 1, nt, fn, arg);
	if ((k = child(n, &tk[i])) != NULL)
		got += walk(k, tk, i + 1, nt, fn, arg);
	return got;
}

size_t
pubsub_trie_match(const struct pubsub_trie *t, const char *topic, size_t tlen,
    pubsub_match_fn *fn, void *arg)
{
	struct tok tk[PUBSUB_TOKENS_MAX];
	size_t nt;

	if (t->root == NULL || split(topic, tlen, 0, tk, &nt) != PUBSUB_OK)
		return 0;
	return walk(t->root, tk, 0, nt, fn, arg);
}

/* --- the registry --- */

struct pubsub_reg *
pubsub_reg_new(unsigned nworkers)
{
	struct pubsub_reg *r;

	if (nworkers == 0 || nworkers > 1024)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	pubsub_trie_init(&r->t);
	r->nworkers = nworkers;
	return r;
}

static void
free_entries(struct pubsub_node *n)
{
	struct pubsub_entry *e, *nx;
	uint32_t i;

	if (n == NULL)
		return;
	for (e = n->subs; e != NULL; e = nx) {
		nx = e->next;
		free(e);
	}
	n->subs = NULL;
	for (i = 0; i < n->nkids; i++)
		free_entries(n->kids[i]);
	free_entries(n->star);
	free_entries(n->gt);
}

void
pubsub_reg_free(struct pubsub_reg *r)
{
	if (r == NULL)
		return;
	free_entries(r->t.root);
	pubsub_trie_fini(&r->t);
	free(r);
}

static struct reg_entry *
reg_find(const struct pubsub_reg *r, const char *f, size_t flen, unsigned w)
{
	struct pubsub_entry *e;

	for (e = pubsub_trie_exact(&r->t, f, flen); e != NULL; e = e->next)
		if (((struct reg_entry *)e)->w == w)
			return (struct reg_entry *)e;
	return NULL;
}

int
pubsub_reg_add(struct pubsub_reg *r, const char *f, size_t flen, unsigned w)
{
	struct reg_entry *re;

	if (w >= r->nworkers)
		return -1;
	if ((re = reg_find(r, f, flen, w)) == NULL) {
		if ((re = calloc(1, sizeof(*re))) == NULL)
			return -1;
		re->w = w;
		if (pubsub_trie_insert(&r->t, f, flen, &re->e) != 0) {
			free(re);
			return -1;
		}
	}
	re->count++;
	r->total++;
	return 0;
}

void
pubsub_reg_del(struct pubsub_reg *r, const char *f, size_t flen, unsigned w)
{
	struct reg_entry *re = reg_find(r, f, flen, w);

	if (re == NULL)
		return;
	r->total--;
	if (--re->count == 0) {
		pubsub_trie_remove(&r->t, &re->e);
		free(re);
	}
}

struct reg_acc {
	uint32_t *counts;
	uint64_t total;
};

static void
reg_hit(struct pubsub_entry *e, void *arg)
{
	struct reg_entry *re = (struct reg_entry *)e;
	struct reg_acc *a = arg;

	a->counts[re->w] += re->count;
	a->total += re->count;
}

uint64_t
pubsub_reg_match(
    const struct pubsub_reg *r, const char *t, size_t tlen, uint32_t *counts)
{
	struct reg_acc a = {counts, 0};

	pubsub_trie_match(&r->t, t, tlen, reg_hit, &a);
	return a.total;
}

uint64_t
pubsub_reg_total(const struct pubsub_reg *r)
{
	return r->total;
}

/* --- the topic cache --- */

struct cache_slot {
	uint64_t gen; /* 0: empty */
	uint16_t tlen;
	char topic[PUBSUB_NAME_MAX];
};

struct pubsub_cache {
	size_t mask, vsize, ssize;
	unsigned char *slots; /* (slot, value) pairs, ssize bytes each */
};

struct pubsub_cache *
pubsub_cache_new(size_t slots, size_t vsize)
{
	struct pubsub_cache *c;

	if (slots == 0 || (slots & (slots - 1)) != 0 || vsize > (1u << 20))
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->mask = slots - 1;
	c->vsize = vsize;
	/* The value follows its slot, 8-byte aligned. */
	c->ssize = (sizeof(struct cache_slot) + vsize + 7) & ~(size_t)7;
	if ((c->slots = calloc(slots, c->ssize)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

size_t
pubsub_cache_fit(size_t bytes, size_t vsize)
{
	size_t ssize = (sizeof(struct cache_slot) + vsize + 7) & ~(size_t)7;
	size_t n = 1;

	while (n * 2 * ssize <= bytes)
		n *= 2;
	return n;
}

void
pubsub_cache_free(struct pubsub_cache *c)
{
	if (c == NULL)
		return;
	free(c->slots);
	free(c);
}

/* t's slot (FNV-1a, 64 bits), or NULL when t cannot be cached at gen. */
static struct cache_slot *
cache_slot(
    const struct pubsub_cache *c, const char *t, size_t tlen, uint64_t gen)
{
	uint64_t h = 14695981039346656037u;
	size_t i;

	if (gen == 0 || tlen > PUBSUB_NAME_MAX)
		return NULL;
	for (i = 0; i < tlen; i++) {
		h ^= (unsigned char)t[i];
		h *= 1099511628211u;
	}
	h ^= h >> 29;
	return (struct cache_slot *)(void *)(c->slots +
	    (size_t)(h & c->mask) * c->ssize);
}

void *
pubsub_cache_get(
    struct pubsub_cache *c, const char *t, size_t tlen, uint64_t gen)
{
	struct cache_slot *s = cache_slot(c, t, tlen, gen);

	if (s == NULL || s->gen != gen || s->tlen != tlen ||
	    memcmp(s->topic, t, tlen) != 0)
		return NULL;
	return s + 1;
}

void *
pubsub_cache_put(
    struct pubsub_cache *c, const char *t, size_t tlen, uint64_t gen)
{
	struct cache_slot *s = cache_slot(c, t, tlen, gen);

	if (s == NULL)
		return NULL;
	s->gen = gen;
	s->tlen = (uint16_t)tlen;
	memcpy(s->topic, t, tlen);
	return s + 1;
}
