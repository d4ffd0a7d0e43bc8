/* AuthorizationPolicy / PeerAuthentication -> typed form: istiod's
 * translation, HTTP-field handling, scopes, selection, and the fail-closed
 * form of invalid objects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"

static char objbuf[4096];

/* One AuthorizationPolicy in namespace ns with the given spec JSON. */
static void add_authz(cJSON *l, const char *ns, const char *name, const char *spec)
{
	snprintf(objbuf, sizeof(objbuf),
		 "{\"apiVersion\":\"security.istio.io/v1\",\"kind\":\"AuthorizationPolicy\","
		 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":%s}",
		 name, ns, spec);
	snap_add(l, objbuf);
}

static void add_peer_authn(cJSON *l, const char *ns, const char *name, const char *created,
			   const char *spec)
{
	snprintf(objbuf, sizeof(objbuf),
		 "{\"apiVersion\":\"security.istio.io/v1beta1\",\"kind\":\"PeerAuthentication\","
		 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"creationTimestamp\":\"%s\"},"
		 "\"spec\":%s}",
		 name, ns, created, spec);
	snap_add(l, objbuf);
}

static const struct zt_authz_policy *policy(const struct zt_model *m, const char *key)
{
	for (uint32_t i = 0; i < m->n_policies; i++)
		if (!strcmp(m->policies[i].key, key))
			return &m->policies[i];
	fail_msg("no policy %s", key);
	return NULL;
}

/* Builds expecting success; findings stay in *d for the test to inspect. */
static struct zt_model *build(cJSON *l, struct zt_diags *d)
{
	struct zt_model *m = NULL;
	diags_init(d);
	int r = snap_build(l, &m, d);
	if (r)
		diags_print(d, stderr);
	assert_int_equal(r, 0);
	cJSON_Delete(l);
	return m;
}

static void principals_use_istiod_string_match_forms(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	add_authz(l, "a", "p", "{\"rules\":[{\"from\":[{\"source\":{\"principals\":"
			       "[\"cluster.local/ns/a/sa/x\",\"cluster.local/ns/b/*\",\"*/sa/admin\",\"*\"]}}]}]}");
	struct zt_model *m = build(l, &d);
	const struct zt_authz_policy *p = policy(m, "a/p");
	assert_int_equal(p->action, ZT_ACTION_ALLOW);
	assert_int_equal(p->scope, ZT_SCOPE_NAMESPACE);
	assert_int_equal(p->n_rules, 1);
	assert_int_equal(p->rules[0].n, 1);
	const struct zt_str_list *pr = &p->rules[0].clauses[0].matches[0].principals;
	assert_int_equal(pr->n, 4);
	assert_int_equal(pr->items[0].kind, ZT_MATCH_EXACT);
	assert_string_equal(pr->items[0].value, "cluster.local/ns/a/sa/x");
	assert_int_equal(pr->items[1].kind, ZT_MATCH_PREFIX);
	assert_string_equal(pr->items[1].value, "cluster.local/ns/b/");
	assert_int_equal(pr->items[2].kind, ZT_MATCH_SUFFIX);
	assert_string_equal(pr->items[2].value, "/sa/admin");
	assert_int_equal(pr->items[3].kind, ZT_MATCH_PRESENCE);
	model_free(m);
	diags_release(&d);
}

