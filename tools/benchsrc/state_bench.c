/* tools/bench state: builds a large synthetic snapshot (10,000 pods, 2,000
 * services, 1,000 AuthorizationPolicies by default) and prints parse+build
 * time, model memory and lookup latency. Figures, not assertions. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ztunnel/log.h"
#include "ztunnel/state.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static cJSON *obj(cJSON *list, const char *api, const char *kind, const char *ns, const char *name)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", api);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	if (ns)
		cJSON_AddStringToObject(md, "namespace", ns);
	cJSON_AddItemToArray(cJSON_GetObjectItem(list, "items"), o);
	return o;
}

static char *generate(int pods, int services, int policies, int namespaces)
{
	cJSON *l = cJSON_CreateObject();
	char ns[32], name[64], buf[96];

	cJSON_AddStringToObject(l, "apiVersion", "v1");
	cJSON_AddStringToObject(l, "kind", "List");
	cJSON_AddArrayToObject(l, "items");
	for (int n = 0; n < namespaces; n++) {
		snprintf(ns, sizeof(ns), "ns-%d", n);
		cJSON *o = obj(l, "v1", "Namespace", NULL, ns);
		cJSON *lb = cJSON_AddObjectToObject(cJSON_GetObjectItem(o, "metadata"), "labels");
		if (n % 2 == 0)
			cJSON_AddStringToObject(lb, "istio.io/dataplane-mode", "ambient");
	}
	for (int i = 0; i < pods; i++) {
		int n = i % namespaces, svc = i % services;
		snprintf(ns, sizeof(ns), "ns-%d", svc % namespaces);
		snprintf(name, sizeof(name), "pod-%d", i);
		cJSON *o = obj(l, "v1", "Pod", ns, name);
		cJSON *md = cJSON_GetObjectItem(o, "metadata");
		snprintf(buf, sizeof(buf), "uid-%d", i);
		cJSON_AddStringToObject(md, "uid", buf);
		cJSON *lb = cJSON_AddObjectToObject(md, "labels");
		snprintf(buf, sizeof(buf), "svc-%d", svc);
		cJSON_AddStringToObject(lb, "app", buf);
		cJSON_AddStringToObject(lb, "version", "v1");
		cJSON_AddStringToObject(lb, "pod-template-hash", "abcdef");
		cJSON *spec = cJSON_AddObjectToObject(o, "spec");
		snprintf(buf, sizeof(buf), "node-%d", i % 100);
		cJSON_AddStringToObject(spec, "nodeName", buf);
		snprintf(buf, sizeof(buf), "sa-%d", n % 7);
		cJSON_AddStringToObject(spec, "serviceAccountName", buf);
		cJSON *c = cJSON_CreateObject(), *ports = cJSON_AddArrayToObject(c, "ports");
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "name", "http");
		cJSON_AddNumberToObject(p, "containerPort", 8080);
		cJSON_AddItemToArray(ports, p);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "containers"), c);
		cJSON *st = cJSON_AddObjectToObject(o, "status");
		cJSON_AddStringToObject(st, "phase", "Running");
		snprintf(buf, sizeof(buf), "10.%d.%d.%d", 64 + i / 65536, (i / 256) % 256, i % 256);
		cJSON *ip = cJSON_CreateObject();
		cJSON_AddStringToObject(ip, "ip", buf);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(st, "podIPs"), ip);
		cJSON *cond = cJSON_CreateObject();
		cJSON_AddStringToObject(cond, "type", "Ready");
		cJSON_AddStringToObject(cond, "status", "True");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(st, "conditions"), cond);
	}
	for (int s = 0; s < services; s++) {
		snprintf(ns, sizeof(ns), "ns-%d", s % namespaces);
		snprintf(name, sizeof(name), "svc-%d", s);
		cJSON *o = obj(l, "v1", "Service", ns, name);
		cJSON *spec = cJSON_AddObjectToObject(o, "spec");
		snprintf(buf, sizeof(buf), "10.96.%d.%d", s / 256, s % 256);
		cJSON_AddStringToObject(spec, "clusterIP", buf);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "clusterIPs"), cJSON_CreateString(buf));
		cJSON_AddStringToObject(cJSON_AddObjectToObject(spec, "selector"), "app", name);
		cJSON *p = cJSON_CreateObject();
		cJSON_AddNumberToObject(p, "port", 80);
		cJSON_AddStringToObject(p, "targetPort", "http");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(spec, "ports"), p);
	}
	for (int i = 0; i < policies; i++) {
		snprintf(ns, sizeof(ns), "ns-%d", i % namespaces);
		snprintf(name, sizeof(name), "policy-%d", i);
		cJSON *o = obj(l, "security.istio.io/v1", "AuthorizationPolicy", ns, name);
		char spec[512];
		snprintf(spec, sizeof(spec),
			 "{\"selector\":{\"matchLabels\":{\"app\":\"svc-%d\"}},\"action\":\"%s\","
			 "\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"cluster.local/ns/ns-%d/sa/sa-1\","
			 "\"cluster.local/ns/ns-%d/*\"]}}],\"to\":[{\"operation\":{\"ports\":[\"8080\"]}}]}]}",
			 (i * 2) % services, i % 10 ? "ALLOW" : "DENY", i % namespaces, (i + 1) % namespaces);
		cJSON_AddItemToObject(o, "spec", cJSON_Parse(spec));
	}
	char *text = cJSON_PrintUnformatted(l);
	cJSON_Delete(l);
	return text;
}

int main(int argc, char **argv)
{
	int pods = argc > 1 ? atoi(argv[1]) : 10000, services = argc > 2 ? atoi(argv[2]) : 2000;
	int policies = argc > 3 ? atoi(argv[3]) : 1000, runs = 5;
	struct snapshot_opts opts = { "cluster.local", "istio-system" };
	double best = 1e9, total = 0;
	size_t model_bytes = 0;

	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	char *text = generate(pods, services, policies, 100);
	size_t len = strlen(text);
	printf("snapshot: %d pods, %d services, %d AuthorizationPolicies, %.1f MB JSON\n", pods,
	       services, policies, (double)len / 1e6);

	struct zt_model *m = NULL;
	for (int r = 0; r < runs; r++) {
		struct zt_diags d;
		diags_init(&d);
		model_free(m);
		double t0 = now_s();
		if (snapshot_build(text, len, &opts, &m, &d) < 0) {
			diags_print(&d, stderr);
			return 1;
		}
		double t = now_s() - t0;
		total += t;
		best = t < best ? t : best;
		model_bytes = m->arena.reserved_bytes;
		diags_release(&d);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("parse+build:   best %.0f ms, mean %.0f ms over %d runs   (goal <= 1000 ms)\n",
	       best * 1e3, total / runs * 1e3, runs);
	printf("model memory:  %.1f MB in the model arena; process peak RSS %.1f MB   (goal <= 200 MB)\n",
	       (double)model_bytes / 1e6, (double)ru.ru_maxrss / 1e3);

	/* Lookups over every pod IP in a shuffled order (cache-unfriendly). */
	uint32_t n = m->n_workloads;
	struct zt_ip *ips = malloc(n * sizeof(*ips));
	for (uint32_t i = 0; i < n; i++)
		ips[i] = m->workloads[i].ips[0];
	srand(42);
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rand() % (i + 1);
		struct zt_ip t = ips[i];
		ips[i] = ips[j];
		ips[j] = t;
	}
	const long iters = 10 * 1000 * 1000;
	uintptr_t sink = 0;
	double t0 = now_s();
	for (long i = 0; i < iters; i++)
		sink += (uintptr_t)model_workload_by_ip(m, &ips[i % n]);
	double per = (now_s() - t0) / (double)iters * 1e9;
	printf("lookup:        workload by IP %.0f ns", per);
	struct zt_ip vip;
	zt_ip_parse("10.96.3.7", &vip);
	t0 = now_s();
	for (long i = 0; i < iters; i++)
		sink += (uintptr_t)model_service_by_vip(m, &vip, 80, NULL);
	printf(", service by VIP:port %.0f ns   (goal <= 100 ns)%s\n",
	       (now_s() - t0) / (double)iters * 1e9, sink ? "" : " ");
	free(ips);
	model_free(m);
	free(text);
	return 0;
}
