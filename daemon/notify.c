#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef SOCKETD_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "notify.h"

#define LISTEN_FDS_START 3

/*
 * The environment is read (and LISTEN_* unset) by the main thread only,
 * and no thread of socketd ever calls setenv: getenv is safe here.
 */
// NOLINTBEGIN(concurrency-mt-unsafe)
int
notify_enabled(void)
{
	const char *p = getenv("NOTIFY_SOCKET");

	return p != NULL && p[0] != '\0';
}

#ifndef SOCKETD_HAVE_LIBSYSTEMD
/* The sd_notify(3) wire protocol: one datagram to $NOTIFY_SOCKET. */
static int
notify_send(const char *msg)
{
	const char *p = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t n;
	ssize_t r;
	int fd, e;

	if (p == NULL || p[0] == '\0')
		return 0;
	n = strlen(p);
	if ((p[0] != '/' && p[0] != '@') || n >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, p, n);
	if (p[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
		(p[0] == '/')));
	e = errno;
	close(fd);
	return r == -1 ? -e : 1;
}
#endif

int
notify(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!notify_enabled())
		return 0;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
#ifdef SOCKETD_HAVE_LIBSYSTEMD
	return sd_notify(0, msg);
#else
	return notify_send(msg);
#endif
}

/* "127.0.0.1:7411" or "[::1]:7411" for a bound socket. */
static void
sock_name(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(buf, len, "fd %d", fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	}
}

static int
parse_count(const char *s, long *out)
{
	char *end;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	*out = strtol(s, &end, 10);
	return (errno != 0 || *end != '\0' || *out < 0) ? -1 : 0;
}

/*
 * Whether the i-th name in LISTEN_FDNAMES ("a:tls:b") is "tls": the
 * socket unit's FileDescriptorName=tls makes that socket a TLS listener.
 */
static int
fdname_is_tls(const char *names, long i)
{
	const char *p = names, *end;

	if (p == NULL)
		return 0;
	for (; i > 0; i--) {
		if ((p = strchr(p, ':')) == NULL)
			return 0;
		p++;
	}
	end = strchr(p, ':');
	return (end != NULL ? (size_t)(end - p) : strlen(p)) == 3 &&
	    strncmp(p, "tls", 3) == 0;
}

int
notify_listen_fds(struct listener *ls, size_t max, char *err, size_t errlen)
{
	char name[64]; /* "[v6]:port" */
	const char *names;
	long pid, n, i;
	int fd, type, acc, fl;
	socklen_t sl;

	if (parse_count(getenv("LISTEN_PID"), &pid) != 0 ||
	    (pid_t)pid != getpid() ||
	    parse_count(getenv("LISTEN_FDS"), &n) != 0 || n == 0)
		return 0;
	names = getenv("LISTEN_FDNAMES"); /* valid until unsetenv */
	for (i = 0; i < n && (size_t)i < max; i++)
		ls[i].tls = fdname_is_tls(names, i);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if ((size_t)n > max) {
		snprintf(err, errlen,
		    "socket activation: %ld sockets passed, at most %zu "
		    "supported",
		    n, max);
		return -1;
	}
	for (i = 0; i < n; i++) {
		fd = LISTEN_FDS_START + (int)i;
		sl = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &sl) == -1 ||
		    type != SOCK_STREAM) {
			snprintf(err, errlen,
			    "socket activation: fd %d is not a stream socket",
			    fd);
			return -1;
		}
		sl = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &sl) ==
			-1 ||
		    !acc) {
			snprintf(err, errlen,
			    "socket activation: fd %d is not listening "
			    "(Accept=no and ListenStream= are needed)",
			    fd);
			return -1;
		}
		fl = fcntl(fd, F_GETFL);
		if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
			snprintf(err, errlen, "socket activation: fd %d: %s",
			    fd, LOG_ERRSTR(errno));
			return -1;
		}
		ls[i].fd = fd;
		sock_name(fd, name, sizeof(name));
		snprintf(ls[i].name, sizeof(ls[i].name), "%s%s",
		    ls[i].tls ? CFG_TLS_PREFIX : "", name);
	}
	return (int)n;
}
// NOLINTEND(concurrency-mt-unsafe)
