/* Snapshot -> model: enrollment rules, identities, services and endpoints,
 * lookups, and every whole-snapshot error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"

#define AMBIENT "{\"istio.io/dataplane-mode\":\"ambient\"}"
#define OPT_OUT "{\"istio.io/dataplane-mode\":\"none\"}"

static void namespace_label_enrolls_its_pods(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_ns(l, "b", NULL);
	snap_pod(l, "a", "p1", "10.0.0.1", "n1", NULL);
	snap_pod(l, "b", "p2", "10.0.0.2", "n1", NULL);
	struct zt_model *m = snap_ok(l);
	const struct zt_workload *w1 = pod_by_ip(m, "10.0.0.1"), *w2 = pod_by_ip(m, "10.0.0.2");
	assert_true(w1->enrolled);
	assert_int_equal(w1->enrollment, ZT_ENROLLED_NAMESPACE_LABEL);
	assert_false(w2->enrolled);
	assert_int_equal(w2->enrollment, ZT_NOT_ENROLLED_NO_LABEL);
	assert_int_equal(m->n_enrolled, 1);
	model_free(m);
}

static void pod_label_wins_over_namespace_label(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_ns(l, "b", OPT_OUT);
	snap_pod(l, "a", "out", "10.0.0.1", "n1", OPT_OUT);
	snap_pod(l, "b", "in", "10.0.0.2", "n1", AMBIENT);
	snap_pod(l, "b", "plain", "10.0.0.3", "n1", NULL);
	struct zt_model *m = snap_ok(l);
	assert_false(pod_by_ip(m, "10.0.0.1")->enrolled);
	assert_int_equal(pod_by_ip(m, "10.0.0.1")->enrollment, ZT_NOT_ENROLLED_POD_OPT_OUT);
	assert_true(pod_by_ip(m, "10.0.0.2")->enrolled);
	assert_int_equal(pod_by_ip(m, "10.0.0.2")->enrollment, ZT_ENROLLED_POD_LABEL);
	assert_false(pod_by_ip(m, "10.0.0.3")->enrolled);
	model_free(m);
}

static void host_network_sidecar_and_kube_system_are_never_enrolled(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_ns(l, "kube-system", AMBIENT);
	cJSON *hn = snap_pod(l, "a", "hostnet", "10.9.0.1", "n1", AMBIENT);
	cJSON_AddTrueToObject(cJSON_GetObjectItem(hn, "spec"), "hostNetwork");
	cJSON *sc = snap_pod(l, "a", "sidecar", "10.0.0.2", "n1", AMBIENT);
	cJSON *ann = cJSON_AddObjectToObject(cJSON_GetObjectItem(sc, "metadata"), "annotations");
	cJSON_AddStringToObject(ann, "sidecar.istio.io/status", "{}");
	snap_pod(l, "kube-system", "dns", "10.0.0.3", "n1", AMBIENT);
	struct zt_model *m = snap_ok(l);
	/* hostNetwork pods carry the node IP: not indexed by IP. */
	assert_null(pod_by_ip(m, "10.9.0.1"));
	const struct zt_workload *h = model_workload_by_uid(m, "uid-a-hostnet");
	assert_non_null(h);
	assert_false(h->enrolled);
	assert_int_equal(h->enrollment, ZT_NOT_ENROLLED_HOST_NETWORK);
	assert_int_equal(pod_by_ip(m, "10.0.0.2")->enrollment, ZT_NOT_ENROLLED_SIDECAR);
	assert_int_equal(pod_by_ip(m, "10.0.0.3")->enrollment, ZT_NOT_ENROLLED_KUBE_SYSTEM);
	assert_int_equal(m->n_enrolled, 0);
	assert_non_null(strstr(zt_enrollment_reason(ZT_NOT_ENROLLED_SIDECAR), "sidecar"));
	model_free(m);
}

