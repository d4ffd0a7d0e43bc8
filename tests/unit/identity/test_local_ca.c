/* Local CA: minting checked with wolfSSL's certificate manager (chain and
 * purpose), lifetimes with an injected clock, and every bad CA input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/identity.h"

static char *root_cert, *root_key;

static int make_root(void **state)
{
	(void)state;
	wolfSSL_Init();
	return ca_create_root("cluster.local", 10, &root_cert, &root_key);
}

static int free_root(void **state)
{
	(void)state;
	free(root_cert);
	free(root_key);
	return 0;
}

static void minted_leaf_verifies_against_the_root(void **state)
{
	(void)state;
	struct ca *ca;
	struct leaf_cert leaf;
	struct spiffe_id id;
	char err[256];
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(ca_load(&ca, root_cert, root_key, now, err, sizeof(err)), 0);
	assert_int_equal(spiffe_parse("spiffe://cluster.local/ns/shop/sa/web", &id), 0);
	assert_int_equal(ca_mint(ca, &id, now, 86400, &leaf, err, sizeof(err)), 0);
	assert_int_equal(leaf.not_after - leaf.not_before, 86400);
	assert_int_equal(strlen(leaf.serial), 32);
	assert_non_null(strstr(leaf.key_pem, "BEGIN PRIVATE KEY")); /* PKCS#8 */
	/* chain = leaf + issuing CA */
	assert_ptr_equal(strstr(leaf.chain_pem, leaf.cert_pem), leaf.chain_pem);
	assert_non_null(strstr(leaf.chain_pem + strlen(leaf.cert_pem), "BEGIN CERTIFICATE"));

	WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
	assert_int_equal(wolfSSL_CertManagerLoadCABuffer(cm, (const unsigned char *)root_cert,
							 (long)strlen(root_cert), WOLFSSL_FILETYPE_PEM),
			 WOLFSSL_SUCCESS);
	assert_int_equal(wolfSSL_CertManagerVerifyBuffer(cm, (const unsigned char *)leaf.cert_pem,
							 (long)strlen(leaf.cert_pem), WOLFSSL_FILETYPE_PEM),
			 WOLFSSL_SUCCESS);
	wolfSSL_CertManagerFree(cm);

	WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer((const unsigned char *)leaf.cert_pem,
							       (int)strlen(leaf.cert_pem),
							       WOLFSSL_FILETYPE_PEM);
	assert_non_null(x);
	assert_false(wolfSSL_X509_get_isCA(x));
	char *uri = wolfSSL_X509_get_next_altname(x);
	assert_non_null(uri);
	assert_string_equal(uri, "spiffe://cluster.local/ns/shop/sa/web");
	assert_null(wolfSSL_X509_get_next_altname(x)); /* the only SAN */
	wolfSSL_X509_free(x);
	leaf_cert_free(&leaf);
	ca_free(ca);
}

static void two_mints_have_distinct_keys_and_serials(void **state)
{
	(void)state;
	struct ca *ca;
	struct leaf_cert a, b;
	struct spiffe_id id;
	char err[256];
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(ca_load(&ca, root_cert, root_key, now, err, sizeof(err)), 0);
	spiffe_parse("spiffe://cluster.local/ns/a/sa/b", &id);
	assert_int_equal(ca_mint(ca, &id, now, 20, &a, err, sizeof(err)), 0);
	assert_int_equal(ca_mint(ca, &id, now + 10, 20, &b, err, sizeof(err)), 0);
	assert_string_not_equal(a.serial, b.serial);
	assert_string_not_equal(a.key_pem, b.key_pem);
	assert_int_equal(b.not_before, now + 10); /* injected clock */
	leaf_cert_free(&a);
	leaf_cert_free(&b);
	ca_free(ca);
}

static void expect_refused(const char *cert, const char *key, int64_t now, int code, const char *needle)
{
	struct ca *ca = (struct ca *)0x1;
	char err[256] = "";
	assert_int_equal(ca_load(&ca, cert, key, now, err, sizeof(err)), code);
	assert_null(ca);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void bad_ca_inputs_are_refused_with_a_reason(void **state)
{
	(void)state;
	char *other_cert, *other_key;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(ca_create_root("cluster.local", 10, &other_cert, &other_key), 0);
	expect_refused(root_cert, other_key, now, -EINVAL, "does not match");
	expect_refused(root_cert, "-----BEGIN EC PRIVATE KEY-----\ngarbage\n-----END EC PRIVATE KEY-----\n",
		       now, -EINVAL, "CA key");
	expect_refused("not a certificate", root_key, now, -EINVAL, "CA certificate");
	expect_refused(root_cert, root_key, now + 11 * 86400, -EKEYEXPIRED, "expired");
	expect_refused(root_cert, root_key, now - 86400 * 2, -EKEYEXPIRED, "not valid yet");

	/* A leaf is not a CA. */
	struct ca *ca;
	struct leaf_cert leaf;
	struct spiffe_id id;
	char err[256];
	assert_int_equal(ca_load(&ca, root_cert, root_key, now, err, sizeof(err)), 0);
	spiffe_parse("spiffe://cluster.local/ns/a/sa/b", &id);
	assert_int_equal(ca_mint(ca, &id, now, 3600, &leaf, err, sizeof(err)), 0);
	expect_refused(leaf.cert_pem, leaf.key_pem, now, -EINVAL, "not a CA");
	leaf_cert_free(&leaf);
	ca_free(ca);
	free(other_cert);
	free(other_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(minted_leaf_verifies_against_the_root),
		cmocka_unit_test(two_mints_have_distinct_keys_and_serials),
		cmocka_unit_test(bad_ca_inputs_are_refused_with_a_reason),
	};
	return cmocka_run_group_tests(tests, make_root, free_root);
}
