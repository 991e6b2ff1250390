/*
 * pubsub: topic and filter syntax (every edge of it, table-driven),
 * matching, covers/overlaps (the ACL relations), the payload parsers and
 * encoders, the trie and the registry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pubsub.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct syn {
	const char *s;
	enum pubsub_err topic, filter;
};

static char long255[256], long256[257], tok32[65], tok33[67];

static void
make_long(void)
{
	size_t i;

	memset(long255, 'a', 255);
	long255[255] = '\0';
	memset(long256, 'a', 256);
	long256[256] = '\0';
	for (i = 0; i < 32; i++) {
		tok32[2 * i] = 'x';
		tok32[2 * i + 1] = '.';
	}
	tok32[63] = '\0';
	for (i = 0; i < 33; i++) {
		tok33[2 * i] = 'x';
		tok33[2 * i + 1] = '.';
	}
	tok33[65] = '\0';
}

static void
test_syntax_table(void **state)
{
	const struct syn tab[] = {
	    {"a", PUBSUB_OK, PUBSUB_OK},
	    {"chat.lobby", PUBSUB_OK, PUBSUB_OK},
	    {"A.b.C", PUBSUB_OK, PUBSUB_OK},
	    {"!~#$%&'()+,-/:;<=?@[]^_`{|}", PUBSUB_OK, PUBSUB_OK},
	    {"$SYS.x", PUBSUB_OK, PUBSUB_OK},
	    {"", PUBSUB_E_EMPTY, PUBSUB_E_EMPTY},
	    {".", PUBSUB_E_EMPTY_TOKEN, PUBSUB_E_EMPTY_TOKEN},
	    {".a", PUBSUB_E_EMPTY_TOKEN, PUBSUB_E_EMPTY_TOKEN},
	    {"a.", PUBSUB_E_EMPTY_TOKEN, PUBSUB_E_EMPTY_TOKEN},
	    {"a..b", PUBSUB_E_EMPTY_TOKEN, PUBSUB_E_EMPTY_TOKEN},
	    {"a b", PUBSUB_E_BYTE, PUBSUB_E_BYTE},
	    {"a\tb", PUBSUB_E_BYTE, PUBSUB_E_BYTE},
	    {"a\x7f", PUBSUB_E_BYTE, PUBSUB_E_BYTE},
	    {"caf\xc3\xa9", PUBSUB_E_BYTE, PUBSUB_E_BYTE},
	    {"*", PUBSUB_E_TOPIC_WILD, PUBSUB_OK},
	    {">", PUBSUB_E_TOPIC_WILD, PUBSUB_OK},
	    {"a.*", PUBSUB_E_TOPIC_WILD, PUBSUB_OK},
	    {"a.>", PUBSUB_E_TOPIC_WILD, PUBSUB_OK},
	    {"*.*.>", PUBSUB_E_TOPIC_WILD, PUBSUB_OK},
	    {"a.>.b", PUBSUB_E_TOPIC_WILD, PUBSUB_E_GT_NOT_LAST},
	    {">.a", PUBSUB_E_TOPIC_WILD, PUBSUB_E_GT_NOT_LAST},
	    {"a*", PUBSUB_E_TOPIC_WILD, PUBSUB_E_WILDCARD},
	    {"a.b*", PUBSUB_E_TOPIC_WILD, PUBSUB_E_WILDCARD},
	    {"a.>b", PUBSUB_E_TOPIC_WILD, PUBSUB_E_WILDCARD},
	    {"**", PUBSUB_E_TOPIC_WILD, PUBSUB_E_WILDCARD},
	    {">>", PUBSUB_E_TOPIC_WILD, PUBSUB_E_WILDCARD},
	    {long255, PUBSUB_OK, PUBSUB_OK},
	    {long256, PUBSUB_E_LONG, PUBSUB_E_LONG},
	    {tok32, PUBSUB_OK, PUBSUB_OK},
	    {tok33, PUBSUB_E_TOKENS, PUBSUB_E_TOKENS},
	};
	size_t i;

	(void)state;
	make_long();
	for (i = 0; i < N(tab); i++) {
		size_t len = strlen(tab[i].s);

		if (pubsub_topic_check(tab[i].s, len) != tab[i].topic ||
		    pubsub_filter_check(tab[i].s, len) != tab[i].filter)
			fail_msg("row %zu \"%s\": topic %d (want %d), filter "
				 "%d (want %d)",
			    i, tab[i].s, pubsub_topic_check(tab[i].s, len),
			    tab[i].topic, pubsub_filter_check(tab[i].s, len),
			    tab[i].filter);
	}
	/* A NUL byte is outside 0x21-0x7e too. */
	assert_int_equal(pubsub_topic_check("a\0b", 3), PUBSUB_E_BYTE);
	assert_true(pubsub_err_is_topic(PUBSUB_E_BYTE));
	assert_false(pubsub_err_is_topic(PUBSUB_E_SHORT));
	assert_string_equal(
	    pubsub_err_str((enum pubsub_err)999), "unknown error");
}

