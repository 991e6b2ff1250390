/*
 * opnames: opcode names, resolved through the server's OPCODES answer
 * (protocol v1.1), for socketd-cli's call and bench --op.
 */
#ifndef SOCKETD_OPNAMES_H
#define SOCKETD_OPNAMES_H

#include <stddef.h>
#include <stdint.h>

#include "sdclient.h"

/*
 * "0x80" (two hex digits, 0x00-0xff) gives that opcode without asking
 * the server: 1 with *op set; 0 for a name; -1 for a malformed number.
 */
int opnames_number(const char *s, uint8_t *op);

/*
 * Find name in an OPCODES answer ("0xNN name[ push]\n" lines).  0 with
 * *op and *push set, -1 when it is not there or a line is malformed.
 */
int opnames_find(
    const uint8_t *text, size_t len, const char *name, uint8_t *op, int *push);

/*
 * name or 0xNN to an opcode, asking the server on c when it is a name.
 * 0, or -1 with err filled ("no opcode named x: socketd-cli opcodes
 * lists them"; "the server does not list its opcodes (protocol v1.0):
 * give the opcode as 0xNN").
 */
int opnames_resolve(struct sdc *c, const char *name, uint8_t *op, char *err);

#endif /* SOCKETD_OPNAMES_H */
