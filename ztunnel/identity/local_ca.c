/* The local CA: mints leaf certificates with wolfSSL's certificate API.
 * wolfcrypt's Cert takes the SAN and validity as DER copied from another
 * certificate, so a throwaway template made with wolfSSL's X509 layer
 * (which encodes a URI SAN and second-precise dates) supplies both: no
 * ASN.1 is written by hand. */
#include "ztunnel/identity.h"
#include "x509_int.h"
#include "ztunnel/trust.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/ec.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/x509.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DER_MAX X509_DER_MAX

#define FAIL(code, ...)                                    \
	do {                                               \
		if (err)                                   \
			snprintf(err, err_size, __VA_ARGS__); \
		r = (code);                                \
		goto out;                                  \
	} while (0)

static int random_serial(WC_RNG *rng, Cert *cert)
{
	cert->serialSz = 16;
	if (wc_RNG_GenerateBlock(rng, cert->serial, (word32)cert->serialSz) != 0)
		return -EIO;
	cert->serial[0] &= 0x7f; /* positive INTEGER */
	cert->serial[0] |= 0x01; /* and 16 bytes long */
	return 0;
}

/* A CA certificate for a new key: self-signed (parent NULL) or signed by
 * parent, whose chain it then carries. */
static int make_ca(struct ca *parent, const char *trust_domain, int days, char **cert_pem,
		   char **key_pem)
{
	Cert cert;
	ecc_key key;
	WC_RNG rng;
	unsigned char der[DER_MAX], kder[512];
	int r = -EIO, sz;
	char *pem = NULL;

	*cert_pem = *key_pem = NULL;
	if (wc_InitRng(&rng) != 0)
		return -EIO;
	if (wc_ecc_init(&key) != 0 || wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0)
		goto out_rng;
	wc_InitCert(&cert);
	cert.sigType = CTC_SHA256wECDSA;
	cert.isCA = 1;
	cert.daysValid = days > 0 ? days : 1;
	snprintf(cert.subject.org, sizeof(cert.subject.org), "%s", trust_domain);
	snprintf(cert.subject.commonName, sizeof(cert.subject.commonName), "%s",
		 parent ? "ztunnel intermediate CA" : "ztunnel local root CA");
	if (random_serial(&rng, &cert) < 0 || wc_SetKeyUsage(&cert, "keyCertSign,cRLSign") != 0 ||
	    wc_SetSubjectKeyIdFromPublicKey_ex(&cert, ECC_TYPE, &key) != 0)
		goto out;
	if (parent && (wc_SetIssuerBuffer(&cert, parent->der, parent->der_sz) != 0 ||
		       wc_SetAuthKeyIdFromCert(&cert, parent->der, parent->der_sz) != 0))
		goto out;
	if ((sz = wc_MakeCert_ex(&cert, der, sizeof(der), ECC_TYPE, &key, &rng)) < 0 ||
	    (sz = wc_SignCert_ex(cert.bodySz, cert.sigType, der, sizeof(der), ECC_TYPE,
				 parent ? &parent->key : &key, &rng)) < 0)
		goto out;
	pem = x509_to_pem(der, sz, CERT_TYPE);
	if (pem && parent) {
		if (asprintf(cert_pem, "%s%s", pem, parent->chain_pem) < 0)
			*cert_pem = NULL;
		free(pem);
	} else {
		*cert_pem = pem;
	}
	int ksz = wc_EccKeyToDer(&key, kder, sizeof(kder));
	*key_pem = ksz > 0 ? x509_to_pem(kder, ksz, ECC_PRIVATEKEY_TYPE) : NULL;
	r = *cert_pem && *key_pem ? 0 : -EIO;
out:
	wc_ecc_free(&key);
out_rng:
	wc_FreeRng(&rng);
	if (r < 0) {
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
	}
	return r;
}

int ca_create_root(const char *trust_domain, int days, char **cert_pem, char **key_pem)
{
	return make_ca(NULL, trust_domain, days, cert_pem, key_pem);
}

int ca_create_intermediate(struct ca *parent, const char *trust_domain, int days, char **cert_pem,
			   char **key_pem)
{
	return make_ca(parent, trust_domain, days, cert_pem, key_pem);
}

/* SEC1 ("EC PRIVATE KEY") or unencrypted PKCS#8 ("PRIVATE KEY") PEM ->
 * P-256 ecc_key, as openssl, cert-manager and Istio's cacerts Secret write
 * them. wc_EccPrivateKeyDecode skips a PKCS#8 header itself; PKCS#8 keeps
 * the curve in its AlgorithmIdentifier and may omit it from the inner key,
 * where wolfSSL then takes the curve from the key size: checked below.
 * NULL on success, else why the key is refused. */