static void redirection(cJSON *pod, const char *value)
{
	cJSON *ann = cJSON_AddObjectToObject(cJSON_GetObjectItem(pod, "metadata"), "annotations");
	cJSON_AddStringToObject(ann, ZT_ANNOTATION_REDIRECTION, value);
}

/* SPEC 8.5: from the Kubernetes API a pod is HBONE to other nodes only
 * once its agent annotated its capture in place; a snapshot file says
 * nothing of capture (every enrolled pod counts as captured). "disabled"
 * opts a pod out, as in Istio. */
static void the_redirection_annotation_says_whether_capture_is_in_place(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_pod(l, "a", "new", "10.0.0.1", "n1", NULL);
	redirection(snap_pod(l, "a", "captured", "10.0.0.2", "n1", NULL), "enabled");
	redirection(snap_pod(l, "a", "out", "10.0.0.3", "n1", NULL), "disabled");
	redirection(snap_pod(l, "a", "odd", "10.0.0.4", "n1", NULL), "pending");
	struct snapshot_opts opts = { "cluster.local", "istio-system", .capture_annotated = true };
	struct zt_model *m = snap_ok_opts(l, &opts);
	assert_true(pod_by_ip(m, "10.0.0.1")->enrolled);
	assert_false(pod_by_ip(m, "10.0.0.1")->captured);
	assert_true(pod_by_ip(m, "10.0.0.2")->captured);
	assert_false(pod_by_ip(m, "10.0.0.3")->enrolled);
	assert_int_equal(pod_by_ip(m, "10.0.0.3")->enrollment, ZT_NOT_ENROLLED_ANNOTATION_OPT_OUT);
	assert_false(pod_by_ip(m, "10.0.0.4")->captured);
	model_free(m);
	struct zt_model *file = snap_ok(l); /* frees l */
	assert_true(pod_by_ip(file, "10.0.0.1")->captured);
	assert_false(pod_by_ip(file, "10.0.0.3")->enrolled);
	model_free(file);
}

static void removing_the_namespace_label_releases_pods_in_the_next_model(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_pod(l, "a", "p", "10.0.0.1", "n1", NULL);
	struct zt_model *m1 = snap_ok(l);
	l = snap_new();
	snap_ns(l, "a", "{\"team\":\"x\"}");
	snap_pod(l, "a", "p", "10.0.0.1", "n1", NULL);
	struct zt_model *m2 = snap_ok(l);
	assert_true(pod_by_ip(m1, "10.0.0.1")->enrolled);
	assert_false(pod_by_ip(m2, "10.0.0.1")->enrolled);
	model_free(m1);
	model_free(m2);
}

static void unknown_dataplane_mode_value_is_a_warning_and_unset(void **state)
{
	(void)state;
	struct zt_diags d;
	struct zt_model *m;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_pod(l, "a", "p", "10.0.0.1", "n1", "{\"istio.io/dataplane-mode\":\"Ambient\"}");
	diags_init(&d);
	assert_int_equal(snap_build(l, &m, &d), 0);
	assert_true(diags_have(&d, ZT_DIAG_WARNING, "\"Ambient\""));
	assert_true(pod_by_ip(m, "10.0.0.1")->enrolled); /* namespace label still applies */
	model_free(m);
	diags_release(&d);
	cJSON_Delete(l);
}

static void identity_uses_configured_trust_domain_and_default_sa(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", NULL);
	cJSON *p = snap_pod(l, "a", "p", "10.0.0.1", "n1", NULL);
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(p, "spec"), "serviceAccountName");
	snap_pod(l, "a", "q", "10.0.0.2", "n1", NULL);
	char *text = cJSON_PrintUnformatted(l);
	struct snapshot_opts opts = { "corp.example", "istio-system" };
	struct zt_diags d;
	struct zt_model *m;
	diags_init(&d);
	assert_int_equal(snapshot_build(text, strlen(text), &opts, &m, &d), 0);
	assert_string_equal(pod_by_ip(m, "10.0.0.1")->identity, "spiffe://corp.example/ns/a/sa/default");
	assert_string_equal(pod_by_ip(m, "10.0.0.2")->identity, "spiffe://corp.example/ns/a/sa/q");
	model_free(m);
	diags_release(&d);
	free(text);
	cJSON_Delete(l);
}

