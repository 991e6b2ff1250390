/*
 * tls.c: the TLS context and the io_tls transport (see tls.h).
 *
 * Context settings, and why:
 * - TLS 1.2 or 1.3 only (tls.min_version), OpenSSL's default ciphers.
 * - No renegotiation: it is the main way a TLS 1.2 read could have to
 *   write and a write to read, and a client could use it to make the
 *   server repeat its most expensive work.
 * - SSL_OP_IGNORE_UNEXPECTED_EOF: a client that closes without a
 *   close_notify is an end of stream, as on plain TCP.  Protocol v1 frames
 *   carry their length, so a truncated stream cannot pass for a complete
 *   answer or request.
 * - SSL_MODE_ENABLE_PARTIAL_WRITE and ACCEPT_MOVING_WRITE_BUFFER: a write
 *   reports what was sent, as send(2) does, and the worker may retry from
 *   a different buffer (its scratch output, then the connection's own)
 *   holding the same bytes.
 * - SSL_MODE_RELEASE_BUFFERS: an idle TLS connection does not keep its
 *   two 16 KiB record buffers (the plain path's idle cost is its struct).
 * - No read-ahead: OpenSSL takes each record off the socket and no more,
 *   so input it holds back is at most the rest of one record (pending).
 * - No server-side session cache: resumption is by stateless tickets only,
 *   so handshakes take no lock shared by the workers and the memory of
 *   past sessions is not kept (a cache of 20480 by default).  A reload
 *   makes a new context, with new ticket keys.
 * - Signals are blocked in every thread of the daemon, so OpenSSL's
 *   write(2) to a peer that has gone gives EPIPE, not a fatal SIGPIPE.
 *
 * Errors: OpenSSL keeps an error queue per thread.  Every failure path
 * here reads what it needs from the queue and clears it, so that the next
 * SSL call on this thread starts from an empty queue, as SSL_get_error
 * requires.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

struct tls_ctx {
	SSL_CTX *ctx;
};

/* One connection's session. */
struct tls_conn {
	SSL *ssl;
	unsigned want;            /* IO_WANT_* after the last EAGAIN */
	unsigned established : 1; /* handshake complete */
	unsigned failed : 1;      /* a fatal error: no close_notify */
	unsigned shut : 1;        /* close_notify sent (or tried) */
	int sys_errno;            /* the failure was a system call's */
	unsigned long ssl_err;    /* or OpenSSL's first queued error */
	long verify;              /* X509_V_OK or why a client cert failed */
};

static void
errno_text(int e, char *buf, size_t len)
{
	/* XSI strerror_r: this file does not define _GNU_SOURCE. */
	if (strerror_r(e, buf, len) != 0)
		snprintf(buf, len, "error %d", e);
}

/* The text of OpenSSL's oldest queued error, then an empty queue. */
static void
ossl_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r;

	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
		snprintf(buf, len, "no PEM \"-----BEGIN\" line in it");
	else if (ERR_SYSTEM_ERROR(e))
		errno_text(ERR_GET_REASON(e), buf, len);
	else if ((r = ERR_reason_error_string(e)) != NULL)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/*
 * "what path: why" for a file that cannot be opened.  OpenSSL's own
 * message for that is "system library" at best: open it first.
 */
static int
check_readable(const char *what, const char *path, char *err, size_t errlen)
{
	char why[128];
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		errno_text(errno, why, sizeof(why));
		snprintf(err, errlen, "%s %s: %s", what, path, why);
		return -1;
	}
	(void)fclose(f);
	return 0;
}

static int
load_files(SSL_CTX *ctx, const struct cfg *c, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) * names;
	unsigned long e;
	char why[256];
	int mismatch = 0;

	if (check_readable(
		"tls.certificate", c->tls_certificate, err, errlen) != 0 ||
	    check_readable("tls.key", c->tls_key, err, errlen) != 0 ||
	    (c->tls_ca != NULL &&
		check_readable("tls.ca", c->tls_ca, err, errlen) != 0))
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_certificate) != 1) {
		ossl_text(why, sizeof(why));
		snprintf(err, errlen,
		    "tls.certificate %s: cannot load a PEM certificate from "
		    "it: %s",
		    c->tls_certificate, why);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) !=
	    1) {
		e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) != ERR_LIB_X509 ||
		    ERR_GET_REASON(e) != X509_R_KEY_VALUES_MISMATCH) {
			ossl_text(why, sizeof(why));
			snprintf(err, errlen,
			    "tls.key %s: cannot load a PEM private key from "
			    "it: %s",
			    c->tls_key, why);
			return -1;
		}
		mismatch = 1;
	}
	if (mismatch || SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen,
		    "tls.key %s: does not match the certificate in "
		    "tls.certificate %s",
		    c->tls_key, c->tls_certificate);
		return -1;
	}
	if (c->tls_ca == NULL)
		return 0;
	if (SSL_CTX_load_verify_locations(ctx, c->tls_ca, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(c->tls_ca)) == NULL) {
		ossl_text(why, sizeof(why));
		snprintf(err, errlen,
		    "tls.ca %s: cannot load PEM CA certificates from it: %s",
		    c->tls_ca, why);
		return -1;
	}
	/* Sent in the CertificateRequest: which CAs the client may use. */
	SSL_CTX_set_client_CA_list(ctx, names);
	return 0;
}

