/* The node's pod table and its reconciliation with the snapshot. */
#include "enroll_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/authz.h"
#include "ztunnel/capture.h"
#include "ztunnel/log.h"

const char *enroll_decide(const struct zt_model *m, const struct enroll_pod *p, bool *enrolled)
{
	const struct zt_workload *w = NULL;

	if (!m)
		return "no snapshot yet";
	if (p->uid[0])
		w = model_workload_by_uid(m, p->uid);
	for (uint32_t i = 0; !w && i < p->n_ips; i++) {
		struct zt_ip ip = { .family = AF_INET };
		memcpy(ip.addr, &p->ips[i], 4);
		w = model_workload_by_ip(m, &ip);
	}
	if (w) {
		*enrolled = w->enrolled;
		return zt_enrollment_reason(w->enrollment);
	}
	if (!p->ns[0])
		return "unknown to the snapshot: unchanged";
	/* Newer than the snapshot: the namespace decides, as istio-cni does at
	 * pod start. Pod-level opt-out is applied once the pod shows up. */
	const struct zt_namespace *ns = model_namespace(m, p->ns);
	*enrolled = strcmp(p->ns, "kube-system") && ns && ns->mode == ZT_MODE_AMBIENT;
	return *enrolled ? "pending: namespace labelled ambient, pod not in snapshot yet"
			 : "pending: namespace not labelled ambient, pod not in snapshot yet";
}

static struct enroll_pod *pod_by_ifindex(struct enroll *e, uint32_t ifindex)
{
	for (uint32_t i = 0; i < e->n; i++)
		if (e->pods[i].ifindex == ifindex)
			return &e->pods[i];
	return NULL;
}

static void adopt_pod(uint32_t ip, const struct zt_pod *v, void *ctx)
{
	struct enroll *e = ctx;
	char name[IF_NAMESIZE];
	struct enroll_pod *p;

	if (!if_indextoname(v->ifindex, name)) {
		if (e->read_only)
			return; /* the running agent's to clean up */
		/* The pod went away while no agent was running. */
		capture_pod_del(e->capture, ip);
		capture_veth_del(e->capture, v->ifindex);
		capture_detach(e->capture, v->ifindex);
		return;
	}
	p = pod_by_ifindex(e, v->ifindex);
	if (!p) {
		if (!(p = enroll_add_pod(e)))
			return;
		p->ifindex = v->ifindex;
		memcpy(p->ifname, name, sizeof(p->ifname));
		p->enrolled = p->captured = v->enrolled;
		p->reason = "restored from pinned state";
	}
	if (p->n_ips < ENROLL_MAX_IPS)
		p->ips[p->n_ips++] = ip;
}

int enroll_init(struct enroll *e, struct capture *c, bool read_only)
{
	memset(e, 0, sizeof(*e));
	e->capture = c;
	e->listen_fd = -1;
	e->read_only = read_only;
	int r = capture_for_each_pod(c, adopt_pod, e);
	e->read_only = false;
	if (e->n)
		log_info("restored pods from pinned capture state", LF_UINT("pods", e->n));
	return r;
}

int enroll_reload(struct enroll *e)
{
	free(e->pods);
	e->pods = NULL;
	e->n = e->cap = 0;
	return capture_for_each_pod(e->capture, adopt_pod, e);
}

void enroll_fini(struct enroll *e)
{
	free(e->pods);
	e->pods = NULL;
	e->n = e->cap = 0;
}

/* Whether plaintext to the workload is refused (workload-level STRICT
 * PeerAuthentication): what --node-traffic probes-only enforces at
 * connect() for node processes. Port-level exceptions are not seen there. */
static bool workload_strict(const struct zt_workload *w)
{
	const struct zt_peer_authn *from;

	return w && w->enrolled && authz_mtls_mode(w, 0, &from) == ZT_MTLS_STRICT;
}

