/*
 * man_keys: print every setting the configuration loader accepts, one
 * dotted path per line ("timeouts.idle"), groups included, for
 * tests/man/drift.sh to look up in socketd.conf.5.
 */
#include <stddef.h>
#include <stdio.h>

#include "cfg.h"

int
main(void)
{
	const char *key;
	size_t i;

	for (i = 0; (key = cfg_key_at(i)) != NULL; i++)
		if (printf("%s\n", key) < 0)
			return 1;
	return fflush(stdout) == 0 ? 0 : 1;
}
