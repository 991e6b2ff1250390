/*
 * spawn: start one handler process (procs.c): fork + execve with no
 * shell, fd 0 and 1 a connected Unix stream socket, fd 2 a pipe, a clean
 * environment plus the entry's env, its own session, as its user.
 * Everything the child needs is prepared before fork(): between fork and
 * execve it makes only async-signal-safe calls, as a child of a
 * multi-threaded process must.
 */
#ifndef SOCKETD_SPAWN_H
#define SOCKETD_SPAWN_H

#include <sys/types.h>

#include <stddef.h>

struct cfg_proc;

struct spawned {
	pid_t pid;
	int fd;    /* our end of its stdin/stdout, non-blocking */
	int errfd; /* its stderr, non-blocking */
	int pidfd; /* readable when it exits; -1: no pidfds here, poll */
};

/*
 * 0, or -1 with err: the user is unknown or cannot be switched to, the
 * program could not be executed ("cannot run /x: No such file or
 * directory"), or the system is out of resources.
 */
int spawn_child(
    const struct cfg_proc *pc, struct spawned *out, char *err, size_t len);
/* "exited with status 1", "was killed by signal 9 (Killed)". */
void spawn_status_str(int status, char *buf, size_t len);

#endif /* SOCKETD_SPAWN_H */
