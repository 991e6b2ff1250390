/*
 * driver.c: replay fuzz inputs through a fuzz target without libFuzzer.
 *
 *   fuzz_regress_<name> PATH...
 *
 * Each PATH is a file or a directory; a directory contributes every
 * regular file in it, in name order, except dotfiles and README*.  Every
 * input is read into a buffer of exactly its size (so ASan sees a read past
 * its end) and passed to LLVMFuzzerTestOneInput, which aborts when an
 * invariant breaks.  Exit status 0 when all inputs ran, 1 when a PATH
 * could not be read.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Run one file; returns 0, or -1 if it could not be read. */
static int
run_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t size;
	FILE *fp;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) == -1 || st.st_size < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		fclose(fp);
		return -1;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size != 0 ? size : 1)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", path);
		fclose(fp);
		return -1;
	}
	if (size != 0 && fread(buf, 1, size, fp) != size) {
		fprintf(stderr, "%s: short read\n", path);
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	fprintf(stderr, "input %s (%lu bytes)\n", path, (unsigned long)size);
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	return 0;
}

static int
skip_name(const char *name)
{
	return name[0] == '.' || strncmp(name, "README", 6) == 0;
}

/* Run path, a file or a directory; add the inputs run to *n. */
static int
run_path(const char *path, unsigned long *n)
{
	struct dirent **ents;
	struct stat st;
	char *sub;
	size_t len;
	int i, count, rc = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (run_file(path) == -1)
			return -1;
		(*n)++;
		return 0;
	}
	if ((count = scandir(path, &ents, NULL, alphasort)) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < count; i++) {
		len = strlen(path) + 1 + strlen(ents[i]->d_name) + 1;
		if (skip_name(ents[i]->d_name) || (sub = malloc(len)) == NULL) {
			free(ents[i]);
			continue;
		}
		snprintf(sub, len, "%s/%s", path, ents[i]->d_name);
		if (stat(sub, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(sub) == -1)
				rc = -1;
			else
				(*n)++;
		}
		free(sub);
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int
main(int argc, char **argv)
{
	unsigned long n = 0;
	int i, rc = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file-or-directory...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++)
		if (run_path(argv[i], &n) == -1)
			rc = 1;
	printf("%lu inputs, no invariant broken\n", n);
	return rc;
}
