/* TokenReview answers as the API server gives them: who, which node. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "ztunnel/kube.h"

static int parse(const char *json, struct kube_caller *c)
{
	char err[256];
	return kube_token_review_parse(json, strlen(json), "istio-ca", c, err, sizeof(err));
}

static void bound_service_account_token(void **state)
{
	(void)state;
	struct kube_caller c;
	assert_int_equal(parse("{\"kind\":\"TokenReview\",\"status\":{\"authenticated\":true,\"audiences\":[\"istio-ca\"],"
			       "\"user\":{\"username\":\"system:serviceaccount:ztunnel-system:ztunnel\","
			       "\"groups\":[\"system:serviceaccounts\",\"system:authenticated\"],"
			       "\"extra\":{\"authentication.kubernetes.io/node-name\":[\"n1\"],"
			       "\"authentication.kubernetes.io/pod-name\":[\"ztunnel-abc\"]}}}}",
			       &c),
			 0);
	assert_string_equal(c.ns, "ztunnel-system");
	assert_string_equal(c.sa, "ztunnel");
	assert_string_equal(c.node, "n1");
	assert_string_equal(c.pod, "ztunnel-abc");
	assert_true(c.service_account);
	/* the same name without the API server's group: not a ServiceAccount */
	assert_int_equal(parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"istio-ca\"],"
			       "\"user\":{\"username\":\"system:serviceaccount:ztunnel-system:ztunnel\","
			       "\"groups\":[\"oidc:users\"]}}}",
			       &c),
			 0);
	assert_false(c.service_account);
}

static void refusals_and_odd_answers(void **state)
{
	(void)state;
	struct kube_caller c;
	char err[256];
	const char *unauth = "{\"status\":{\"authenticated\":false,\"error\":\"token has expired\"}}";
	assert_int_equal(kube_token_review_parse(unauth, strlen(unauth), "istio-ca", &c, err, sizeof(err)), -EACCES);
	assert_non_null(strstr(err, "token has expired"));
	/* Authenticated, but the answer does not name our audience. */
	assert_int_equal(parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"api\"],"
			       "\"user\":{\"username\":\"system:serviceaccount:a:b\"}}}",
			       &c),
			 -EACCES);
	assert_int_equal(parse("{\"status\":{\"authenticated\":true,\"user\":{\"username\":\"system:serviceaccount:a:b\"}}}", &c),
			 -EACCES);
	assert_int_equal(parse("not json", &c), -EPROTO);
	assert_int_equal(parse("{\"kind\":\"Status\"}", &c), -EPROTO);
	/* Not a ServiceAccount, or a malformed one: no namespace/name. */
	assert_int_equal(parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"istio-ca\"],"
			       "\"user\":{\"username\":\"system:node:n1\"}}}",
			       &c),
			 0);
	assert_string_equal(c.ns, "");
	assert_string_equal(c.sa, "");
	assert_int_equal(parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"istio-ca\"],"
			       "\"user\":{\"username\":\"system:serviceaccount:a:b:c\"}}}",
			       &c),
			 0);
	assert_string_equal(c.sa, "");
	/* Two node names: none is believed. */
	assert_int_equal(parse("{\"status\":{\"authenticated\":true,\"audiences\":[\"istio-ca\"],"
			       "\"user\":{\"username\":\"system:serviceaccount:a:b\","
			       "\"extra\":{\"authentication.kubernetes.io/node-name\":[\"n1\",\"n2\"]}}}}",
			       &c),
			 0);
	assert_string_equal(c.node, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bound_service_account_token),
		cmocka_unit_test(refusals_and_odd_answers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
