/* SPIFFE id parsing: exactly spiffe://<td>/ns/<ns>/sa/<sa>. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ztunnel/identity.h"

static void well_formed_ids_parse_and_round_trip(void **state)
{
	(void)state;
	struct spiffe_id id;
	char buf[800];
	assert_int_equal(spiffe_parse("spiffe://cluster.local/ns/shop/sa/web", &id), 0);
	assert_string_equal(id.td, "cluster.local");
	assert_string_equal(id.ns, "shop");
	assert_string_equal(id.sa, "web");
	assert_true(spiffe_format(&id, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "spiffe://cluster.local/ns/shop/sa/web");
	assert_int_equal(spiffe_parse("spiffe://td-alt/ns/ns-alt/sa/sa=alt", &id), 0);
	assert_string_equal(id.sa, "sa=alt");
}

static void malformed_ids_are_rejected(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"http://cluster.local/ns/a/sa/b",      /* wrong scheme */
		"SPIFFE://cluster.local/ns/a/sa/b",    /* uppercase scheme */
		"Spiffe://cluster.local/ns/a/sa/b",
		"spiffe:/cluster.local/ns/a/sa/b",
		"spiffe://cluster.local/ns/a",         /* missing sa */
		"spiffe://cluster.local/sa/b",         /* missing ns */
		"spiffe://cluster.local/ns/a/sa/b/c",  /* extra path */
		"spiffe://cluster.local/ns/a/sa/b/",   /* trailing slash */
		"spiffe://cluster.local/ns//sa/b",     /* empty namespace */
		"spiffe://cluster.local/ns/a/sa/",     /* empty service account */
		"spiffe:///ns/a/sa/b",                 /* empty trust domain */
		"spiffe://cluster.local/NS/a/sa/b",    /* keywords are lower case */
		"spiffe://cluster.local/ns/a/serviceaccount/b",
		"cluster.local/ns/a/sa/b",             /* principal form, not a URI */
		"",
	};
	struct spiffe_id id;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (spiffe_parse(bad[i], &id) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_string_equal(id.td, "");
	}
	assert_int_equal(spiffe_parse(NULL, &id), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed_ids_parse_and_round_trip),
		cmocka_unit_test(malformed_ids_are_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
