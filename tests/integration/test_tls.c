/*
 * TLS on tls:// listeners: a good handshake (sdclient and socketd-cli), a
 * wrong CA, a plaintext client on the TLS port, plain and TLS listeners
 * side by side, mutual TLS, certificates reloaded on SIGHUP (and a broken
 * one that is not), a stalled handshake that times out without holding
 * the only worker, large and pipelined requests, bench over TLS, and
 * certificate errors at start-up and with -t.
 *
 * The CAs and certificates are made at run time with the openssl command
 * (EC P-256 keys: quick), once for the whole program, in a directory
 * removed at the end.  Without an openssl binary every test is skipped.
 */
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "harness.h"
#include "proto.h"
#include "sdclient.h"

#define T(state) ((struct h_ctx *)*(state))

#define MAX_TLS_SDCS 16

/* The certificates, made once by group_setup; "" without openssl. */
static char g_dir[256];
/* TLS connections the running test made; closed before h_teardown. */
static struct sdc *g_sdcs[MAX_TLS_SDCS];
static size_t g_nsdcs;

static const char openssl_cnf[] = "[req]\n"
				  "distinguished_name = dn\n"
				  "[dn]\n"
				  "[ca]\n"
				  "basicConstraints = critical,CA:TRUE\n"
				  "keyUsage = critical,keyCertSign,cRLSign\n"
				  "subjectKeyIdentifier = hash\n"
				  "[server]\n"
				  "basicConstraints = CA:FALSE\n"
				  "keyUsage = critical,digitalSignature\n"
				  "extendedKeyUsage = serverAuth\n"
				  "subjectAltName = IP:127.0.0.1\n"
				  "[client]\n"
				  "basicConstraints = CA:FALSE\n"
				  "keyUsage = critical,digitalSignature\n"
				  "extendedKeyUsage = clientAuth\n";

/* g_dir/name */
static const char *
cert(const char *name)
{
	static char bufs[8][512];
	static unsigned n;
	char *p = bufs[n++ % 8];

	snprintf(p, sizeof(bufs[0]), "%s/%s", g_dir, name);
	return p;
}

/* The openssl binary on PATH, or NULL. */
static const char *
find_openssl(void)
{
	static char path[512];
	const char *env = getenv("PATH"), *p, *colon;
	size_t len;

	if (env == NULL)
		env = "/usr/bin:/bin";
	for (p = env; *p != '\0'; p = colon + 1) {
		colon = strchr(p, ':');
		len = colon != NULL ? (size_t)(colon - p) : strlen(p);
		snprintf(path, sizeof(path), "%.*s/openssl", (int)len, p);
		if (len > 0 && access(path, X_OK) == 0)
			return path;
		if (colon == NULL)
			break;
	}
	return NULL;
}