static const char *load_key(const char *pem, ecc_key *key)
{
	unsigned char der[DER_MAX];
	word32 idx = 0;

	if (strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
		return "an encrypted PKCS#8 key; decrypt it first (openssl pkey -in KEY -out KEY.pem)";
	if (strstr(pem, "-----BEGIN RSA PRIVATE KEY-----"))
		return "an RSA key; the CA key must be ECDSA P-256";
	int sz = wc_KeyPemToDer((const unsigned char *)pem, (int)strlen(pem), der, sizeof(der), NULL);
	if (sz <= 0)
		return "not a PEM private key (SEC1 \"EC PRIVATE KEY\" or PKCS#8 \"PRIVATE KEY\")";
	if (wc_EccPrivateKeyDecode(der, &idx, key, (word32)sz) != 0)
		return "not an EC private key (RSA and Ed25519 keys are refused: the CA key must be ECDSA P-256)";
	if (!key->dp || key->dp->id != ECC_SECP256R1)
		return "an EC key on a curve other than P-256 (only P-256 is supported)";
	return NULL;
}

int ca_load(struct ca **out, const char *cert_pem, const char *key_pem, int64_t now, char *err,
	    size_t err_size)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	WOLFSSL_X509 *x = NULL;
	unsigned char pub_cert[160], pub_key[160];
	word32 n_cert = sizeof(pub_cert), n_key = sizeof(pub_key);
	ecc_key cert_key;
	int r = 0;

	*out = NULL;
	if (!ca)
		return -ENOMEM;
	wc_ecc_init(&ca->key);
	wc_ecc_init(&cert_key);
	if (wc_InitRng(&ca->rng) != 0)
		FAIL(-EIO, "cannot initialise the random generator");
	ca->der_sz = wc_CertPemToDer((const unsigned char *)cert_pem, (int)strlen(cert_pem), ca->der,
				     sizeof(ca->der), CERT_TYPE);
	if (ca->der_sz <= 0)
		FAIL(-EINVAL, "CA certificate: not a PEM certificate");
	x = wolfSSL_X509_load_certificate_buffer(ca->der, ca->der_sz, WOLFSSL_FILETYPE_ASN1);
	if (!x)
		FAIL(-EINVAL, "CA certificate: cannot be parsed");
	if (!wolfSSL_X509_get_isCA(x))
		FAIL(-EINVAL, "CA certificate: not a CA (basicConstraints CA:FALSE)");
	time_t t = (time_t)now;
	if (wolfSSL_X509_cmp_time(wolfSSL_X509_get_notAfter(x), &t) <= 0)
		FAIL(-EKEYEXPIRED, "CA certificate: expired");
	if (wolfSSL_X509_cmp_time(wolfSSL_X509_get_notBefore(x), &t) > 0)
		FAIL(-EKEYEXPIRED, "CA certificate: not valid yet");
	const char *bad_key = load_key(key_pem, &ca->key);
	if (bad_key)
		FAIL(-EINVAL, "CA key: %s", bad_key);
	/* The key must be the one the certificate certifies. */
	word32 idx = 0;
	WOLFSSL_EVP_PKEY *pk = wolfSSL_X509_get_pubkey(x);
	if (!pk || wc_EccPublicKeyDecode((const byte *)pk->pkey.ptr, &idx, &cert_key,
					 (word32)pk->pkey_sz) != 0 ||
	    wc_ecc_export_x963(&cert_key, pub_cert, &n_cert) != 0 ||
	    wc_ecc_export_x963(&ca->key, pub_key, &n_key) != 0 || n_cert != n_key ||
	    memcmp(pub_cert, pub_key, n_key)) {
		wolfSSL_EVP_PKEY_free(pk);
		FAIL(-EINVAL, "CA key does not match the CA certificate");
	}
	wolfSSL_EVP_PKEY_free(pk);
	if (!(ca->chain_pem = strdup(cert_pem)))
		FAIL(-ENOMEM, "out of memory");
	int64_t nb;
	char serial[80];
	if (cert_validity(cert_pem, &nb, &ca->not_after, serial, sizeof(serial)) < 0)
		FAIL(-EINVAL, "CA certificate: cannot read its validity");
	*out = ca;
	ca = NULL;
out:
	wolfSSL_X509_free(x);
	wc_ecc_free(&cert_key);
	if (ca)
		ca_free(ca);
	return r;
}

void ca_free(struct ca *ca)
{
	if (!ca)
		return;
	wc_ecc_free(&ca->key);
	wc_FreeRng(&ca->rng);
	free(ca->chain_pem);
	free(ca);
}

