/* Internal to ztunnel/identity: wolfSSL helpers the CA and the CSR share. */
#ifndef ZTUNNEL_IDENTITY_X509_INT_H
#define ZTUNNEL_IDENTITY_X509_INT_H

#include <stdint.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/ec.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/x509.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include "ztunnel/identity.h"

#define X509_DER_MAX 4096

/* An issuing CA: the local CA's, or ztunnel-ca's. */
struct ca {
	char *chain_pem;                 /* issuing CA cert (+ its parents) */
	unsigned char der[X509_DER_MAX]; /* issuing CA cert, DER */
	int der_sz;
	ecc_key key;
	WC_RNG rng;
	int64_t not_after; /* of the issuing certificate: no leaf outlives it */
};

/* DER -> PEM of type (CERT_TYPE, PKCS8_PRIVATEKEY_TYPE, CERTREQ_TYPE); NULL on failure. */
char *x509_to_pem(const unsigned char *der, int sz, int type);
/* A self-signed throwaway certificate with uri as its only SAN and
 * [now, now + lifetime_s]: wolfcrypt copies both from its DER. */
WOLFSSL_X509 *x509_san_template(const char *uri, int64_t now, int64_t lifetime_s);
/* The same with n SANs of one type (ASN_URI_TYPE, ASN_DNS_TYPE). */
WOLFSSL_X509 *x509_names_template(const char *const *names, size_t n, int type, int64_t now, int64_t lifetime_s);

/* A leaf for subject_key's public key signed by ca: the SANs and validity
 * of tmpl (its subject stays empty, the SANs critical), KU
 * digitalSignature+keyEncipherment, EKU `eku` ("serverAuth,clientAuth").
 * *pem: the leaf alone; serial: hex. err says what failed. */
int ca_issue(struct ca *ca, ecc_key *subject_key, WOLFSSL_X509 *tmpl, const char *eku, char **pem,
	     char *serial, size_t serial_size, char *err, size_t err_size);
/* A new P-256 key and its leaf from tmpl (ca_issue), the key PKCS#8;
 * out's validity is [not_before, not_after] (what tmpl says). */
int ca_mint_template(struct ca *ca, WOLFSSL_X509 *tmpl, const char *eku, int64_t not_before, int64_t not_after,
		     struct leaf_cert *out, char *err, size_t err_size);

#endif
