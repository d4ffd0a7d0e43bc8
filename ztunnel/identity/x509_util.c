/* Shared by the local CA and the CSR maker: PEM armour through wolfSSL,
 * and a throwaway certificate that carries a URI SAN (and dates) for
 * wolfcrypt's Cert API to copy: no ASN.1 is written by hand. */
#include "x509_int.h"

#include <stdlib.h>

#define PEM_MAX 8192

char *x509_to_pem(const unsigned char *der, int sz, int type)
{
	char *pem = malloc(PEM_MAX);
	int n = pem ? wc_DerToPem(der, (word32)sz, (unsigned char *)pem, PEM_MAX - 1, type) : -1;

	if (n <= 0) {
		free(pem);
		return NULL;
	}
	pem[n] = '\0';
	return pem;
}

/* Template carrying the SANs and [now, now + lifetime]; self-signed by a
 * throwaway key, never published. Returns its DER (owned by x). */
WOLFSSL_X509 *x509_names_template(const char *const *names, size_t n, int type, int64_t now, int64_t lifetime_s)
{
	WOLFSSL_X509 *x = wolfSSL_X509_new();
	WOLFSSL_EC_KEY *ec = wolfSSL_EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	WOLFSSL_EVP_PKEY *k = wolfSSL_EVP_PKEY_new();
	int ok = x && ec && k && wolfSSL_EC_KEY_generate_key(ec) == 1 &&
		 wolfSSL_EVP_PKEY_assign_EC_KEY(k, ec) == 1;

	if (!ok && ec && k)
		wolfSSL_EC_KEY_free(ec);
	ok = ok && wolfSSL_X509_set_version(x, 2) == 1 && wolfSSL_X509_set_pubkey(x, k) == 1 &&
	     wolfSSL_ASN1_TIME_adj(wolfSSL_X509_get_notBefore(x), (time_t)now, 0, 0) &&
	     wolfSSL_ASN1_TIME_adj(wolfSSL_X509_get_notAfter(x), (time_t)(now + lifetime_s), 0, 0);
	for (size_t i = 0; ok && i < n; i++)
		ok = wolfSSL_X509_add_altname(x, names[i], type) == 1;
	ok = ok && wolfSSL_X509_sign(x, k, wolfSSL_EVP_sha256()) > 0;
	wolfSSL_EVP_PKEY_free(k);
	if (!ok) {
		wolfSSL_X509_free(x);
		return NULL;
	}
	return x;
}

WOLFSSL_X509 *x509_san_template(const char *uri, int64_t now, int64_t lifetime_s)
{
	return x509_names_template(&uri, 1, ASN_URI_TYPE, now, lifetime_s);
}