int ca_issue(struct ca *ca, ecc_key *subject_key, WOLFSSL_X509 *tmpl, const char *eku, char **pem,
	     char *serial, size_t serial_size, char *err, size_t err_size)
{
	unsigned char der[DER_MAX];
	Cert cert;
	int r = 0, sz, tsz = 0;
	const unsigned char *tder = wolfSSL_X509_get_der(tmpl, &tsz);

	*pem = NULL;
	wc_InitCert(&cert);
	cert.sigType = CTC_SHA256wECDSA;
	cert.isCA = 0;
	/* Identity is in the SAN only; with an empty subject it is critical
	 * (RFC 5280 4.2.1.6). */
	cert.altNamesCrit = 1;
	if (random_serial(&ca->rng, &cert) < 0 || !tder)
		FAIL(-EIO, "cannot draw a serial number");
#define FILL(call, what)                                                        \
	if ((sz = (call)) != 0)                                                 \
		FAIL(-EIO, "cannot set the %s (wolfSSL error %d)", what, sz);
	FILL(wc_SetAltNamesBuffer(&cert, tder, tsz), "subject alternative name")
	FILL(wc_SetDatesBuffer(&cert, tder, tsz), "validity")
	FILL(wc_SetIssuerBuffer(&cert, ca->der, ca->der_sz), "issuer")
	FILL(wc_SetAuthKeyIdFromCert(&cert, ca->der, ca->der_sz), "authority key id")
	FILL(wc_SetSubjectKeyIdFromPublicKey_ex(&cert, ECC_TYPE, subject_key), "subject key id")
	FILL(wc_SetKeyUsage(&cert, "digitalSignature,keyEncipherment"), "key usage")
	FILL(wc_SetExtKeyUsage(&cert, eku), "extended key usage")
#undef FILL
	if ((sz = wc_MakeCert_ex(&cert, der, sizeof(der), ECC_TYPE, subject_key, &ca->rng)) < 0 ||
	    (sz = wc_SignCert_ex(cert.bodySz, cert.sigType, der, sizeof(der), ECC_TYPE, &ca->key,
				 &ca->rng)) < 0)
		FAIL(-EIO, "cannot sign the certificate (wolfSSL error %d)", sz);
	if (!(*pem = x509_to_pem(der, sz, CERT_TYPE)))
		FAIL(-ENOMEM, "out of memory");
	serial[0] = '\0';
	for (int i = 0; i < cert.serialSz && (size_t)(2 * i + 2) < serial_size; i++)
		snprintf(serial + 2 * i, 3, "%02x", cert.serial[i]);
out:
	return r;
}

int ca_mint_template(struct ca *ca, WOLFSSL_X509 *tmpl, const char *eku, int64_t not_before, int64_t not_after,
		     struct leaf_cert *out, char *err, size_t err_size)
{
	unsigned char *kder = NULL;
	ecc_key key;
	int r = 0;
	word32 ksz = 0;

	memset(out, 0, sizeof(*out));
	wc_ecc_init(&key);
	if (wc_ecc_make_key_ex(&ca->rng, 32, &key, ECC_SECP256R1) != 0)
		FAIL(-EIO, "cannot generate a P-256 key");
	if ((r = ca_issue(ca, &key, tmpl, eku, &out->cert_pem, out->serial, sizeof(out->serial), err, err_size)) < 0)
		goto out;
	if (wc_EccPrivateKeyToPKCS8(&key, NULL, &ksz) != LENGTH_ONLY_E || !(kder = malloc(ksz)) ||
	    wc_EccPrivateKeyToPKCS8(&key, kder, &ksz) <= 0)
		FAIL(-EIO, "cannot encode the private key");
	out->key_pem = x509_to_pem(kder, (int)ksz, PKCS8_PRIVATEKEY_TYPE);
	if (!out->key_pem || asprintf(&out->chain_pem, "%s%s", out->cert_pem, ca->chain_pem) < 0) {
		out->chain_pem = NULL;
		FAIL(-ENOMEM, "out of memory");
	}
	out->not_before = not_before;
	out->not_after = not_after;
out:
	if (kder) {
		memset(kder, 0, ksz);
		free(kder);
	}
	wc_ecc_free(&key);
	if (r < 0)
		leaf_cert_free(out);
	return r;
}

int ca_mint(struct ca *ca, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
	    struct leaf_cert *out, char *err, size_t err_size)
{
	char uri[800];
	WOLFSSL_X509 *tmpl = NULL;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (spiffe_format(id, uri, sizeof(uri)) < 0)
		FAIL(-EINVAL, "identity too long");
	if (!(tmpl = x509_san_template(uri, now, lifetime_s)))
		FAIL(-EIO, "cannot build the SAN template");
	r = ca_mint_template(ca, tmpl, "serverAuth,clientAuth", now, now + lifetime_s, out, err, err_size);
out:
	wolfSSL_X509_free(tmpl);
	return r;
}

void leaf_cert_free(struct leaf_cert *l)
{
	if (l->key_pem)
		memset(l->key_pem, 0, strlen(l->key_pem));
	free(l->cert_pem);
	free(l->chain_pem);
	free(l->key_pem);
	free(l->roots_pem);
	memset(l, 0, sizeof(*l));
}
