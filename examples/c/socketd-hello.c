/*
 * socketd-hello: a small program on libsocketd, the socketd C client
 * library.  It connects, pings, prints the server's version and clock,
 * echoes a line, calls a module request by name when the server lists
 * one, and pipelines ten pings through the non-blocking client, driven
 * by a poll() loop as a program with its own event loop would.
 *
 *	socketd-hello [host [port]]
 *
 * Build it against the installed library (Debian: libsocketd-dev):
 *
 *	cc -o socketd-hello socketd-hello.c \
 *	    $(pkg-config --cflags --libs libsocketd)
 */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <socketd/client.h>

static int
fail(struct socketd_client *c, const char *what)
{
	(void)fprintf(
	    stderr, "socketd-hello: %s: %s\n", what, socketd_errmsg(c));
	socketd_free(c);
	return 1;
}

static void
pong(struct socketd_async *a, int result, unsigned status,
    const uint8_t *answer, size_t len, void *arg)
{
	int *answered = arg;

	(void)a;
	(void)answer;
	(void)len;
	if (result == SOCKETD_E_OK && status == SOCKETD_STATUS_OK)
		(*answered)++;
}

/* Ten pings at once through the non-blocking client: 0 or -1. */
static int
async_pings(
    const struct socketd_client *settings, const char *host, unsigned port)
{
	struct socketd_async *a = socketd_async_new(settings);
	struct pollfd p;
	unsigned ev;
	int i, rv, answered = 0;

	if (a == NULL)
		return -1;
	rv = socketd_async_connect(a, host, port);
	for (i = 0; i < 10 && rv == 0; i++)
		rv = socketd_async_send(
		    a, SOCKETD_OP_PING, NULL, 0, pong, &answered, NULL);
	while (rv == 0 && socketd_async_pending(a) > 0) {
		ev = socketd_async_events(a);
		p.fd = socketd_async_fd(a);
		p.events = (short)((ev & SOCKETD_WANT_READ ? POLLIN : 0) |
		    (ev & SOCKETD_WANT_WRITE ? POLLOUT : 0));
		(void)poll(&p, 1, socketd_async_timeout(a));
		rv = socketd_async_process(a);
	}
	if (rv != 0)
		(void)fprintf(stderr, "socketd-hello: async: %s\n",
		    socketd_async_errmsg(a));
	else
		(void)printf("async: %d pings answered\n", answered);
	socketd_async_free(a);
	return rv == 0 && answered == 10 ? 0 : -1;
}

int
main(int argc, char *argv[])
{
	const char *host = argc > 1 ? argv[1] : "127.0.0.1";
	unsigned long port =
	    argc > 2 ? strtoul(argv[2], NULL, 10) : SOCKETD_DEFAULT_PORT;
	struct socketd_client *c;
	const char *text, *version;
	const uint8_t *answer;
	size_t len, vlen;
	unsigned status;
	uint64_t ns;
	time_t secs;
	struct tm tm;
	char when[32];
	int rv;

	if (port == 0 || port > 65535) {
		(void)fprintf(
		    stderr, "socketd-hello: bad port '%s'\n", argv[2]);
		return 2;
	}

	if ((c = socketd_new()) == NULL) {
		(void)fprintf(stderr, "socketd-hello: out of memory\n");
		return 1;
	}
	if (socketd_set_timeout(c, 2000) != 0 ||
	    socketd_connect(c, host, (unsigned)port) != 0)
		return fail(c, "connect");
	if (socketd_ping(c) != 0)
		return fail(c, "ping");
	if (socketd_info(c, &text, &len) != 0)
		return fail(c, "info");
	if (socketd_text_value(text, len, "version", &version, &vlen) != 0) {
		version = "unknown";
		vlen = strlen(version);
	}
	if (socketd_time(c, &ns) != 0)
		return fail(c, "time");
	secs = (time_t)(ns / 1000000000u);
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(
		    when, sizeof(when), "%llu ns", (unsigned long long)ns);
	(void)printf("socketd %.*s, clock %s\n", (int)vlen, version, when);
	if (socketd_echo(c, "hello", 5) != 0)
		return fail(c, "echo");
	(void)printf("echo: hello\n");

	/* By name, through OPCODES (protocol 1.1): an older server says no. */
	rv = socketd_call_name(
	    c, "hello.upper", "hello", 5, &status, &answer, &len);
	if (rv == SOCKETD_E_OK && status == SOCKETD_STATUS_OK)
		(void)printf(
		    "hello.upper: %.*s\n", (int)len, (const char *)answer);
	else if (rv == SOCKETD_E_OK)
		(void)printf("hello.upper: %s\n", socketd_status_name(status));
	else if (rv == SOCKETD_E_NO_OPCODES || rv == SOCKETD_E_NOT_FOUND)
		(void)printf("hello.upper: not served here (%s)\n",
		    socketd_strerror(rv));
	else
		return fail(c, "hello.upper");
	/* The same settings (timeout) for the non-blocking client. */
	rv = async_pings(c, host, (unsigned)port);
	socketd_free(c);
	return rv == 0 ? 0 : 1;
}
