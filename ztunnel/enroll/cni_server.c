/* The agent end of ztunnel-cni: one JSON request per SOCK_SEQPACKET
 * connection, answered with {"ok": true, ...} or {"ok": false, "error"}. */
#include "enroll_int.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ztunnel/capture.h"
#include "ztunnel/log.h"

#define CNI_MSG_MAX 65536

int enroll_listen(struct enroll *e, const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char dir[PATH_MAX];

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	snprintf(dir, sizeof(dir), "%s", path);
	mkdir(dirname(dir), 0700);
	strcpy(a.sun_path, path);
	unlink(path); /* a previous agent's socket */
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 64) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	e->listen_fd = fd;
	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(e->cache_path, sizeof(e->cache_path), "%s/enrollment.json", dirname(dir));
	return 0;
}

static const char *json_s(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *fail(cJSON *resp, const char *fmt, const char *arg)
{
	char msg[512];

	snprintf(msg, sizeof(msg), fmt, arg);
	cJSON_AddFalseToObject(resp, "ok");
	cJSON_AddStringToObject(resp, "error", msg);
	return cJSON_GetObjectItem(resp, "error")->valuestring;
}

static const char *cni_add(struct enroll *e, const struct zt_model *m, const cJSON *req, cJSON *resp)
{
	const char *iface = json_s(req, "hostInterface");
	struct enroll_pod tmp = { 0 };
	const cJSON *ip;

	if (!m) {
		/* The plugin then decides from the enrollment cache. */
		cJSON_AddTrueToObject(resp, "notReady");
		return fail(resp, "agent not ready: no valid snapshot yet%s", "");
	}
	tmp.ifindex = if_nametoindex(iface);
	if (!tmp.ifindex)
		return fail(resp, "host interface \"%s\" not found in the node network namespace", iface);
	cJSON_ArrayForEach(ip, cJSON_GetObjectItem(req, "ips")) {
		struct in_addr a;
		struct in6_addr a6;
		if (cJSON_IsString(ip) && inet_pton(AF_INET, ip->valuestring, &a) == 1 &&
		    tmp.n_ips < ENROLL_MAX_IPS)
			tmp.ips[tmp.n_ips++] = a.s_addr;
		else if (cJSON_IsString(ip) && inet_pton(AF_INET6, ip->valuestring, &a6) == 1)
			tmp.has_ipv6 = true;
	}
	if (!tmp.n_ips && !tmp.has_ipv6)
		return fail(resp, "no IP address for the pod in prevResult%s", "");
	snprintf(tmp.uid, sizeof(tmp.uid), "%s", json_s(req, "podUid"));
	snprintf(tmp.ns, sizeof(tmp.ns), "%s", json_s(req, "podNamespace"));
	snprintf(tmp.name, sizeof(tmp.name), "%s", json_s(req, "podName"));
	snprintf(tmp.container_id, sizeof(tmp.container_id), "%s", json_s(req, "containerId"));
	snprintf(tmp.ifname, sizeof(tmp.ifname), "%s", iface);

	bool enrolled = false;
	const char *reason = enroll_decide(m, &tmp, &enrolled);
	/* IPv6 is not captured yet: an IPv6-only mesh pod would have no mTLS
	 * and no policy at all. Fail its ADD (kubelet retries) rather than
	 * start it as a silent non-mesh pod; other IPv6-only pods start. */
	if (!tmp.n_ips && enrolled)
		return fail(resp, "IPv6-only pods cannot join the ambient mesh yet (IPv6 is not captured): "
			    "pod %s would bypass mTLS and policy; give it an IPv4 address or opt it out "
			    "with istio.io/dataplane-mode=none", tmp.name);
	/* Every pod's veth gets the program: a non-mesh pod's SYN to a mesh
	 * pod is only seen there (DESIGN.md §1). */
	int r = capture_attach(e->capture, tmp.ifindex);
	if (r < 0)
		return fail(resp, "cannot attach capture to %s", iface);
	struct enroll_pod *p = enroll_find(e, tmp.uid, tmp.container_id);
	if (p) /* re-ADD: forget the previous addresses */
		for (uint32_t i = 0; i < p->n_ips; i++)
			capture_pod_del(e->capture, p->ips[i]);
	else if (!(p = enroll_add_pod(e)))
		return fail(resp, "out of memory%s", "");
	*p = tmp;
	enroll_apply(e, m, p, enrolled, reason, true);
	cJSON_AddTrueToObject(resp, "ok");
	cJSON_AddBoolToObject(resp, "enrolled", enrolled);
	cJSON_AddStringToObject(resp, "reason", reason);
	return NULL;
}

static const char *cni_del(struct enroll *e, const cJSON *req, cJSON *resp)
{
	struct enroll_pod *p = enroll_find(e, json_s(req, "podUid"), json_s(req, "containerId"));
	const cJSON *ip;

	if (p) {
		log_info("pod removed", LF_STR("namespace", p->ns), LF_STR("pod", p->name),
			 LF_STR("uid", p->uid));
		enroll_remove_pod(e, p);
	}
	/* Addresses from prevResult too, for a pod the table lost. */
	cJSON_ArrayForEach(ip, cJSON_GetObjectItem(req, "ips")) {
		struct in_addr a;
		if (cJSON_IsString(ip) && inet_pton(AF_INET, ip->valuestring, &a) == 1)
			capture_pod_del(e->capture, a.s_addr);
	}
	cJSON_AddTrueToObject(resp, "ok");
	return NULL;
}

static const char *cni_check(struct enroll *e, const cJSON *req, cJSON *resp)
{
	struct enroll_pod *p = enroll_find(e, json_s(req, "podUid"), json_s(req, "containerId"));
	char name[IF_NAMESIZE];
	struct zt_pod v;

	if (!p)
		return fail(resp, "pod %s is not known to the agent", json_s(req, "podUid"));
	if (!if_indextoname(p->ifindex, name))
		return fail(resp, "host interface of pod %s is gone", p->name);
	for (uint32_t i = 0; i < p->n_ips; i++)
		if (capture_pod_get(e->capture, p->ips[i], &v) < 0 || v.ifindex != p->ifindex)
			return fail(resp, "capture state of pod %s is missing", p->name);
	cJSON_AddTrueToObject(resp, "ok");
	cJSON_AddBoolToObject(resp, "enrolled", p->enrolled);
	return NULL;
}

void enroll_serve_one(struct enroll *e, struct state_store *store)
{
	char *buf = NULL;
	int fd = accept4(e->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	/* The CNI plugin writes its request right after connecting; a client
	 * that does not must not hold up the control thread. */
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	buf = malloc(CNI_MSG_MAX + 1);
	ssize_t n = buf ? recv(fd, buf, CNI_MSG_MAX, 0) : -1;
	cJSON *resp = cJSON_CreateObject();
	cJSON *req = NULL;
	const char *err = NULL, *cmd = "";
	if (n <= 0) {
		err = fail(resp, "no request received%s", "");
	} else {
		buf[n] = '\0';
		req = cJSON_Parse(buf);
		cmd = json_s(req, "command");
		const struct zt_model *m = state_read_lock(store);
		if (!cJSON_IsObject(req))
			err = fail(resp, "request is not a JSON object%s", "");
		else if (!strcmp(cmd, "ADD"))
			err = cni_add(e, m, req, resp);
		else if (!strcmp(cmd, "DEL"))
			err = cni_del(e, req, resp);
		else if (!strcmp(cmd, "CHECK"))
			err = cni_check(e, req, resp);
		else
			err = fail(resp, "unknown command \"%s\"", cmd);
		state_read_unlock();
	}
	if (err)
		log_warn("CNI request failed", LF_STR("command", cmd),
			 LF_STR("pod", json_s(req, "podName")), LF_STR("error", err));
	char *out = cJSON_PrintUnformatted(resp);
	if (out && send(fd, out, strlen(out), MSG_NOSIGNAL) < 0)
		log_warn("cannot answer CNI request", LF_ERRNO(-errno));
	cJSON_free(out);
	cJSON_Delete(resp);
	cJSON_Delete(req);
	free(buf);
	close(fd);
}