struct m {
	const char *f, *t;
	int want;
};

static void
test_match_table(void **state)
{
	const struct m tab[] = {
	    {"a", "a", 1},
	    {"a", "b", 0},
	    {"a", "A", 0},
	    {"a", "a.b", 0},
	    {"a.b", "a", 0},
	    {"*", "a", 1},
	    {"*", "a.b", 0},
	    {">", "a", 1},
	    {">", "a.b.c", 1},
	    {"a.>", "a", 0},
	    {"a.>", "a.b", 1},
	    {"a.>", "a.b.c", 1},
	    {"a.*", "a.b", 1},
	    {"a.*", "a.b.c", 0},
	    {"*.b", "a.b", 1},
	    {"*.b", "a.c", 0},
	    {"a.*.c", "a.x.c", 1},
	    {"a.*.c", "a.x.d", 0},
	    {"*.*.>", "a.b", 0},
	    {"*.*.>", "a.b.c", 1},
	    {"ab", "a", 0},
	    {"a", "ab", 0},
	    {"$SYS.x", "$SYS.x", 1},
	    {"*.x", "$SYS.x", 0},
	    {">", "$SYS.x", 0},
	    {"$SYS.>", "$SYS.x", 1},
	    {"$SYS.*", "$SYS.x", 1},
	    {"a.$b", "a.$b", 1},
	    {"a.*", "a.$b", 1},
	    {"a.>", "a.$b", 1},
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(tab); i++)
		if (pubsub_match(tab[i].f, strlen(tab[i].f), tab[i].t,
			strlen(tab[i].t)) != tab[i].want)
			fail_msg("row %zu: %s vs %s: want %d", i, tab[i].f,
			    tab[i].t, tab[i].want);
	/* Invalid input matches nothing. */
	assert_false(pubsub_match("a..b", 4, "a..b", 4));
	assert_false(pubsub_match(">", 1, "a.*", 3));
}