static void from_to_and_when_become_and_of_or_clauses(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	add_authz(l, "a", "p", "{\"action\":\"DENY\",\"rules\":[{"
			       "\"from\":[{\"source\":{\"namespaces\":[\"x\"]}},{\"source\":{\"ipBlocks\":[\"10.0.0.0/8\",\"fd00::1\"]}}],"
			       "\"to\":[{\"operation\":{\"ports\":[\"80\",\"443\"],\"notPorts\":[\"8080\"]}}],"
			       "\"when\":[{\"key\":\"destination.ip\",\"notValues\":[\"10.1.0.0/16\"]},"
			       "{\"key\":\"source.principal\",\"values\":[\"td/ns/x/sa/y\"]}]}]}");
	struct zt_model *m = build(l, &d);
	const struct zt_rule *r = &policy(m, "a/p")->rules[0];
	assert_int_equal(r->n, 4); /* from, to, 2 x when */
	assert_int_equal(r->clauses[0].n, 2);
	assert_int_equal(r->clauses[0].matches[1].source_ips.n, 2);
	assert_int_equal(r->clauses[0].matches[1].source_ips.items[0].prefix, 8);
	assert_int_equal(r->clauses[0].matches[1].source_ips.items[1].prefix, 128);
	assert_int_equal(r->clauses[1].matches[0].destination_ports.n, 2);
	assert_int_equal(r->clauses[1].matches[0].destination_ports.items[1], 443);
	assert_int_equal(r->clauses[1].matches[0].not_destination_ports.items[0], 8080);
	assert_int_equal(r->clauses[2].matches[0].not_destination_ips.items[0].prefix, 16);
	assert_int_equal(r->clauses[3].matches[0].principals.n, 1);
	assert_false(r->dropped_l7 || r->stripped_l7);
	model_free(m);
	diags_release(&d);
}

static void empty_spec_allows_nothing_and_empty_rule_matches_all(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	add_authz(l, "a", "deny-all", "{}");
	add_authz(l, "a", "allow-all", "{\"rules\":[{}]}");
	struct zt_model *m = build(l, &d);
	assert_int_equal(policy(m, "a/deny-all")->n_rules, 0);
	assert_int_equal(policy(m, "a/allow-all")->n_rules, 1);
	assert_int_equal(policy(m, "a/allow-all")->rules[0].n, 0);
	assert_int_equal(d.n, 0);
	model_free(m);
	diags_release(&d);
}

static void http_fields_drop_allow_rules_and_are_stripped_from_deny(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	add_authz(l, "a", "allow", "{\"rules\":[{\"to\":[{\"operation\":{\"methods\":[\"GET\"],\"ports\":[\"80\"]}}]},"
				   "{\"from\":[{\"source\":{\"namespaces\":[\"x\"]}}]}]}");
	add_authz(l, "a", "deny", "{\"action\":\"DENY\",\"rules\":[{"
				  "\"from\":[{\"source\":{\"namespaces\":[\"x\"],\"requestPrincipals\":[\"*\"]}}],"
				  "\"to\":[{\"operation\":{\"paths\":[\"/admin\"]}}],"
				  "\"when\":[{\"key\":\"request.auth.claims[group]\",\"values\":[\"g\"]}]}]}");
	struct zt_model *m = build(l, &d);
	const struct zt_authz_policy *allow = policy(m, "a/allow"), *deny = policy(m, "a/deny");
	assert_true(allow->rules[0].dropped_l7);
	assert_false(allow->rules[1].dropped_l7);
	assert_true(deny->rules[0].stripped_l7);
	assert_int_equal(deny->rules[0].n, 2); /* the L7-only when contributes no clause */
	assert_false(deny->rules[0].clauses[0].matches[0].match_all); /* L4 namespaces remain */
	assert_int_equal(deny->rules[0].clauses[0].matches[0].namespaces.n, 1);
	assert_true(deny->rules[0].clauses[1].matches[0].match_all); /* paths only: stricter */
	assert_int_equal(d.n_warnings, 2);
	assert_true(diags_have(&d, ZT_DIAG_WARNING, "never matches"));
	model_free(m);
	diags_release(&d);
}

