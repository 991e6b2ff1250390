/*
 * tls: TLS on the tls:// listeners, with OpenSSL 3.  The only file of
 * socketd that includes OpenSSL headers.
 *
 * Two halves.  A struct tls_ctx (an SSL_CTX with the certificate, its key
 * and the client CAs loaded) is built on the main thread, at start-up and
 * on every reload, from the configuration it belongs to, and published
 * with it in struct server_cfg, which owns it: immutable once built, and
 * OpenSSL 3 lets any number of threads make connections from one SSL_CTX.
 * Each connection's SSL holds a reference of its own to the SSL_CTX
 * (SSL_new takes one), so the certificates a connection was accepted with
 * outlive the configuration that a reload replaces.
 *
 * The other half is io_tls, the second transport behind daemon/io.h: one
 * SSL per connection in conn->io_ctx, used by the one worker that owns
 * the connection, on its non-blocking socket.  Every call may say "again"
 * (EAGAIN) and io_tls.want tells whether readability or writability is
 * awaited, which need not be the direction of the call: a TLS read may
 * have to write, a write may have to read.
 *
 * Return convention: 0 or -1 with a one-line message in err that names
 * the setting and the file ("tls.certificate /etc/x.pem: No such file or
 * directory"); the caller logs it.
 */
#ifndef SOCKETD_TLS_H
#define SOCKETD_TLS_H

#include <stddef.h>

#include "cfg.h"
#include "io.h"

struct tls_ctx;

/*
 * Load c's tls.certificate, tls.key and tls.ca and apply tls.verify_client
 * and tls.min_version.  Main thread only (not thread-safe with itself).
 */
int tls_ctx_new(
    const struct cfg *c, struct tls_ctx **out, char *err, size_t errlen);
/* Drop the caller's reference; accepts NULL. */
void tls_ctx_free(struct tls_ctx *t);
/*
 * The certificate served, for the log: "subject CN=..., serial 0A1B,
 * valid until Nov 21 12:00:00 2027 GMT".  Returns 1 if it has expired.
 */
int tls_ctx_describe(const struct tls_ctx *t, char *buf, size_t len);

/*
 * A server session on the connected socket fd, for conn->io_ctx with
 * io_tls; NULL when out of memory.  It does not own fd: io_tls.close
 * frees the session and closes fd.
 */
void *tls_conn_new(struct tls_ctx *t, int fd);
/*
 * Free a session without closing its socket: after a failed handshake the
 * socket goes on as plain TCP for a lingering close, so that the alert
 * OpenSSL wrote reaches the client before a reset could destroy it.
 */
void tls_conn_free(void *ctx);
/*
 * The subject of the client certificate, when one was presented and
 * verified ("/CN=alice"); 0, or -1 when there is none.
 */
int tls_conn_subject(void *ctx, char *buf, size_t len);

/* The TLS transport (io.h). */
extern const struct conn_io io_tls;

#endif /* SOCKETD_TLS_H */
