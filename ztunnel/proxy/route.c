/* Where a captured connection goes, or why it is refused (SPEC.md §3.1,
 * §3.3). Pure functions over the model and the node's pod table. */
#include "ztunnel/proxy.h"
#include "ztunnel/authz.h"
#include "ztunnel/telemetry.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

/* 15001/15006/15008 as destinations would loop through ourselves. */
bool route_reserved_port(uint16_t port)
{
	return port == ZT_PORT_OUTBOUND || port == ZT_PORT_INBOUND_PLAIN || port == ZT_PORT_HBONE;
}

static bool first_v4(const struct zt_workload *w, uint32_t *ip)
{
	for (uint32_t i = 0; i < w->n_ips; i++) {
		if (w->ips[i].family == AF_INET) {
			memcpy(ip, w->ips[i].addr, 4);
			return true;
		}
	}
	return false;
}

static void refuse(struct route *out, enum tm_reason refusal, const char *reason)
{
	out->verdict = ROUTE_REFUSE;
	out->refusal = (uint8_t)refusal;
	out->reason = reason;
}

/* A ready endpoint at random; Istio weighs by capacity, which is 1 for
 * every Kubernetes pod. With local_only (externalTrafficPolicy: Local on
 * a frontend the node forwards) only this node's endpoints count. */
static bool eligible(const struct zt_endpoint *e, uint32_t idx, local_pod_fn local_only, void *ctx)
{
	struct zt_pod pod;
	uint32_t ip;

	return e->ready && e->target_ports[idx] &&
	       (!local_only || (first_v4(e->workload, &ip) && local_only(ctx, ip, &pod) == 0));
}

static bool pick_endpoint(const struct zt_service *s, const struct zt_service_port *sp, local_pod_fn local_only,
			  void *ctx, unsigned *seed, uint32_t *ip, uint16_t *port)
{
	uint32_t idx = (uint32_t)(sp - s->ports), n = 0, choice;

	for (uint32_t i = 0; i < s->n_endpoints; i++)
		n += eligible(&s->endpoints[i], idx, local_only, ctx);
	if (!n)
		return false;
	choice = (uint32_t)rand_r(seed) % n;
	for (uint32_t i = 0; i < s->n_endpoints; i++) {
		const struct zt_endpoint *e = &s->endpoints[i];
		if (!eligible(e, idx, local_only, ctx) || choice--)
			continue;
		if (!first_v4(e->workload, ip))
			return false;
		*port = htons(e->target_ports[idx]);
		return true;
	}
	return false;
}

static bool node_has(const struct route_node *node, uint32_t ip)
{
	for (uint32_t i = 0; node && i < node->n_addrs; i++)
		if (node->addrs[i] == ip)
			return true;
	return false;
}

/* Frontends of mesh services (SPEC §3.1 step 4): the VIP, or one the node
 * forwards, which kube-proxy would DNAT after tc ingress: a nodePort or
 * hostPort on this node's addresses, an external or load-balancer IP. */
struct frontend {
	const struct zt_service *svc;
	const struct zt_service_port *sp;
	const struct zt_workload *host_pod;
	uint16_t host_target;
	bool forwarded; /* not a cluster IP: externalTrafficPolicy applies */
};

static void find_frontend(const struct zt_model *m, const struct route_node *node, uint32_t ip, uint16_t port,
			  struct frontend *f)
{
	struct zt_ip addr = { .family = AF_INET };

	memset(f, 0, sizeof(*f));
	memcpy(addr.addr, &ip, 4);
	if (!m || (f->svc = model_service_by_vip(m, &addr, port, &f->sp)))
		return;
	f->forwarded = true;
	if (node_has(node, ip)) {
		if (!(f->svc = model_service_by_node_port(m, port, &f->sp)))
			f->host_pod = model_host_port(m, node->name, port, &f->host_target);
	} else if (!model_workload_by_v4(m, ip)) {
		/* A pod's own address is never a frontend: spec.externalIPs is
		 * user-controlled and would hijack it (CVE-2020-8554). */
		f->svc = model_service_by_external(m, &addr, port, &f->sp);
	}
}

