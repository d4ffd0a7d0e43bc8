/* Trust bundles with several roots: parsing (invalid roots skipped), chain
 * verification, peer identity extraction, and root rotation in three
 * phases with mutual TLS handshakes that never fail. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls_pair.h"
#include "ztunnel/log.h"
#include "ztunnel/trust.h"

static char *r1_cert, *r1_key, *r2_cert, *r2_key;
static struct ca *ca1, *ca2;

static int setup(void **state)
{
	(void)state;
	char err[256];
	int64_t now = (int64_t)time(NULL);
	wolfSSL_Init();
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	assert_int_equal(ca_create_root("cluster.local", 10, &r1_cert, &r1_key), 0);
	assert_int_equal(ca_create_root("cluster.local", 10, &r2_cert, &r2_key), 0);
	assert_int_equal(ca_load(&ca1, r1_cert, r1_key, now, err, sizeof(err)), 0);
	assert_int_equal(ca_load(&ca2, r2_cert, r2_key, now, err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ca_free(ca1);
	ca_free(ca2);
	free(r1_cert);
	free(r1_key);
	free(r2_cert);
	free(r2_key);
	return 0;
}

static struct leaf_cert mint(struct ca *ca, const char *uri)
{
	struct spiffe_id id;
	struct leaf_cert l;
	char err[256];
	assert_int_equal(spiffe_parse(uri, &id), 0);
	assert_int_equal(ca_mint(ca, &id, (int64_t)time(NULL), 3600, &l, err, sizeof(err)), 0);
	return l;
}

static char *concat(const char *a, const char *b)
{
	char *s;
	assert_true(asprintf(&s, "%s%s", a, b) > 0);
	return s;
}

static void bundles_keep_every_valid_root_and_skip_others(void **state)
{
	(void)state;
	struct leaf_cert leaf = mint(ca1, "spiffe://cluster.local/ns/a/sa/b");
	char *both = concat(r1_cert, r2_cert);
	char *mixed = concat(both, leaf.cert_pem); /* a leaf is not a root */
	struct trust_bundle tb;
	assert_int_equal(trust_bundle_load(&tb, both), 2);
	trust_bundle_free(&tb);
	assert_int_equal(trust_bundle_load(&tb, mixed), 2);
	trust_bundle_free(&tb);
	assert_int_equal(trust_bundle_load(&tb, "no certificates here"), 0);
	trust_bundle_free(&tb);
	free(both);
	free(mixed);
	leaf_cert_free(&leaf);
}

