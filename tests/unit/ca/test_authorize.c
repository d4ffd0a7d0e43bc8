/* ztunnel-ca's decision: a node agent, with a token bound to its own
 * agent pod, gets only identities that run on its node; anyone else only
 * its own identity. The pods that count, and the per-address budgets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../../ztunnel/ca/ca_int.h"

static const char *const agents[] = { "ztunnel-system/ztunnel" };
static const struct ca_rules rules = { "cluster.local", agents, 1 };

#define POD(ns, name, node, sa_field, extra)                                                                   \
	"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"" ns "\",\"name\":\"" name "\"" extra "},\"spec\":{\"nodeName\":\"" node \
	"\"" sa_field "},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.2\"}}"
#define SA(s) ",\"serviceAccountName\":\"" s "\""

static struct ca_pods pods(void)
{
	static const char list[] =
		"{\"kind\":\"List\",\"items\":["
		POD("ztunnel-system", "ztunnel-a", "n1", SA("ztunnel"), "") ","
		POD("ztunnel-system", "ztunnel-b", "n2", SA("ztunnel"), "") ","
		POD("shop", "web-1", "n1", SA("web"), "") ","
		POD("shop", "db-1", "n2", SA("db"), "") ","
		/* all four share one IP: a model build would refuse the lot */
		"{\"kind\":\"Pod\",\"metadata\":{\"namespace\":\"shop\",\"name\":\"job-1\"},\"spec\":{\"nodeName\":\"n1\","
		"\"serviceAccountName\":\"batch\"},\"status\":{\"phase\":\"Succeeded\"}},"
		/* a static pod's mirror, and a pod naming no ServiceAccount */
		POD("other", "static-web", "n1", SA("web"), ",\"annotations\":{\"kubernetes.io/config.mirror\":\"x\"}") ","
		POD("other", "nosa", "n1", "", "") ","
		"{\"kind\":\"Pod\",\"metadata\":{\"name\":\"garbled\"}},"
		"{\"kind\":\"Service\",\"metadata\":{\"namespace\":\"shop\",\"name\":\"web\"}}"
		"]}";
	struct ca_pods p;
	assert_int_equal(ca_pods_build(list, strlen(list), &p), 0);
	assert_int_equal(p.n, 4);
	return p;
}

static struct kube_caller agent(const char *node, const char *pod)
{
	struct kube_caller c = { 0 };
	strcpy(c.username, "system:serviceaccount:ztunnel-system:ztunnel");
	strcpy(c.ns, "ztunnel-system");
	strcpy(c.sa, "ztunnel");
	strcpy(c.node, node);
	strcpy(c.pod, pod);
	c.service_account = true;
	return c;
}

static enum ca_outcome ask(const struct kube_caller *who, const char *id, const struct ca_pods *p, char *why)
{
	struct spiffe_id g;
	return ca_authorize(&rules, who, id, p, &g, why, 256);
}

static void agent_gets_identities_of_its_own_node_only(void **state)
{
	(void)state;
	struct ca_pods p = pods();
	char why[256] = "";
	struct kube_caller n1 = agent("n1", "ztunnel-a");
	assert_int_equal(ask(&n1, "spiffe://cluster.local/ns/shop/sa/web", &p, why), CA_ISSUED);
	assert_int_equal(ask(&n1, "spiffe://cluster.local/ns/shop/sa/db", &p, why), CA_NOT_ON_NODE);
	assert_non_null(strstr(why, "caller's node n1"));
	/* finished, mirror and ServiceAccount-less pods give no rights */
	assert_int_equal(ask(&n1, "spiffe://cluster.local/ns/shop/sa/batch", &p, why), CA_NOT_ON_NODE);
	assert_int_equal(ask(&n1, "spiffe://cluster.local/ns/other/sa/web", &p, why), CA_NOT_ON_NODE);
	assert_int_equal(ask(&n1, "spiffe://cluster.local/ns/other/sa/default", &p, why), CA_NOT_ON_NODE);
	struct kube_caller n2 = agent("n2", "ztunnel-b");
	assert_int_equal(ask(&n2, "spiffe://cluster.local/ns/shop/sa/db", &p, why), CA_ISSUED);
	/* Pods not known, or no longer followed: try again, never guess. */
	assert_int_equal(ask(&n1, "spiffe://cluster.local/ns/shop/sa/web", NULL, why), CA_UNAVAILABLE);
	ca_pods_free(&p);
}