/* Run openssl with up to 24 arguments (NULL-terminated); assert exit 0. */
static void
openssl(const char *bin, ...)
{
	struct h_run *r = malloc(sizeof(*r));
	char *argv[26];
	va_list ap;
	int n = 0;

	assert_non_null(r);
	argv[n++] = (char *)(uintptr_t)bin;
	va_start(ap, bin);
	while (n < 25 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	h_run(argv, 20000, r);
	if (r->status != 0)
		fail_msg("openssl %s %s: exit %d\n%s", argv[1], argv[2],
		    r->status, r->err);
	free(r);
}

/* A CA: name.key, name.pem. */
static void
make_ca(const char *bin, const char *name, const char *subject)
{
	char key[64], pem[64];

	snprintf(key, sizeof(key), "%s.key", name);
	snprintf(pem, sizeof(pem), "%s.pem", name);
	openssl(bin, "req", "-config", cert("openssl.cnf"), "-x509", "-new",
	    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
	    "-nodes", "-keyout", cert(key), "-out", cert(pem), "-days", "2",
	    "-subj", subject, "-extensions", "ca", (char *)NULL);
}

/* A certificate signed by ca.pem: name.key, name.pem. */
static void
make_cert(const char *bin, const char *name, const char *subject,
    const char *serial, const char *ext)
{
	char key[64], csr[64], pem[64];

	snprintf(key, sizeof(key), "%s.key", name);
	snprintf(csr, sizeof(csr), "%s.csr", name);
	snprintf(pem, sizeof(pem), "%s.pem", name);
	openssl(bin, "req", "-config", cert("openssl.cnf"), "-new", "-newkey",
	    "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
	    "-keyout", cert(key), "-out", cert(csr), "-subj", subject,
	    (char *)NULL);
	openssl(bin, "x509", "-req", "-in", cert(csr), "-CA", cert("ca.pem"),
	    "-CAkey", cert("ca.key"), "-set_serial", serial, "-days", "2",
	    "-out", cert(pem), "-extfile", cert("openssl.cnf"), "-extensions",
	    ext, (char *)NULL);
}

static int
group_setup(void **state)
{
	const char *bin = find_openssl(), *tmp = getenv("TMPDIR");

	(void)h_group_setup(state);
	if (bin == NULL) {
		print_message(
		    "no openssl command: the TLS tests are skipped\n");
		return 0;
	}
	snprintf(g_dir, sizeof(g_dir), "%s/socketd-tls.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(g_dir) == NULL) {
		print_error("mkdtemp %s: %s\n", g_dir, strerror(errno));
		return -1;
	}
	h_write_file(cert("openssl.cnf"), openssl_cnf);
	make_ca(bin, "ca", "/CN=socketd test CA");
	make_ca(bin, "other", "/CN=socketd unrelated CA");
	make_cert(bin, "a", "/CN=socketd-test-a", "0xA1", "server");
	make_cert(bin, "b", "/CN=socketd-test-b", "0xB2", "server");
	make_cert(bin, "client", "/CN=socketd-test-client", "0xC3", "client");
	return 0;
}

static int
group_teardown(void **state)
{
	static const char *const files[] = {"openssl.cnf", "ca.key", "ca.pem",
	    "other.key", "other.pem", "a.key", "a.csr", "a.pem", "b.key",
	    "b.csr", "b.pem", "client.key", "client.csr", "client.pem"};
	size_t i;

	(void)state;
	if (g_dir[0] == '\0' || getenv("SOCKETD_IT_KEEP") != NULL)
		return 0;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		(void)unlink(cert(files[i]));
	(void)rmdir(g_dir);
	return 0;
}

static int
setup(void **state)
{
	g_nsdcs = 0;
	return h_setup(state);
}

/* TLS clients first, so that the daemon sees them go; then the harness. */
static int
teardown(void **state)
{
	size_t i;

	for (i = 0; i < g_nsdcs; i++) {
		sdc_close(g_sdcs[i]);
		free(g_sdcs[i]);
	}
	g_nsdcs = 0;
	return h_teardown(state);
}

static void
need_openssl(void)
{
	if (g_dir[0] == '\0')
		skip();
}

/* A TLS connection to 127.0.0.1:port, or NULL with err. */
static struct sdc *
tls_try(int port, const char *cafile, const char *certfile, const char *keyfile,
    char *err)
{
	struct sdc_tls_opts o;
	struct sdc_tls *tls;
	struct sdc *c;
	char p[16];
	int rc;

	memset(&o, 0, sizeof(o));
	o.cafile = cafile;
	o.certfile = certfile;
	o.keyfile = keyfile;
	if ((tls = sdc_tls_new(&o, err)) == NULL)
		fail_msg("sdc_tls_new: %s", err);
	c = calloc(1, sizeof(*c));
	assert_non_null(c);
	snprintf(p, sizeof(p), "%d", port);
	rc = sdc_connect_tls(c, "127.0.0.1", p, H_IO_TIMEOUT, tls, err);
	sdc_tls_free(tls);
	if (rc == -1) {
		free(c);
		return NULL;
	}
	assert_true(g_nsdcs < MAX_TLS_SDCS);
	g_sdcs[g_nsdcs++] = c;
	return c;
}

static struct sdc *
tls_connect(int port)
{
	char err[SDC_ERRLEN];
	struct sdc *c = tls_try(port, cert("ca.pem"), NULL, NULL, err);

	if (c == NULL)
		fail_msg("TLS connect to port %d: %s", port, err);
	return c;
}

/* The certificate the server showed c: must name subject. */
static void
expect_subject(const struct sdc *c, const char *subject)
{
	char what[512];

	assert_int_equal(sdc_tls_describe(c, what, sizeof(what)), 0);
	if (strstr(what, subject) == NULL)
		fail_msg(
		    "server certificate: \"%s\", expected %s", what, subject);
}

/* ECHO of len bytes of a pattern, checked. */
static void
echo_check(struct sdc *c, size_t len)
{
	struct proto_resp resp;
	char err[SDC_ERRLEN];
	uint8_t *p = malloc(len);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + 7);
	if (sdc_call(c, PROTO_OP_ECHO, p, len, &resp, err) == -1)
		fail_msg("ECHO of %zu bytes: %s", len, err);
	assert_int_equal(resp.status, PROTO_OK);
	assert_int_equal(resp.payload_len, len);
	assert_memory_equal(resp.payload, p, len);
	free(p);
}

