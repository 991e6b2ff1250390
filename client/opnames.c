/*
 * opnames.c: name to opcode through OPCODES (opnames.h).
 */
#include <string.h>

#include "opnames.h"
#include "proto.h"

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
opnames_number(const char *s, uint8_t *op)
{
	int hi, lo;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return 0;
	if (strlen(s) != 4 || (hi = hexval(s[2])) < 0 ||
	    (lo = hexval(s[3])) < 0)
		return -1;
	*op = (uint8_t)(hi << 4 | lo);
	return 1;
}

int
opnames_find(
    const uint8_t *text, size_t len, const char *name, uint8_t *op, int *push)
{
	size_t nlen = strlen(name), off = 0, end, i;
	const char *line;
	int hi, lo;

	while (off < len) {
		for (end = off; end < len && text[end] != '\n'; end++)
			;
		line = (const char *)text + off;
		/* "0xNN name" at least. */
		if (end - off < 6 || line[0] != '0' || line[1] != 'x' ||
		    (hi = hexval(line[2])) < 0 || (lo = hexval(line[3])) < 0 ||
		    line[4] != ' ')
			return -1;
		i = off + 5;
		if (end - i >= nlen && memcmp(text + i, name, nlen) == 0 &&
		    (i + nlen == end || text[i + nlen] == ' ')) {
			*op = (uint8_t)(hi << 4 | lo);
			*push = i + nlen != end && end - (i + nlen) == 5 &&
			    memcmp(text + i + nlen, " push", 5) == 0;
			return 0;
		}
		off = end + 1;
	}
	return -1;
}

int
opnames_resolve(struct sdc *c, const char *name, uint8_t *op, char *err)
{
	struct proto_resp r;
	int rc, push = 0;

	if ((rc = opnames_number(name, op)) == 1)
		return 0;
	if (rc == -1) {
		sdc_seterr(err, "bad opcode '%s': expected 0x00 to 0xff", name);
		return -1;
	}
	if (sdc_call(c, PROTO_OP_OPCODES, NULL, 0, &r, err) == -1)
		return -1;
	if (r.status == PROTO_UNKNOWN_OPCODE) {
		sdc_seterr(err,
		    "the server does not list its opcodes (protocol v1.0): "
		    "give the opcode as 0xNN");
		return -1;
	}
	if (r.status != PROTO_OK) {
		sdc_seterr(
		    err, "OPCODES answered %s", proto_status_str(r.status));
		return -1;
	}
	if (opnames_find(r.payload, r.payload_len, name, op, &push) != 0) {
		sdc_seterr(err,
		    "the server has no opcode named '%s' (socketd-cli "
		    "opcodes lists them)",
		    name);
		return -1;
	}
	if (push) {
		sdc_seterr(err,
		    "'%s' (0x%02x) is a push opcode: the server sends it, "
		    "clients cannot call it",
		    name, *op);
		return -1;
	}
	return 0;
}
