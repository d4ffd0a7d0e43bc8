/* Routing of captured connections (sans-IO): who may be proxied, where a
 * VIP goes, and when the agent refuses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "../state/snap.h"
#include "ztunnel/proxy.h"

/* The node's pod table, as zt_pods holds it. */
static struct {
	const char *ip;
	bool enrolled;
} local_pods[] = {
	{ "10.0.1.1", true },  /* mesh/a  */
	{ "10.0.1.2", false }, /* plain/b */
	{ "10.0.1.3", true },  /* mesh/c  */
	{ "10.0.1.9", true },  /* enrolled by CNI, not in the snapshot yet */
};

static int pods(void *ctx, uint32_t ip, struct zt_pod *out)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(local_pods) / sizeof(local_pods[0]); i++) {
		if (inet_addr(local_pods[i].ip) == ip) {
			*out = (struct zt_pod){ .ifindex = (uint32_t)i + 10, .enrolled = local_pods[i].enrolled };
			return 0;
		}
	}
	return -2;
}

static struct zt_model *model(void)
{
	cJSON *l = snap_new();
	snap_ns(l, "mesh", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_ns(l, "plain", NULL);
	cJSON *a = snap_pod(l, "mesh", "a", "10.0.1.1", "n1", "{\"app\":\"web\"}");
	snap_pod(l, "plain", "b", "10.0.1.2", "n1", NULL);
	snap_pod(l, "mesh", "c", "10.0.1.3", "n1", NULL);
	snap_pod(l, "mesh", "remote", "10.0.2.1", "n2", "{\"app\":\"web\"}");
	cJSON *notready = snap_pod(l, "mesh", "starting", "10.0.2.2", "n2", "{\"app\":\"web\"}");
	cJSON *cond = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(notready, "status"), "conditions"), 0);
	cJSON_ReplaceItemInObject(cond, "status", cJSON_CreateString("False"));
	cJSON *ports = cJSON_Parse("[{\"name\":\"app\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}]");
	cJSON_AddItemToObject(cJSON_GetObjectItem(a, "spec"), "containers", ports);
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"web\",\"namespace\":\"mesh\"},"
		    "\"spec\":{\"clusterIP\":\"10.96.0.10\",\"selector\":{\"app\":\"web\"},"
		    "\"ports\":[{\"port\":80,\"targetPort\":\"http\"},{\"port\":81,\"targetPort\":9000}]}}");
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"empty\",\"namespace\":\"mesh\"},"
		    "\"spec\":{\"clusterIP\":\"10.96.0.11\",\"selector\":{\"app\":\"none\"},\"ports\":[{\"port\":80}]}}");
	return snap_ok(l);
}

static uint16_t p(uint16_t port)
{
	return htons(port);
}