/* Config text; the buffers are static, one per slot. */
struct tls_conf {
	char listen[160];
	char extra[1536];
	struct h_opts o;
};

/*
 * Listen on 127.0.0.1:PORT (plain, for the harness's probe and STATS)
 * and 127.0.0.1:tls_port with TLS, certificate and key as given, more
 * tls settings in tls_more (may be NULL), other settings in more (NULL:
 * two workers).
 */
static const struct h_opts *
tls_opts(struct tls_conf *tc, int tls_port, const char *certfile,
    const char *keyfile, const char *tls_more, const char *more)
{
	snprintf(tc->listen, sizeof(tc->listen),
	    "[ \"127.0.0.1:PORT\", \"tls://127.0.0.1:%d\" ]", tls_port);
	snprintf(tc->extra, sizeof(tc->extra),
	    "tls: { certificate = \"%s\"; key = \"%s\"; %s };\n%s\n", certfile,
	    keyfile, tls_more != NULL ? tls_more : "",
	    more != NULL ? more : "workers = 2;");
	memset(&tc->o, 0, sizeof(tc->o));
	tc->o.listen = tc->listen;
	tc->o.extra = tc->extra;
	return &tc->o;
}

static struct h_daemon *
tls_start(
    struct h_ctx *t, int *tls_port, const char *tls_more, const char *more)
{
	static struct tls_conf tc;

	*tls_port = h_free_port(0);
	return h_start(t,
	    tls_opts(
		&tc, *tls_port, cert("a.pem"), cert("a.key"), tls_more, more));
}

