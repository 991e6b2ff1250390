/*
 * client/opnames.c: names and 0xNN to opcodes, from OPCODES text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "opnames.h"

static const char text[] = "0x00 ping\n0x01 echo\n0x05 opcodes\n"
			   "0x80 hello.upper\n0x81 hello.sleep\n"
			   "0x8c hello.note push\n0xff z\n";

static int
find(const char *t, const char *name, uint8_t *op, int *push)
{
	return opnames_find((const uint8_t *)t, strlen(t), name, op, push);
}

static void
test_number(void **state)
{
	uint8_t op = 0;

	(void)state;
	assert_int_equal(opnames_number("0x80", &op), 1);
	assert_int_equal(op, 0x80);
	assert_int_equal(opnames_number("0xFf", &op), 1);
	assert_int_equal(op, 0xff);
	assert_int_equal(opnames_number("0x00", &op), 1);
	assert_int_equal(op, 0);
	assert_int_equal(opnames_number("hello.upper", &op), 0);
	assert_int_equal(opnames_number("ping", &op), 0);
	assert_int_equal(opnames_number("0x", &op), -1);
	assert_int_equal(opnames_number("0x8", &op), -1);
	assert_int_equal(opnames_number("0x800", &op), -1);
	assert_int_equal(opnames_number("0xg0", &op), -1);
}

static void
test_find(void **state)
{
	uint8_t op = 0;
	int push = -1;

	(void)state;
	assert_int_equal(find(text, "hello.upper", &op, &push), 0);
	assert_int_equal(op, 0x80);
	assert_int_equal(push, 0);
	assert_int_equal(find(text, "ping", &op, &push), 0);
	assert_int_equal(op, 0);
	assert_int_equal(find(text, "z", &op, &push), 0);
	assert_int_equal(op, 0xff);
	assert_int_equal(find(text, "hello.note", &op, &push), 0);
	assert_int_equal(op, 0x8c);
	assert_int_equal(push, 1);
	/* Prefixes and suffixes of names are not names. */
	assert_int_equal(find(text, "hello", &op, &push), -1);
	assert_int_equal(find(text, "hello.uppe", &op, &push), -1);
	assert_int_equal(find(text, "ello.upper", &op, &push), -1);
	assert_int_equal(find(text, "", &op, &push), -1);
	/* Malformed text: refused, not misread. */
	assert_int_equal(find("0x8 a\n", "a", &op, &push), -1);
	assert_int_equal(find("junk\n0x80 a\n", "a", &op, &push), -1);
	/* No final newline is fine. */
	assert_int_equal(find("0x80 a", "a", &op, &push), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_number),
	    cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests_name("opnames", tests, NULL, NULL);
}
