/*
 * echoproc: the smallest useful handler process in C, for bench/procs.sh:
 * serves "echo" (offset 0x00), answering each request with its payload.
 * It reads as much as is there, answers every whole frame in one write
 * and never allocates per request: what is measured is socketd's hop.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF (4u << 20)

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static int
write_all(const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(1, p, n)) <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
main(void)
{
	static uint8_t in[BUF], out[BUF + 64];
	static const char list[] = "0x00 echo\n";
	size_t have = 0, pos, o;
	uint32_t len;
	ssize_t n;
	int first = 1;

	while ((n = read(0, in + have, BUF - have)) > 0) {
		have += (size_t)n;
		for (pos = 0, o = 0; have - pos >= 4; pos += 4 + len) {
			len = get32(in + pos);
			if (len < 8 || len > BUF - 4) {
				fprintf(stderr, "bad frame length %u\n", len);
				return 1;
			}
			if (have - pos < 4 + len)
				break;
			if (o + 4 + len + sizeof(list) > sizeof(out)) {
				if (write_all(out, o) != 0)
					return 1;
				o = 0;
			}
			/* The request's header is the answer's: status 0. */
			memcpy(out + o, in + pos, 4 + len);
			out[o + 6] = out[o + 7] = 0;
			if (first) {
				uint32_t l = 8 + sizeof(list) - 1;

				out[o] = (uint8_t)(l >> 24);
				out[o + 1] = (uint8_t)(l >> 16);
				out[o + 2] = (uint8_t)(l >> 8);
				out[o + 3] = (uint8_t)l;
				memcpy(out + o + 12, list, sizeof(list) - 1);
				o += 4 + l;
				first = 0;
				continue;
			}
			o += 4 + len;
		}
		if (o > 0 && write_all(out, o) != 0)
			return 1;
		memmove(in, in + pos, have - pos);
		have -= pos;
	}
	return 0;
}