static void enrolled_pod_to_pod_connects_from_its_own_ip(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	unsigned seed = 1;
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.0.2.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_int_equal(r.upstream_ip, inet_addr("10.0.2.1"));
	assert_int_equal(r.upstream_port, p(7000));
	assert_int_equal(r.bind_ip, inet_addr("10.0.1.1"));
	assert_string_equal(r.src->name, "a");
	assert_string_equal(r.dst->name, "remote");
	/* Unknown destination: passthrough to it as is. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("192.0.2.7"), p(443), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_null(r.dst);
	model_free(m);
}

/* A mesh pod newer than the snapshot waits (SPEC 3.1 step 3) rather than
 * leaving in plaintext without an identity. */
static void an_enrolled_pod_unknown_to_the_snapshot_waits(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	unsigned seed = 1;
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.9"), inet_addr("10.0.2.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_WAIT);
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.9"), inet_addr("10.96.0.10"), p(80), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_WAIT);
	/* A known mesh pod to a mesh pod: HBONE. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.0.2.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_true(r.hbone);
	model_free(m);
}

/* SPEC 8.5: from the Kubernetes API, a remote mesh pod whose agent has
 * not annotated its capture in place gets plaintext (it could not answer
 * HBONE; if captured after all, its inbound checks decide), unless it is
 * STRICT: then the connection waits for the annotation (and is refused
 * after 5 s); a mesh pod of this node is captured when zt_pods says so,
 * annotation or not. */
static void hbone_waits_for_the_destination_capture(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "mesh", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_pod(l, "mesh", "a", "10.0.1.1", "n1", NULL);
	snap_pod(l, "mesh", "c", "10.0.1.3", "n1", NULL);
	snap_pod(l, "mesh", "new", "10.0.2.1", "n2", NULL);
	snap_ns(l, "vault", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_pod(l, "vault", "locked", "10.0.2.3", "n2", NULL);
	snap_add(l, "{\"apiVersion\":\"security.istio.io/v1\",\"kind\":\"PeerAuthentication\","
		    "\"metadata\":{\"name\":\"m\",\"namespace\":\"vault\"},\"spec\":{\"mtls\":{\"mode\":\"STRICT\"}}}");
	cJSON *done = snap_pod(l, "mesh", "done", "10.0.2.2", "n2", NULL);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(cJSON_GetObjectItem(done, "metadata"), "annotations"),
				ZT_ANNOTATION_REDIRECTION, ZT_REDIRECTION_ENABLED);
	struct snapshot_opts opts = { "cluster.local", "istio-system", .capture_annotated = true };
	struct zt_model *m = snap_ok_opts(l, &opts);
	cJSON_Delete(l);
	struct route r;
	unsigned seed = 1;
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.0.2.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_false(r.hbone);
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.0.2.2"), p(7000), &seed, &r);
	assert_true(r.hbone);
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.0.2.3"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_WAIT);
	assert_non_null(strstr(r.gave_up, "STRICT"));
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.0.1.3"), p(7000), &seed, &r);
	assert_true(r.local_dst);
	assert_true(r.hbone);
	model_free(m);
}

/* Non-enrolled sources are relayed only towards the mesh: a frontend of a
 * mesh service, or a mesh pod itself (what kube-proxy's DNAT of such a
 * frontend leaves us), always in plaintext so the destination's inbound
 * checks decide; never to anything else (no open relay). */
static void non_enrolled_or_foreign_sources_only_reach_the_mesh_in_plaintext(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	unsigned seed = 1;
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.2"), inet_addr("192.0.2.7"), p(443), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE);
	assert_non_null(strstr(r.reason, "not an enrolled pod"));
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.2.1"), inet_addr("192.0.2.7"), p(443), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE);
	/* To a remote mesh pod: plaintext as the local client; its node checks. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.2"), inet_addr("10.0.2.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_false(r.hbone);
	assert_false(r.local_dst);
	assert_int_equal(r.bind_ip, inet_addr("10.0.1.2"));
	/* From another node to a local mesh pod: the plaintext inbound checks. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.2.1"), inet_addr("10.0.1.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_false(r.hbone);
	assert_true(r.local_dst);
	assert_int_equal(r.bind_ip, inet_addr("10.0.2.1"));
	model_free(m);
}

static void vip_picks_a_ready_endpoint_and_its_named_port(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	unsigned seed = 7;
	for (int i = 0; i < 50; i++) {
		route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.3"), inet_addr("10.96.0.10"), p(80), &seed, &r);
		assert_int_equal(r.verdict, ROUTE_CONNECT);
		/* a declares http=8080; remote does not: only a serves port 80, and
		 * the not-ready pod is never picked. */
		assert_int_equal(r.upstream_ip, inet_addr("10.0.1.1"));
		assert_int_equal(r.upstream_port, p(8080));
		assert_string_equal(r.service->name, "web");
	}
	int seen_remote = 0;
	for (int i = 0; i < 50; i++) {
		route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.3"), inet_addr("10.96.0.10"), p(81), &seed, &r);
		assert_int_equal(r.upstream_port, p(9000));
		assert_int_not_equal(r.upstream_ip, inet_addr("10.0.2.2"));
		seen_remote |= r.upstream_ip == inet_addr("10.0.2.1");
	}
	assert_true(seen_remote);
	model_free(m);
}

