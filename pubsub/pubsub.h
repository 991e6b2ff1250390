/*
 * pubsub: the pure part of socketd's publish/subscribe service (protocol
 * v1.1, opcodes 0x10-0x14): topic and filter syntax, matching, the
 * subscription trie, the registry of which workers hold subscriptions
 * matching a topic, and the SUBSCRIBE / UNSUBSCRIBE / PUBLISH payload
 * parsers and the MESSAGE / NOTICE encoders.
 *
 * No sockets, no threads, no locks, no logging, no clock: the daemon
 * (daemon/psub.c) wraps what needs a lock (the registry is shared by the
 * workers and sits behind its rwlock there).
 *
 * Syntax (docs/protocol.md, "Pub/sub"): 1-255 bytes; 1-32 tokens
 * separated by '.'; no empty token; token bytes 0x21-0x7e except '.', '*'
 * and '>'.  A filter may use '*' as a whole token (one token) and '>' as
 * the whole last token (one or more tokens).  A topic whose first token
 * starts with '$' belongs to the server and is not matched by a filter
 * whose first token is a wildcard.
 *
 * Return convention: the check and parse functions return enum
 * pubsub_err (0 is PUBSUB_OK); pubsub_err_str() names the problem in words
 * fit for an error answer.  Allocating functions return 0 or -1 (out of
 * memory).  Every pointer argument is borrowed unless said otherwise.
 */
#ifndef SOCKETD_PUBSUB_H
#define SOCKETD_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#define PUBSUB_NAME_MAX   255
#define PUBSUB_TOKENS_MAX 32

/* Wire constants (protocol v1.1). */
#define PUBSUB_OP_SUBSCRIBE   0x10
#define PUBSUB_OP_UNSUBSCRIBE 0x11
#define PUBSUB_OP_PUBLISH     0x12
#define PUBSUB_OP_MESSAGE     0x13
#define PUBSUB_OP_NOTICE      0x14
#define PUBSUB_OPT_NO_ECHO    0x01
/* The MESSAGE payload before the topic: sub_id, lost, topic_len. */
#define PUBSUB_MSG_HDR 10
/* A MESSAGE's frame overhead: prefix, header, PUBSUB_MSG_HDR. */
#define PUBSUB_MSG_OVERHEAD 22

enum pubsub_notice {
	PUBSUB_NOTICE_SLOW_CONSUMER = 1,
	PUBSUB_NOTICE_SHUTDOWN = 2,
	PUBSUB_NOTICE_PERMISSIONS_CHANGED = 3,
};

enum pubsub_err {
	PUBSUB_OK = 0,
	/* INVALID_TOPIC */
	PUBSUB_E_EMPTY,       /* empty topic or filter */
	PUBSUB_E_LONG,        /* more than 255 bytes */
	PUBSUB_E_TOKENS,      /* more than 32 tokens */
	PUBSUB_E_EMPTY_TOKEN, /* "a..b", ".a", "a." */
	PUBSUB_E_BYTE,        /* a byte outside 0x21-0x7e */
	PUBSUB_E_WILDCARD,    /* '*' or '>' inside a token */
	PUBSUB_E_GT_NOT_LAST, /* '>' before the last token */
	PUBSUB_E_TOPIC_WILD,  /* a published topic with '*' or '>' */
	/* BAD_REQUEST */
	PUBSUB_E_SHORT,   /* payload shorter than its fixed part */
	PUBSUB_E_LENGTH,  /* a length field disagrees with the payload */
	PUBSUB_E_SUB_ID,  /* sub_id 0 on SUBSCRIBE */
	PUBSUB_E_OPTIONS, /* unknown option bits or reserved not 0 */
};

/* Words for e ("filter has an empty token"). */
const char *pubsub_err_str(enum pubsub_err e);
/* Whether e is an INVALID_TOPIC error (else BAD_REQUEST). */
int pubsub_err_is_topic(enum pubsub_err e);

/* The syntax of a published topic (literal) and of a filter. */
enum pubsub_err pubsub_topic_check(const char *t, size_t len);
enum pubsub_err pubsub_filter_check(const char *f, size_t len);
/* Whether topic t starts with '$' (the server's namespace). */
int pubsub_topic_reserved(const char *t, size_t len);

/*
 * Matching, on names already checked.  pubsub_match: the filter matches
 * the topic.  pubsub_covers: every topic b matches, a matches too (an
 * allow pattern a permits subscribing to b).  pubsub_overlaps: some topic
 * matches both (a deny pattern a refuses b).
 */
int pubsub_match(const char *f, size_t flen, const char *t, size_t tlen);
int pubsub_covers(const char *a, size_t alen, const char *b, size_t blen);
int pubsub_overlaps(const char *a, size_t alen, const char *b, size_t blen);

/* --- payloads --- */

struct pubsub_sub_req {
	uint32_t sub_id;
	uint8_t options;    /* PUBSUB_OPT_* */
	const char *filter; /* into the payload */
	size_t filter_len;
};

struct pubsub_pub_req {
	const char *topic; /* into the payload */
	size_t topic_len;
	const uint8_t *data;
	size_t data_len;
};

/*
 * Parse a request payload; the filter or topic syntax is checked too.
 * The views point into p.
 */
