#define _GNU_SOURCE /* setresuid, setresgid */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

int
privdrop(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char buf[4096];
	gid_t gid;
	int rc;

	if (user == NULL)
		return 0;
	rc = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
	if (pwp == NULL) {
		snprintf(err, errlen, "user \"%s\": %s", user,
		    rc != 0 ? LOG_ERRSTR(rc) : "no such user");
		return -1;
	}
	gid = pw.pw_gid;
	if (group != NULL) {
		char gbuf[4096];

		rc = getgrnam_r(group, &gr, gbuf, sizeof(gbuf), &grp);
		if (grp == NULL) {
			snprintf(err, errlen, "group \"%s\": %s", group,
			    rc != 0 ? LOG_ERRSTR(rc) : "no such group");
			return -1;
		}
		gid = gr.gr_gid;
	}
	if (geteuid() != 0) {
		if (geteuid() == pw.pw_uid && getegid() == gid)
			return 0;
		snprintf(err, errlen,
		    "not started as root: cannot switch to user \"%s\"; "
		    "running as uid %ld",
		    user, (long)geteuid());
		return 1;
	}
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) == -1) {
		snprintf(err, errlen, "cannot switch to user \"%s\": %s", user,
		    LOG_ERRSTR(errno));
		return -1;
	}
	/* Paranoia (OpenBSD daemons do the same): root must be gone for good.
	 */
	if (pw.pw_uid != 0 && (setuid(0) != -1 || geteuid() == 0)) {
		snprintf(err, errlen,
		    "switched to user \"%s\" but root could be regained", user);
		return -1;
	}
	return 0;
}

int
pidfile_write(const char *path, char *err, size_t errlen)
{
	char line[32];
	int fd, n;

	if (path == NULL)
		return 0;
	fd = open(
	    path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		snprintf(
		    err, errlen, "pid_file %s: %s", path, LOG_ERRSTR(errno));
		return -1;
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n) {
		snprintf(
		    err, errlen, "pid_file %s: %s", path, LOG_ERRSTR(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void
pidfile_remove(const char *path)
{
	if (path != NULL)
		(void)unlink(path);
}
