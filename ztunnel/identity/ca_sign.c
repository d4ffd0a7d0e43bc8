/* What ztunnel-ca signs: a caller's CSR (its key stays on its node; the
 * identity put in the leaf is the one the CA authorized, never one the
 * CSR merely names), and the CA's own TLS serving certificate. */
#include "ztunnel/identity.h"
#include "ztunnel/trust.h"
#include "x509_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Clocks of nodes and CA differ a little: a leaf valid from a moment ago
 * is usable at once everywhere. Up to a minute, less for short lifetimes
 * (the half-life, when it is renewed, must stay ahead). */
static int64_t backdate(int64_t lifetime_s)
{
	return lifetime_s / 8 < 60 ? lifetime_s / 8 : 60;
}

/* No leaf outlives the certificate that signs it. */
static int64_t capped(const struct ca *ca, int64_t now, int64_t lifetime_s)
{
	return now + lifetime_s > ca->not_after ? ca->not_after - now : lifetime_s;
}

struct san_check {
	const char *want;
	int other;
};

static int other_uri(const struct spiffe_id *id, const char *uri, void *ctx)
{
	struct san_check *c = ctx;

	(void)id;
	c->other += strcmp(uri, c->want) != 0;
	return 0;
}

int ca_sign_csr(struct ca *ca, const char *csr_pem, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
		char **chain_pem, char *serial, size_t serial_size, char *err, size_t err_size)
{
	char uri[800], *leaf = NULL;
	WOLFSSL_X509 *req = NULL, *tmpl = NULL;
	WOLFSSL_EVP_PKEY *pk = NULL;
	ecc_key key;
	word32 idx = 0;
	int r = -EINVAL;

	*chain_pem = NULL;
	wc_ecc_init(&key);
	if (spiffe_format(id, uri, sizeof(uri)) < 0) {
		snprintf(err, err_size, "identity too long");
		goto out;
	}
	if ((lifetime_s = capped(ca, now, lifetime_s)) <= 0) {
		snprintf(err, err_size, "the CA certificate has expired");
		r = -EKEYEXPIRED;
		goto out;
	}
	req = wolfSSL_X509_REQ_load_certificate_buffer((const unsigned char *)csr_pem, (int)strlen(csr_pem),
							WOLFSSL_FILETYPE_PEM);
	if (!req) {
		snprintf(err, err_size, "the CSR is not a PEM certificate request");
		goto out;
	}
	/* Proof that the caller holds the key it asks a certificate for. */
	if (!(pk = wolfSSL_X509_get_pubkey(req)) || wolfSSL_X509_REQ_verify(req, pk) != WOLFSSL_SUCCESS) {
		snprintf(err, err_size, "the CSR's signature does not verify with its own key");
		goto out;
	}
	if (wc_EccPublicKeyDecode((const byte *)pk->pkey.ptr, &idx, &key, (word32)pk->pkey_sz) != 0 || !key.dp ||
	    key.dp->id != ECC_SECP256R1) {
		snprintf(err, err_size, "the CSR's key is not ECDSA P-256");
		goto out;
	}
	struct san_check c = { uri, 0 };
	cert_for_each_spiffe_san(req, other_uri, &c);
	if (c.other) {
		snprintf(err, err_size, "the CSR names another identity than %s", uri);
		r = -EPERM;
		goto out;
	}
	if (!(tmpl = x509_san_template(uri, now - backdate(lifetime_s), lifetime_s + backdate(lifetime_s)))) {
		snprintf(err, err_size, "cannot build the SAN template");
		r = -EIO;
		goto out;
	}
	if ((r = ca_issue(ca, &key, tmpl, "serverAuth,clientAuth", &leaf, serial, serial_size, err, err_size)) < 0)
		goto out;
	if (asprintf(chain_pem, "%s%s", leaf, ca->chain_pem) < 0) {
		*chain_pem = NULL;
		r = -ENOMEM;
	}
out:
	free(leaf);
	wolfSSL_X509_free(tmpl);
	wolfSSL_EVP_PKEY_free(pk);
	wolfSSL_X509_free(req);
	wc_ecc_free(&key);
	return r;
}

int ca_mint_server(struct ca *ca, const char *const *dns, size_t n, int64_t now, int64_t lifetime_s,
		   struct leaf_cert *out, char *err, size_t err_size)
{
	if ((lifetime_s = capped(ca, now, lifetime_s)) <= 0) {
		memset(out, 0, sizeof(*out));
		snprintf(err, err_size, "the CA certificate has expired");
		return -EKEYEXPIRED;
	}
	int64_t back = backdate(lifetime_s);
	WOLFSSL_X509 *tmpl = x509_names_template(dns, n, ASN_DNS_TYPE, now - back, lifetime_s + back);
	int r;

	memset(out, 0, sizeof(*out));
	if (!tmpl) {
		snprintf(err, err_size, "cannot build a certificate for those DNS names");
		return -EINVAL;
	}
	r = ca_mint_template(ca, tmpl, "serverAuth", now - back, now + lifetime_s, out, err, err_size);
	wolfSSL_X509_free(tmpl);
	return r;
}

const char *ca_chain(const struct ca *ca)
{
	return ca->chain_pem;
}

int64_t ca_not_after(const struct ca *ca)
{
	return ca->not_after;
}