enum pubsub_err pubsub_parse_subscribe(
    const uint8_t *p, size_t len, struct pubsub_sub_req *out);
enum pubsub_err pubsub_parse_unsubscribe(
    const uint8_t *p, size_t len, uint32_t *sub_id);
enum pubsub_err pubsub_parse_publish(
    const uint8_t *p, size_t len, struct pubsub_pub_req *out);

/*
 * The MESSAGE payload into dst: PUBSUB_MSG_HDR + tlen + dlen bytes, the
 * length returned (nothing written when it exceeds cap, as snprintf).
 * pubsub_msg_head writes only the first PUBSUB_MSG_HDR bytes.
 */
size_t pubsub_encode_message(uint8_t *dst, size_t cap, uint32_t sub_id,
    uint32_t lost, const char *topic, size_t tlen, const uint8_t *data,
    size_t dlen);
void pubsub_msg_head(uint8_t *dst, uint32_t sub_id, uint32_t lost, size_t tlen);
/* The NOTICE payload: reason u16 | text; same convention. */
size_t pubsub_encode_notice(
    uint8_t *dst, size_t cap, unsigned reason, const char *text);

/* --- the subscription trie --- */

struct pubsub_node;

/*
 * One subscription in a trie: embedded in the caller's own struct (the
 * trie neither allocates nor frees entries).  The fields are the trie's
 * while the entry is inserted.
 */
struct pubsub_entry {
	struct pubsub_entry *next, *prev; /* private */
	struct pubsub_node *node;         /* private */
};

struct pubsub_trie {
	struct pubsub_node *root; /* private */
	size_t entries;
	size_t nodes;
};

void pubsub_trie_init(struct pubsub_trie *t);
/* Free the nodes; the entries are the caller's (they must be removed or
 * forgotten). */
void pubsub_trie_fini(struct pubsub_trie *t);
/* Insert e under filter f (checked); 0 or -1 (out of memory). */
int pubsub_trie_insert(
    struct pubsub_trie *t, const char *f, size_t flen, struct pubsub_entry *e);
/* Remove e (inserted); nodes left empty are freed. */
void pubsub_trie_remove(struct pubsub_trie *t, struct pubsub_entry *e);
/* The first entry inserted under exactly filter f, or NULL; then next. */
struct pubsub_entry *pubsub_trie_exact(
    const struct pubsub_trie *t, const char *f, size_t flen);
struct pubsub_entry *pubsub_trie_next_exact(const struct pubsub_entry *e);

/*
 * Call fn(e, arg) for every entry whose filter matches topic t (checked);
 * returns how many.  fn must not change the trie.
 */
typedef void pubsub_match_fn(struct pubsub_entry *e, void *arg);
size_t pubsub_trie_match(const struct pubsub_trie *t, const char *topic,
    size_t tlen, pubsub_match_fn *fn, void *arg);

/* --- the registry: which workers hold subscriptions matching a topic --- */

struct pubsub_reg;

/* For nworkers workers (1..1024); NULL when out of memory. */
struct pubsub_reg *pubsub_reg_new(unsigned nworkers);
void pubsub_reg_free(struct pubsub_reg *r);
/* One more (or one fewer) subscription with filter f on worker w. */
int pubsub_reg_add(
    struct pubsub_reg *r, const char *f, size_t flen, unsigned w);
void pubsub_reg_del(
    struct pubsub_reg *r, const char *f, size_t flen, unsigned w);
/*
 * counts[w] += the subscriptions on worker w matching topic t, for every
 * w; returns the total.
 */
uint64_t pubsub_reg_match(
    const struct pubsub_reg *r, const char *t, size_t tlen, uint32_t *counts);
/* Subscriptions held in all. */
uint64_t pubsub_reg_total(const struct pubsub_reg *r);

/*
 * --- a topic cache: topic -> a value computed at a generation ---
 *
 * A direct-mapped table (slots a power of two) of topics, each with a
 * value of vsize bytes and the generation it was computed at.  The owner
 * says which generation is current: an entry of another generation is a
 * miss, so bumping the generation invalidates everything at once (the
 * daemon bumps it whenever the registry changes, and each worker keeps
 * its own cache of registry answers: a PUBLISH then takes no lock).  Two
 * topics that hash to one slot evict each other.  Generation 0 means
 * empty.  One thread per cache; no locks.
 */
struct pubsub_cache;

/* NULL when out of memory or slots is not a power of two. */
struct pubsub_cache *pubsub_cache_new(size_t slots, size_t vsize);
/* The most slots (a power of two, at least 1) that fit in bytes. */
size_t pubsub_cache_fit(size_t bytes, size_t vsize);
void pubsub_cache_free(struct pubsub_cache *c);
/* The value cached for topic t at generation gen, or NULL. */
void *pubsub_cache_get(
    struct pubsub_cache *c, const char *t, size_t tlen, uint64_t gen);
/*
 * The slot for t, now holding generation gen: the caller fills its
 * vsize-byte value.  NULL (nothing cached) when t is longer than
 * PUBSUB_NAME_MAX or gen is 0.
 */
void *pubsub_cache_put(
    struct pubsub_cache *c, const char *t, size_t tlen, uint64_t gen);

#endif /* SOCKETD_PUBSUB_H */
