/*
 * sdtls.c: the TLS half of sdclient (declared in sdclient.h), with
 * OpenSSL 3.  The only client file that includes OpenSSL headers.
 *
 * A struct sdc_tls is a client SSL_CTX: the CAs the server is checked
 * against (or none with insecure), and the client certificate for mutual
 * TLS.  A struct sdc_tls_conn is one session on a non-blocking socket:
 * every call may say EAGAIN, and sdc_tls_conn_want() says whether it
 * waits for input or for room to write (a read may have to write, a write
 * to read).  The blocking sdc_* calls poll() on that within their
 * deadlines; bench's event loops register it with epoll.
 *
 * Verification: unless insecure, the server's chain must lead to a CA in
 * cafile (or the system's store without one), and its certificate must
 * name the host connected to: an IP literal is matched against the IP
 * address entries of subjectAltName (X509_VERIFY_PARAM_set1_ip_asc), a
 * name against the DNS entries (SSL_set1_host), and is sent as SNI.
 *
 * Sessions do their I/O through a BIO of our own rather than OpenSSL's
 * socket BIO, which writes with write(2): ours sends with MSG_NOSIGNAL,
 * so a server that has gone away gives EPIPE, not SIGPIPE, and no caller
 * has to change its signal dispositions.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "sdclient.h"

struct sdc_tls {
	SSL_CTX *ctx;
	int insecure;
};

struct sdc_tls_conn {
	SSL *ssl;
	unsigned want; /* SDC_WANT_* after the last EAGAIN */
	int failed;    /* a fatal error: no close_notify */
	int done;      /* handshake complete */
};

/* ---- a socket BIO that sends with MSG_NOSIGNAL ---- */

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int
bio_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static int
nosig_write(BIO *b, const char *buf, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
nosig_read(BIO *b, char *buf, int len)
{
	ssize_t n;

	BIO_clear_retry_flags(b);
	n = recv(bio_fd(b), buf, (size_t)len, 0);
	if (n == -1 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	else if (n == 0)
		BIO_set_flags(b, BIO_FLAGS_IN_EOF);
	return (int)n;
}

static int
nosig_puts(BIO *b, const char *str)
{
	return nosig_write(b, str, (int)strlen(str));
}

static long
nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		/* With IGNORE_UNEXPECTED_EOF, OpenSSL asks: end of stream? */
		return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
	case BIO_C_GET_FD:
		if (ptr != NULL)
			*(int *)ptr = bio_fd(b);
		return bio_fd(b);
	default:
		return 0;
	}
}

static void
nosig_init(void)
{
	BIO_METHOD *m;

	m = BIO_meth_new(
	    BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
	    "sdclient socket");
	if (m == NULL || BIO_meth_set_write(m, nosig_write) != 1 ||
	    BIO_meth_set_read(m, nosig_read) != 1 ||
	    BIO_meth_set_puts(m, nosig_puts) != 1 ||
	    BIO_meth_set_ctrl(m, nosig_ctrl) != 1) {
		BIO_meth_free(m);
		return;
	}
	nosig_method = m; /* for the life of the process */
}

/* A BIO over the socket fd (not closed with it), or NULL. */
static BIO *
nosig_bio(int fd)
{
	BIO *b;

	(void)pthread_once(&nosig_once, nosig_init);
	if (nosig_method == NULL || (b = BIO_new(nosig_method)) == NULL)
		return NULL;
	BIO_set_data(b, (void *)(intptr_t)fd);
	BIO_set_init(b, 1);
	return b;
}

/* ---- contexts and sessions ---- */

/* OpenSSL's oldest queued error as text, then an empty queue. */
static void
ossl_text(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r;

	if (e == 0)
		(void)snprintf(buf, len, "unknown OpenSSL error");
	else if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
		(void)snprintf(buf, len, "no PEM \"-----BEGIN\" line in it");
	else if (ERR_SYSTEM_ERROR(e))
		(void)sdc_strerror(ERR_GET_REASON(e), buf, len);
	else if ((r = ERR_reason_error_string(e)) != NULL)
		(void)snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/* OpenSSL's file errors say "system library": open the file first. */
static int
readable(const char *what, const char *path, char *err)
{
	char eb[128];
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		(void)sdc_strerror(errno, eb, sizeof(eb));
		sdc_seterr(err, "%s %s: %s", what, path, eb);
		return -1;
	}
	(void)fclose(f);
	return 0;
}

