/*
 * privdrop: give up root after binding, and the PID file.
 */
#ifndef SOCKETD_PRIVDROP_H
#define SOCKETD_PRIVDROP_H

#include <stddef.h>

/*
 * Switch to user (and group, or the user's primary group when NULL).
 * Started as root: setgroups/setgid/setuid, then check that root cannot
 * be regained.  Not root: nothing to drop; 0 if already that user, else a
 * warning in err with return 1.  -1 with a message in err on failure: the
 * caller must not run on.
 */
int privdrop(const char *user, const char *group, char *err, size_t errlen);

/* Write the PID to path (0, or -1 with a message in err); remove it. */
int pidfile_write(const char *path, char *err, size_t errlen);
void pidfile_remove(const char *path);

#endif /* SOCKETD_PRIVDROP_H */
