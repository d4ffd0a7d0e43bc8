/* Fuzz target: a CNI ADD as it travels from the container runtime to the
 * agent, minus the sockets and BPF. Input: the network configuration the
 * runtime writes to the plugin's stdin (with prevResult), optionally
 * followed by a NUL and the CNI_ARGS string ("K8S_POD_NAMESPACE=..;..").
 *
 * Plugin side (ztunnel/cni/main.c): its decoding helpers are static and
 * run() also reads stdin and calls the agent, so main.c is compiled in
 * here and the pure steps of run() are replayed: cniVersion check,
 * CNI_ARGS lookup (cni_arg), the request built from prevResult
 * (add_prev_result). Agent side (ztunnel/enroll/cni_server.c): cni_add
 * needs the node's interfaces and BPF maps, so its request decoding is
 * replayed (field copies, IPv4 list) and the pure decision,
 * enroll_decide, is made against a fixed snapshot. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ztunnel/enroll.h"
#include "ztunnel/state.h"

/* The plugin, with its main renamed; never called. */
int cni_plugin_main(int argc, char **argv);
#define main cni_plugin_main
#include "../../ztunnel/cni/main.c"
#undef main

/* install/uninstall are not reached from the request path. */
int cni_install(const char *dir, const char *agent_socket, bool install, char *msg, size_t size)
{
	(void)dir;
	(void)agent_socket;
	(void)install;
	snprintf(msg, size, "not in the fuzz harness");
	return -ENOSYS;
}

#define CNI_MSG_MAX 65536 /* cni_server.c: one SOCK_SEQPACKET message */

static const char snapshot[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"mesh\",\"labels\":{\"istio.io/dataplane-mode\":\"ambient\"}}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"plain\"}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"kube-system\",\"labels\":{\"istio.io/dataplane-mode\":\"ambient\"}}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"namespace\":\"mesh\",\"uid\":\"uid-web\"},"
	"\"spec\":{\"nodeName\":\"n1\",\"serviceAccountName\":\"web\"},\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"10.244.1.2\"}]}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"out\",\"namespace\":\"mesh\",\"uid\":\"uid-out\",\"labels\":{\"istio.io/dataplane-mode\":\"none\"}},"
	"\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"10.244.1.3\"}]}},"
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"db\",\"namespace\":\"plain\",\"uid\":\"uid-db\"},"
	"\"spec\":{\"nodeName\":\"n1\"},\"status\":{\"phase\":\"Running\",\"podIPs\":[{\"ip\":\"10.244.1.4\"}]}}"
	"]}";

static struct zt_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct snapshot_opts opts = { "cluster.local", "istio-system" };
	struct zt_diags d;

	(void)argc;
	(void)argv;
	diags_init(&d);
	int r = snapshot_build(snapshot, sizeof(snapshot) - 1, &opts, &model, &d);
	diags_release(&d);
	FUZZ_CHECK(r == 0);
	return 0;
}

/* run(): the request the plugin sends for ADD, or NULL where it refuses. */
static cJSON *plugin_request(const char *config, const char *args)
{
	char ns[256], name[256], uid[128];
	cJSON *conf = cJSON_Parse(config);

	if (!cJSON_IsObject(conf)) {
		cJSON_Delete(conf);
		return NULL;
	}
	const cJSON *ver = cJSON_GetObjectItem(conf, "cniVersion");
	const cJSON *prev = cJSON_GetObjectItem(conf, "prevResult");
	if (!cJSON_IsString(ver) || !version_supported(ver->valuestring) || !cJSON_IsObject(prev)) {
		cJSON_Delete(conf);
		return NULL;
	}
	cni_arg(args, "K8S_POD_NAMESPACE", ns, sizeof(ns));
	cni_arg(args, "K8S_POD_NAME", name, sizeof(name));
	cni_arg(args, "K8S_POD_UID", uid, sizeof(uid));
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "command", "ADD");
	cJSON_AddStringToObject(req, "containerId", "0123456789abcdef");
	cJSON_AddStringToObject(req, "netns", "/var/run/netns/fuzz");
	cJSON_AddStringToObject(req, "podNamespace", ns);
	cJSON_AddStringToObject(req, "podName", name);
	cJSON_AddStringToObject(req, "podUid", uid);
	add_prev_result(req, prev);
	cJSON_Delete(conf);
	return req;
}

static const char *json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

/* cni_add() up to the interface and BPF steps, then the decision. */
static void agent_decide(const char *msg)
{
	struct enroll_pod p = { 0 };
	cJSON *req = cJSON_Parse(msg);
	const cJSON *ip;
	bool enrolled = false;

	if (!cJSON_IsObject(req) || strcmp(json_str(req, "command"), "ADD")) {
		cJSON_Delete(req);
		return;
	}
	cJSON_ArrayForEach(ip, cJSON_GetObjectItem(req, "ips")) {
		struct in_addr a;
		if (cJSON_IsString(ip) && inet_pton(AF_INET, ip->valuestring, &a) == 1 &&
		    p.n_ips < ENROLL_MAX_IPS)
			p.ips[p.n_ips++] = a.s_addr;
	}
	snprintf(p.uid, sizeof(p.uid), "%s", json_str(req, "podUid"));
	snprintf(p.ns, sizeof(p.ns), "%s", json_str(req, "podNamespace"));
	snprintf(p.name, sizeof(p.name), "%s", json_str(req, "podName"));
	snprintf(p.container_id, sizeof(p.container_id), "%s", json_str(req, "containerId"));
	snprintf(p.ifname, sizeof(p.ifname), "%s", json_str(req, "hostInterface"));
	if (p.n_ips) {
		const char *reason = enroll_decide(model, &p, &enrolled);
		FUZZ_CHECK(reason && *reason);
	}
	cJSON_Delete(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_cstring(data, size);

	if (!in)
		return 0;
	const char *args = in + strlen(in) + 1; /* after the first NUL, or "" */
	cJSON *req = plugin_request(in, args);
	char *msg = req ? cJSON_PrintUnformatted(req) : NULL;
	if (msg) {
		if (strlen(msg) > CNI_MSG_MAX)
			msg[CNI_MSG_MAX] = '\0'; /* what one recv delivers */
		agent_decide(msg);
	}
	cJSON_free(msg);
	cJSON_Delete(req);
	free(in);
	return 0;
}
