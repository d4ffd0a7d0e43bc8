/* CONNECT headers of SPEC.md §2.3. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <string.h>

#include "ztunnel/hbone_headers.h"

static void baggage_forwarded_and_traceparent(void **state)
{
	(void)state;
	struct hbone_header h[HBONE_MAX_HEADERS];
	struct hbone_source_info src = { .cluster = "Kubernetes", .namespace = "shop",
					 .workload_type = "deployment", .workload_name = "web",
					 .canonical_name = "web", .canonical_revision = "v2" };
	unsigned seed = 1;
	size_t n = hbone_request_headers(&src, "10.244.1.2:46238", "echo.shop.svc.cluster.local", &seed, h);
	assert_int_equal(n, 3);
	assert_string_equal(h[0].name, "baggage");
	assert_string_equal(h[0].value, "k8s.cluster.name=Kubernetes,k8s.namespace.name=shop,"
					"k8s.deployment.name=web,service.name=web,service.version=v2");
	assert_string_equal(h[1].name, "forwarded");
	assert_string_equal(h[1].value, "for=\"10.244.1.2:46238\";host=echo.shop.svc.cluster.local");
	assert_string_equal(h[2].name, "traceparent");
	regex_t re;
	assert_int_equal(regcomp(&re, "^00-[0-9a-f]{32}-[0-9a-f]{16}-00$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, h[2].value, 0, NULL, 0), 0);
	char first[64];
	strcpy(first, h[2].value);
	hbone_request_headers(&src, "10.244.1.2:1", NULL, &seed, h);
	assert_string_not_equal(h[2].value, first); /* random per connection */
	assert_string_equal(h[1].value, "for=\"10.244.1.2:1\""); /* no service: no host */
	regfree(&re);
}

static void absent_fields_are_left_out(void **state)
{
	(void)state;
	struct hbone_header h[HBONE_MAX_HEADERS];
	struct hbone_source_info src = { .namespace = "shop" };
	unsigned seed = 2;
	size_t n = hbone_request_headers(&src, NULL, NULL, &seed, h);
	assert_int_equal(n, 2);
	assert_string_equal(h[0].value, "k8s.namespace.name=shop");
	assert_string_equal(h[1].name, "traceparent");
	struct hbone_source_info empty = { 0 };
	assert_int_equal(hbone_request_headers(&empty, NULL, NULL, &seed, h), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(baggage_forwarded_and_traceparent),
		cmocka_unit_test(absent_fields_are_left_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
