#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "proto.h"

/* Smallest buffer we allocate: avoids regrowing for the next few bytes. */
#define CONN_BUF_MIN 4096

struct conn *
conn_new(int fd)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->io = &io_plain;
	return c;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		c->io->close(c->fd, c->io_ctx);
	free(c->in);
	free(c->out);
	free(c);
}

/*
 * Where the frame that holds byte off of buf starts.  Output is whole
 * frames and buf[0] always starts one (conn_out_reserve and conn_out_keep
 * keep it so), so the frames are walked from there: O(frames before off),
 * paid only when output is moved or cut, never per write.
 */
static size_t
frame_start(const uint8_t *buf, size_t off)
{
	size_t b = 0, n;

	while (b < off) {
		n = PROTO_LEN_SIZE + proto_get_u32(buf + b);
		if (b + n > off)
			break;
		b += n;
	}
	return b;
}

/* Grow *buf so that it holds need bytes; double, starting at CONN_BUF_MIN. */
static int
grow(uint8_t **buf, uint32_t *cap, size_t need)
{
	size_t ncap = *cap ? *cap : CONN_BUF_MIN;
	uint8_t *nb;

	if (need <= *cap)
		return 0;
	if (need > UINT32_MAX)
		return -1;
	while (ncap < need)
		ncap *= 2;
	if (ncap > UINT32_MAX)
		ncap = UINT32_MAX;
	if ((nb = realloc(*buf, ncap)) == NULL)
		return -1;
	*buf = nb;
	*cap = (uint32_t)ncap;
	return 0;
}

int
conn_out_reserve(struct conn *c, size_t n)
{
	/*
	 * Compact only when the dead prefix is at least the live data: a
	 * subscriber that lags keeps a long queue, and moving all of it for
	 * every append would cost O(queue) per message.
	 */
	size_t b;

	if (c->out_off > 0 && c->out_off + c->out_len + n > c->out_cap &&
	    c->out_off >= c->out_len) {
		/* From the start of the frame in progress: out[0] stays one. */
		b = frame_start(c->out, c->out_off);
		memmove(c->out, c->out + b, c->out_off - b + c->out_len);
		c->out_off -= (uint32_t)b;
	}
	return grow(&c->out, &c->out_cap, (size_t)c->out_off + c->out_len + n);
}

int
conn_out_keep(struct conn *c, const uint8_t *p, size_t len, size_t sent)
{
	size_t b = frame_start(p, sent);

	if (conn_out_reserve(c, len - b) != 0)
		return -1;
	memcpy(c->out, p + b, len - b);
	c->out_off = (uint32_t)(sent - b);
	c->out_len = (uint32_t)(len - sent);
	return 0;
}

size_t
conn_out_discard(struct conn *c, size_t keep, unsigned *frames)
{
	size_t b = frame_start(c->out, c->out_off), end, dropped;
	const uint8_t *p = c->out;

	*frames = 0;
	if (c->out_len == 0)
		return 0;
	/* The end of the first frame that reaches out_off + keep. */
	end = c->out_off + keep;
	while (b < end)
		b += PROTO_LEN_SIZE + proto_get_u32(p + b);
	if (b >= (size_t)c->out_off + c->out_len)
		return 0;
	dropped = (size_t)c->out_off + c->out_len - b;
	for (end = b; end < (size_t)c->out_off + c->out_len; (*frames)++)
		end += PROTO_LEN_SIZE + proto_get_u32(p + end);
	c->out_len -= (uint32_t)dropped;
	return dropped;
}

int
conn_in_append(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->in_off > 0 && c->in_off + c->in_len + n > c->in_cap) {
		memmove(c->in, c->in + c->in_off, c->in_len);
		c->in_off = 0;
	}
	if (grow(&c->in, &c->in_cap, (size_t)c->in_off + c->in_len + n) != 0)
		return -1;
	memcpy(c->in + c->in_off + c->in_len, p, n);
	c->in_len += (uint32_t)n;
	return 0;
}

void
conn_in_consume(struct conn *c, size_t n)
{
	c->in_off += (uint32_t)n;
	c->in_len -= (uint32_t)n;
	if (c->in_len == 0) {
		free(c->in);
		c->in = NULL;
		c->in_off = c->in_cap = 0;
	}
}

void
conn_out_consume(struct conn *c, size_t n)
{
	c->out_off += (uint32_t)n;
	c->out_len -= (uint32_t)n;
	if (c->out_len == 0 && (c->flags & CONN_KEEP_OUT)) {
		c->out_off = 0; /* psub.c frees it once the stream stops */
		return;
	}
	if (c->out_len == 0) {
		free(c->out);
		c->out = NULL;
		c->out_off = c->out_cap = 0;
	}
}

void
clist_push_tail(struct clist *l, struct conn *c, size_t off)
{
	struct clink *k = CLINK(c, off);

	k->next = NULL;
	k->prev = l->tail;
	if (l->tail != NULL)
		CLINK(l->tail, off)->next = c;
	else
		l->head = c;
	l->tail = c;
	l->len++;
}

void
clist_remove(struct clist *l, struct conn *c, size_t off)
{
	struct clink *k = CLINK(c, off);

	if (k->prev != NULL)
		CLINK(k->prev, off)->next = k->next;
	else
		l->head = k->next;
	if (k->next != NULL)
		CLINK(k->next, off)->prev = k->prev;
	else
		l->tail = k->prev;
	k->prev = k->next = NULL;
	l->len--;
}

const char *
conn_peer_str(const struct conn *c, char *buf, size_t len)
{
	static const uint8_t mapped[12] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	const char *p;

	if (memcmp(c->src, mapped, sizeof(mapped)) == 0)
		p = inet_ntop(AF_INET, c->src + 12, buf, (socklen_t)len);
	else
		p = inet_ntop(AF_INET6, c->src, buf, (socklen_t)len);
	return p != NULL ? p : "?";
}
