/* ztunnel-ca signs a CSR's key for the identity it authorized, and only
 * a CSR whose signature verifies and that names no one else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/identity.h"
#include "ztunnel/trust.h"

static struct ca *new_ca(void)
{
	char *cert, *key, err[256];
	struct ca *ca;
	assert_int_equal(ca_create_root("cluster.local", 1, &cert, &key), 0);
	assert_int_equal(ca_load(&ca, cert, key, (int64_t)time(NULL), err, sizeof(err)), 0);
	free(cert);
	free(key);
	return ca;
}

static void signs_the_authorized_identity_for_the_csr_key(void **state)
{
	(void)state;
	struct ca *ca = new_ca();
	struct spiffe_id id = { "cluster.local", "shop", "web" }, got;
	char *csr, *key, *chain, serial[40], err[256];
	int64_t now = (int64_t)time(NULL), nb, na;
	assert_int_equal(csr_create(&id, &csr, &key, err, sizeof(err)), 0);
	assert_int_equal(ca_sign_csr(ca, csr, &id, now, 3600, &chain, serial, sizeof(serial), err, sizeof(err)), 0);
	assert_int_equal(cert_spiffe_id(chain, &got), 0);
	assert_string_equal(got.sa, "web");
	assert_int_equal(cert_key_matches(chain, key), 1);
	assert_int_equal(cert_validity(chain, &nb, &na, serial, sizeof(serial)), 0);
	assert_true(na - now <= 3600 && na - now >= 3599);
	assert_true(now - nb <= 60 && now - nb > 0);
	struct trust_bundle tb = { 0 };
	assert_int_equal(trust_bundle_load(&tb, ca_chain(ca)), 1);
	assert_int_equal(trust_verify_chain(&tb, chain, err, sizeof(err)), 0);
	trust_bundle_free(&tb);
	free(chain);
	free(csr);
	free(key);
	ca_free(ca);
}

static void no_leaf_outlives_the_ca(void **state)
{
	(void)state;
	struct ca *ca = new_ca(); /* valid one day */
	struct spiffe_id id = { "cluster.local", "shop", "web" };
	char *csr, *key, *chain, serial[40], err[256];
	int64_t now = (int64_t)time(NULL), nb, na, ca_nb, ca_na;
	assert_int_equal(csr_create(&id, &csr, &key, err, sizeof(err)), 0);
	assert_int_equal(ca_sign_csr(ca, csr, &id, now, 30 * 86400, &chain, serial, sizeof(serial), err, sizeof(err)), 0);
	assert_int_equal(cert_validity(chain, &nb, &na, serial, sizeof(serial)), 0);
	assert_int_equal(cert_validity(ca_chain(ca), &ca_nb, &ca_na, serial, sizeof(serial)), 0);
	assert_true(na <= ca_na);
	assert_true(na > now + 3600);
	free(chain);
	/* and once it has expired, nothing */
	assert_int_equal(ca_sign_csr(ca, csr, &id, ca_na + 10, 3600, &chain, serial, sizeof(serial), err, sizeof(err)),
			 -EKEYEXPIRED);
	free(csr);
	free(key);
	ca_free(ca);
}

static void refuses_bad_and_foreign_csrs(void **state)
{
	(void)state;
	struct ca *ca = new_ca();
	struct spiffe_id web = { "cluster.local", "shop", "web" }, db = { "cluster.local", "shop", "db" };
	char *csr, *key, *chain = NULL, serial[40], err[256];
	int64_t now = (int64_t)time(NULL);
	assert_int_equal(csr_create(&db, &csr, &key, err, sizeof(err)), 0);
	/* A CSR naming db cannot be signed as web. */
	assert_int_equal(ca_sign_csr(ca, csr, &web, now, 3600, &chain, serial, sizeof(serial), err, sizeof(err)), -EPERM);
	assert_null(chain);
	/* A flipped character in the base64 body breaks the signature or the DER. */
	char *body = strstr(csr, "\n") + 20;
	*body = *body == 'A' ? 'B' : 'A';
	assert_int_equal(ca_sign_csr(ca, csr, &db, now, 3600, &chain, serial, sizeof(serial), err, sizeof(err)), -EINVAL);
	assert_int_equal(ca_sign_csr(ca, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
				     &db, now, 3600, &chain, serial, sizeof(serial), err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(ca_sign_csr(ca, "", &db, now, 3600, &chain, serial, sizeof(serial), err, sizeof(err)), -EINVAL);
	free(csr);
	free(key);
	ca_free(ca);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(signs_the_authorized_identity_for_the_csr_key),
		cmocka_unit_test(refuses_bad_and_foreign_csrs),
		cmocka_unit_test(no_leaf_outlives_the_ca),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