static void
test_covers_overlaps_table(void **state)
{
	const struct {
		const char *a, *b;
		int covers, overlaps;
	} tab[] = {
	    {">", "a", 1, 1},
	    {">", "a.b.>", 1, 1},
	    {">", ">", 1, 1},
	    {">", "$SYS.x", 0, 0},
	    {">", "*.x", 1, 1},
	    {"chat.>", "chat.lobby", 1, 1},
	    {"chat.>", "chat.*", 1, 1},
	    {"chat.>", "chat.>", 1, 1},
	    {"chat.>", "chat", 0, 0},
	    {"chat.>", ">", 0, 1},
	    {"chat.>", "*.lobby", 0, 1},
	    {"chat.*", "chat.>", 0, 1},
	    {"chat.*", "chat.a", 1, 1},
	    {"chat.*", "chat.*", 1, 1},
	    {"chat.*", "chat.a.b", 0, 0},
	    {"chat.a", "chat.*", 0, 1},
	    {"chat.a", "chat.a", 1, 1},
	    {"chat.a", "chat.b", 0, 0},
	    {"audit.>", "chat.>", 0, 0},
	    {"*", "a", 1, 1},
	    {"*", "$a", 0, 0},
	    {"*", "*", 1, 1},
	    {"*", ">", 0, 1},
	    {"a.*.c", "a.b.*", 0, 1},
	    {"a.*.c", "a.b.d", 0, 0},
	    {"$SYS.>", "$SYS.a", 1, 1},
	    {"$SYS.>", ">", 0, 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(tab); i++) {
		size_t al = strlen(tab[i].a), bl = strlen(tab[i].b);

		if (pubsub_covers(tab[i].a, al, tab[i].b, bl) !=
			tab[i].covers ||
		    pubsub_overlaps(tab[i].a, al, tab[i].b, bl) !=
			tab[i].overlaps ||
		    pubsub_overlaps(tab[i].b, bl, tab[i].a, al) !=
			tab[i].overlaps)
			fail_msg("row %zu: %s / %s", i, tab[i].a, tab[i].b);
	}
}

static void
test_parse_subscribe(void **state)
{
	struct pubsub_sub_req r;
	uint8_t p[64] = {0, 0, 0, 7, 1, 0, 0, 6, 'c', 'h', 'a', 't', '.', '>'};

	(void)state;
	assert_int_equal(pubsub_parse_subscribe(p, 14, &r), PUBSUB_OK);
	assert_int_equal(r.sub_id, 7);
	assert_int_equal(r.options, PUBSUB_OPT_NO_ECHO);
	assert_int_equal(r.filter_len, 6);
	assert_memory_equal(r.filter, "chat.>", 6);
	assert_int_equal(pubsub_parse_subscribe(p, 7, &r), PUBSUB_E_SHORT);
	assert_int_equal(pubsub_parse_subscribe(p, 13, &r), PUBSUB_E_LENGTH);
	assert_int_equal(pubsub_parse_subscribe(p, 15, &r), PUBSUB_E_LENGTH);
	p[4] = 2;
	assert_int_equal(pubsub_parse_subscribe(p, 14, &r), PUBSUB_E_OPTIONS);
	p[4] = 0;
	p[5] = 1;
	assert_int_equal(pubsub_parse_subscribe(p, 14, &r), PUBSUB_E_OPTIONS);
	p[5] = 0;
	p[3] = 0;
	assert_int_equal(pubsub_parse_subscribe(p, 14, &r), PUBSUB_E_SUB_ID);
	p[3] = 7;
	p[7] = 0; /* an empty filter */
	assert_int_equal(pubsub_parse_subscribe(p, 8, &r), PUBSUB_E_EMPTY);
	p[7] = 2;
	p[8] = 'a';
	p[9] = '*';
	assert_int_equal(pubsub_parse_subscribe(p, 10, &r), PUBSUB_E_WILDCARD);
}

static void
test_parse_unsubscribe_publish(void **state)
{
	const uint8_t u[5] = {0, 0, 1, 2, 9};
	uint8_t p[32] = {0, 3, 'a', '.', 'b', 'x', 'y'};
	struct pubsub_pub_req r;
	uint32_t id;

	(void)state;
	assert_int_equal(pubsub_parse_unsubscribe(u, 4, &id), PUBSUB_OK);
	assert_int_equal(id, 258);
	assert_int_equal(pubsub_parse_unsubscribe(u, 3, &id), PUBSUB_E_SHORT);
	assert_int_equal(pubsub_parse_unsubscribe(u, 5, &id), PUBSUB_E_LENGTH);
	assert_int_equal(pubsub_parse_publish(p, 7, &r), PUBSUB_OK);
	assert_int_equal(r.topic_len, 3);
	assert_int_equal(r.data_len, 2);
	assert_memory_equal(r.data, "xy", 2);
	assert_int_equal(pubsub_parse_publish(p, 5, &r), PUBSUB_OK);
	assert_int_equal(r.data_len, 0);
	assert_int_equal(pubsub_parse_publish(p, 4, &r), PUBSUB_E_LENGTH);
	assert_int_equal(pubsub_parse_publish(p, 1, &r), PUBSUB_E_SHORT);
	p[4] = '*';
	assert_int_equal(pubsub_parse_publish(p, 7, &r), PUBSUB_E_TOPIC_WILD);
	p[1] = 0;
	assert_int_equal(pubsub_parse_publish(p, 7, &r), PUBSUB_E_EMPTY);
}

static void
test_encode(void **state)
{
	uint8_t b[64];
	const uint8_t want[] = {
	    0, 0, 0, 5, 0, 0, 0, 2, 0, 3, 'a', '.', 'b', 'h', 'i'};

	(void)state;
	assert_int_equal(pubsub_encode_message(b, sizeof(b), 5, 2, "a.b", 3,
			     (const uint8_t *)"hi", 2),
	    sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
	/* Too small: the size needed, nothing written. */
	memset(b, 0xee, sizeof(b));
	assert_int_equal(pubsub_encode_message(
			     b, 14, 5, 2, "a.b", 3, (const uint8_t *)"hi", 2),
	    15);
	assert_int_equal(b[0], 0xee);
	assert_int_equal(pubsub_encode_notice(b, sizeof(b), 1, "slow"), 6);
	assert_memory_equal(b, "\0\1slow", 6);
}

struct sub {
	struct pubsub_entry e;
	int id;
	int hits;
};

static void
hit(struct pubsub_entry *e, void *arg)
{
	(void)arg;
	((struct sub *)e)->hits++;
}

static void
test_trie(void **state)
{
	const char *filters[] = {"a", "a.b", "a.*", "a.>", ">", "*.b", "a.b",
	    "$SYS.>", "x.y.z", "*"};
	struct sub s[N(filters)];
	struct pubsub_trie t;
	size_t i, n;

	(void)state;
	pubsub_trie_init(&t);
	memset(s, 0, sizeof(s));
	for (i = 0; i < N(filters); i++)
		assert_int_equal(pubsub_trie_insert(&t, filters[i],
				     strlen(filters[i]), &s[i].e),
		    0);
	assert_int_equal(t.entries, N(filters));
	/* "a.b": a.b twice, a.*, a.>, >, *.b. */
	n = pubsub_trie_match(&t, "a.b", 3, hit, NULL);
	assert_int_equal(n, 6);
	assert_int_equal(s[1].hits + s[6].hits + s[2].hits + s[3].hits +
		s[4].hits + s[5].hits,
	    6);
	assert_int_equal(s[0].hits, 0);
	/* "$SYS.q": only $SYS.> (no root wildcard). */
	for (i = 0; i < N(filters); i++)
		s[i].hits = 0;
	assert_int_equal(pubsub_trie_match(&t, "$SYS.q", 6, hit, NULL), 1);
	assert_int_equal(s[7].hits, 1);
	assert_int_equal(pubsub_trie_match(&t, "a", 1, hit, NULL), 3);
	assert_int_equal(pubsub_trie_match(&t, "q.r.s", 5, hit, NULL), 1);
	assert_int_equal(pubsub_trie_match(&t, "a.*", 3, hit, NULL), 0);
	assert_non_null(pubsub_trie_exact(&t, "a.b", 3));
	assert_null(pubsub_trie_exact(&t, "a.c", 3));
	/* Removing everything frees every node. */
	for (i = 0; i < N(filters); i++)
		pubsub_trie_remove(&t, &s[i].e);
	assert_int_equal(t.entries, 0);
	assert_int_equal(t.nodes, 0);
	assert_int_equal(pubsub_trie_match(&t, "a.b", 3, hit, NULL), 0);
	pubsub_trie_fini(&t);
}

/* Many literal siblings: sorted insertion and removal in any order. */
static void
test_trie_siblings(void **state)
{
	enum { K = 300 };
	static struct sub s[K];
	struct pubsub_trie t;
	char name[32];
	size_t i, n;

	(void)state;
	pubsub_trie_init(&t);
	for (i = 0; i < K; i++) {
		n = (size_t)snprintf(
		    name, sizeof(name), "room.%zu", (i * 7919) % K);
		s[i].id = (int)((i * 7919) % K);
		assert_int_equal(pubsub_trie_insert(&t, name, n, &s[i].e), 0);
	}
	for (i = 0; i < K; i++) {
		n = (size_t)snprintf(name, sizeof(name), "room.%zu", i);
		assert_int_equal(pubsub_trie_match(&t, name, n, hit, NULL), 1);
	}
	for (i = 0; i < K; i += 2)
		pubsub_trie_remove(&t, &s[i].e);
	for (i = 0; i < K; i++) {
		n = (size_t)snprintf(name, sizeof(name), "room.%d", s[i].id);
		assert_int_equal(
		    pubsub_trie_match(&t, name, n, hit, NULL), i % 2);
	}
	for (i = 1; i < K; i += 2)
		pubsub_trie_remove(&t, &s[i].e);
	assert_int_equal(t.nodes, 0);
	pubsub_trie_fini(&t);
}

/*
 * A node's children array has no capacity field: it is resized as the
 * count reaches a power of two.  Shrink to 3 and 2 children, then grow
 * back past the old size (the resizes then shrink the array first).
 */
static void
test_trie_siblings_regrow(void **state)
{
	enum { K = 300 };
	static struct sub s[K];
	struct pubsub_trie t;
	char name[32];
	size_t i, n, keep;

	(void)state;
	pubsub_trie_init(&t);
	for (keep = 3; keep >= 2; keep--) {
		memset(s, 0, sizeof(s));
		for (i = 0; i < K; i++) {
			n = (size_t)snprintf(name, sizeof(name), "r.%zu", i);
			assert_int_equal(
			    pubsub_trie_insert(&t, name, n, &s[i].e), 0);
		}
		for (i = keep; i < K; i++)
			pubsub_trie_remove(&t, &s[i].e);
		for (i = keep; i < K; i++) {
			n = (size_t)snprintf(name, sizeof(name), "r.%zu", i);
			assert_int_equal(
			    pubsub_trie_insert(&t, name, n, &s[i].e), 0);
		}
		for (i = 0; i < K; i++) {
			n = (size_t)snprintf(name, sizeof(name), "r.%zu", i);
			assert_int_equal(
			    pubsub_trie_match(&t, name, n, hit, NULL), 1);
			assert_int_equal(s[i].hits, 1);
		}
		for (i = 0; i < K; i++)
			pubsub_trie_remove(&t, &s[i].e);
		assert_int_equal(t.nodes, 0);
	}
	pubsub_trie_fini(&t);
}

static void
test_registry(void **state)
{
	struct pubsub_reg *r = pubsub_reg_new(3);
	uint32_t c[3];

	(void)state;
	assert_non_null(r);
	assert_null(pubsub_reg_new(0));
	assert_int_equal(pubsub_reg_add(r, "chat.>", 6, 0), 0);
	assert_int_equal(pubsub_reg_add(r, "chat.>", 6, 0), 0);
	assert_int_equal(pubsub_reg_add(r, "chat.lobby", 10, 2), 0);
	assert_int_equal(pubsub_reg_add(r, "*.lobby", 7, 1), 0);
	assert_int_equal(pubsub_reg_add(r, "x", 1, 3), -1); /* no worker 3 */
	memset(c, 0, sizeof(c));
	assert_int_equal(pubsub_reg_match(r, "chat.lobby", 10, c), 4);
	assert_int_equal(c[0], 2);
	assert_int_equal(c[1], 1);
	assert_int_equal(c[2], 1);
	memset(c, 0, sizeof(c));
	assert_int_equal(pubsub_reg_match(r, "chat.x", 6, c), 2);
	assert_int_equal(c[1] + c[2], 0);
	pubsub_reg_del(r, "chat.>", 6, 0);
	pubsub_reg_del(r, "chat.lobby", 10, 2);
	pubsub_reg_del(r, "nothing", 7, 1); /* not held: ignored */
	memset(c, 0, sizeof(c));
	assert_int_equal(pubsub_reg_match(r, "chat.lobby", 10, c), 2);
	assert_int_equal(pubsub_reg_total(r), 2);
	pubsub_reg_free(r);
	pubsub_reg_free(NULL);
}

/* The topic cache: hits at one generation only, evictions, the bounds. */
static void
test_cache(void **state)
{
	struct pubsub_cache *c;
	uint32_t *v;
	char t[16];
	int i, hits = 0;

	(void)state;
	make_long();
	assert_null(pubsub_cache_new(3, 4));
	assert_int_equal(pubsub_cache_fit(0, 4), 1);
	assert_true(pubsub_cache_fit(1u << 20, 8) >= 2048);
	assert_true(pubsub_cache_fit(1u << 20, 8) < 8192);
	assert_int_equal(
	    pubsub_cache_fit(1u << 20, 8) & (pubsub_cache_fit(1u << 20, 8) - 1),
	    0);
	assert_null(pubsub_cache_new(0, 4));
	c = pubsub_cache_new(4, 2 * sizeof(uint32_t));
	assert_non_null(c);
	assert_null(pubsub_cache_get(c, "a.b", 3, 1));
	v = pubsub_cache_put(c, "a.b", 3, 1);
	assert_non_null(v);
	v[0] = 7;
	v[1] = 9;
	v = pubsub_cache_get(c, "a.b", 3, 1);
	assert_non_null(v);
	assert_int_equal(v[0], 7);
	assert_int_equal(v[1], 9);
	/* Another generation, another topic, a prefix: misses. */
	assert_null(pubsub_cache_get(c, "a.b", 3, 2));
	assert_null(pubsub_cache_get(c, "a.c", 3, 1));
	assert_null(pubsub_cache_get(c, "a.", 2, 1));
	/* Generation 0 and over-long topics are never cached. */
	assert_null(pubsub_cache_put(c, "a.b", 3, 0));
	assert_null(pubsub_cache_get(c, "a.b", 3, 0));
	assert_null(pubsub_cache_put(c, long256, 256, 1));
	assert_non_null(pubsub_cache_put(c, long255, 255, 1));
	assert_non_null(pubsub_cache_get(c, long255, 255, 1));
	/* 4 slots, 32 topics: each lookup right after its put hits, and
	 * what was evicted misses rather than answering for another. */
	for (i = 0; i < 32; i++) {
		snprintf(t, sizeof(t), "t.%d", i);
		v = pubsub_cache_put(c, t, strlen(t), 5);
		v[0] = (uint32_t)i;
	}
	for (i = 0; i < 32; i++) {
		snprintf(t, sizeof(t), "t.%d", i);
		v = pubsub_cache_get(c, t, strlen(t), 5);
		if (v != NULL) {
			assert_int_equal(v[0], i);
			hits++;
		}
	}
	assert_true(hits >= 1 && hits <= 4);
	pubsub_cache_free(c);
	pubsub_cache_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_syntax_table),
	    cmocka_unit_test(test_match_table),
	    cmocka_unit_test(test_covers_overlaps_table),
	    cmocka_unit_test(test_parse_subscribe),
	    cmocka_unit_test(test_parse_unsubscribe_publish),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_trie),
	    cmocka_unit_test(test_trie_siblings),
	    cmocka_unit_test(test_trie_siblings_regrow),
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
