/*
 * fuzz.h: what the fuzz targets share.
 *
 * Each fuzz_<m>.c defines LLVMFuzzerTestOneInput and links module <m>
 * only.  The same source is built twice: with clang and libFuzzer for
 * fuzzing (fuzz/CMakeLists.txt), and with the ordinary compiler and
 * tests/fuzz/driver.c to replay the seed and regression inputs in the
 * ordinary test suite.  A broken invariant prints what broke and aborts,
 * which both libFuzzer and ctest report as a failure.
 */
#ifndef SOCKETD_FUZZ_H
#define SOCKETD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The entry point libFuzzer calls once per input; always returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline _Noreturn void
fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	fflush(stderr);
	abort();
}

/* Check an invariant of the code under test (not of the input). */
#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(__FILE__, __LINE__, #cond);                  \
	} while (0)

#endif /* SOCKETD_FUZZ_H */
