#include "ztunnel/tls.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/trust.h"

#define HBONE_CIPHERS "TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256"

struct tls_ctx {
	WOLFSSL_CTX *ctx;
	bool server;
};

/* A growable byte queue: what the peer sent, or what we must send. */
struct bytes {
	uint8_t *buf;
	size_t len, off, cap;
};

struct tls_session {
	WOLFSSL *ssl;
	bool server, done;
	struct bytes in, out;
	struct spiffe_id expected[8];
	uint32_t n_expected;
	char trust_domain[254];
	struct spiffe_id peer;
	char error[256];
	char error_name[80]; /* bounded set: a metric label */
};

static int bytes_push(struct bytes *b, const void *data, size_t len)
{
	if (b->off && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb)
			return -ENOMEM;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	return 0;
}

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls_session *s = ctx;
	size_t avail = s->in.len - s->in.off;

	(void)ssl;
	if (!avail)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	size_t n = avail < (size_t)sz ? avail : (size_t)sz;
	memcpy(buf, s->in.buf + s->in.off, n);
	s->in.off += n;
	return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls_session *s = ctx;

	(void)ssl;
	return bytes_push(&s->out, buf, (size_t)sz) < 0 ? WOLFSSL_CBIO_ERR_GENERAL : sz;
}

