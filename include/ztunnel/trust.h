/* Trust bundles and certificate checks shared by the providers and TLS:
 * several roots (cross-cluster trust domains, root rotation), each parsed
 * with wolfSSL; an invalid root is skipped with a warning (SPEC.md §4). */
#ifndef ZTUNNEL_TRUST_H
#define ZTUNNEL_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztunnel/identity.h"

struct trust_bundle {
	unsigned char **der;
	int *der_sz;
	uint32_t n;
};

/* Parses every PEM certificate of pem; returns the number kept (0 is an
 * error for the caller to report), or -ENOMEM. */
int trust_bundle_load(struct trust_bundle *tb, const char *pem);
void trust_bundle_free(struct trust_bundle *tb);

/* Verifies chain_pem (leaf first, then intermediates) against the bundle
 * at the current time. 0 or -EBADMSG / -EKEYREJECTED; err says why. */
int trust_verify_chain(const struct trust_bundle *tb, const char *chain_pem, char *err, size_t err_size);

/* The first SPIFFE URI SAN of the leaf of pem (SPEC.md §2.1: the peer
 * identity). 0, or -ENOENT when there is none. */
int cert_spiffe_id(const char *pem, struct spiffe_id *out);

struct WOLFSSL_X509;
/* Calls fn for each URI SAN of x that is a SPIFFE id, in order, until fn
 * returns non-zero (returned). Only URI SANs count: a DNS or other SAN
 * spelling "spiffe://..." names nobody. */
int cert_for_each_spiffe_san(struct WOLFSSL_X509 *x,
			     int (*fn)(const struct spiffe_id *id, const char *uri, void *ctx), void *ctx);
/* NULL if x may authenticate a TLS 1.3 peer in that role, else why not:
 * a key usage, when present, must allow digitalSignature; an extended key
 * usage, when present, must name serverAuth (server) or clientAuth. */
const char *cert_usage_error(struct WOLFSSL_X509 *x, bool server);
/* One certificate of a PEM text, re-encoded by wolfSSL (valid during the
 * callback only). */
struct cert_summary {
	const char *pem;
	size_t pem_len;
	int64_t not_before, not_after;
	char serial[64];
};
/* Calls fn for each certificate of pem, in order (wolfSSL's PEM reader);
 * the count, or fn's negative return. */
int cert_for_each_in_pem(const char *pem, int (*fn)(const struct cert_summary *c, void *ctx), void *ctx);
/* Validity of the leaf of pem, unix seconds. */
int cert_validity(const char *pem, int64_t *not_before, int64_t *not_after, char *serial, size_t serial_size);
/* The leaf (first certificate) of a chain as its own PEM; caller frees. */
char *cert_leaf_pem(const char *pem);
/* The issuer of the leaf of pem, one line ("/O=cluster.local/CN=..."). */
int cert_issuer(const char *pem, char *buf, size_t size);
/* True when key_pem is the private key of the leaf of cert_pem. */
int cert_key_matches(const char *cert_pem, const char *key_pem);

#endif
