/*
 * fuzz_pubsub: the pub/sub library (pubsub/) on arbitrary input: the three
 * request payload parsers, topic and filter syntax, matching, the ACL
 * relations, the trie and the registry.
 *
 * Input layout: the whole input is first given to each payload parser;
 * then it is cut at 0xff bytes into up to three fields: filter a, filter
 * b, topic t (absent fields are empty).
 *
 * Invariants (any violation aborts):
 * - a parser's OK means the payload's lengths add up and the name in it
 *   passes its syntax check; views stay inside the input;
 * - a valid topic is a valid filter; match() is true only on valid input;
 * - covers(a, b) and match(b, t) imply match(a, t); covers implies
 *   overlaps; match(a, t) and match(b, t) imply overlaps(a, b), which is
 *   symmetric;
 * - the trie and the registry, holding a and b, report for t exactly the
 *   entries that match() finds, and free every node once emptied.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pubsub.h"

#include "fuzz.h"

struct ent {
	struct pubsub_entry e;
	int hits;
};

static void
hit(struct pubsub_entry *e, void *arg)
{
	(void)arg;
	((struct ent *)e)->hits++;
}

static void
parsers(const uint8_t *d, size_t n)
{
	struct pubsub_sub_req s;
	struct pubsub_pub_req p;
	uint32_t id;

	if (pubsub_parse_subscribe(d, n, &s) == PUBSUB_OK) {
		FUZZ_CHECK(n == 8 + s.filter_len);
		FUZZ_CHECK((const uint8_t *)s.filter == d + 8);
		FUZZ_CHECK(s.sub_id != 0);
		FUZZ_CHECK(
		    pubsub_filter_check(s.filter, s.filter_len) == PUBSUB_OK);
	}
	if (pubsub_parse_unsubscribe(d, n, &id) == PUBSUB_OK)
		FUZZ_CHECK(n == 4);
	if (pubsub_parse_publish(d, n, &p) == PUBSUB_OK) {
		FUZZ_CHECK(2 + p.topic_len + p.data_len == n);
		FUZZ_CHECK(p.data == d + 2 + p.topic_len);
		FUZZ_CHECK(
		    pubsub_topic_check(p.topic, p.topic_len) == PUBSUB_OK);
	}
}

/*
 * The topic cache over three arbitrary names and two slots: what a get
 * returns was put for the same bytes at the same generation, the last put
 * always hits, and names too long are never cached.
 */
static void
cache(const char *const f[3], const size_t fl[3])
{
	struct pubsub_cache *c = pubsub_cache_new(2, sizeof(uint32_t));
	uint32_t *v;
	size_t k;

	if (c == NULL)
		abort(); /* out of memory in a fuzzer: not a finding */
	for (k = 0; k < 3; k++) {
		v = pubsub_cache_put(c, f[k], fl[k], 7);
		FUZZ_CHECK((v != NULL) == (fl[k] <= PUBSUB_NAME_MAX));
		if (v != NULL)
			*v = (uint32_t)k;
	}
	for (k = 0; k < 3; k++) {
		v = pubsub_cache_get(c, f[k], fl[k], 7);
		if (k == 2 && fl[2] <= PUBSUB_NAME_MAX)
			FUZZ_CHECK(v != NULL);
		if (v != NULL)
			FUZZ_CHECK(*v < 3 && fl[*v] == fl[k] &&
			    memcmp(f[*v], f[k], fl[k]) == 0);
		FUZZ_CHECK(pubsub_cache_get(c, f[k], fl[k], 8) == NULL);
	}
	pubsub_cache_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[3] = {"", "", ""};
	size_t fl[3] = {0, 0, 0}, i, k = 0, start = 0;
	struct pubsub_trie tr;
	struct pubsub_reg *reg;
	struct ent ea, eb;
	uint32_t counts[2] = {0, 0};
	int va, vb, vt, ma, mb;
	size_t got;

	parsers(data, size);
	for (i = 0; i <= size && k < 3; i++)
		if (i == size || data[i] == 0xff) {
			f[k] = (const char *)data + start;
			fl[k] = i - start;
			k++;
			start = i + 1;
		}
	cache(f, fl);
	va = pubsub_filter_check(f[0], fl[0]) == PUBSUB_OK;
	vb = pubsub_filter_check(f[1], fl[1]) == PUBSUB_OK;
	vt = pubsub_topic_check(f[2], fl[2]) == PUBSUB_OK;
	if (vt)
		FUZZ_CHECK(pubsub_filter_check(f[2], fl[2]) == PUBSUB_OK);
	ma = pubsub_match(f[0], fl[0], f[2], fl[2]);
	mb = pubsub_match(f[1], fl[1], f[2], fl[2]);
	if (ma)
		FUZZ_CHECK(va && vt);
	if (mb)
		FUZZ_CHECK(vb && vt);
	if (!va || !vb)
		return 0;
	if (pubsub_covers(f[0], fl[0], f[1], fl[1])) {
		FUZZ_CHECK(!mb || ma);
		FUZZ_CHECK(pubsub_overlaps(f[0], fl[0], f[1], fl[1]));
	}
	FUZZ_CHECK(pubsub_overlaps(f[0], fl[0], f[1], fl[1]) ==
	    pubsub_overlaps(f[1], fl[1], f[0], fl[0]));
	if (ma && mb)
		FUZZ_CHECK(pubsub_overlaps(f[0], fl[0], f[1], fl[1]));
	FUZZ_CHECK(pubsub_covers(f[0], fl[0], f[0], fl[0]));

	pubsub_trie_init(&tr);
	memset(&ea, 0, sizeof(ea));
	memset(&eb, 0, sizeof(eb));
	if (pubsub_trie_insert(&tr, f[0], fl[0], &ea.e) != 0 ||
	    pubsub_trie_insert(&tr, f[1], fl[1], &eb.e) != 0)
		abort(); /* out of memory in a fuzzer: not a finding */
	got = vt ? pubsub_trie_match(&tr, f[2], fl[2], hit, NULL) : 0;
	FUZZ_CHECK(got == (size_t)(ma + mb));
	FUZZ_CHECK(ea.hits == ma && eb.hits == mb);
	FUZZ_CHECK(pubsub_trie_exact(&tr, f[0], fl[0]) != NULL);
	pubsub_trie_remove(&tr, &ea.e);
	pubsub_trie_remove(&tr, &eb.e);
	FUZZ_CHECK(tr.nodes == 0 && tr.entries == 0);
	pubsub_trie_fini(&tr);

	if ((reg = pubsub_reg_new(2)) == NULL)
		abort();
	if (pubsub_reg_add(reg, f[0], fl[0], 0) != 0 ||
	    pubsub_reg_add(reg, f[1], fl[1], 1) != 0)
		abort();
	if (vt) {
		FUZZ_CHECK(pubsub_reg_match(reg, f[2], fl[2], counts) ==
		    (uint64_t)(ma + mb));
		FUZZ_CHECK(
		    counts[0] == (uint32_t)ma && counts[1] == (uint32_t)mb);
	}
	pubsub_reg_del(reg, f[0], fl[0], 0);
	FUZZ_CHECK(pubsub_reg_total(reg) == 1);
	pubsub_reg_free(reg);
	return 0;
}