static void the_token_must_be_bound_to_an_agent_pod_on_its_node(void **state)
{
	(void)state;
	struct ca_pods p = pods();
	char why[256];
	const char *web = "spiffe://cluster.local/ns/shop/sa/web";
	struct kube_caller c = agent("", "");
	assert_int_equal(ask(&c, web, &p, why), CA_UNBOUND_TOKEN);
	c = agent("n1", ""); /* bound to a Node object: names a node, no pod */
	assert_int_equal(ask(&c, web, &p, why), CA_UNBOUND_TOKEN);
	c = agent("n1", "ztunnel-b"); /* n2's agent pod claiming n1 */
	assert_int_equal(ask(&c, web, &p, why), CA_UNBOUND_TOKEN);
	c = agent("n1", "web-1"); /* not in the agent's namespace */
	assert_int_equal(ask(&c, web, &p, why), CA_UNBOUND_TOKEN);
	c = agent("n1", "ztunnel-gone");
	assert_int_equal(ask(&c, web, &p, why), CA_UNBOUND_TOKEN);
	ca_pods_free(&p);
}

static void bad_identities_are_refused(void **state)
{
	(void)state;
	struct ca_pods p = pods();
	char why[256];
	struct kube_caller n1 = agent("n1", "ztunnel-a");
	static const char *const bad[] = { "spiffe://other.domain/ns/shop/sa/web", "spiffe://cluster.local/ns/shop/sa/web/",
					   "spiffe://cluster.local/ns/shop", "https://cluster.local/ns/shop/sa/web",
					   "SPIFFE://cluster.local/ns/shop/sa/web" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ask(&n1, bad[i], &p, why), CA_BAD_REQUEST);
	ca_pods_free(&p);
}

static void others_get_their_own_identity_and_nothing_else(void **state)
{
	(void)state;
	struct ca_pods p = pods();
	struct spiffe_id g;
	char why[256];
	struct kube_caller web = { .username = "system:serviceaccount:shop:web", .ns = "shop", .sa = "web",
				   .node = "n1", .pod = "web-1", .service_account = true };
	assert_int_equal(ca_authorize(&rules, &web, NULL, &p, &g, why, sizeof(why)), CA_ISSUED);
	assert_string_equal(g.td, "cluster.local");
	assert_string_equal(g.ns, "shop");
	assert_string_equal(g.sa, "web");
	assert_int_equal(ca_authorize(&rules, &web, "", &p, &g, why, sizeof(why)), CA_ISSUED);
	assert_int_equal(ask(&web, "spiffe://cluster.local/ns/shop/sa/db", &p, why), CA_IMPERSONATION);
	/* Names that merely start like the agent's are not the agent. */
	struct kube_caller look = agent("n1", "ztunnel-a");
	strcpy(look.sa, "ztunnel-evil");
	assert_int_equal(ask(&look, "spiffe://cluster.local/ns/shop/sa/web", &p, why), CA_IMPERSONATION);
	look = agent("n1", "ztunnel-a");
	strcpy(look.ns, "ztunnel-sys");
	assert_int_equal(ask(&look, "spiffe://cluster.local/ns/shop/sa/web", &p, why), CA_IMPERSONATION);
	/* A ServiceAccount's name from another authenticator is no ServiceAccount. */
	look = agent("n1", "ztunnel-a");
	look.service_account = false;
	assert_int_equal(ask(&look, "spiffe://cluster.local/ns/shop/sa/web", &p, why), CA_NOT_SA);
	struct kube_caller user = { .username = "admin" };
	assert_int_equal(ca_authorize(&rules, &user, NULL, &p, &g, why, sizeof(why)), CA_NOT_SA);
	ca_pods_free(&p);
}

static void addresses_have_budgets(void **state)
{
	(void)state;
	struct ca_limits *l = ca_limits_new();
	for (int i = 0; i < CA_MAX_CONNS_PER_ADDR; i++)
		assert_true(ca_limits_conn_take(l, "10.0.0.1"));
	assert_false(ca_limits_conn_take(l, "10.0.0.1"));
	assert_true(ca_limits_conn_take(l, "10.0.0.2"));
	ca_limits_conn_put(l, "10.0.0.1");
	assert_true(ca_limits_conn_take(l, "10.0.0.1"));
	for (int i = 0; i < CA_AUTH_FAILURES_PER_WINDOW; i++) {
		assert_true(ca_limits_auth_allowed(l, "10.0.0.3", 100));
		ca_limits_auth_failed(l, "10.0.0.3", 100);
	}
	assert_false(ca_limits_auth_allowed(l, "10.0.0.3", 100 + CA_AUTH_WINDOW_S - 1));
	assert_true(ca_limits_auth_allowed(l, "10.0.0.4", 100));
	assert_true(ca_limits_auth_allowed(l, "10.0.0.3", 100 + CA_AUTH_WINDOW_S));
	ca_limits_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agent_gets_identities_of_its_own_node_only),
		cmocka_unit_test(the_token_must_be_bound_to_an_agent_pod_on_its_node),
		cmocka_unit_test(bad_identities_are_refused),
		cmocka_unit_test(others_get_their_own_identity_and_nothing_else),
		cmocka_unit_test(addresses_have_budgets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