static void chains_verify_only_against_their_roots(void **state)
{
	(void)state;
	struct leaf_cert l1 = mint(ca1, "spiffe://cluster.local/ns/a/sa/b");
	struct trust_bundle only_r2, both;
	char err[256];
	char *pem = concat(r1_cert, r2_cert);
	trust_bundle_load(&only_r2, r2_cert);
	trust_bundle_load(&both, pem);
	if (trust_verify_chain(&both, l1.chain_pem, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	/* The chain carries root 1 itself: it must not be trusted for that. */
	assert_int_equal(trust_verify_chain(&only_r2, l1.chain_pem, err, sizeof(err)), -EKEYREJECTED);
	assert_non_null(strstr(err, "does not verify"));
	trust_bundle_free(&only_r2);
	trust_bundle_free(&both);
	free(pem);
	leaf_cert_free(&l1);
}

static void chains_through_an_intermediate_verify_against_the_root(void **state)
{
	(void)state;
	char *icert, *ikey, err[256];
	struct ca *ica;
	struct trust_bundle tb;
	assert_int_equal(ca_create_intermediate(ca1, "cluster.local", 5, &icert, &ikey), 0);
	assert_int_equal(ca_load(&ica, icert, ikey, (int64_t)time(NULL), err, sizeof(err)), 0);
	struct leaf_cert l = mint(ica, "spiffe://cluster.local/ns/shop/sa/api");
	trust_bundle_load(&tb, r1_cert);
	if (trust_verify_chain(&tb, l.chain_pem, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	/* Without the intermediate the leaf does not verify. */
	assert_int_equal(trust_verify_chain(&tb, l.cert_pem, err, sizeof(err)), -EKEYREJECTED);
	trust_bundle_free(&tb);
	leaf_cert_free(&l);
	ca_free(ica);
	free(icert);
	free(ikey);
}

static void peer_identity_validity_and_key_pairing(void **state)
{
	(void)state;
	struct leaf_cert a = mint(ca1, "spiffe://cluster.local/ns/shop/sa/web");
	struct leaf_cert b = mint(ca1, "spiffe://cluster.local/ns/shop/sa/db");
	struct spiffe_id id;
	int64_t nb, na;
	char serial[40];
	assert_int_equal(cert_spiffe_id(a.chain_pem, &id), 0);
	assert_string_equal(id.sa, "web");
	assert_int_equal(cert_validity(a.cert_pem, &nb, &na, serial, sizeof(serial)), 0);
	assert_int_equal(na - nb, 3600);
	assert_string_equal(serial, a.serial);
	assert_true(cert_key_matches(a.cert_pem, a.key_pem));
	assert_false(cert_key_matches(a.cert_pem, b.key_pem));
	assert_int_equal(cert_spiffe_id(r1_cert, &id), -ENOENT); /* the root has no SPIFFE SAN */
	leaf_cert_free(&a);
	leaf_cert_free(&b);
}

static void expect_handshake(const char *cb, const struct leaf_cert *c, const char *sb,
			     const struct leaf_cert *s, int ok)
{
	struct tls_pair p;
	int e = tls_pair_handshake(&p, cb, c, sb, s);
	if (ok) {
		assert_int_equal(e, 0);
		tls_pair_roundtrip(&p);
	} else {
		assert_int_not_equal(e, 0);
	}
	tls_pair_free(&p);
}

/* Add the new root, switch the signing CA, remove the old root: every
 * handshake of every phase succeeds, including mixed ones mid-rollout. */
static void root_rotation_in_three_phases_never_fails_a_handshake(void **state)
{
	(void)state;
	char *both = concat(r1_cert, r2_cert);
	struct leaf_cert a1 = mint(ca1, "spiffe://cluster.local/ns/shop/sa/web");
	struct leaf_cert b1 = mint(ca1, "spiffe://cluster.local/ns/shop/sa/db");

	expect_handshake(r1_cert, &a1, r1_cert, &b1, 1);      /* before */
	expect_handshake(both, &a1, both, &b1, 1);            /* 1: new root added */
	expect_handshake(both, &a1, r1_cert, &b1, 1);         /*    while bundles roll out */
	struct leaf_cert a2 = mint(ca2, "spiffe://cluster.local/ns/shop/sa/web");
	expect_handshake(both, &a2, both, &b1, 1);            /* 2: signing CA switched */
	expect_handshake(both, &b1, both, &a2, 1);
	struct leaf_cert b2 = mint(ca2, "spiffe://cluster.local/ns/shop/sa/db");
	expect_handshake(both, &a2, both, &b2, 1);
	expect_handshake(r2_cert, &a2, r2_cert, &b2, 1);      /* 3: old root removed */
	/* The removal matters: an old-CA certificate is now refused. */
	expect_handshake(r2_cert, &a1, r2_cert, &b2, 0);
	leaf_cert_free(&a1);
	leaf_cert_free(&b1);
	leaf_cert_free(&a2);
	leaf_cert_free(&b2);
	free(both);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bundles_keep_every_valid_root_and_skip_others),
		cmocka_unit_test(chains_verify_only_against_their_roots),
		cmocka_unit_test(chains_through_an_intermediate_verify_against_the_root),
		cmocka_unit_test(peer_identity_validity_and_key_pairing),
		cmocka_unit_test(root_rotation_in_three_phases_never_fails_a_handshake),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