void route_outbound(const struct zt_model *m, local_pod_fn pods, void *ctx, const struct route_node *node,
		    uint32_t src_ip, uint32_t dst_ip, uint16_t dst_port, unsigned *seed, struct route *out)
{
	struct zt_pod local, dst_pod;
	bool local_src = pods(ctx, src_ip, &local) == 0;
	bool enrolled_src = local_src && local.enrolled;
	struct frontend f;

	memset(out, 0, sizeof(*out));
	find_frontend(m, node, dst_ip, ntohs(dst_port), &f);
	const struct zt_workload *direct = model_workload_by_v4(m, dst_ip);
	/* Only enrolled pods of this node are proxied; anyone else only through
	 * a frontend of a mesh service, or straight to a mesh pod when the
	 * node rewrote such a frontend (kube-proxy's DNAT runs after tc
	 * ingress, before the connection reaches us). */
	if (!enrolled_src && !f.svc && !f.host_pod && !(direct && direct->enrolled))
		return refuse(out, TM_R_NOT_ENROLLED, "source is not an enrolled pod of this node");
	if ((ntohl(dst_ip) >> 24) == 127 && route_reserved_port(ntohs(dst_port)))
		return refuse(out, TM_R_RESERVED_PORT, "attempted recursive call to ourselves");
	out->src = model_workload_by_v4(m, src_ip);
	if (enrolled_src && !out->src) {
		/* Never plaintext for a mesh pod only because it is new. */
		out->verdict = ROUTE_WAIT;
		out->reason = "failed to fetch information about local workload";
		out->refusal = TM_R_WORKLOAD_PENDING;
		out->gave_up = "failed to fetch information about local workload (waited 5 s)";
		return;
	}
	out->service = f.svc;
	if (f.svc) {
		local_pod_fn only = f.forwarded && f.svc->external_local ? pods : NULL;
		if (!pick_endpoint(f.svc, f.sp, only, ctx, seed, &out->upstream_ip, &out->upstream_port))
			return refuse(out, TM_R_NO_UPSTREAM, "no healthy upstream");
	} else if (f.host_pod) {
		if (!first_v4(f.host_pod, &out->upstream_ip))
			return refuse(out, TM_R_NO_UPSTREAM, "no healthy upstream");
		out->upstream_port = htons(f.host_target);
	} else {
		out->upstream_ip = dst_ip;
		out->upstream_port = dst_port;
	}
	out->dst = model_workload_by_v4(m, out->upstream_ip);
	bool upstream_local = pods(ctx, out->upstream_ip, &dst_pod) == 0;
	out->local_dst = upstream_local && dst_pod.enrolled;
	if (enrolled_src && out->local_dst && !out->dst) {
		/* Enrolled here (CNI ADD) but newer than the snapshot: never
		 * plaintext to a mesh pod; wait for it as for a new source. */
		out->verdict = ROUTE_WAIT;
		out->reason = "destination pod of this node is enrolled but not in the snapshot yet";
		out->refusal = TM_R_WORKLOAD_PENDING;
		out->gave_up = "destination pod of this node is enrolled but not in the snapshot (waited 5 s)";
		return;
	}
	const struct zt_peer_authn *from;
	if (enrolled_src && out->dst && out->dst->enrolled && !out->local_dst && !out->dst->captured &&
	    authz_mtls_mode(out->dst, ntohs(out->upstream_port), &from) == ZT_MTLS_STRICT) {
		/* A STRICT pod whose capture is not in place yet gets no
		 * plaintext from the mesh either: wait for its node to say it is
		 * captured (SPEC §8.5), then refuse. */
		out->verdict = ROUTE_WAIT;
		out->reason = "destination is STRICT and its capture is not in place yet";
		out->refusal = TM_R_WORKLOAD_PENDING;
		out->gave_up = "destination is STRICT and its node did not report its capture in place (waited 5 s)";
		return;
	}
	/* Mesh to mesh goes over HBONE (SPEC §3.1 step 6); a destination the
	 * snapshot does not enroll, or whose capture its node has not reported
	 * in place (SPEC §8.5: it could not answer HBONE), is passthrough and
	 * meets its inbound checks if captured after all. Only an enrolled
	 * source ever gets an identity: a non-mesh pod captured by a VIP
	 * leaves in plaintext and meets the destination's inbound checks. */
	out->hbone = enrolled_src && out->src && out->src->enrolled && out->dst && out->dst->enrolled &&
		     (out->local_dst || out->dst->captured) && out->dst->identity;
	/* Transparent as the client when the reply comes back through this
	 * node (the client or the upstream is one of its pods), so the inbound
	 * checks see the real client; a client from elsewhere going to another
	 * node leaves from the node's address, as kube-proxy masquerades it.
	 * Hairpin: a pod reaching itself connects without spoofing. */
	out->bind_ip = src_ip == out->upstream_ip || !(local_src || upstream_local) ? 0 : src_ip;
	out->verdict = ROUTE_CONNECT;
}

void route_inbound_plain(const struct zt_model *m, local_pod_fn pods, void *ctx, uint32_t src_ip,
			 uint32_t dst_ip, uint16_t dst_port, struct route *out)
{
	struct zt_pod local;

	memset(out, 0, sizeof(*out));
	/* Never an open relay: only to an enrolled pod of this node. */
	if (pods(ctx, dst_ip, &local) != 0 || !local.enrolled)
		return refuse(out, TM_R_NOT_ENROLLED, "destination is not an enrolled pod of this node");
	if (route_reserved_port(ntohs(dst_port)))
		return refuse(out, TM_R_RESERVED_PORT, "destination port is reserved for ztunnel");
	out->src = model_workload_by_v4(m, src_ip);
	out->dst = model_workload_by_v4(m, dst_ip);
	out->upstream_ip = dst_ip;
	out->upstream_port = dst_port;
	out->bind_ip = src_ip == dst_ip ? 0 : src_ip;
	out->verdict = ROUTE_CONNECT;
}