int tls_ctx_new(struct tls_ctx **out, bool server, const struct leaf_cert *cert,
		const char *trust_bundle_pem, char *err, size_t err_size)
{
	struct tls_ctx *t = calloc(1, sizeof(*t));
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1 };
	const char *what = NULL;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->server = server;
	t->ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
	if (!t->ctx)
		what = "cannot create a TLS 1.3 context";
	else if (wolfSSL_CTX_set_cipher_list(t->ctx, HBONE_CIPHERS) != WOLFSSL_SUCCESS)
		what = "cipher suites";
	else if (wolfSSL_CTX_set_groups(t->ctx, groups, 3) != WOLFSSL_SUCCESS)
		what = "key exchange groups";
	else if (wolfSSL_CTX_load_verify_buffer(t->ctx, (const unsigned char *)trust_bundle_pem,
						(long)strlen(trust_bundle_pem), WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		what = "trust bundle";
	else if (wolfSSL_CTX_use_certificate_chain_buffer(t->ctx, (const unsigned char *)cert->chain_pem,
							  (long)strlen(cert->chain_pem)) != WOLFSSL_SUCCESS)
		what = "certificate chain";
	else if (wolfSSL_CTX_use_PrivateKey_buffer(t->ctx, (const unsigned char *)cert->key_pem,
						   (long)strlen(cert->key_pem), WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		what = "private key";
	if (what) {
		snprintf(err, err_size, "TLS setup: %s rejected", what);
		tls_ctx_free(t);
		return -EINVAL;
	}
	/* Mutual TLS: the server requires a client certificate (SPEC §2.1);
	 * no hostname check, identities are checked by SAN afterwards. */
	wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER | (server ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			       NULL);
	if (server)
		wolfSSL_CTX_no_ticket_TLSv13(t->ctx); /* every connection: full handshake */
	wolfSSL_CTX_SetIORecv(t->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(t->ctx, io_send);
	*out = t;
	return 0;
}

void tls_ctx_free(struct tls_ctx *t)
{
	if (!t)
		return;
	wolfSSL_CTX_free(t->ctx);
	free(t);
}

int tls_session_new(struct tls_session **out, struct tls_ctx *ctx, const struct spiffe_id *expected,
		    uint32_t n_expected, const char *trust_domain)
{
	struct tls_session *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s || !(s->ssl = wolfSSL_new(ctx->ctx))) {
		free(s);
		return -ENOMEM;
	}
	s->server = ctx->server;
	s->n_expected = n_expected < 8 ? n_expected : 8;
	if (s->n_expected)
		memcpy(s->expected, expected, s->n_expected * sizeof(*expected));
	snprintf(s->trust_domain, sizeof(s->trust_domain), "%s", trust_domain ? trust_domain : "");
	wolfSSL_SetIOReadCtx(s->ssl, s);
	wolfSSL_SetIOWriteCtx(s->ssl, s);
	if (wolfSSL_UseALPN(s->ssl, (char *)"h2", 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
		tls_session_free(s);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	wolfSSL_free(s->ssl);
	free(s->in.buf);
	free(s->out.buf);
	free(s);
}

int tls_feed(struct tls_session *s, const void *data, size_t len)
{
	return bytes_push(&s->in, data, len);
}

void *tls_input_space(struct tls_session *s, size_t want, size_t *room)
{
	struct bytes *b = &s->in;
	size_t left = b->len - b->off;

	if (b->off) { /* what wolfSSL has not taken yet goes to the front */
		memmove(b->buf, b->buf + b->off, left);
		b->len = left;
		b->off = 0;
	}
	/* Exactly what is asked (small before the handshake: an
	 * unauthenticated connection costs little; the relay size after), and
	 * never full: room past what is left over. */
	size_t cap = b->cap < want ? want : b->cap;
	if (cap == left)
		cap *= 2;
	if (cap != b->cap) {
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb)
			return NULL;
		b->buf = nb;
		b->cap = cap;
	}
	*room = b->cap - b->len;
	return b->buf + b->len;
}

void tls_input_commit(struct tls_session *s, size_t n)
{
	s->in.len += n;
}

size_t tls_output(struct tls_session *s, const void **data)
{
	*data = s->out.buf + s->out.off;
	return s->out.len - s->out.off;
}

void tls_output_consumed(struct tls_session *s, size_t n)
{
	s->out.off += n;
	if (s->out.off >= s->out.len)
		s->out.off = s->out.len = 0;
}

size_t tls_output_take(struct tls_session *s, uint8_t **buf, size_t *cap)
{
	struct bytes *b = &s->out;
	size_t len = b->len - b->off;

	if (b->off && len)
		memmove(b->buf, b->buf + b->off, len);
	uint8_t *mine = b->buf;
	size_t mine_cap = b->cap;
	b->buf = *buf;
	b->cap = *cap;
	b->len = b->off = 0;
	*buf = mine;
	*cap = mine_cap;
	return len;
}

static int fail(struct tls_session *s, int code, const char *fmt, const char *arg)
{
	snprintf(s->error, sizeof(s->error), fmt, arg);
	snprintf(s->error_name, sizeof(s->error_name), "peer certificate refused");
	return code;
}

/* wolfSSL's own error number and text, which side we are, the phase, and
 * the alert the peer sent if any: "-EPROTO" alone tells an operator
 * nothing (a refused 32-byte ticket nonce looked like garbage). */
static int fail_wolfssl(struct tls_session *s, const char *phase, int e)
{
	char text[WOLFSSL_MAX_ERROR_SZ], alert[96] = "";
	WOLFSSL_ALERT_HISTORY h;

	wolfSSL_ERR_error_string_n((unsigned long)e, text, sizeof(text));
	if (wolfSSL_get_alert_history(s->ssl, &h) == WOLFSSL_SUCCESS && h.last_rx.code >= 0)
		snprintf(alert, sizeof(alert), "; peer sent alert %s",
			 wolfSSL_alert_desc_string_long(h.last_rx.code));
	snprintf(s->error, sizeof(s->error), "%s failed (%s side): wolfSSL error %d: %s%s", phase,
		 s->server ? "server" : "client", e, text, alert);
	snprintf(s->error_name, sizeof(s->error_name), "%s", text);
	return -EPROTO;
}

struct san_check {
	struct tls_session *s;
	char got[800];
	bool first, ok;
};

static int check_san(const struct spiffe_id *id, const char *uri, void *ctx)
{
	struct san_check *c = ctx;
	struct tls_session *s = c->s;

	if (c->first) {
		s->peer = *id;
		snprintf(c->got, sizeof(c->got), "%s", uri);
		c->first = false;
	}
	if (s->server)
		c->ok |= !strcmp(id->td, s->trust_domain);
	for (uint32_t i = 0; !s->server && i < s->n_expected; i++)
		c->ok |= !strcmp(id->td, s->expected[i].td) && !strcmp(id->ns, s->expected[i].ns) &&
			 !strcmp(id->sa, s->expected[i].sa);
	return 0;
}

/* SPEC §2.1: the client wants any SPIFFE URI SAN equal to any expected id;
 * the server wants a SPIFFE URI SAN of its own trust domain. The peer's
 * identity is its first SPIFFE URI SAN. The leaf's key usages must fit the
 * peer's role (it is the client when we are the server). */
static int check_peer(struct tls_session *s)
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(s->ssl);
	struct san_check c = { .s = s, .first = true };

	if (!x)
		return fail(s, -EACCES, "peer presented no certificate%s", "");
	const char *usage = cert_usage_error(x, !s->server);
	if (!usage)
		cert_for_each_spiffe_san(x, check_san, &c);
	wolfSSL_X509_free(x);
	if (usage)
		return fail(s, -EACCES, "peer certificate refused: %s", usage);
	bool ok = c.ok;
	const char *got = c.got;
	if (c.first)
		return fail(s, -EACCES, "peer certificate has no SPIFFE URI SAN%s", "");
	if (!ok && s->server)
		return fail(s, -EACCES, "client identity %s is not in this trust domain", got);
	if (!ok) {
		char want[800] = "";
		if (s->n_expected)
			spiffe_format(&s->expected[0], want, sizeof(want));
		snprintf(s->error, sizeof(s->error), "peer did not present the expected SAN (%s), got %s",
			 want, got);
		return -EACCES;
	}
	return 0;
}

int tls_handshake(struct tls_session *s)
{
	if (s->done)
		return 1;
	int r = s->server ? wolfSSL_accept(s->ssl) : wolfSSL_connect(s->ssl);
	if (r != WOLFSSL_SUCCESS) {
		int e = wolfSSL_get_error(s->ssl, r);
		if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
			return 0;
		return fail_wolfssl(s, "handshake", e);
	}
	if ((r = check_peer(s)) < 0)
		return r;
	s->done = true;
	return 1;
}

ssize_t tls_read(struct tls_session *s, void *buf, size_t len)
{
	int n = wolfSSL_read(s->ssl, buf, (int)len);
	if (n > 0)
		return n;
	int e = wolfSSL_get_error(s->ssl, n);
	if (e == WOLFSSL_ERROR_WANT_READ)
		return 0;
	if (e == WOLFSSL_ERROR_ZERO_RETURN)
		return -EPIPE;
	/* After the handshake a read also processes post-handshake messages
	 * (NewSessionTicket, KeyUpdate): a failure may be one of those. */
	return fail_wolfssl(s, "reading a record or post-handshake message", e);
}

ssize_t tls_write(struct tls_session *s, const void *buf, size_t len)
{
	int n = wolfSSL_write(s->ssl, buf, (int)len);
	return n > 0 ? n : fail_wolfssl(s, "writing a record", wolfSSL_get_error(s->ssl, n));
}

const char *tls_alpn(struct tls_session *s)
{
	char *proto = NULL;
	unsigned short len = 0;

	if (wolfSSL_ALPN_GetProtocol(s->ssl, &proto, &len) != WOLFSSL_SUCCESS || !proto)
		return "";
	return len == 2 && !memcmp(proto, "h2", 2) ? "h2" : "other";
}

const char *tls_error_name(const struct tls_session *s)
{
	return s->error_name[0] ? s->error_name : "other";
}

const char *tls_error(const struct tls_session *s)
{
	return s->error;
}

const struct spiffe_id *tls_peer_identity(const struct tls_session *s)
{
	return s->done ? &s->peer : NULL;
}

const char *tls_cipher(struct tls_session *s)
{
	return wolfSSL_get_cipher_name(s->ssl);
}

const char *tls_version(struct tls_session *s)
{
	return wolfSSL_get_version(s->ssl);
}
