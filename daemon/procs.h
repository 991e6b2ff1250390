/*
 * procs: handler processes.  Programs in any language, started and
 * supervised by socketd, that speak protocol v1 on their standard input
 * (a connected Unix stream socket; stdout is the same socket).
 *
 * One thread, "procs", owns every child: it starts them (fork + execve,
 * no shell), asks each for its handlers (an OPCODES request), forwards
 * client requests to them as v1 frames with its own request ids, reads
 * their answers and their stderr, reaps them (pidfds), restarts them with
 * back-off and kills the ones that hang.  The handlers are served on the
 * dispatch table as SD_ASYNC handlers named NAME.HANDLER: a worker hands
 * the request (struct sd_req) to this thread through an inbox and the
 * answer goes back through the worker's inbox with sd_api.reply, so
 * ordering per connection, timeouts.handler, max_inflight and orphaned
 * requests are the dispatch code's, exactly as for a C module.
 *
 * Threads: procs_open, procs_reload, procs_stop and procs_free run on the
 * main thread; procs_stats_text on any thread; everything else on the
 * procs thread, which is the only one to touch a child.
 */
#ifndef SOCKETD_PROCS_H
#define SOCKETD_PROCS_H

#include <stddef.h>

struct server;
struct cfg;
struct procs;

/*
 * Start c's processes and wait (up to PROCS_HELLO_MS) until one instance
 * of each has answered OPCODES; put their handlers in the dispatch table
 * (srv->mods, before any worker runs).  0, or -1 with err ("processes.py:
 * ...").  With no processes configured *out is NULL and nothing runs.
 */
int procs_open(struct server *srv, const struct cfg *c, struct procs **out,
    char *err, size_t len);
/*
 * SIGHUP: take c's settings for the entries that exist and restart their
 * children one at a time (a new one up before an old one leaves).
 * Entries added or removed, or a changed opcode, need a restart: logged.
 */
void procs_reload(struct procs *p, const struct cfg *c);
/*
 * Shutdown, after the workers have stopped: children get SIGTERM once
 * their requests are answered, SIGKILL after shutdown_ms; the thread is
 * joined.  Requests still held are answered INTERNAL (to closed
 * connections: dropped).
 */
void procs_stop(struct procs *p, unsigned shutdown_ms);
void procs_free(struct procs *p);
/*
 * What can be checked without starting them (socketd -t, and start-up):
 * each program is an executable file, each user exists.  0, or -1 with
 * err "file:line: processes.NAME...: why".
 */
int procs_check(const struct cfg *c, char *err, size_t len);
struct pt_buf;
/* The same figures for /metrics (socketd_process_*{process="NAME"}). */
void procs_metrics(struct procs *p, struct pt_buf *b);
/* STATS lines "process_NAME_..." for every entry. */
void procs_stats_text(struct procs *p, char *buf, size_t cap, size_t *off);

#endif /* SOCKETD_PROCS_H */