static void vip_without_endpoints_is_refused_and_hairpin_does_not_spoof(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	unsigned seed = 1;
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.96.0.11"), p(80), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE);
	assert_string_equal(r.reason, "no healthy upstream");
	/* a reaching itself through its own service. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("10.96.0.10"), p(80), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_int_equal(r.bind_ip, 0);
	/* A non-mesh client is proxied only for a VIP with mesh endpoints. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.2"), inet_addr("10.96.0.10"), p(80), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.1"), inet_addr("127.0.0.1"), p(15001), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE);
	model_free(m);
}

static void inbound_only_to_enrolled_local_pods(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	route_inbound_plain(m, pods, NULL, inet_addr("10.0.2.1"), inet_addr("10.0.1.1"), p(7000), &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_int_equal(r.bind_ip, inet_addr("10.0.2.1"));
	assert_int_equal(r.upstream_ip, inet_addr("10.0.1.1"));
	route_inbound_plain(m, pods, NULL, inet_addr("10.0.2.1"), inet_addr("10.0.1.2"), p(7000), &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE); /* not enrolled: not ours to deliver */
	route_inbound_plain(m, pods, NULL, inet_addr("10.0.2.1"), inet_addr("10.0.9.9"), p(7000), &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE); /* never an open relay */
	route_inbound_plain(m, pods, NULL, inet_addr("10.0.2.1"), inet_addr("10.0.1.1"), p(15008), &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE);
	route_inbound_plain(NULL, pods, NULL, inet_addr("10.0.2.1"), inet_addr("10.0.1.1"), p(7000), &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT); /* capture decided; the model only names */
	model_free(m);
}

/* Issue 8/13 items 3-5: a source outside the mesh never gets an identity
 * (an opted-out pod sharing a service account would pass STRICT and ALLOW
 * rules through a VIP, and every other listed non-mesh pod would wait 5 s
 * for a certificate it can never have); plaintext to an enrolled pod of
 * this node is marked for the plaintext inbound checks whatever its source;
 * a local enrolled pod newer than the snapshot is waited for, never
 * reached in plaintext. */