static bool pod_strict(const struct zt_model *m, const struct enroll_pod *p)
{
	const struct zt_workload *w = p->uid[0] ? model_workload_by_uid(m, p->uid) : NULL;

	for (uint32_t i = 0; m && !w && i < p->n_ips; i++)
		w = model_workload_by_v4(m, p->ips[i]);
	return workload_strict(w);
}

static void apply(struct enroll *e, const struct zt_model *m, struct enroll_pod *p, bool enrolled,
		  const char *reason, bool added)
{
	bool changed = p->enrolled != enrolled;
	bool strict = enrolled && pod_strict(m, p);

	p->enrolled = enrolled;
	p->reason = reason;
	bool ok = true;
	for (uint32_t i = 0; i < p->n_ips; i++) {
		int r = capture_pod_set(e->capture, p->ips[i], p->ifindex, enrolled, strict);
		if (r < 0)
			log_error("cannot update zt_pods", LF_STR("pod", p->name), LF_ERRNO(r));
		ok &= r >= 0;
	}
	int r = capture_veth_set(e->capture, p->ifindex, enrolled);
	if (r < 0)
		log_error("cannot update zt_veths", LF_STR("pod", p->name), LF_ERRNO(r));
	/* Only a capture fully in place is announced to other nodes. */
	p->captured = enrolled && ok && r >= 0;
	if (enrolled && p->has_ipv6 && (added || changed))
		log_warn("enrolled pod has IPv6 addresses: its IPv6 TCP is dropped (IPv6 is not captured yet)",
			 LF_STR("namespace", p->ns), LF_STR("pod", p->name));
	if (added)
		log_info("pod added", LF_STR("namespace", p->ns), LF_STR("pod", p->name),
			 LF_STR("uid", p->uid), LF_STR("veth", p->ifname), LF_BOOL("enrolled", enrolled),
			 LF_STR("reason", reason));
	else if (changed)
		log_info(enrolled ? "pod enrolled" : "pod released", LF_STR("namespace", p->ns),
			 LF_STR("pod", p->name), LF_STR("uid", p->uid), LF_STR("veth", p->ifname),
			 LF_STR("reason", reason));
}

struct keys {
	struct zt_svc_key *k;
	struct zt_svc *v;
	uint32_t n, cap;
	bool oom;
};

static void key_add(struct keys *ks, uint32_t addr, uint16_t port, bool strict_local)
{
	if (ks->n == ks->cap) {
		uint32_t cap = ks->cap ? ks->cap * 2 : 64;
		struct zt_svc_key *nk = realloc(ks->k, cap * sizeof(*nk));
		if (nk)
			ks->k = nk;
		struct zt_svc *nv = nk ? realloc(ks->v, cap * sizeof(*nv)) : NULL;
		if (!nv) {
			ks->oom = true;
			return;
		}
		ks->v = nv;
		ks->cap = cap;
	}
	ks->v[ks->n] = (struct zt_svc){ .enrolled = 1, .strict_local = strict_local };
	ks->k[ks->n++] = (struct zt_svc_key){ .addr = addr, .port = htons(port) };
}

static void ips_add(struct keys *ks, const struct zt_model *m, const struct zt_ip *ips, uint32_t n_ips,
		    uint16_t port, bool strict_local)
{
	for (uint32_t v = 0; v < n_ips; v++) {
		uint32_t a;
		/* A pod's own address is never a frontend (externalIPs are
		 * user-controlled: CVE-2020-8554). */
		if (ips[v].family != AF_INET || model_workload_by_ip(m, &ips[v]))
			continue;
		memcpy(&a, ips[v].addr, 4);
		key_add(ks, a, port, strict_local);
	}
}

/* Every frontend of a service with an enrolled endpoint, captured from any
 * source so non-mesh clients cannot reach mesh pods around policy: its
 * VIPs, external and load-balancer IPs on its ports, and its nodePorts on
 * every address of this node; plus this node's addresses on the hostPorts
 * of its enrolled pods (kube-proxy and the portmap plugin DNAT all of
 * those after tc ingress). */