static void kubectl_fixture_models_every_field(void **state)
{
	(void)state;
	size_t len;
	char *text = read_fixture("cluster.json", &len);
	struct snapshot_opts opts = { "cluster.local", "istio-system" };
	struct zt_diags d;
	struct zt_model *m;
	diags_init(&d);
	assert_int_equal(snapshot_build(text, len, &opts, &m, &d), 0);
	free(text);
	assert_int_equal(d.n_errors + d.n_invalid, 0);
	assert_int_equal(m->n_workloads, 7); /* the Succeeded pod is not a workload */

	const struct zt_workload *web = pod_by_ip(m, "10.244.1.2");
	assert_string_equal(web->name, "web-7d4b9c8f6-abcde"); /* not the finished job's */
	assert_string_equal(web->identity, "spiffe://cluster.local/ns/shop/sa/web-sa");
	assert_string_equal(web->workload_name, "web");
	assert_string_equal(web->workload_type, "deployment");
	assert_string_equal(web->canonical_name, "web");
	assert_string_equal(web->canonical_revision, "v2");
	assert_string_equal(web->node, "n1");
	assert_true(web->ready);
	assert_true(web->enrolled);

	const struct zt_workload *billing = pod_by_ip(m, "fd00:10:244:1::3");
	assert_non_null(billing);
	assert_ptr_equal(billing, pod_by_ip(m, "10.244.1.3"));
	assert_string_equal(billing->canonical_name, "billing"); /* app.kubernetes.io/name */
	assert_string_equal(billing->canonical_revision, "latest");
	assert_string_equal(billing->identity, "spiffe://cluster.local/ns/legacy/sa/default");
	assert_int_equal(billing->enrollment, ZT_ENROLLED_POD_LABEL);

	assert_ptr_equal(model_workload_by_uid(m, "22222222-2222-4222-8222-222222222222"),
			 pod_by_ip(m, "10.244.2.2"));
	assert_false(pod_by_ip(m, "10.244.2.2")->ready);

	const struct zt_node_workloads *n1 = model_node_workloads(m, "n1");
	assert_non_null(n1);
	assert_int_equal(n1->n, 3); /* web, billing, hostNetwork proxy */
	assert_null(model_node_workloads(m, "n9"));
	model_free(m);
	diags_release(&d);
}

static void service_resolves_named_target_ports_per_pod(void **state)
{
	(void)state;
	size_t len;
	char *text = read_fixture("cluster.json", &len);
	struct snapshot_opts opts = { 0 };
	struct zt_diags d;
	struct zt_model *m;
	diags_init(&d);
	assert_int_equal(snapshot_build(text, len, &opts, &m, &d), 0);
	free(text);
	struct zt_ip vip;
	const struct zt_service_port *sp = NULL;
	zt_ip_parse("10.96.0.10", &vip);
	const struct zt_service *s = model_service_by_vip(m, &vip, 80, &sp);
	assert_non_null(s);
	assert_string_equal(s->hostname, "web.shop.svc.cluster.local");
	assert_int_equal(sp->target_port, 0);
	assert_string_equal(sp->target_port_name, "http");
	assert_null(model_service_by_vip(m, &vip, 81, NULL));
	/* web selects both web pods (and not the proxies, which are app=proxy). */
	assert_int_equal(s->n_endpoints, 2);
	for (uint32_t i = 0; i < s->n_endpoints; i++) {
		const struct zt_endpoint *e = &s->endpoints[i];
		if (!strcmp(e->workload->name, "web-7d4b9c8f6-abcde")) {
			assert_int_equal(e->target_ports[0], 8080);
			assert_true(e->ready);
		} else {
			assert_int_equal(e->target_ports[0], 8081); /* same name, other number */
			assert_false(e->ready);
		}
		assert_int_equal(e->target_ports[1], 9090);
	}
	const struct zt_service *billing = model_service_by_name(m, "legacy", "billing");
	assert_non_null(billing);
	assert_int_equal(billing->n_vips, 0); /* headless */
	assert_int_equal(billing->ports[0].target_port, 7000); /* defaults to port */
	assert_int_equal(billing->n_endpoints, 1);
	model_free(m);
	diags_release(&d);
}

