/* Test helper: a mutual TLS 1.3 session between two wolfSSL endpoints over
 * a socketpair, driven in one thread. */
#ifndef TEST_TLS_PAIR_H
#define TEST_TLS_PAIR_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "ztunnel/identity.h"

struct tls_pair {
	WOLFSSL_CTX *cctx, *sctx;
	WOLFSSL *c, *s;
	int fds[2];
};

/* Each side trusts its bundle (PEM roots) and presents its certificate.
 * Returns 0, or the wolfSSL error of the side that failed. */
int tls_pair_handshake(struct tls_pair *p, const char *client_bundle, const struct leaf_cert *client,
		       const char *server_bundle, const struct leaf_cert *server);
void tls_pair_roundtrip(struct tls_pair *p);
void tls_pair_free(struct tls_pair *p);

#endif
