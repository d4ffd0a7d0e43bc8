/* The key and CSR the agent sends to a cluster CA (SPEC.md §4): P-256
 * generated here (the key never leaves the node), PKCS#8; the CSR signed
 * with SHA-256, an empty subject, the SPIFFE id as its only (URI) SAN. */
#include "ztunnel/identity.h"
#include "x509_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#define DER_MAX 4096

int csr_create(const struct spiffe_id *id, char **csr_pem, char **key_pem, char *err, size_t err_size)
{
	char uri[800];
	unsigned char der[DER_MAX], *kder = NULL;
	WOLFSSL_X509 *tmpl = NULL;
	ecc_key key;
	WC_RNG rng;
	Cert req;
	word32 ksz = 0;
	int r = 0, sz, tsz = 0;
	bool rng_ok = wc_InitRng(&rng) == 0;

	*csr_pem = *key_pem = NULL;
	wc_ecc_init(&key);
#define FAIL(code, ...)                                            \
	do {                                                       \
		snprintf(err, err_size, __VA_ARGS__);              \
		r = (code);                                        \
		goto out;                                          \
	} while (0)
	if (!rng_ok)
		FAIL(-EIO, "cannot seed the random generator");
	if (spiffe_format(id, uri, sizeof(uri)) < 0)
		FAIL(-EINVAL, "identity too long");
	if (!(tmpl = x509_san_template(uri, (int64_t)time(NULL), 60)))
		FAIL(-EIO, "cannot build the SAN template");
	const unsigned char *tder = wolfSSL_X509_get_der(tmpl, &tsz);
	if (!tder || wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1) != 0)
		FAIL(-EIO, "cannot generate a P-256 key");
	wc_InitCert(&req);
	req.version = 0; /* PKCS#10 v1 (wc_InitCert sets 2, an X.509 v3 certificate's) */
	req.sigType = CTC_SHA256wECDSA;
	/* The subject stays empty: the identity is the SAN, which is then
	 * critical (RFC 5280 4.2.1.6). */
	req.altNamesCrit = 1;
	if ((sz = wc_SetAltNamesBuffer(&req, tder, tsz)) != 0)
		FAIL(-EIO, "cannot set the subject alternative name (wolfSSL error %d)", sz);
	if ((sz = wc_MakeCertReq_ex(&req, der, sizeof(der), ECC_TYPE, &key)) < 0 ||
	    (sz = wc_SignCert_ex(req.bodySz, req.sigType, der, sizeof(der), ECC_TYPE, &key, &rng)) < 0)
		FAIL(-EIO, "cannot make the CSR (wolfSSL error %d)", sz);
	if (wc_EccPrivateKeyToPKCS8(&key, NULL, &ksz) != LENGTH_ONLY_E || !(kder = malloc(ksz)) ||
	    wc_EccPrivateKeyToPKCS8(&key, kder, &ksz) <= 0)
		FAIL(-EIO, "cannot encode the private key");
	*csr_pem = x509_to_pem(der, sz, CERTREQ_TYPE);
	*key_pem = x509_to_pem(kder, (int)ksz, PKCS8_PRIVATEKEY_TYPE);
	if (!*csr_pem || !*key_pem)
		FAIL(-ENOMEM, "out of memory");
#undef FAIL
out:
	if (kder) {
		memset(kder, 0, ksz);
		free(kder);
	}
	if (r < 0) {
		free(*csr_pem);
		if (*key_pem)
			memset(*key_pem, 0, strlen(*key_pem));
		free(*key_pem);
		*csr_pem = *key_pem = NULL;
	}
	wolfSSL_X509_free(tmpl);
	wc_ecc_free(&key);
	if (rng_ok)
		wc_FreeRng(&rng);
	return r;
}