static void reconcile_services(struct enroll *e, const struct zt_model *m)
{
	struct keys ks = { 0 };
	uint32_t node_addrs[ZT_MAX_NODE_ADDRS];
	int n_node = capture_node_addrs_get(e->capture, node_addrs, ZT_MAX_NODE_ADDRS);

	for (uint32_t i = 0; i < m->n_services; i++) {
		const struct zt_service *s = &m->services[i];
		bool enrolled = false, strict = false;
		/* strict: node processes reaching it could land on a STRICT pod
		 * of this node (--node-traffic probes-only refuses them). */
		for (uint32_t j = 0; j < s->n_endpoints; j++) {
			const struct zt_workload *w = s->endpoints[j].workload;
			enrolled |= w->enrolled;
			strict |= e->node && w->node && !strcmp(w->node, e->node) && workload_strict(w);
		}
		for (uint32_t p = 0; enrolled && p < s->n_ports; p++) {
			ips_add(&ks, m, s->vips, s->n_vips, s->ports[p].port, strict);
			ips_add(&ks, m, s->externals, s->n_externals, s->ports[p].port, strict);
			for (int a = 0; s->ports[p].node_port && a < n_node; a++)
				key_add(&ks, node_addrs[a], s->ports[p].node_port, strict);
			if (s->ports[p].node_port)
				key_add(&ks, ZT_SVC_LOOPBACK, s->ports[p].node_port, strict);
		}
	}
	for (uint32_t i = 0; i < e->n; i++) {
		const struct enroll_pod *p = &e->pods[i];
		struct zt_ip ip = { .family = AF_INET };
		if (!p->enrolled || !p->n_ips)
			continue;
		memcpy(ip.addr, &p->ips[0], 4);
		const struct zt_workload *w = model_workload_by_ip(m, &ip);
		for (uint32_t c = 0; w && c < w->n_ports; c++) {
			if (!w->ports[c].host_port)
				continue;
			for (int a = 0; a < n_node; a++)
				key_add(&ks, node_addrs[a], w->ports[c].host_port, workload_strict(w));
			key_add(&ks, ZT_SVC_LOOPBACK, w->ports[c].host_port, workload_strict(w));
		}
	}
	int r = ks.oom ? -ENOMEM : capture_services_replace(e->capture, ks.k, ks.v, ks.n);
	if (r < 0)
		log_error("cannot update zt_services", LF_ERRNO(r));
	free(ks.k);
	free(ks.v);
}

static bool known(const struct enroll *e, const struct zt_workload *w, uint32_t ip)
{
	for (uint32_t i = 0; i < e->n; i++) {
		const struct enroll_pod *p = &e->pods[i];
		if (w->uid && p->uid[0] && !strcmp(p->uid, w->uid))
			return true;
		for (uint32_t j = 0; j < p->n_ips; j++)
			if (p->ips[j] == ip)
				return true;
	}
	return false;
}

/* Pods of this node the CNI plugin never told us about: started before the
 * plugin was chained, or while the agent was down (a pod outside the mesh
 * may start then). Every pod's veth needs the program, or a non-mesh pod
 * reaches a mesh pod of the node around its inbound checks and a mesh pod
 * leaves uncaptured; found by routing their IP to their veth. */