/* socketd-cli with argv[1..] as given (NULL-terminated), 30 s at most. */
static struct h_run *
cli(const char *a1, ...)
{
	struct h_run *r = malloc(sizeof(*r));
	char *argv[24];
	va_list ap;
	int n = 0;

	assert_non_null(r);
	argv[n++] = (char *)SOCKETD_CLI;
	argv[n++] = (char *)(uintptr_t)a1;
	va_start(ap, a1);
	while (n < 23 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	h_run(argv, 30000, r);
	return r;
}

static void
expect_status(const struct h_run *r, int status, const char *what)
{
	if (r->status != status)
		fail_msg("socketd-cli %s: exit %d, expected %d\nstdout: %s\n"
			 "stderr: %s",
		    what, r->status, status, r->out, r->err);
}

static void
test_tls_ping_echo_beside_plain(void **state)
{
	struct h_daemon *d;
	struct sdc *c, *plain;
	struct h_run *r;
	char port[16];
	int tport;

	need_openssl();
	d = tls_start(T(state), &tport, NULL, NULL);
	plain = h_sdc_settled(T(state), d);

	c = tls_connect(tport);
	expect_subject(c, "CN=socketd-test-a");
	h_ping(c);
	echo_check(c, 5);
	h_ping(plain);
	assert_int_equal(h_stat(plain, "tls_handshakes"), 1);
	assert_int_equal(h_stat(plain, "tls_handshake_failures"), 0);
	/* STATS over TLS says the same. */
	assert_int_equal(h_stat(c, "tls_handshakes"), 1);

	snprintf(port, sizeof(port), "%d", tport);
	r = cli("-p", port, "--tls", "--cafile", cert("ca.pem"), "ping",
	    (char *)NULL);
	expect_status(r, 0, "--tls --cafile ping");
	if (strstr(r->out, "PONG from 127.0.0.1:") == NULL ||
	    strstr(r->out, " over TLSv1.") == NULL)
		fail_msg("ping printed \"%s\"", r->out);
	free(r);
	r = cli("-p", port, "--cafile", cert("ca.pem"), "echo", "over", "tls",
	    (char *)NULL);
	expect_status(r, 0, "--cafile echo");
	assert_string_equal(r->out, "over tls\n");
	free(r);
	r = cli("-p", port, "--insecure", "stats", (char *)NULL);
	expect_status(r, 0, "--insecure stats");
	assert_non_null(strstr(r->out, "\ntls_handshakes "));
	free(r);
}

static void
test_tls_wrong_ca_fails_verification(void **state)
{
	struct h_daemon *d;
	struct h_run *r;
	char port[16], err[SDC_ERRLEN];
	int tport;

	need_openssl();
	d = tls_start(T(state), &tport, NULL, NULL);
	assert_null(tls_try(tport, cert("other.pem"), NULL, NULL, err));
	if (strstr(err, "certificate verify failed") == NULL)
		fail_msg("sdc_connect_tls: \"%s\"", err);

	snprintf(port, sizeof(port), "%d", tport);
	r = cli("-p", port, "--tls", "--cafile", cert("other.pem"), "ping",
	    (char *)NULL);
	expect_status(r, 3, "--cafile other-ca ping");
	if (strstr(r->err, "TLS handshake with 127.0.0.1 port ") == NULL ||
	    strstr(r->err, "certificate verify failed") == NULL)
		fail_msg("stderr \"%s\"", r->err);
	assert_string_equal(r->out, "");
	free(r);
	/* The server saw both fail (the client's alert). */
	assert_int_equal(h_stat_wait(h_sdc_settled(T(state), d),
			     "tls_handshake_failures", 2, H_IO_TIMEOUT),
	    2);
}

static void
test_tls_plaintext_client_is_closed_and_counted(void **state)
{
	struct h_daemon *d;
	struct sdc *plain;
	enum h_eof e;
	int tport, fd;

	need_openssl();
	d = tls_start(T(state), &tport, NULL, NULL);
	plain = h_sdc_settled(T(state), d);
	fd = h_connect(T(state), "127.0.0.1", tport, H_IO_TIMEOUT);
	assert_true(fd >= 0);
	assert_int_equal(h_send_req(fd, PROTO_OP_PING, 1, NULL, 0), 0);
	/* A TLS alert at most, then the end: never a protocol v1 answer. */
	e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	if (e == H_DATA) {
		uint8_t b[64];
		size_t got = 0;

		(void)h_recv_exact(fd, b, sizeof(b), 1000, &got);
		assert_true(got > 0 && b[0] == 0x15); /* TLS alert record */
		e = h_wait_eof(fd, H_IO_TIMEOUT, NULL);
	}
	if (e != H_EOF && e != H_RESET)
		fail_msg("plaintext on the TLS port: %s, expected the end",
		    h_eof_str(e));
	h_close(T(state), fd);
	assert_int_equal(
	    h_stat_wait(plain, "tls_handshake_failures", 1, H_IO_TIMEOUT), 1);
	/* And it goes on serving, over TLS too. */
	h_ping(tls_connect(tport));
	h_ping(plain);
}

static void
test_tls_mutual_requires_client_certificate(void **state)
{
	char more[700], err[SDC_ERRLEN], port[16];
	struct h_daemon *d;
	struct sdc *c, *plain;
	struct proto_resp resp;
	struct h_run *r;
	int tport, refused;

	need_openssl();
	snprintf(more, sizeof(more), "ca = \"%s\"; verify_client = true;",
	    cert("ca.pem"));
	d = tls_start(T(state), &tport, more, NULL);
	plain = h_sdc_settled(T(state), d);

	/*
	 * Without a certificate.  With TLS 1.3 the client's handshake is
	 * over before the server has checked it: the refusal may come as
	 * an alert on the first read instead.
	 */
	c = tls_try(tport, cert("ca.pem"), NULL, NULL, err);
	refused =
	    c == NULL || sdc_call(c, PROTO_OP_PING, NULL, 0, &resp, err) == -1;
	if (!refused)
		fail_msg("a client without a certificate was served");
	/* The server's alert reaches the client: it lingers after it. */
	if (strstr(err, "certificate required") == NULL &&
	    strstr(err, "handshake failure") == NULL)
		fail_msg("refused with \"%s\"", err);
	assert_int_equal(
	    h_stat_wait(plain, "tls_handshake_failures", 1, H_IO_TIMEOUT), 1);

	/* A certificate from another CA is no better. */
	c = tls_try(tport, cert("ca.pem"), cert("b.pem"), cert("b.key"), err);
	assert_true(
	    c == NULL || sdc_call(c, PROTO_OP_PING, NULL, 0, &resp, err) == -1);

	/* With one. */
	c = tls_try(
	    tport, cert("ca.pem"), cert("client.pem"), cert("client.key"), err);
	if (c == NULL)
		fail_msg("with a client certificate: %s", err);
	h_ping(c);
	assert_int_equal(h_stat(plain, "tls_handshakes"), 1);

	snprintf(port, sizeof(port), "%d", tport);
	r = cli("-p", port, "--cafile", cert("ca.pem"), "--cert",
	    cert("client.pem"), "--key", cert("client.key"), "ping",
	    (char *)NULL);
	expect_status(r, 0, "--cert --key ping");
	free(r);
	r = cli("-p", port, "--cafile", cert("ca.pem"), "ping", (char *)NULL);
	expect_status(r, 3, "ping without a client certificate");
	free(r);
}

/*
 * A module sees the verified client certificate's subject as part of the
 * connection's identity (tests/modules/testmod.c, handler whoami), and
 * nothing on a plain connection.
 */
static void
test_tls_module_sees_client_subject(void **state)
{
	char more[700], modules[600], err[SDC_ERRLEN], want[64], got[256];
	struct h_daemon *d;
	struct sdc *c, *plain;
	struct proto_resp resp;
	int tport;

	need_openssl();
	snprintf(more, sizeof(more), "ca = \"%s\"; verify_client = true;",
	    cert("ca.pem"));
	snprintf(modules, sizeof(modules),
	    "workers = 2;\nmodules = ( { name = \"testmod\"; path = "
	    "\"%s/testmod.so\"; opcode = 0xa0; } );",
	    SOCKETD_TEST_MODULE_DIR);
	d = tls_start(T(state), &tport, more, modules);
	plain = h_sdc_settled(T(state), d);
	c = tls_try(
	    tport, cert("ca.pem"), cert("client.pem"), cert("client.key"), err);
	if (c == NULL)
		fail_msg("with a client certificate: %s", err);
	assert_int_equal(sdc_call(c, 0xa4, NULL, 0, &resp, err), 0);
	assert_int_equal(resp.status, PROTO_OK);
	snprintf(want, sizeof(want), ":%d /CN=socketd-test-client", tport);
	snprintf(got, sizeof(got), "%.*s", (int)resp.payload_len,
	    (const char *)resp.payload);
	if (strstr(got, want) == NULL)
		fail_msg("whoami over TLS: \"%s\", wanted \"%s\"", got, want);
	assert_int_equal(sdc_call(plain, 0xa4, NULL, 0, &resp, err), 0);
	assert_int_equal(resp.status, PROTO_OK);
	assert_true(resp.payload_len > 2 &&
	    memcmp(resp.payload + resp.payload_len - 2, " -", 2) == 0);
}

/* Copy src to dst (small files). */
static void
copy_file(const char *src, const char *dst)
{
	char buf[16384];
	size_t n;
	FILE *f;

	f = fopen(src, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	assert_true(n > 0 && n < sizeof(buf) - 1);
	buf[n] = '\0';
	h_write_file(dst, buf);
}

static void
test_tls_reload_new_and_broken_certificate(void **state)
{
	static struct tls_conf tc, broken;
	const char *dir = h_scratch(T(state));
	char crt[300], key[300], missing[300], want[400];
	struct h_daemon *d;
	struct sdc *old, *plain, *c;
	int tport = h_free_port(0);

	need_openssl();
	snprintf(crt, sizeof(crt), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(missing, sizeof(missing), "%s/missing.pem", dir);
	copy_file(cert("a.pem"), crt);
	copy_file(cert("a.key"), key);
	d = h_start(T(state), tls_opts(&tc, tport, crt, key, NULL, NULL));
	plain = h_sdc_settled(T(state), d);
	old = tls_connect(tport);
	expect_subject(old, "CN=socketd-test-a");

	/* Renewed in place, then SIGHUP: new connections get it. */
	copy_file(cert("b.pem"), crt);
	copy_file(cert("b.key"), key);
	h_signal(d, SIGHUP);
	assert_int_equal(h_stat_wait(plain, "reloads", 1, H_IO_TIMEOUT), 1);
	c = tls_connect(tport);
	expect_subject(c, "CN=socketd-test-b");
	h_ping(c);
	/* The connection made before keeps working. */
	h_ping(old);
	expect_subject(old, "CN=socketd-test-a");
	assert_true(h_log_count(d, "serial B2", NULL) >= 1);

	/* A certificate that cannot be read: logged, nothing changes. */
	h_write_config(d, tls_opts(&broken, tport, missing, key, NULL, NULL));
	h_signal(d, SIGHUP);
	snprintf(want, sizeof(want),
	    "tls.certificate %s: No such file or directory", missing);
	if (!h_log_wait(d, want, "reload failed", H_IO_TIMEOUT))
		fail_msg("no \"%s\" in the log after SIGHUP", want);
	assert_int_equal(h_stat(plain, "reload_failures"), 1);
	assert_int_equal(h_stat(plain, "reloads"), 1);
	c = tls_connect(tport);
	expect_subject(c, "CN=socketd-test-b");
	h_ping(c);
	h_ping(old);
}

static void
test_tls_stalled_handshake_times_out_without_pinning(void **state)
{
	struct h_daemon *d;
	struct sdc *plain, *c;
	int64_t t0, t1, t2;
	enum h_eof e;
	int tport, fd;

	need_openssl();
	/* One worker: a handshake that blocked it would stop everything. */
	d = tls_start(T(state), &tport, NULL,
	    "workers = 1;\ntimeouts: { handshake = 1; };");
	plain = h_sdc_settled(T(state), d);
	t0 = h_now_ms();
	fd = h_connect(T(state), "127.0.0.1", tport, H_IO_TIMEOUT);
	assert_true(fd >= 0);

	/* Meanwhile another client is served at once. */
	c = tls_connect(tport);
	h_ping(c);
	echo_check(c, 1000);
	t1 = h_now_ms();
	if (t1 - t0 > 800)
		fail_msg("a second client took %ld ms beside a stalled "
			 "handshake",
		    (long)(t1 - t0));

	e = h_wait_eof(fd, 5000, NULL);
	t2 = h_now_ms();
	if (e != H_EOF && e != H_RESET)
		fail_msg("stalled handshake: %s after %ld ms, expected the end",
		    h_eof_str(e), (long)(t2 - t0));
	if (t2 - t0 < 900 || t2 - t0 > 3500)
		fail_msg("stalled handshake closed after %ld ms, expected "
			 "about 1000",
		    (long)(t2 - t0));
	h_close(T(state), fd);
	assert_int_equal(
	    h_stat_wait(plain, "tls_handshake_timeouts", 1, H_IO_TIMEOUT), 1);
	assert_int_equal(h_stat(plain, "tls_handshake_failures"), 0);
	/* The served connection is past its handshake: not timed out. */
	h_ping(c);
}

static void
test_tls_large_and_pipelined(void **state)
{
	struct proto_resp resp;
	char err[SDC_ERRLEN];
	struct h_daemon *d;
	struct sdc *c;
	uint8_t *batch, *p;
	size_t len, one, i;
	int tport;

	need_openssl();
	d = tls_start(T(state), &tport, NULL, NULL);
	(void)h_sdc_settled(T(state), d);
	c = tls_connect(tport);
	/* More than a TLS record (16 KiB) each way, several times over. */
	echo_check(c, 300000);
	echo_check(c, 16385);
	echo_check(c, 0);

	/* 200 requests in one write: answered in order. */
	one = proto_encode_req(NULL, 0, PROTO_OP_PING, 1, NULL, 0);
	len = 200 * one;
	batch = malloc(len);
	assert_non_null(batch);
	for (i = 0, p = batch; i < 200; i++, p += one)
		assert_int_equal(proto_encode_req(p, one, PROTO_OP_PING,
				     (uint32_t)(1000 + i), NULL, 0),
		    one);
	if (sdc_send_raw(c, batch, len, err) == -1)
		fail_msg("send: %s", err);
	free(batch);
	for (i = 0; i < 200; i++) {
		if (sdc_recv(c, &resp, err) == -1)
			fail_msg("answer %zu: %s", i, err);
		assert_int_equal(resp.status, PROTO_OK);
		assert_int_equal(resp.request_id, 1000 + i);
	}
	h_ping(c);
}

static void
test_tls_bench(void **state)
{
	struct h_daemon *d;
	struct h_run *r;
	char port[16];
	int tport;

	need_openssl();
	d = tls_start(T(state), &tport, NULL, NULL);
	(void)h_sdc_settled(T(state), d);
	snprintf(port, sizeof(port), "%d", tport);
	r = cli("-p", port, "bench", "--tls", "--cafile", cert("ca.pem"), "-n",
	    "5000", "-c", "4", "--json", (char *)NULL);
	expect_status(r, 0, "bench --tls");
	if (strstr(r->out, "\"requests\":5000,") == NULL ||
	    strstr(r->out, "\"errors\":0,") == NULL ||
	    strstr(r->out, "\"connections_lost\":0}") == NULL)
		fail_msg("bench printed \"%s\"", r->out);
	free(r);
	/* Pipelined, two threads, echo larger than a record. */
	r = cli("-p", port, "--cafile", cert("ca.pem"), "bench", "-n", "2000",
	    "-c", "4", "-t", "2", "-P", "8", "--op", "echo", "--size", "20000",
	    "--json", (char *)NULL);
	expect_status(r, 0, "bench (global --cafile) echo -P 8");
	if (strstr(r->out, "\"errors\":0,") == NULL)
		fail_msg("bench printed \"%s\"", r->out);
	free(r);
	/* The wrong CA: no connection, exit 3. */
	r = cli("-p", port, "bench", "--cafile", cert("other.pem"), "-n", "10",
	    (char *)NULL);
	expect_status(r, 3, "bench --cafile other-ca");
	if (strstr(r->err, "certificate verify failed") == NULL)
		fail_msg("stderr \"%s\"", r->err);
	free(r);
}

static void
test_tls_certificate_errors_at_start(void **state)
{
	static struct tls_conf tc;
	struct h_daemon *d;
	struct h_run *r;
	char *argv[5], want[400];
	int st;

	need_openssl();
	/* -t loads the certificates too. */
	d = h_spawn(T(state),
	    tls_opts(&tc, h_free_port(0), cert("nope.pem"), cert("a.key"), NULL,
		NULL));
	st = h_wait_exit(d, H_IO_TIMEOUT);
	assert_int_equal(st, 1);
	snprintf(want, sizeof(want),
	    "tls.certificate %s: No such file or directory", cert("nope.pem"));
	if (h_log_count(d, want, NULL) != 1) {
		h_log_dump(d);
		fail_msg("no \"%s\" in the log", want);
	}
	r = malloc(sizeof(*r));
	assert_non_null(r);
	argv[0] = (char *)SOCKETD_BIN;
	argv[1] = (char *)"-t";
	argv[2] = (char *)"-c";
	argv[3] = d->conf;
	argv[4] = NULL;
	h_run(argv, 10000, r);
	assert_int_equal(r->status, 1);
	if (strstr(r->err, want) == NULL)
		fail_msg("socketd -t: \"%s\"", r->err);
	free(r);

	/* A key that is not the certificate's. */
	h_write_config(d,
	    tls_opts(
		&tc, h_free_port(0), cert("a.pem"), cert("b.key"), NULL, NULL));
	r = malloc(sizeof(*r));
	assert_non_null(r);
	h_run(argv, 10000, r);
	assert_int_equal(r->status, 1);
	if (strstr(r->err, "does not match the certificate") == NULL)
		fail_msg("socketd -t: \"%s\"", r->err);
	free(r);
}

/* Pub/sub permissions by verified client certificate CN (pubsub.acl). */
static int
ps_subscribe(struct sdc *c, uint32_t id, const char *filter)
{
	struct proto_resp resp;
	char err[SDC_ERRLEN];
	uint8_t p[128];
	size_t fl = strlen(filter);

	proto_put_u32(p, id);
	p[4] = 0;
	p[5] = 0;
	proto_put_u16(p + 6, (uint16_t)fl);
	memcpy(p + 8, filter, fl);
	if (sdc_call(c, 0x10, p, 8 + fl, &resp, err) == -1)
		fail_msg("SUBSCRIBE %s: %s", filter, err);
	return resp.status;
}

static void
test_tls_pubsub_acl_by_cn(void **state)
{
	char more[700], acl[400], err[SDC_ERRLEN];
	struct h_daemon *d;
	struct sdc *c, *plain;
	int tport;

	need_openssl();
	snprintf(more, sizeof(more), "ca = \"%s\"; verify_client = true;",
	    cert("ca.pem"));
	snprintf(acl, sizeof(acl),
	    "workers = 2;\npubsub: { acl = ( { tls_cn = "
	    "\"socketd-test-client\"; subscribe = [ \"secure.>\" ]; "
	    "publish = [ \"secure.>\" ]; } ); };");
	d = tls_start(T(state), &tport, more, acl);
	plain = h_sdc_settled(T(state), d);
	/* No rule applies to a plain connection: refused. */
	assert_int_equal(ps_subscribe(plain, 1, "secure.x"), PROTO_FORBIDDEN);
	c = tls_try(
	    tport, cert("ca.pem"), cert("client.pem"), cert("client.key"), err);
	if (c == NULL)
		fail_msg("with a client certificate: %s", err);
	assert_int_equal(ps_subscribe(c, 1, "secure.x"), PROTO_OK);
	assert_int_equal(ps_subscribe(c, 2, "secure.>"), PROTO_OK);
	assert_int_equal(ps_subscribe(c, 3, "other.x"), PROTO_FORBIDDEN);
	assert_int_equal(ps_subscribe(c, 4, ">"), PROTO_FORBIDDEN);
	assert_int_equal(h_stat(plain, "pubsub_denied_total"), 3);
}

/*
 * A TLS subscriber cut as a slow consumer: its queue is discarded, but not
 * the record OpenSSL may hold for a retry, so the stream stays a valid TLS
 * stream: after what the kernel held, the NOTICE arrives, then a clean end
 * (a torn record would end it with a TLS error and no NOTICE).
 */
static void
test_tls_pubsub_slow_consumer_stream_stays_whole(void **state)
{
	static uint8_t pay[2 + 6 + 16384];
	struct proto_resp resp;
	char err[SDC_ERRLEN];
	struct h_daemon *d;
	struct sdc *c, *plain;
	int tport, i, notice = 0;
	size_t msgs = 0;

	need_openssl();
	d = tls_start(T(state), &tport, NULL,
	    "workers = 2;\ntimeouts: { write = 60; };\n"
	    "pubsub: { max_pending = 1048576; };");
	plain = h_sdc_settled(T(state), d);
	c = tls_connect(tport);
	assert_int_equal(ps_subscribe(c, 1, "slow.t"), PROTO_OK);
	proto_put_u16(pay, 6);
	memcpy(pay + 2, "slow.t", 6);
	/* 16 KiB each, until the cut: beyond 1 MiB + the kernel's share. */
	for (i = 0; i < 2000; i++) {
		if (sdc_call(plain, 0x12, pay, sizeof(pay), &resp, err) == -1)
			fail_msg("PUBLISH %d: %s", i, err);
		assert_int_equal(resp.status, PROTO_OK);
		if (i % 16 == 15 &&
		    h_log_count(d, "slow consumer: peer=127.0.0.1", NULL) > 0)
			break;
	}
	assert_true(i < 2000);
	while (!notice) {
		if (sdc_recv(c, &resp, err) == -1)
			fail_msg(
			    "after %zu MESSAGEs, no NOTICE: %s", msgs, err);
		if (resp.opcode == 0x14) {
			assert_true(resp.payload_len >= 2);
			assert_int_equal(proto_get_u16(resp.payload), 1);
			notice = 1;
		} else {
			assert_int_equal(resp.opcode, 0x13);
			assert_int_equal(resp.payload_len, 10 + 6 + 16384);
			msgs++;
		}
	}
	assert_int_equal(sdc_recv(c, &resp, err), -1);
	if (strstr(err, "closed") == NULL)
		fail_msg("after the NOTICE: %s (expected a clean close)", err);
	assert_int_equal(h_stat(plain, "pubsub_slow_consumers_total"), 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_tls_ping_echo_beside_plain, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_wrong_ca_fails_verification, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_plaintext_client_is_closed_and_counted, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_mutual_requires_client_certificate, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_module_sees_client_subject, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_reload_new_and_broken_certificate, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_stalled_handshake_times_out_without_pinning, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_large_and_pipelined, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls_bench, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_pubsub_acl_by_cn, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_pubsub_slow_consumer_stream_stays_whole, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_tls_certificate_errors_at_start, setup, teardown),
	};

	return cmocka_run_group_tests_name(
	    "integration_tls", tests, group_setup, group_teardown);
}