int
tls_ctx_new(const struct cfg *c, struct tls_ctx **out, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "socketd";
	struct tls_ctx *t = NULL;
	SSL_CTX *ctx = NULL;
	char why[256];

	*out = NULL;
	ERR_clear_error();
	if (c->tls_certificate == NULL || c->tls_key == NULL) {
		snprintf(err, errlen, "%s: not set",
		    c->tls_certificate == NULL ? "tls.certificate" : "tls.key");
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ossl_text(why, sizeof(why));
		snprintf(err, errlen, "tls: cannot create a context: %s", why);
		goto fail;
	}
	if (SSL_CTX_set_min_proto_version(ctx,
		c->tls_min_version == CFG_TLS_1_3 ? TLS1_3_VERSION
						  : TLS1_2_VERSION) != 1) {
		ossl_text(why, sizeof(why));
		snprintf(err, errlen, "tls.min_version %s: %s",
		    cfg_tls_version_str(c->tls_min_version), why);
		goto fail;
	}
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
		SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Resumed sessions must not skip the client certificate check. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	if (load_files(ctx, c, err, errlen) != 0)
		goto fail;
	if (c->tls_verify_client)
		SSL_CTX_set_verify(ctx,
		    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	t->ctx = ctx;
	*out = t;
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	free(t);
	return -1;
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

int
tls_ctx_describe(const struct tls_ctx *t, char *buf, size_t len)
{
	X509 *x = SSL_CTX_get0_certificate(t->ctx);
	BIGNUM *bn = NULL;
	char *serial = NULL, subject[256], until[64];
	BIO *b;
	int n, expired;

	if (x == NULL) {
		snprintf(buf, len, "no certificate");
		return 0;
	}
	if (X509_NAME_oneline(X509_get_subject_name(x), subject,
		(int)sizeof(subject)) == NULL)
		snprintf(subject, sizeof(subject), "?");
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) != NULL)
		serial = BN_bn2hex(bn);
	until[0] = '\0';
	if ((b = BIO_new(BIO_s_mem())) != NULL) {
		if (ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1 &&
		    (n = BIO_read(b, until, (int)sizeof(until) - 1)) > 0)
			until[n] = '\0';
		BIO_free(b);
	}
	expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
	snprintf(buf, len, "subject %s, serial %s, %s %s", subject,
	    serial != NULL ? serial : "?",
	    expired ? "EXPIRED on" : "valid until", until);
	OPENSSL_free(serial);
	BN_free(bn);
	ERR_clear_error();
	return expired;
}

void *
tls_conn_new(struct tls_ctx *t, int fd)
{
	struct tls_conn *tc;

	if ((tc = calloc(1, sizeof(*tc))) == NULL)
		return NULL;
	if ((tc->ssl = SSL_new(t->ctx)) == NULL ||
	    SSL_set_fd(tc->ssl, fd) != 1) {
		ERR_clear_error();
		SSL_free(tc->ssl);
		free(tc);
		return NULL;
	}
	SSL_set_accept_state(tc->ssl);
	tc->want = IO_WANT_READ; /* the client speaks first */
	return tc;
}

/*
 * After an SSL call returned r (failure): 0 it would block (errno EAGAIN,
 * t->want set), 1 end of stream, -1 failed (errno set, reason kept).
 */
