/*
 * notify: the systemd service manager protocols, without requiring
 * systemd.  sd_notify(3) messages (READY=1, RELOADING=1, STOPPING=1,
 * STATUS=...) go to $NOTIFY_SOCKET through libsystemd when socketd was
 * built with it, or through a small built-in sender otherwise; socket
 * activation (sd_listen_fds(3)) is read from $LISTEN_PID/$LISTEN_FDS.
 * Outside systemd every function here is a no-op.
 */
#ifndef SOCKETD_NOTIFY_H
#define SOCKETD_NOTIFY_H

#include <stddef.h>

#include "acceptor.h"

/* Send one notification; printf-style.  0 sent or not under systemd. */
int notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether $NOTIFY_SOCKET is set (STATUS= updates are worth computing). */
int notify_enabled(void);

/*
 * Sockets passed by the service manager: fill ls[0..max) with listening
 * stream sockets from fd 3 on, made non-blocking, and return how many (0:
 * not socket-activated).  -1 with a message in err when the passed
 * descriptors are unusable.  Unsets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES
 * so that nothing started later inherits them.
 */
int notify_listen_fds(
    struct listener *ls, size_t max, char *err, size_t errlen);

#endif /* SOCKETD_NOTIFY_H */