static int
load_client_cert(SSL_CTX *ctx, const struct sdc_tls_opts *o, char *err)
{
	const char *key = o->keyfile != NULL ? o->keyfile : o->certfile;
	char why[160];

	if (readable("client certificate", o->certfile, err) != 0 ||
	    readable("client key", key, err) != 0)
		return -1;
	if (SSL_CTX_use_certificate_chain_file(ctx, o->certfile) != 1) {
		ossl_text(why, sizeof(why));
		sdc_seterr(err, "client certificate %s: %s", o->certfile, why);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ossl_text(why, sizeof(why));
		sdc_seterr(err, "client key %s: %s", key, why);
		return -1;
	}
	return 0;
}

struct sdc_tls *
sdc_tls_new(const struct sdc_tls_opts *o, char *err)
{
	struct sdc_tls *t;
	char why[160];

	ERR_clear_error();
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		sdc_seterr(err, "out of memory");
		return NULL;
	}
	t->insecure = o->insecure;
	if ((t->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		ossl_text(why, sizeof(why));
		sdc_seterr(err, "cannot create a TLS context: %s", why);
		goto fail;
	}
	(void)SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(t->ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!o->insecure) {
		SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
		if (o->cafile != NULL) {
			if (readable("CA file", o->cafile, err) != 0)
				goto fail;
			if (SSL_CTX_load_verify_locations(
				t->ctx, o->cafile, NULL) != 1) {
				ossl_text(why, sizeof(why));
				sdc_seterr(
				    err, "CA file %s: %s", o->cafile, why);
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
			ossl_text(why, sizeof(why));
			sdc_seterr(
			    err, "the system's CA certificates: %s", why);
			goto fail;
		}
	}
	if (o->certfile != NULL && load_client_cert(t->ctx, o, err) != 0)
		goto fail;
	return t;
fail:
	ERR_clear_error();
	sdc_tls_free(t);
	return NULL;
}

void
sdc_tls_free(struct sdc_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct sdc_tls_conn *
sdc_tls_conn_new(struct sdc_tls *t, int fd, const char *host, char *err)
{
	struct sdc_tls_conn *s;
	unsigned char ip[16];
	int is_ip, ok = 1;
	BIO *b = NULL;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		sdc_seterr(err, "out of memory");
		return NULL;
	}
	if ((s->ssl = SSL_new(t->ctx)) == NULL || (b = nosig_bio(fd)) == NULL) {
		ERR_clear_error();
		sdc_seterr(err, "cannot create a TLS session");
		SSL_free(s->ssl);
		free(s);
		return NULL;
	}
	SSL_set_bio(s->ssl, b, b); /* one reference, owned by s->ssl */
	SSL_set_connect_state(s->ssl);
	is_ip = inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1;
	if (!is_ip)
		ok = SSL_set_tlsext_host_name(s->ssl, host) == 1;
	if (ok && !t->insecure)
		ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(
				 SSL_get0_param(s->ssl), host) == 1
			   : SSL_set1_host(s->ssl, host) == 1;
	if (!ok) {
		ERR_clear_error();
		sdc_seterr(
		    err, "cannot check the server's name against \"%s\"", host);
		SSL_free(s->ssl);
		free(s);
		return NULL;
	}
	s->want = SDC_WANT_WRITE; /* the ClientHello goes first */
	return s;
}

/*
 * After an SSL call failed with r: 0 would block (errno EAGAIN, want
 * set), 1 end of stream, -1 failed (errno set, err filled).
 */
static int
classify(struct sdc_tls_conn *s, int r, char *err)
{
	int e = errno, code = SSL_get_error(s->ssl, r);
	long v;
	char why[160];

	switch (code) {
	case SSL_ERROR_WANT_READ:
		s->want = SDC_WANT_READ;
		errno = EAGAIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		s->want = SDC_WANT_WRITE;
		errno = EAGAIN;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return 1;
	case SSL_ERROR_SYSCALL:
		s->failed = 1;
		if (ERR_peek_error() == 0 && e == 0) {
			ERR_clear_error();
			return 1;
		}
		ERR_clear_error();
		(void)sdc_strerror(e != 0 ? e : EIO, why, sizeof(why));
		sdc_seterr(err, "%s", why);
		errno = e != 0 ? e : EIO;
		return -1;
	default:
		s->failed = 1;
		v = SSL_get_verify_result(s->ssl);
		if (v != X509_V_OK) {
			ERR_clear_error();
			sdc_seterr(err, "server certificate verify failed: %s",
			    X509_verify_cert_error_string(v));
		} else {
			ossl_text(why, sizeof(why));
			sdc_seterr(err, "%s", why);
		}
		errno = EPROTO;
		return -1;
	}
}

int
sdc_tls_conn_handshake(struct sdc_tls_conn *s, char *err)
{
	int r;

	if ((r = SSL_do_handshake(s->ssl)) == 1) {
		s->done = 1;
		return 1;
	}
	switch (classify(s, r, err)) {
	case 0:
		return 0;
	case 1:
		s->failed = 1;
		sdc_seterr(err, "connection closed by server");
		errno = ECONNRESET;
		return -1;
	default:
		return -1;
	}
}

ssize_t
sdc_tls_conn_read(struct sdc_tls_conn *s, void *buf, size_t len, char *err)
{
	size_t n;
	int r;

	if ((r = SSL_read_ex(s->ssl, buf, len, &n)) == 1)
		return (ssize_t)n;
	return classify(s, r, err) == 1 ? 0 : -1;
}

ssize_t
sdc_tls_conn_write(
    struct sdc_tls_conn *s, const void *buf, size_t len, char *err)
{
	const unsigned char *p = buf;
	size_t done = 0, n;
	int r;

	/* One record per call in partial-write mode: fill the socket. */
	while (done < len) {
		if ((r = SSL_write_ex(s->ssl, p + done, len - done, &n)) == 1) {
			done += n;
			continue;
		}
		switch (classify(s, r, err)) {
		case 0:
			return done > 0 ? (ssize_t)done : -1;
		case 1:
			sdc_seterr(err, "connection closed by server");
			errno = EPIPE;
			return -1;
		default:
			return -1;
		}
	}
	return (ssize_t)done;
}

unsigned
sdc_tls_conn_want(const struct sdc_tls_conn *s)
{
	return s->want;
}

int
sdc_tls_conn_pending(const struct sdc_tls_conn *s)
{
	return SSL_has_pending(s->ssl);
}

int
sdc_tls_conn_describe(const struct sdc_tls_conn *s, char *buf, size_t len)
{
	X509 *x = SSL_get1_peer_certificate(s->ssl);
	BIGNUM *bn = NULL;
	char subject[256], *serial = NULL;
	int n;

	subject[0] = '\0';
	if (x != NULL) {
		if (X509_NAME_oneline(X509_get_subject_name(x), subject,
			(int)sizeof(subject)) == NULL)
			subject[0] = '\0';
		bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		if (bn != NULL)
			serial = BN_bn2hex(bn);
	}
	n = snprintf(buf, len, "%s %s, server certificate %s serial %s",
	    SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl),
	    subject[0] != '\0' ? subject : "(none)",
	    serial != NULL ? serial : "?");
	OPENSSL_free(serial);
	BN_free(bn);
	X509_free(x);
	ERR_clear_error();
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

const char *
sdc_tls_conn_version(const struct sdc_tls_conn *s)
{
	return SSL_get_version(s->ssl);
}

void
sdc_tls_conn_free(struct sdc_tls_conn *s)
{
	if (s == NULL)
		return;
	/* close_notify, best effort, never blocking: the socket is not. */
	if (s->done && !s->failed)
		(void)SSL_shutdown(s->ssl);
	ERR_clear_error();
	SSL_free(s->ssl);
	free(s);
}
