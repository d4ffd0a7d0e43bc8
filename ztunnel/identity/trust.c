#include "ztunnel/trust.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/log.h"

/* Every certificate of a PEM text, in order, through wolfSSL's reader. */
static int for_each_pem_cert(const char *pem, int (*fn)(WOLFSSL_X509 *x, void *ctx), void *ctx)
{
	WOLFSSL_BIO *bio = wolfSSL_BIO_new_mem_buf(pem, (int)strlen(pem));
	WOLFSSL_X509 *x;
	int n = 0, r = 0;

	if (!bio)
		return -ENOMEM;
	while (r == 0 && (x = wolfSSL_PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		r = fn(x, ctx);
		wolfSSL_X509_free(x);
		n++;
	}
	wolfSSL_BIO_free(bio);
	return r < 0 ? r : n;
}

/* Appends x's DER to a list (a bundle, or a parsed chain). */
static int bundle_add(struct trust_bundle *tb, WOLFSSL_X509 *x)
{
	unsigned char *der = NULL;
	int sz = wolfSSL_i2d_X509(x, &der);

	if (sz <= 0)
		return -EBADMSG;
	unsigned char **nd = realloc(tb->der, (tb->n + 1) * sizeof(*nd));
	int *ns = nd ? realloc(tb->der_sz, (tb->n + 1) * sizeof(*ns)) : NULL;
	if (nd)
		tb->der = nd;
	if (!ns) {
		XFREE(der, NULL, DYNAMIC_TYPE_OPENSSL);
		return -ENOMEM;
	}
	tb->der_sz = ns;
	tb->der[tb->n] = der;
	tb->der_sz[tb->n] = sz;
	tb->n++;
	return 0;
}

static int keep_root(WOLFSSL_X509 *x, void *ctx)
{
	if (!wolfSSL_X509_get_isCA(x)) {
		log_warn("trust bundle: skipping a certificate that is not a usable CA");
		return 0;
	}
	int r = bundle_add(ctx, x);
	return r == -EBADMSG ? 0 : r;
}

static int keep_any(WOLFSSL_X509 *x, void *ctx)
{
	return bundle_add(ctx, x);
}

int trust_bundle_load(struct trust_bundle *tb, const char *pem)
{
	memset(tb, 0, sizeof(*tb));
	int r = for_each_pem_cert(pem, keep_root, tb);
	return r < 0 ? r : (int)tb->n;
}

void trust_bundle_free(struct trust_bundle *tb)
{
	for (uint32_t i = 0; i < tb->n; i++)
		XFREE(tb->der[i], NULL, DYNAMIC_TYPE_OPENSSL);
	free(tb->der);
	free(tb->der_sz);
	memset(tb, 0, sizeof(*tb));
}

int trust_verify_chain(const struct trust_bundle *tb, const char *chain_pem, char *err, size_t err_size)
{
	WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
	struct trust_bundle chain = { 0 };
	int r = 0;

	if (!cm)
		return -ENOMEM;
	for (uint32_t i = 0; i < tb->n; i++)
		wolfSSL_CertManagerLoadCABuffer(cm, tb->der[i], tb->der_sz[i], WOLFSSL_FILETYPE_ASN1);
	if (for_each_pem_cert(chain_pem, keep_any, &chain) < 0 || !chain.n) {
		snprintf(err, err_size, "no certificate in the chain");
		r = -EBADMSG;
		goto out;
	}
	/* Intermediates (chain[1..]) join only once they verify against what is
	 * trusted - a chain never brings its own anchor; a few passes settle
	 * intermediates given in any order (chains up to 4 deep). */
	for (int pass = 0; pass < 4; pass++)
		for (uint32_t i = 1; i < chain.n; i++)
			if (wolfSSL_CertManagerVerifyBuffer(cm, chain.der[i], chain.der_sz[i],
							    WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS)
				wolfSSL_CertManagerLoadCABuffer(cm, chain.der[i], chain.der_sz[i],
								WOLFSSL_FILETYPE_ASN1);
	int v = wolfSSL_CertManagerVerifyBuffer(cm, chain.der[0], chain.der_sz[0], WOLFSSL_FILETYPE_ASN1);
	if (v != WOLFSSL_SUCCESS) {
		snprintf(err, err_size, "chain does not verify against the trust bundle: %s",
			 wolfSSL_ERR_reason_error_string((unsigned long)v));
		r = -EKEYREJECTED;
	}
out:
	trust_bundle_free(&chain);
	wolfSSL_CertManagerFree(cm);
	return r;
}

/* The leaf (first certificate) of pem, re-encoded by wolfSSL. */
char *cert_leaf_pem(const char *pem)
{
	WOLFSSL_BIO *in = wolfSSL_BIO_new_mem_buf(pem, (int)strlen(pem));
	WOLFSSL_X509 *x = in ? wolfSSL_PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
	WOLFSSL_BIO *out = x ? wolfSSL_BIO_new(wolfSSL_BIO_s_mem()) : NULL;
	char *leaf = NULL, *data;
	long len;

	if (out && wolfSSL_PEM_write_bio_X509(out, x) == WOLFSSL_SUCCESS &&
	    (len = wolfSSL_BIO_get_mem_data(out, &data)) > 0)
		leaf = strndup(data, (size_t)len);
	wolfSSL_BIO_free(out);
	wolfSSL_X509_free(x);
	wolfSSL_BIO_free(in);
	return leaf;
}

static WOLFSSL_X509 *first_cert(const char *pem)
{
	WOLFSSL_BIO *bio = wolfSSL_BIO_new_mem_buf(pem, (int)strlen(pem));
	WOLFSSL_X509 *x = bio ? wolfSSL_PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	wolfSSL_BIO_free(bio);
	return x;
}

int cert_for_each_spiffe_san(WOLFSSL_X509 *x, int (*fn)(const struct spiffe_id *id, const char *uri, void *ctx),
			     void *ctx)
{
	WOLFSSL_STACK *names = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int r = 0;

	for (int i = 0; r == 0 && names && i < wolfSSL_sk_GENERAL_NAME_num(names); i++) {
		WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(names, i);
		if (!g || g->type != GEN_URI || !g->d.uniformResourceIdentifier)
			continue;
		const char *uri = (const char *)wolfSSL_ASN1_STRING_data(g->d.uniformResourceIdentifier);
		int len = wolfSSL_ASN1_STRING_length(g->d.uniformResourceIdentifier);
		struct spiffe_id id;
		/* An embedded NUL would let the parser see less than was signed. */
		if (!uri || len <= 0 || strnlen(uri, (size_t)len + 1) != (size_t)len)
			continue;
		if (spiffe_parse(uri, &id) == 0)
			r = fn(&id, uri, ctx);
	}
	wolfSSL_sk_GENERAL_NAME_pop_free(names, wolfSSL_GENERAL_NAME_free);
	return r;
}

const char *cert_usage_error(WOLFSSL_X509 *x, bool server)
{
	unsigned int ku = wolfSSL_X509_get_key_usage(x);

	/* TLS 1.3 signs the handshake with the leaf's key. */
	if (ku != (unsigned int)-1 && !(ku & KU_DIGITAL_SIGNATURE))
		return "its key usage does not allow digitalSignature";
	/* As webpki (Istio's rustls) checks it: required if present. */
	if (wolfSSL_X509_get_ext_by_NID(x, NID_ext_key_usage, -1) >= 0 &&
	    !(wolfSSL_X509_get_extended_key_usage(x) & (server ? XKU_SSL_SERVER : XKU_SSL_CLIENT)))
		return server ? "its extended key usage lacks serverAuth" : "its extended key usage lacks clientAuth";
	return NULL;
}

static int take_first(const struct spiffe_id *id, const char *uri, void *ctx)
{
	(void)uri;
	*(struct spiffe_id *)ctx = *id;
	return 1;
}

int cert_spiffe_id(const char *pem, struct spiffe_id *out)
{
	WOLFSSL_X509 *x = first_cert(pem);

	if (!x)
		return -EBADMSG;
	/* Non-SPIFFE URIs and other SAN types are skipped (SPEC.md §2.1). */
	int r = cert_for_each_spiffe_san(x, take_first, out) ? 0 : -ENOENT;
	wolfSSL_X509_free(x);
	return r;
}

static int64_t asn1_to_unix(const WOLFSSL_ASN1_TIME *t)
{
	struct tm tm;

	if (!t || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS)
		return -1;
	return (int64_t)timegm(&tm);
}

static int validity_of(WOLFSSL_X509 *x, int64_t *not_before, int64_t *not_after, char *serial, size_t serial_size)
{
	unsigned char sn[64];
	int sn_sz = sizeof(sn);

	*not_before = asn1_to_unix(wolfSSL_X509_get_notBefore(x));
	*not_after = asn1_to_unix(wolfSSL_X509_get_notAfter(x));
	if (serial && serial_size) {
		serial[0] = '\0';
		if (wolfSSL_X509_get_serial_number(x, sn, &sn_sz) == WOLFSSL_SUCCESS)
			for (int i = 0; i < sn_sz && (size_t)(2 * i + 2) < serial_size; i++)
				snprintf(serial + 2 * i, 3, "%02x", sn[i]);
	}
	return *not_before < 0 || *not_after < 0 ? -EBADMSG : 0;
}

int cert_validity(const char *pem, int64_t *not_before, int64_t *not_after, char *serial, size_t serial_size)
{
	WOLFSSL_X509 *x = first_cert(pem);

	if (!x)
		return -EBADMSG;
	int r = validity_of(x, not_before, not_after, serial, serial_size);
	wolfSSL_X509_free(x);
	return r;
}

struct summary_walk {
	int (*fn)(const struct cert_summary *c, void *ctx);
	void *ctx;
};

static int summarize(WOLFSSL_X509 *x, void *ctx)
{
	struct summary_walk *w = ctx;
	struct cert_summary c = { 0 };
	WOLFSSL_BIO *out = wolfSSL_BIO_new(wolfSSL_BIO_s_mem());
	char *data;
	long len;
	int r = -ENOMEM;

	if (out && wolfSSL_PEM_write_bio_X509(out, x) == WOLFSSL_SUCCESS &&
	    (len = wolfSSL_BIO_get_mem_data(out, &data)) > 0) {
		c.pem = data;
		c.pem_len = (size_t)len;
		validity_of(x, &c.not_before, &c.not_after, c.serial, sizeof(c.serial));
		r = w->fn(&c, w->ctx);
	}
	wolfSSL_BIO_free(out);
	return r;
}

int cert_for_each_in_pem(const char *pem, int (*fn)(const struct cert_summary *c, void *ctx), void *ctx)
{
	struct summary_walk w = { fn, ctx };

	return pem ? for_each_pem_cert(pem, summarize, &w) : 0;
}

int cert_issuer(const char *pem, char *buf, size_t size)
{
	WOLFSSL_X509 *x = first_cert(pem);
	char *name = x ? wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_issuer_name(x), buf, (int)size) : NULL;

	wolfSSL_X509_free(x);
	return name ? 0 : -EBADMSG;
}

int cert_key_matches(const char *cert_pem, const char *key_pem)
{
	WOLFSSL_X509 *x = first_cert(cert_pem);
	WOLFSSL_BIO *bio = wolfSSL_BIO_new_mem_buf(key_pem, (int)strlen(key_pem));
	WOLFSSL_EVP_PKEY *k = bio ? wolfSSL_PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	int ok = x && k && wolfSSL_X509_check_private_key(x, k) == WOLFSSL_SUCCESS;

	wolfSSL_EVP_PKEY_free(k);
	wolfSSL_BIO_free(bio);
	wolfSSL_X509_free(x);
	return ok;
}
