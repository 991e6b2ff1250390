#define _GNU_SOURCE /* pipe2, close_range */
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "spawn.h"

#define DEFAULT_PATH "PATH=/usr/local/bin:/usr/bin:/bin"
#define NGROUPS_CAP  256

struct ident {
	int change; /* switch to uid/gid */
	uid_t uid;
	gid_t gid;
	gid_t groups[NGROUPS_CAP];
	int ngroups;
};

static int
resolve_user(const char *user, struct ident *id, char *err, size_t len)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	int rc;

	memset(id, 0, sizeof(*id));
	if (user == NULL)
		return 0;
	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
	if (pwp == NULL) {
		snprintf(err, len, "user \"%s\": %s", user,
		    rc != 0 ? LOG_ERRSTR(rc) : "no such user");
		return -1;
	}
	if (pw.pw_uid == geteuid() && pw.pw_gid == getegid())
		return 0; /* already that user */
	if (geteuid() != 0) {
		snprintf(err, len,
		    "user \"%s\": socketd runs as uid %u, not root, so it "
		    "cannot start processes as another user (leave user "
		    "unset to run them as socketd's own)",
		    user, (unsigned)geteuid());
		return -1;
	}
	id->change = 1;
	id->uid = pw.pw_uid;
	id->gid = pw.pw_gid;
	id->ngroups = NGROUPS_CAP;
	if (getgrouplist(user, pw.pw_gid, id->groups, &id->ngroups) == -1)
		id->ngroups = 1; /* more than the cap: the primary one only */
	if (id->ngroups < 1) {
		id->groups[0] = pw.pw_gid;
		id->ngroups = 1;
	}
	return 0;
}

/* PATH, then the entry's env (which may set PATH itself). */
static char **
make_env(const struct cfg_proc *pc)
{
	char **envp;
	size_t i, n = 0;
	int has_path = 0;

	if ((envp = calloc(pc->nenv + 2, sizeof(char *))) == NULL)
		return NULL;
	for (i = 0; i < pc->nenv; i++)
		has_path |= strncmp(pc->env[i], "PATH=", 5) == 0;
	if (!has_path)
		envp[n++] = (char *)DEFAULT_PATH;
	for (i = 0; i < pc->nenv; i++)
		envp[n++] = pc->env[i];
	return envp;
}

/* The child, between fork and execve: async-signal-safe calls only. */
static void __attribute__((noreturn)) child(const struct cfg_proc *pc,
    char **envp, const struct ident *id, int sock, int errw, int execw)
{
	struct sigaction sa;
	sigset_t none;
	int e, sig;

	if (dup2(sock, 0) == -1 || dup2(sock, 1) == -1 || dup2(errw, 2) == -1)
		goto fail;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	/* The child has one thread: sigprocmask is its whole mask. */
	// NOLINTNEXTLINE(concurrency-mt-unsafe)
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	/* Its own session: a terminal's ^C goes to socketd, not to it. */
	(void)setsid();
	if (id->change) {
		if (setgroups((size_t)id->ngroups, id->groups) == -1 ||
		    setgid(id->gid) == -1 || setuid(id->uid) == -1)
			goto fail;
	}
	/* Nothing of socketd's leaks into the program (execw is CLOEXEC). */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execve(pc->argv[0], pc->argv, envp);
fail:
	e = errno;
	(void)!write(execw, &e, sizeof(e));
	_exit(127);
}

int
spawn_child(
    const struct cfg_proc *pc, struct spawned *out, char *err, size_t len)
{
	struct ident id;
	char **envp;
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, xp[2] = {-1, -1};
	int e = 0, status;
	ssize_t n;
	pid_t pid;

	if (resolve_user(pc->user, &id, err, len) != 0)
		return -1;
	if ((envp = make_env(pc)) == NULL) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    pipe2(ep, O_CLOEXEC) == -1 || pipe2(xp, O_CLOEXEC) == -1) {
		snprintf(err, len, "cannot create its socket: %s",
		    LOG_ERRSTR(errno));
		goto fail;
	}
	if ((pid = fork()) == -1) {
		snprintf(err, len, "fork: %s", LOG_ERRSTR(errno));
		goto fail;
	}
	if (pid == 0)
		child(pc, envp, &id, sv[1], ep[1], xp[1]);
	free(envp);
	envp = NULL;
	close(sv[1]);
	close(ep[1]);
	close(xp[1]);
	sv[1] = ep[1] = xp[1] = -1;
	/* execve() closes xp[1]: EOF.  A failure sends its errno first. */
	do
		n = read(xp[0], &e, sizeof(e));
	while (n == -1 && errno == EINTR);
	close(xp[0]);
	xp[0] = -1;
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		snprintf(
		    err, len, "cannot run %s: %s", pc->argv[0], LOG_ERRSTR(e));
		goto fail;
	}
	out->pid = pid;
	out->fd = sv[0];
	out->errfd = ep[0];
	out->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	/* Older kernels, valgrind, seccomp filters: the caller polls. */
	if (out->pidfd == -1 && errno != ENOSYS && errno != EPERM) {
		e = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		snprintf(err, len, "pidfd_open: %s", LOG_ERRSTR(e));
		sv[1] = ep[1] = -1;
		goto fail;
	}
	if (out->pidfd != -1)
		(void)fcntl(out->pidfd, F_SETFD, FD_CLOEXEC);
	(void)fcntl(sv[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(ep[0], F_SETFL, O_NONBLOCK);
	return 0;
fail:
	free(envp);
	for (e = 0; e < 2; e++) {
		if (sv[e] != -1)
			close(sv[e]);
		if (ep[e] != -1)
			close(ep[e]);
		if (xp[e] != -1)
			close(xp[e]);
	}
	return -1;
}

void
spawn_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(
		    buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)",
		    WTERMSIG(status),
		    sigabbrev_np(WTERMSIG(status)) != NULL
			? sigabbrev_np(WTERMSIG(status))
			: "?");
	else
		snprintf(buf, len, "stopped (status 0x%x)", (unsigned)status);
}