static void scopes_dry_run_and_service_accounts(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	add_authz(l, "istio-system", "mesh", "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"notNamespaces\":[\"*\"]}}]}]}");
	add_authz(l, "a", "sel", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},"
				 "\"rules\":[{\"from\":[{\"source\":{\"serviceAccounts\":[\"front\",\"b/back\"]}}]}]}");
	add_authz(l, "a", "wp", "{\"targetRefs\":[{\"kind\":\"Gateway\",\"name\":\"w\"}],\"rules\":[{}]}");
	add_authz(l, "a", "aud", "{\"action\":\"AUDIT\",\"rules\":[{}]}");
	cJSON *dry = snap_add(l, "{\"apiVersion\":\"security.istio.io/v1\",\"kind\":\"AuthorizationPolicy\","
				 "\"metadata\":{\"name\":\"dry\",\"namespace\":\"a\",\"annotations\":{\"istio.io/dry-run\":\"true\"}},"
				 "\"spec\":{\"action\":\"DENY\",\"rules\":[{}]}}");
	(void)dry;
	struct zt_model *m = build(l, &d);
	assert_int_equal(policy(m, "istio-system/mesh")->scope, ZT_SCOPE_GLOBAL);
	const struct zt_authz_policy *sel = policy(m, "a/sel");
	assert_int_equal(sel->scope, ZT_SCOPE_WORKLOAD);
	assert_string_equal(zt_label_get(&sel->selector, "app"), "web");
	const struct zt_str_list *sa = &sel->rules[0].clauses[0].matches[0].service_accounts;
	assert_string_equal(sa->items[0].value, "a/front");
	assert_string_equal(sa->items[1].value, "b/back");
	assert_int_equal(policy(m, "a/wp")->scope, ZT_SCOPE_WAYPOINT);
	assert_true(diags_have(&d, ZT_DIAG_WARNING, "waypoint"));
	assert_int_equal(policy(m, "a/aud")->action, ZT_ACTION_AUDIT);
	assert_true(diags_have(&d, ZT_DIAG_WARNING, "AUDIT is not enforced"));
	assert_true(policy(m, "a/dry")->dry_run);
	assert_false(policy(m, "a/sel")->dry_run);
	model_free(m);
	diags_release(&d);
}

/* Invalid objects: reported with object and field, applied fail-closed,
 * and the rest of the snapshot still applies. */
static void invalid_allow_allows_nothing(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	snap_pod(l, "a", "p", "10.0.0.1", "n1", NULL);
	add_authz(l, "a", "bad", "{\"rules\":[{\"from\":[{\"source\":{\"ipBlocks\":[\"10.0.0.0/33\"]}}]}]}");
	struct zt_model *m = build(l, &d);
	const struct zt_authz_policy *p = policy(m, "a/bad");
	assert_true(p->invalid);
	assert_int_equal(p->action, ZT_ACTION_ALLOW);
	assert_int_equal(p->n_rules, 0);
	assert_int_equal(d.n_invalid, 1);
	const struct zt_diag *g = d.items;
	while (g->level != ZT_DIAG_INVALID)
		g++;
	assert_string_equal(g->object, "AuthorizationPolicy a/bad");
	assert_string_equal(g->field, "spec.rules[0].from[0].source.ipBlocks[0]");
	assert_non_null(strstr(g->reason, "10.0.0.0/33"));
	assert_non_null(strstr(p->invalid_reason, "ipBlocks[0]"));
	assert_non_null(pod_by_ip(m, "10.0.0.1")); /* the snapshot applied */
	model_free(m);
	diags_release(&d);
}

/* A selector given as an array (found by tests/fuzz: its items have no
 * keys to check) is an invalid policy, not a crash. */
static void selector_that_is_not_an_object_is_invalid(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	snap_pod(l, "a", "p", "10.0.0.1", "n1", NULL);
	add_authz(l, "a", "arr", "{\"selector\":[{\"app\":\"web\"}],\"rules\":[{}]}");
	add_peer_authn(l, "a", "pa", "2026-01-01T00:00:00Z", "{\"selector\":[1],\"mtls\":{\"mode\":\"STRICT\"}}");
	struct zt_model *m = build(l, &d);
	const struct zt_authz_policy *p = policy(m, "a/arr");
	assert_true(p->invalid);
	assert_non_null(strstr(p->invalid_reason, "spec.selector: not an object"));
	assert_int_equal(d.n_invalid, 2);
	assert_non_null(pod_by_ip(m, "10.0.0.1"));
	model_free(m);
	diags_release(&d);
}

