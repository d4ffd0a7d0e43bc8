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

/* DER -> PEM of type (CERT_TYPE, PKCS8_PRIVATEKEY_TYPE, CERTREQ_TYPE); NULL on failure. */
char *x509_to_pem(const unsigned char *der, int sz, int type);
/* A self-signed throwaway certificate with uri as its only SAN and
 * [now, now + lifetime_s]: wolfcrypt copies both from its DER. */
WOLFSSL_X509 *x509_san_template(const char *uri, int64_t now, int64_t lifetime_s);

#endif
