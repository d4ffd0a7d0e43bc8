#include "tls_pair.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static WOLFSSL_CTX *tls_ctx(int server, const char *bundle, const struct leaf_cert *l)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
	assert_non_null(ctx);
	assert_int_equal(wolfSSL_CTX_load_verify_buffer(ctx, (const unsigned char *)bundle,
							(long)strlen(bundle), WOLFSSL_FILETYPE_PEM),
			 WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)l->chain_pem,
								  (long)strlen(l->chain_pem)),
			 WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)l->key_pem,
							   (long)strlen(l->key_pem), WOLFSSL_FILETYPE_PEM),
			 WOLFSSL_SUCCESS);
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

static int step(WOLFSSL *ssl, int server, int *done)
{
	int r = server ? wolfSSL_accept(ssl) : wolfSSL_connect(ssl);
	if (r == WOLFSSL_SUCCESS) {
		*done = 1;
		return 0;
	}
	int e = wolfSSL_get_error(ssl, r);
	return e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE ? 0 : e;
}

int tls_pair_handshake(struct tls_pair *p, const char *client_bundle, const struct leaf_cert *client,
		       const char *server_bundle, const struct leaf_cert *server)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fds), 0);
	fcntl(p->fds[0], F_SETFL, O_NONBLOCK);
	fcntl(p->fds[1], F_SETFL, O_NONBLOCK);
	p->cctx = tls_ctx(0, client_bundle, client);
	p->sctx = tls_ctx(1, server_bundle, server);
	p->c = wolfSSL_new(p->cctx);
	p->s = wolfSSL_new(p->sctx);
	wolfSSL_set_fd(p->c, p->fds[0]);
	wolfSSL_set_fd(p->s, p->fds[1]);
	int cd = 0, sd = 0, e = 0;
	for (int i = 0; i < 1000 && !(cd && sd) && !e; i++) {
		if (!cd)
			e = step(p->c, 0, &cd);
		if (!sd && !e)
			e = step(p->s, 1, &sd);
	}
	if (!e && !(cd && sd))
		e = -1;
	if (!e)
		assert_string_equal(wolfSSL_get_version(p->c), "TLSv1.3");
	return e;
}

void tls_pair_roundtrip(struct tls_pair *p)
{
	char buf[16];
	assert_int_equal(wolfSSL_write(p->c, "ping", 4), 4);
	int n = -1;
	for (int i = 0; i < 100 && n <= 0; i++)
		n = wolfSSL_read(p->s, buf, sizeof(buf));
	assert_int_equal(n, 4);
}

void tls_pair_free(struct tls_pair *p)
{
	wolfSSL_free(p->c);
	wolfSSL_free(p->s);
	wolfSSL_CTX_free(p->cctx);
	wolfSSL_CTX_free(p->sctx);
	close(p->fds[0]);
	close(p->fds[1]);
}