static void non_mesh_sources_never_get_hbone_and_local_mesh_pods_are_checked(void **state)
{
	(void)state;
	struct zt_model *m = model();
	struct route r;
	unsigned seed = 3;
	int local = 0, remote = 0;
	for (int i = 0; i < 60; i++) {
		route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.2"), inet_addr("10.96.0.10"), p(81), &seed, &r);
		assert_int_equal(r.verdict, ROUTE_CONNECT);
		assert_false(r.hbone);
		assert_int_equal(r.bind_ip, inet_addr("10.0.1.2"));
		if (r.upstream_ip == inet_addr("10.0.1.1")) {
			assert_true(r.local_dst);
			local++;
		} else {
			assert_int_equal(r.upstream_ip, inet_addr("10.0.2.1"));
			assert_false(r.local_dst); /* its own node's agent checks it */
			remote++;
		}
	}
	assert_true(local && remote);
	/* A mesh pod to a local mesh pod: HBONE (its 15008 side checks it). */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.3"), inet_addr("10.0.1.1"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_true(r.hbone);
	assert_true(r.local_dst);
	/* Enrolled here by CNI, not in the snapshot yet: wait, then refuse. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.3"), inet_addr("10.0.1.9"), p(7000), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_WAIT);
	assert_non_null(strstr(r.gave_up, "enrolled but not in the snapshot"));
	/* A non-mesh pod unknown to the model reaching a mesh pod by VIP. */
	route_outbound(m, pods, NULL, NULL, inet_addr("10.0.1.2"), inet_addr("10.96.0.10"), p(80), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_false(r.hbone);
	assert_true(r.local_dst);
	model_free(m);
}

/* Frontends the node forwards (issue 8/13 item 1): nodePorts and
 * hostPorts on this node's addresses, external and load-balancer IPs; a
 * client from outside gets an endpoint chosen by the agent, only a local
 * one under externalTrafficPolicy: Local, and reaches a local pod as
 * itself (so the inbound checks see it) or a remote one from the node's
 * address (the reply must come back through us). */
static void node_frontends_pick_endpoints_and_honour_local_policy(void **state)
{
	(void)state;
	cJSON *l = snap_new();
	snap_ns(l, "mesh", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_pod(l, "mesh", "a", "10.0.1.1", "n1", "{\"app\":\"web\"}");
	cJSON *c = snap_pod(l, "mesh", "c", "10.0.1.3", "n1", NULL);
	snap_pod(l, "mesh", "remote", "10.0.2.1", "n2", "{\"app\":\"web\"}");
	cJSON_AddItemToObject(cJSON_GetObjectItem(c, "spec"), "containers",
			      cJSON_Parse("[{\"name\":\"app\",\"ports\":[{\"containerPort\":7100,\"hostPort\":8100}]}]"));
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"local\",\"namespace\":\"mesh\"},"
		    "\"spec\":{\"type\":\"LoadBalancer\",\"clusterIP\":\"10.96.0.30\",\"selector\":{\"app\":\"web\"},"
		    "\"externalTrafficPolicy\":\"Local\",\"externalIPs\":[\"192.0.2.50\"],"
		    "\"ports\":[{\"port\":80,\"targetPort\":7000,\"nodePort\":30080}]},"
		    "\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.60\"},{\"hostname\":\"lb.example\"}]}}}");
	snap_add(l, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"cluster\",\"namespace\":\"mesh\"},"
		    "\"spec\":{\"type\":\"NodePort\",\"clusterIP\":\"10.96.0.31\",\"selector\":{\"app\":\"web\"},"
		    "\"ports\":[{\"port\":80,\"targetPort\":7000,\"nodePort\":30081}]}}");
	struct zt_model *m = snap_ok(l);
	uint32_t addrs[] = { inet_addr("10.255.0.1") };
	struct route_node node = { "n1", addrs, 1 };
	uint32_t client = inet_addr("203.0.113.9");
	struct route r;
	unsigned seed = 5;
	const char *local_frontends[][2] = { { "10.255.0.1", "30080" }, { "192.0.2.50", "80" }, { "192.0.2.60", "80" } };
	for (int f = 0; f < 3; f++) {
		for (int i = 0; i < 20; i++) {
			route_outbound(m, pods, NULL, &node, client, inet_addr(local_frontends[f][0]),
				       p((uint16_t)atoi(local_frontends[f][1])), &seed, &r);
			assert_int_equal(r.verdict, ROUTE_CONNECT);
			assert_int_equal(r.upstream_ip, inet_addr("10.0.1.1")); /* Local: never remote */
			assert_int_equal(r.upstream_port, p(7000));
			assert_true(r.local_dst);
			assert_false(r.hbone);
			assert_int_equal(r.bind_ip, client);
		}
	}
	int remote = 0;
	for (int i = 0; i < 40; i++) {
		route_outbound(m, pods, NULL, &node, client, inet_addr("10.255.0.1"), p(30081), &seed, &r);
		assert_int_equal(r.verdict, ROUTE_CONNECT);
		if (r.upstream_ip == inet_addr("10.0.2.1")) {
			remote++;
			assert_int_equal(r.bind_ip, 0); /* from the node's address */
		} else {
			assert_int_equal(r.bind_ip, client);
		}
	}
	assert_true(remote > 0);
	route_outbound(m, pods, NULL, &node, client, inet_addr("10.255.0.1"), p(8100), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_CONNECT);
	assert_int_equal(r.upstream_ip, inet_addr("10.0.1.3"));
	assert_int_equal(r.upstream_port, p(7100));
	assert_true(r.local_dst);
	route_outbound(m, pods, NULL, &node, client, inet_addr("10.255.0.1"), p(9999), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE);
	route_outbound(m, pods, NULL, NULL, client, inet_addr("10.255.0.1"), p(30080), &seed, &r);
	assert_int_equal(r.verdict, ROUTE_REFUSE); /* not known as this node's address */
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(enrolled_pod_to_pod_connects_from_its_own_ip),
		cmocka_unit_test(non_enrolled_or_foreign_sources_only_reach_the_mesh_in_plaintext),
		cmocka_unit_test(an_enrolled_pod_unknown_to_the_snapshot_waits),
		cmocka_unit_test(vip_picks_a_ready_endpoint_and_its_named_port),
		cmocka_unit_test(vip_without_endpoints_is_refused_and_hairpin_does_not_spoof),
		cmocka_unit_test(inbound_only_to_enrolled_local_pods),
		cmocka_unit_test(non_mesh_sources_never_get_hbone_and_local_mesh_pods_are_checked),
		cmocka_unit_test(hbone_waits_for_the_destination_capture),
		cmocka_unit_test(node_frontends_pick_endpoints_and_honour_local_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