static void endpoint_slices_replace_selector_endpoints(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "a", AMBIENT);
	snap_pod(l, "a", "p1", "10.0.0.1", "n1", "{\"app\":\"x\"}");
	snap_pod(l, "a", "p2", "10.0.0.2", "n1", "{\"app\":\"y\"}");
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"namespace\":\"a\"},"
		    "\"spec\":{\"clusterIPs\":[\"10.96.0.1\"],\"selector\":{\"app\":\"x\"},"
		    "\"ports\":[{\"name\":\"web\",\"port\":80,\"targetPort\":\"web\"}]}}");
	snap_add(l, "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		    "\"metadata\":{\"name\":\"s-abc\",\"namespace\":\"a\",\"labels\":{\"kubernetes.io/service-name\":\"s\"}},"
		    "\"endpoints\":[{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":false}},"
		    "{\"addresses\":[\"192.0.2.9\"]}],"
		    "\"ports\":[{\"name\":\"web\",\"port\":8443}]}");
	/* A second slice of the same service adds to it; a slice of a service
	 * of the same name in another namespace does not. */
	snap_ns(l, "b", AMBIENT);
	snap_pod(l, "b", "p3", "10.0.0.3", "n1", "{\"app\":\"x\"}");
	snap_add(l, "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		    "\"metadata\":{\"name\":\"s-def\",\"namespace\":\"a\",\"labels\":{\"kubernetes.io/service-name\":\"s\"}},"
		    "\"endpoints\":[{\"addresses\":[\"10.0.0.1\"]}],"
		    "\"ports\":[{\"name\":\"web\",\"port\":8444}]}");
	snap_add(l, "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		    "\"metadata\":{\"name\":\"s-xyz\",\"namespace\":\"b\",\"labels\":{\"kubernetes.io/service-name\":\"s\"}},"
		    "\"endpoints\":[{\"addresses\":[\"10.0.0.3\"]}],"
		    "\"ports\":[{\"name\":\"web\",\"port\":8445}]}");
	struct zt_model *m = snap_ok(l);
	const struct zt_service *s = model_service_by_name(m, "a", "s");
	assert_true(s->from_endpoint_slices);
	assert_int_equal(s->n_endpoints, 2); /* 192.0.2.9 is no known pod */
	assert_string_equal(s->endpoints[0].workload->name, "p2");
	assert_int_equal(s->endpoints[0].target_ports[0], 8443);
	assert_false(s->endpoints[0].ready);
	assert_string_equal(s->endpoints[1].workload->name, "p1");
	assert_int_equal(s->endpoints[1].target_ports[0], 8444);
	model_free(m);
}

static void expect_rejected(cJSON *l, const char *text, const char *needle)
{
	struct zt_diags d;
	struct zt_model *m = NULL;
	struct snapshot_opts opts = { 0 };
	diags_init(&d);
	int r = l ? snap_build(l, &m, &d) : snapshot_build(text, strlen(text), &opts, &m, &d);
	assert_int_equal(r, -EINVAL);
	assert_null(m);
	assert_true(d.n_errors > 0);
	assert_true(diags_have(&d, ZT_DIAG_ERROR, needle));
	diags_release(&d);
	cJSON_Delete(l);
}