static void discover_pods(struct enroll *e, const struct zt_model *m)
{
	const struct zt_node_workloads *nw = model_node_workloads(m, e->node);

	for (uint32_t i = 0; nw && i < nw->n; i++) {
		const struct zt_workload *w = nw->items[i];
		uint32_t ip = 0, ifindex;
		for (uint32_t j = 0; !ip && j < w->n_ips; j++)
			if (w->ips[j].family == AF_INET)
				memcpy(&ip, w->ips[j].addr, 4);
		if (w->host_network || !ip || known(e, w, ip) || capture_pod_route(ip, &ifindex) < 0 ||
		    pod_by_ifindex(e, ifindex))
			continue;
		struct enroll_pod tmp = { .ifindex = ifindex, .n_ips = 1, .ips = { ip } };
		snprintf(tmp.uid, sizeof(tmp.uid), "%s", w->uid ? w->uid : "");
		snprintf(tmp.ns, sizeof(tmp.ns), "%s", w->namespace);
		snprintf(tmp.name, sizeof(tmp.name), "%s", w->name);
		if (!if_indextoname(ifindex, tmp.ifname))
			continue;
		int r = capture_attach(e->capture, ifindex);
		struct enroll_pod *p = r < 0 ? NULL : enroll_add_pod(e);
		if (!p) {
			log_error("cannot attach capture to a discovered pod", LF_STR("pod", w->name), LF_ERRNO(r));
			continue;
		}
		bool enrolled = false;
		const char *reason = enroll_decide(m, &tmp, &enrolled);
		*p = tmp;
		log_info("pod discovered without a CNI request (started before the plugin or while the agent was away)",
			 LF_STR("namespace", p->ns), LF_STR("pod", p->name), LF_STR("veth", p->ifname));
		apply(e, m, p, enrolled, reason, true);
	}
}

void enroll_reconcile(struct enroll *e, const struct zt_model *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < e->n; i++) {
		struct enroll_pod *p = &e->pods[i];
		bool enrolled = p->enrolled;
		const char *reason = enroll_decide(m, p, &enrolled);
		/* Fill in who a restored pod is once the snapshot knows its IP. */
		if (!p->uid[0] && p->n_ips) {
			struct zt_ip ip = { .family = AF_INET };
			memcpy(ip.addr, &p->ips[0], 4);
			const struct zt_workload *w = model_workload_by_ip(m, &ip);
			if (w) {
				snprintf(p->uid, sizeof(p->uid), "%s", w->uid ? w->uid : "");
				snprintf(p->ns, sizeof(p->ns), "%s", w->namespace);
				snprintf(p->name, sizeof(p->name), "%s", w->name);
			}
		}
		apply(e, m, p, enrolled, reason, false);
	}
	if (e->node)
		discover_pods(e, m);
	reconcile_services(e, m);
	if (e->cache_path[0] && m->generation != e->cache_generation) {
		int r = enroll_cache_write(m, e->cache_path);
		if (r < 0)
			log_error("cannot write the enrollment cache for the CNI plugin",
				  LF_STR("path", e->cache_path), LF_ERRNO(r));
		else
			e->cache_generation = m->generation;
	}
}

struct enroll_pod *enroll_find(struct enroll *e, const char *uid, const char *container_id)
{
	for (uint32_t i = 0; i < e->n; i++) {
		struct enroll_pod *p = &e->pods[i];
		if ((uid && *uid && !strcmp(p->uid, uid)) ||
		    (container_id && *container_id && !strcmp(p->container_id, container_id)))
			return p;
	}
	return NULL;
}

struct enroll_pod *enroll_add_pod(struct enroll *e)
{
	if (e->n == e->cap) {
		uint32_t cap = e->cap ? e->cap * 2 : 32;
		struct enroll_pod *np = realloc(e->pods, cap * sizeof(*np));
		if (!np)
			return NULL;
		e->pods = np;
		e->cap = cap;
	}
	struct enroll_pod *p = &e->pods[e->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

void enroll_remove_pod(struct enroll *e, struct enroll_pod *p)
{
	for (uint32_t i = 0; i < p->n_ips; i++)
		capture_pod_del(e->capture, p->ips[i]);
	capture_veth_del(e->capture, p->ifindex);
	capture_detach(e->capture, p->ifindex);
	*p = e->pods[--e->n];
}

void enroll_apply(struct enroll *e, const struct zt_model *m, struct enroll_pod *p, bool enrolled,
		  const char *reason, bool added)
{
	apply(e, m, p, enrolled, reason, added);
}
