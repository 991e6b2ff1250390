/*
 * libsocketd_int.h: what the files of libsocketd.so.1 share and programs
 * never see (not installed; every name here is hidden by the version
 * script).  libsocketd.c is the blocking client, libsocketd_pubsub.c its
 * pub/sub requests and the queue of MESSAGE pushes, libsocketd_async.c
 * the non-blocking client.  Return convention as in <socketd/client.h>.
 */
#ifndef SOCKETD_LIBSOCKETD_INT_H
#define SOCKETD_LIBSOCKETD_INT_H

#include <stddef.h>
#include <stdint.h>

#include <socketd/client.h>

#include "proto.h"
#include "sdclient.h"

#define SD_TOPIC_MAX 255 /* a topic or filter (PROTOCOL 1.1) */
/* MESSAGE pushes kept for socketd_next_message; beyond, counted as lost. */
#define SD_MSG_QUEUE_MAX 4096

struct inflight {
	uint32_t id;
	uint8_t opcode;
};

/* A subscription made through socketd_subscribe, renewed on reconnect. */
struct sd_sub {
	uint32_t id;
	unsigned flags;
	int live; /* the server said OK: renew it on reconnect */
	char *filter;
};

/* A MESSAGE push kept for socketd_next_message (FIFO). */
struct sd_msg {
	struct sd_msg *next;
	struct socketd_message m; /* points into data[] */
	uint8_t data[];           /* topic, NUL, payload */
};

struct socketd_client {
	struct sdc conn; /* fd -1 when not connected */
	int timeout_ms;
	size_t max_frame;
	int tls;
	int tls_insecure;
	int retry_all; /* socketd_set_retry: retry any request once */
	char *cafile;
	char *certfile;
	char *keyfile;
	char *host; /* of the last socketd_connect, for reconnecting */
	unsigned port;
	int draining; /* GOAWAY (or NOTICE SHUTDOWN) seen on this connection */
	int closing;  /* a NOTICE said the server closes this connection */
	int resubscribing; /* inside sd_resubscribe: no nested reconnect */
	socketd_push_fn push_fn;
	void *push_arg;
	int in_push; /* inside push_fn: calls on c are refused */
	uint32_t next_id;
	struct inflight *q; /* ring of requests sent, not yet answered */
	size_t q_head;
	size_t q_len;
	size_t q_cap;
	unsigned status; /* of the last answer */
	char *text;      /* NUL-terminated copy of a text answer */
	size_t text_cap;
	char *opcodes; /* this connection's OPCODES answer, or NULL */
	size_t opcodes_len;
	/* pub/sub (libsocketd_pubsub.c) */
	struct sd_sub *subs;
	size_t n_subs;
	size_t subs_cap;
	uint32_t next_sub_id;
	struct sd_msg *mq_head; /* MESSAGE pushes not yet taken */
	struct sd_msg *mq_tail;
	size_t mq_len;
	uint32_t mq_lost;   /* dropped for a full queue, added to the next */
	struct sd_msg *cur; /* the one socketd_next_message returned last */
	char notice[SDC_ERRLEN]; /* why the server closes (closing set) */
	char err[SDC_ERRLEN];
};

/* libsocketd.c */
int sd_fail(struct socketd_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sd_fail_conn(struct socketd_client *c, int e);
int sd_enter(struct socketd_client *c, int need_conn);
/* One request and its answer, with GOAWAY and the retry rules. */
int sd_roundtrip(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, struct proto_resp *r);
/* sd_roundtrip; an error status is SOCKETD_E_SERVER with its message. */
int sd_call_ok(struct socketd_client *c, unsigned opcode, const void *payload,
    size_t len, struct proto_resp *r, const char *what);
/* Connect again to the last host and port, subscriptions renewed. */
int sd_reconnect(struct socketd_client *c);

/* libsocketd_pubsub.c */
/* A push frame seen by the blocking client: GOAWAY, MESSAGE, NOTICE... */
void sd_push(struct socketd_client *c, const struct proto_resp *r);
/* Subscribe again on a new connection (sd_reconnect). */
int sd_resubscribe(struct socketd_client *c);
/* Milliseconds on the monotonic clock (sdclient's deadlines). */
int64_t sd_now_ms(void);
/* Free the subscriptions and the queued messages. */
void sd_pubsub_free(struct socketd_client *c);
/*
 * The requests' payloads.  subscribe: into buf, the length (0: no room);
 * publish: a malloc'ed *out of *outlen bytes (the caller frees it), or -1
 * when out of memory.
 */
size_t sd_enc_subscribe(uint8_t *buf, size_t cap, uint32_t sub_id,
    const char *filter, unsigned flags);
int sd_enc_publish(uint8_t **out, size_t *outlen, const char *topic,
    size_t tlen, const void *data, size_t len);
/* Check a request's arguments: 0, or SOCKETD_E_INVALID with err set. */
int sd_check_subscribe(char *err, const char *filter, unsigned flags);
int sd_check_publish(
    char *err, const char *topic, const void *data, size_t len);
/* Parse a MESSAGE payload into m (views into payload); -1 if malformed. */
int sd_parse_message(
    const uint8_t *p, size_t n, struct socketd_message *m, char *topic_copy);

#endif /* SOCKETD_LIBSOCKETD_INT_H */
