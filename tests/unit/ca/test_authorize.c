/* ztunnel-ca's decision: a node agent gets only identities that run on
 * its own node; anyone else only its own identity. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../../ztunnel/ca/ca_int.h"
#include "../state/snap.h"

static const char *const agents[] = { "ztunnel-system/ztunnel" };
static const struct ca_rules rules = { "cluster.local", agents, 1 };

static struct zt_model *pods(void)
{
	cJSON *l = snap_new();
	snap_ns(l, "shop", NULL);
	cJSON *p = snap_pod(l, "shop", "web-1", "10.244.1.2", "n1", NULL);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(p, "spec"), "serviceAccountName", cJSON_CreateString("web"));
	p = snap_pod(l, "shop", "db-1", "10.244.2.2", "n2", NULL);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(p, "spec"), "serviceAccountName", cJSON_CreateString("db"));
	/* Finished pods do not run anywhere. */
	p = snap_pod(l, "shop", "job-1", "10.244.1.3", "n1", NULL);
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(p, "spec"), "serviceAccountName", cJSON_CreateString("batch"));
	cJSON_ReplaceItemInObject(cJSON_GetObjectItem(p, "status"), "phase", cJSON_CreateString("Succeeded"));
	return snap_ok(l);
}

static struct kube_caller agent_on(const char *node)
{
	struct kube_caller c = { 0 };
	strcpy(c.username, "system:serviceaccount:ztunnel-system:ztunnel");
	strcpy(c.ns, "ztunnel-system");
	strcpy(c.sa, "ztunnel");
	strcpy(c.node, node);
	return c;
}

static void agent_gets_identities_of_its_own_node_only(void **state)
{
	(void)state;
	struct zt_model *m = pods();
	struct spiffe_id g;
	char why[256] = "";
	struct kube_caller n1 = agent_on("n1");
	assert_int_equal(ca_authorize(&rules, &n1, "spiffe://cluster.local/ns/shop/sa/web", m, &g, why, sizeof(why)),
			 CA_ISSUED);
	assert_string_equal(g.ns, "shop");
	assert_string_equal(g.sa, "web");
	assert_int_equal(ca_authorize(&rules, &n1, "spiffe://cluster.local/ns/shop/sa/db", m, &g, why, sizeof(why)),
			 CA_NOT_ON_NODE);
	assert_non_null(strstr(why, "caller's node n1"));
	assert_int_equal(ca_authorize(&rules, &n1, "spiffe://cluster.local/ns/shop/sa/batch", m, &g, why, sizeof(why)),
			 CA_NOT_ON_NODE);
	struct kube_caller n2 = agent_on("n2");
	assert_int_equal(ca_authorize(&rules, &n2, "spiffe://cluster.local/ns/shop/sa/db", m, &g, why, sizeof(why)),
			 CA_ISSUED);
	/* Pods not known yet: try again, never guess. */
	assert_int_equal(ca_authorize(&rules, &n1, "spiffe://cluster.local/ns/shop/sa/web", NULL, &g, why, sizeof(why)),
			 CA_UNAVAILABLE);
	model_free(m);
}

static void agent_without_node_or_with_bad_identity_is_refused(void **state)
{
	(void)state;
	struct zt_model *m = pods();
	struct spiffe_id g;
	char why[256];
	struct kube_caller nowhere = agent_on("");
	assert_int_equal(ca_authorize(&rules, &nowhere, "spiffe://cluster.local/ns/shop/sa/web", m, &g, why, sizeof(why)),
			 CA_NO_NODE);
	struct kube_caller n1 = agent_on("n1");
	static const char *const bad[] = { "spiffe://other.domain/ns/shop/sa/web", "spiffe://cluster.local/ns/shop/sa/web/",
					   "spiffe://cluster.local/ns/shop", "https://cluster.local/ns/shop/sa/web",
					   "SPIFFE://cluster.local/ns/shop/sa/web" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ca_authorize(&rules, &n1, bad[i], m, &g, why, sizeof(why)), CA_BAD_REQUEST);
	model_free(m);
}

static void others_get_their_own_identity_and_nothing_else(void **state)
{
	(void)state;
	struct zt_model *m = pods();
	struct spiffe_id g;
	char why[256];
	struct kube_caller web = { .username = "system:serviceaccount:shop:web", .ns = "shop", .sa = "web", .node = "n1" };
	assert_int_equal(ca_authorize(&rules, &web, NULL, m, &g, why, sizeof(why)), CA_ISSUED);
	assert_string_equal(g.td, "cluster.local");
	assert_string_equal(g.ns, "shop");
	assert_string_equal(g.sa, "web");
	assert_int_equal(ca_authorize(&rules, &web, "", m, &g, why, sizeof(why)), CA_ISSUED);
	assert_string_equal(g.sa, "web");
	assert_int_equal(ca_authorize(&rules, &web, "spiffe://cluster.local/ns/shop/sa/db", m, &g, why, sizeof(why)),
			 CA_IMPERSONATION);
	/* Names that merely start like the agent's are not the agent. */
	struct kube_caller lookalike = agent_on("n1");
	strcpy(lookalike.sa, "ztunnel-evil");
	assert_int_equal(ca_authorize(&rules, &lookalike, "spiffe://cluster.local/ns/shop/sa/web", m, &g, why, sizeof(why)),
			 CA_IMPERSONATION);
	strcpy(lookalike.sa, "ztunnel");
	strcpy(lookalike.ns, "ztunnel-sys");
	assert_int_equal(ca_authorize(&rules, &lookalike, "spiffe://cluster.local/ns/shop/sa/web", m, &g, why, sizeof(why)),
			 CA_IMPERSONATION);
	/* Not a ServiceAccount (a user, a node's own credentials). */
	struct kube_caller user = { .username = "admin" };
	assert_int_equal(ca_authorize(&rules, &user, NULL, m, &g, why, sizeof(why)), CA_UNAUTHENTICATED);
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agent_gets_identities_of_its_own_node_only),
		cmocka_unit_test(agent_without_node_or_with_bad_identity_is_refused),
		cmocka_unit_test(others_get_their_own_identity_and_nothing_else),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