static void invalid_and_truncated_json_are_rejected_with_position(void **state)
{
	(void)state;
	expect_rejected(NULL, "{\"kind\": \"List\",\n \"items\": [ {\"kind\": }", "line 2");
	expect_rejected(NULL, "{\"kind\": \"List\", \"items\": [", "truncated");
	expect_rejected(NULL, "", "invalid JSON");
}

static void wrong_kinds_are_rejected(void **state)
{
	(void)state;
	expect_rejected(NULL, "{\"kind\": \"Pod\", \"metadata\": {}}", "not a Kubernetes List");
	expect_rejected(NULL, "[1, 2]", "not a Kubernetes List");
	cJSON *l = snap_new();
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"namespace\":\"a\"}}");
	expect_rejected(l, NULL, "unexpected kind \"ConfigMap\"");
	l = snap_new();
	snap_add(l, "{\"apiVersion\":\"security.istio.io/v2\",\"kind\":\"AuthorizationPolicy\",\"metadata\":{\"name\":\"p\",\"namespace\":\"a\"}}");
	expect_rejected(l, NULL, "unsupported apiVersion");
	l = snap_new();
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}");
	expect_rejected(l, NULL, "metadata.namespace");
	l = snap_new();
	snap_add(l, "42");
	expect_rejected(l, NULL, "items[0]");
}

static void duplicate_pod_ips_and_vips_are_rejected(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_pod(l, "a", "p1", "10.0.0.1", "n1", NULL);
	snap_pod(l, "b", "p2", "10.0.0.1", "n2", NULL);
	expect_rejected(l, NULL, "IP 10.0.0.1 is also used by Pod");
	l = snap_new();
	const char *svc = "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"a\"},"
			  "\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":80}]}}";
	char buf[512];
	snprintf(buf, sizeof(buf), svc, "s1");
	snap_add(l, buf);
	snprintf(buf, sizeof(buf), svc, "s2");
	snap_add(l, buf);
	expect_rejected(l, NULL, "cluster IP 10.96.0.1 is also used");
	l = snap_new();
	snap_ns(l, "a", NULL);
	snap_ns(l, "a", NULL);
	expect_rejected(l, NULL, "duplicate Namespace a");
}

static void malformed_pod_and_service_fields_are_rejected(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_pod(l, "a", "p1", "10.0.0.300", "n1", NULL);
	expect_rejected(l, NULL, "status.podIPs[0].ip");
	l = snap_new();
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"namespace\":\"a\"},"
		    "\"spec\":{\"clusterIP\":\"10.96.0.1\",\"ports\":[{\"port\":70000}]}}");
	expect_rejected(l, NULL, "spec.ports[0].port");
	l = snap_new();
	snap_pod(l, "a", "p1", "10.0.0.1", "n1", "{\"app\": 3}");
	expect_rejected(l, NULL, "metadata.labels");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(namespace_label_enrolls_its_pods),
		cmocka_unit_test(pod_label_wins_over_namespace_label),
		cmocka_unit_test(host_network_sidecar_and_kube_system_are_never_enrolled),
		cmocka_unit_test(the_redirection_annotation_says_whether_capture_is_in_place),
		cmocka_unit_test(removing_the_namespace_label_releases_pods_in_the_next_model),
		cmocka_unit_test(unknown_dataplane_mode_value_is_a_warning_and_unset),
		cmocka_unit_test(identity_uses_configured_trust_domain_and_default_sa),
		cmocka_unit_test(kubectl_fixture_models_every_field),
		cmocka_unit_test(service_resolves_named_target_ports_per_pod),
		cmocka_unit_test(endpoint_slices_replace_selector_endpoints),
		cmocka_unit_test(invalid_and_truncated_json_are_rejected_with_position),
		cmocka_unit_test(wrong_kinds_are_rejected),
		cmocka_unit_test(duplicate_pod_ips_and_vips_are_rejected),
		cmocka_unit_test(malformed_pod_and_service_fields_are_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
