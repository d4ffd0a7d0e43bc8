/* Enrollment of a CNI-added pod against the snapshot (sans-IO). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "../state/snap.h"
#include "ztunnel/enroll.h"

static struct zt_model *model(void)
{
	cJSON *l = snap_new();
	snap_ns(l, "mesh", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_ns(l, "plain", NULL);
	snap_ns(l, "kube-system", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_pod(l, "mesh", "optout", "10.0.0.1", "n1", "{\"istio.io/dataplane-mode\":\"none\"}");
	snap_pod(l, "plain", "in", "10.0.0.2", "n1", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	return snap_ok(l);
}

static struct enroll_pod pod(const char *uid, const char *ns, const char *ip)
{
	struct enroll_pod p = { 0 };
	snprintf(p.uid, sizeof(p.uid), "%s", uid);
	snprintf(p.ns, sizeof(p.ns), "%s", ns);
	if (ip)
		p.ips[p.n_ips++] = inet_addr(ip);
	return p;
}

static void the_snapshot_wins_when_it_knows_the_pod(void **state)
{
	(void)state;
	struct zt_model *m = model();
	bool enrolled = true;
	struct enroll_pod p = pod("uid-mesh-optout", "mesh", "10.0.0.1");
	assert_non_null(strstr(enroll_decide(m, &p, &enrolled), "none"));
	assert_false(enrolled);
	p = pod("other-uid", "plain", "10.0.0.2"); /* found by IP */
	assert_non_null(strstr(enroll_decide(m, &p, &enrolled), "pod label"));
	assert_true(enrolled);
	model_free(m);
}

static void a_pod_newer_than_the_snapshot_follows_its_namespace(void **state)
{
	(void)state;
	struct zt_model *m = model();
	bool enrolled = false;
	struct enroll_pod p = pod("new-1", "mesh", "10.0.0.9");
	assert_non_null(strstr(enroll_decide(m, &p, &enrolled), "pending"));
	assert_true(enrolled);
	p = pod("new-2", "plain", "10.0.0.10");
	enroll_decide(m, &p, &enrolled);
	assert_false(enrolled);
	p = pod("new-3", "kube-system", "10.0.0.11");
	enrolled = true;
	enroll_decide(m, &p, &enrolled);
	assert_false(enrolled);
	p = pod("new-4", "unknown-ns", "10.0.0.12");
	enrolled = true;
	enroll_decide(m, &p, &enrolled);
	assert_false(enrolled);
	model_free(m);
}

static void without_a_snapshot_nothing_changes(void **state)
{
	(void)state;
	bool enrolled = true;
	struct enroll_pod p = pod("x", "mesh", "10.0.0.9");
	assert_string_equal(enroll_decide(NULL, &p, &enrolled), "no snapshot yet");
	assert_true(enrolled);
	struct zt_model *m = model();
	p = pod("", "", "10.0.0.99"); /* restored from pins: no namespace known */
	enroll_decide(m, &p, &enrolled);
	assert_true(enrolled);
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_snapshot_wins_when_it_knows_the_pod),
		cmocka_unit_test(a_pod_newer_than_the_snapshot_follows_its_namespace),
		cmocka_unit_test(without_a_snapshot_nothing_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