static int
classify(struct tls_conn *t, int r)
{
	int e = errno, code = SSL_get_error(t->ssl, r);

	switch (code) {
	case SSL_ERROR_WANT_READ:
		t->want = IO_WANT_READ;
		errno = EAGAIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		t->want = IO_WANT_WRITE;
		errno = EAGAIN;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return 1;
	case SSL_ERROR_SYSCALL:
		t->failed = 1;
		if (ERR_peek_error() == 0 && e == 0) {
			/* The peer closed: no error, no close_notify. */
			ERR_clear_error();
			return 1;
		}
		t->sys_errno = e != 0 ? e : EIO;
		t->ssl_err = ERR_peek_error();
		ERR_clear_error();
		errno = t->sys_errno;
		return -1;
	default:
		t->failed = 1;
		t->ssl_err = ERR_peek_error();
		t->verify = SSL_get_verify_result(t->ssl);
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

static ssize_t
tls_read(int fd, void *ctx, void *buf, size_t len)
{
	struct tls_conn *t = ctx;
	size_t n;
	int r;

	(void)fd;
	if ((r = SSL_read_ex(t->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	switch (classify(t, r)) {
	case 1:
		return 0;
	default:
		return -1;
	}
}

/*
 * As much of buf as the socket takes.  With partial writes each
 * SSL_write sends at most one record: loop until the socket is full.
 * When it fills in the middle, the record being written stays with
 * OpenSSL and the bytes before it are reported as sent: the caller's next
 * write starts at that record again, as OpenSSL requires.
 */
static ssize_t
tls_write(int fd, void *ctx, const void *buf, size_t len)
{
	struct tls_conn *t = ctx;
	const unsigned char *p = buf;
	size_t done = 0, n;
	int r;

	(void)fd;
	while (done < len) {
		if ((r = SSL_write_ex(t->ssl, p + done, len - done, &n)) == 1) {
			done += n;
			continue;
		}
		switch (classify(t, r)) {
		case 0:
			return done > 0 ? (ssize_t)done : -1;
		case 1:
			errno = EPIPE; /* close_notify: the peer is gone */
			return -1;
		default:
			return -1;
		}
	}
	return (ssize_t)done;
}

/* close_notify, once, after a clean handshake; best effort. */
static void
close_notify(struct tls_conn *t)
{
	if (!t->established || t->failed || t->shut)
		return;
	t->shut = 1;
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
}

void
tls_conn_free(void *ctx)
{
	struct tls_conn *t = ctx;

	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}

static int
tls_shutdown_wr(int fd, void *ctx)
{
	close_notify(ctx);
	return shutdown(fd, SHUT_WR);
}

static void
tls_close(int fd, void *ctx)
{
	struct tls_conn *t = ctx;

	if (t != NULL)
		close_notify(t);
	tls_conn_free(t);
	close(fd);
}

static int
tls_handshake(int fd, void *ctx)
{
	struct tls_conn *t = ctx;
	int r;

	(void)fd;
	if ((r = SSL_do_handshake(t->ssl)) == 1) {
		t->established = 1;
		return 1;
	}
	switch (classify(t, r)) {
	case 0:
		return 0;
	case 1:
		/* The client left before the handshake was over. */
		t->failed = 1;
		t->sys_errno = ECONNRESET;
		return -1;
	default:
		return -1;
	}
}

static unsigned
tls_want(void *ctx)
{
	return ((struct tls_conn *)ctx)->want;
}

static int
tls_pending(void *ctx)
{
	return SSL_has_pending(((struct tls_conn *)ctx)->ssl);
}

static const char *
tls_error(void *ctx, char *buf, size_t len)
{
	struct tls_conn *t = ctx;
	const char *r;

	if (t->verify != X509_V_OK)
		snprintf(buf, len, "client certificate: %s",
		    X509_verify_cert_error_string(t->verify));
	else if (t->ssl_err != 0 && !ERR_SYSTEM_ERROR(t->ssl_err) &&
	    (r = ERR_reason_error_string(t->ssl_err)) != NULL)
		snprintf(buf, len, "%s", r);
	else if (t->sys_errno == ECONNRESET && !t->established)
		snprintf(buf, len, "the client closed the connection");
	else if (t->sys_errno != 0)
		errno_text(t->sys_errno, buf, len);
	else
		snprintf(buf, len, "unknown error");
	return buf;
}

const struct conn_io io_tls = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .shutdown_wr = tls_shutdown_wr,
    .close = tls_close,
    .handshake = tls_handshake,
    .want = tls_want,
    .pending = tls_pending,
    .error = tls_error,
};

int
tls_conn_subject(void *ctx, char *buf, size_t len)
{
	struct tls_conn *t = ctx;
	X509 *cert;

	if (t == NULL || t->ssl == NULL || len == 0)
		return -1;
	cert = SSL_get0_peer_certificate(t->ssl);
	if (cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return -1;
	if (X509_NAME_oneline(X509_get_subject_name(cert), buf, (int)len) ==
	    NULL) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