static void invalid_deny_denies_everything_in_scope(void **state)
{
	(void)state;
	const char *bad[][2] = {
		{ "{\"action\":\"DENY\",\"rules\":[{\"to\":[{\"operation\":{\"ports\":[\"http\"]}}]}]}",
		  "spec.rules[0].to[0].operation.ports[0]" },
		{ "{\"action\":\"DENY\",\"rules\":[{\"when\":[{\"key\":\"source.ip\"}]}]}",
		  "spec.rules[0].when[0]" },
		{ "{\"action\":\"DENY\",\"rules\":[{\"when\":[{\"key\":\"request.bogus\",\"values\":[\"1\"]}]}]}",
		  "spec.rules[0].when[0].key" },
		{ "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"principal\":[\"x\"]}}]}]}",
		  "spec.rules[0].from[0].source.principal" },
		{ "{\"action\":\"DENY\",\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"a*b\"]}}]}]}",
		  "spec.rules[0].from[0].source.principals[0]" },
		{ "{\"action\":\"REJECT\",\"rules\":[]}", "spec.action" },
		{ "{\"action\":\"DENY\",\"selector\":{\"matchLabels\":{\"app\":1}},\"rules\":[]}",
		  "spec.selector.matchLabels" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct zt_diags d;
		cJSON *l = snap_new();
		add_authz(l, "a", "bad", bad[i][0]);
		struct zt_model *m = build(l, &d);
		const struct zt_authz_policy *p = policy(m, "a/bad");
		assert_true(p->invalid);
		assert_int_equal(p->action, ZT_ACTION_DENY);
		assert_int_equal(p->n_rules, 1);
		assert_int_equal(p->rules[0].n, 0); /* matches every connection */
		assert_int_equal(p->scope, ZT_SCOPE_NAMESPACE);
		assert_true(d.n_invalid >= 1);
		if (strcmp(d.items[0].field, bad[i][1]))
			fail_msg("case %zu: field %s, expected %s", i, d.items[0].field, bad[i][1]);
		model_free(m);
		diags_release(&d);
	}
}

static void policies_are_selected_per_workload(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	snap_pod(l, "a", "web", "10.0.0.1", "n1", "{\"app\":\"web\"}");
	snap_pod(l, "a", "db", "10.0.0.2", "n1", "{\"app\":\"db\"}");
	snap_pod(l, "b", "web", "10.0.0.3", "n1", "{\"app\":\"web\"}");
	add_authz(l, "istio-system", "global", "{\"rules\":[{}]}");
	add_authz(l, "istio-system", "root-sel", "{\"selector\":{\"matchLabels\":{\"app\":\"db\"}},\"rules\":[{}]}");
	add_authz(l, "a", "ns", "{\"rules\":[{}]}");
	add_authz(l, "a", "web-only", "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"rules\":[{}]}");
	add_authz(l, "a", "waypoint", "{\"targetRef\":{\"kind\":\"Service\",\"name\":\"web\"},\"rules\":[{}]}");
	/* After the namespace's own: the lists keep the snapshot's order. */
	add_authz(l, "istio-system", "late", "{\"rules\":[{}]}");
	snap_pod(l, "istio-system", "gw", "10.0.0.4", "n1", "{\"app\":\"db\"}");
	struct zt_model *m = build(l, &d);
	const struct zt_workload *aweb = pod_by_ip(m, "10.0.0.1"), *adb = pod_by_ip(m, "10.0.0.2");
	const struct zt_workload *bweb = pod_by_ip(m, "10.0.0.3"), *gw = pod_by_ip(m, "10.0.0.4");
	assert_int_equal(aweb->n_policies, 4);
	assert_string_equal(aweb->policies[0]->key, "istio-system/global");
	assert_string_equal(aweb->policies[1]->key, "a/ns");
	assert_string_equal(aweb->policies[2]->key, "a/web-only");
	assert_string_equal(aweb->policies[3]->key, "istio-system/late");
	assert_int_equal(adb->n_policies, 4);
	assert_string_equal(adb->policies[1]->key, "istio-system/root-sel");
	assert_int_equal(bweb->n_policies, 2); /* only the global ones */
	/* A pod of the root namespace: each root policy once. */
	assert_int_equal(gw->n_policies, 3);
	assert_string_equal(gw->policies[0]->key, "istio-system/global");
	assert_string_equal(gw->policies[1]->key, "istio-system/root-sel");
	assert_string_equal(gw->policies[2]->key, "istio-system/late");
	model_free(m);
	diags_release(&d);
}

static void peer_authentication_levels_oldest_wins_and_port_modes(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	snap_pod(l, "a", "web", "10.0.0.1", "n1", "{\"app\":\"web\"}");
	snap_pod(l, "b", "x", "10.0.0.2", "n1", NULL);
	add_peer_authn(l, "istio-system", "mesh", "2026-01-01T00:00:00Z", "{\"mtls\":{\"mode\":\"STRICT\"}}");
	add_peer_authn(l, "a", "newer", "2026-03-01T00:00:00Z", "{\"mtls\":{\"mode\":\"DISABLE\"}}");
	add_peer_authn(l, "a", "older", "2026-02-01T00:00:00Z", "{\"mtls\":{\"mode\":\"PERMISSIVE\"}}");
	add_peer_authn(l, "a", "web", "2026-02-01T00:00:00Z",
		       "{\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"mtls\":{\"mode\":\"STRICT\"},"
		       "\"portLevelMtls\":{\"8080\":{\"mode\":\"PERMISSIVE\"}}}");
	add_peer_authn(l, "b", "ports-without-selector", "2026-02-01T00:00:00Z",
		       "{\"portLevelMtls\":{\"8080\":{\"mode\":\"DISABLE\"}}}");
	struct zt_model *m = build(l, &d);
	const struct zt_workload *web = pod_by_ip(m, "10.0.0.1"), *x = pod_by_ip(m, "10.0.0.2");
	assert_string_equal(web->peer_authn_mesh->name, "mesh");
	assert_int_equal(web->peer_authn_mesh->mode, ZT_MTLS_STRICT);
	assert_string_equal(web->peer_authn_namespace->name, "older");
	assert_string_equal(web->peer_authn_workload->name, "web");
	assert_int_equal(web->peer_authn_workload->n_ports, 1);
	assert_int_equal(web->peer_authn_workload->ports[0].port, 8080);
	assert_int_equal(web->peer_authn_workload->ports[0].mode, ZT_MTLS_PERMISSIVE);
	assert_string_equal(x->peer_authn_namespace->name, "ports-without-selector");
	assert_int_equal(x->peer_authn_namespace->n_ports, 0);
	assert_true(diags_have(&d, ZT_DIAG_WARNING, "only applies with a workload selector"));
	assert_null(x->peer_authn_workload);
	model_free(m);
	diags_release(&d);
}

static void invalid_peer_authentication_becomes_strict(void **state)
{
	(void)state;
	struct zt_diags d;
	cJSON *l = snap_new();
	snap_pod(l, "a", "web", "10.0.0.1", "n1", "{\"app\":\"web\"}");
	add_peer_authn(l, "a", "typo", "2026-02-01T00:00:00Z", "{\"mtls\":{\"mode\":\"PERMISIVE\"}}");
	struct zt_model *m = build(l, &d);
	const struct zt_peer_authn *p = pod_by_ip(m, "10.0.0.1")->peer_authn_namespace;
	assert_true(p->invalid);
	assert_int_equal(p->mode, ZT_MTLS_STRICT);
	assert_true(diags_have(&d, ZT_DIAG_INVALID, "spec.mtls.mode"));
	model_free(m);
	diags_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(principals_use_istiod_string_match_forms),
		cmocka_unit_test(from_to_and_when_become_and_of_or_clauses),
		cmocka_unit_test(empty_spec_allows_nothing_and_empty_rule_matches_all),
		cmocka_unit_test(http_fields_drop_allow_rules_and_are_stripped_from_deny),
		cmocka_unit_test(scopes_dry_run_and_service_accounts),
		cmocka_unit_test(invalid_allow_allows_nothing),
		cmocka_unit_test(selector_that_is_not_an_object_is_invalid),
		cmocka_unit_test(invalid_deny_denies_everything_in_scope),
		cmocka_unit_test(policies_are_selected_per_workload),
		cmocka_unit_test(peer_authentication_levels_oldest_wins_and_port_modes),
		cmocka_unit_test(invalid_peer_authentication_becomes_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
