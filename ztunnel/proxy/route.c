/* Where a captured connection goes, or why it is refused (SPEC.md §3.1,
 * §3.3). Pure functions over the model and the node's pod table. */
#include "ztunnel/proxy.h"

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

static void refuse(struct route *out, const char *reason)
{
	out->verdict = ROUTE_REFUSE;
	out->reason = reason;
}

/* A ready endpoint at random; Istio weighs by capacity, which is 1 for
 * every Kubernetes pod. */
static bool pick_endpoint(const struct zt_service *s, const struct zt_service_port *sp,
			  unsigned *seed, uint32_t *ip, uint16_t *port)
{
	uint32_t idx = (uint32_t)(sp - s->ports), n = 0, choice;

	for (uint32_t i = 0; i < s->n_endpoints; i++)
		n += s->endpoints[i].ready && s->endpoints[i].target_ports[idx];
	if (!n)
		return false;
	choice = (uint32_t)rand_r(seed) % n;
	for (uint32_t i = 0; i < s->n_endpoints; i++) {
		const struct zt_endpoint *e = &s->endpoints[i];
		if (!e->ready || !e->target_ports[idx] || choice--)
			continue;
		if (!first_v4(e->workload, ip))
			return false;
		*port = htons(e->target_ports[idx]);
		return true;
	}
	return false;
}

void route_outbound(const struct zt_model *m, local_pod_fn pods, void *ctx, uint32_t src_ip,
		    uint32_t dst_ip, uint16_t dst_port, unsigned *seed, struct route *out)
{
	struct zt_pod local;
	bool enrolled_src = pods(ctx, src_ip, &local) == 0 && local.enrolled;
	const struct zt_service_port *sp = NULL;
	const struct zt_service *svc = NULL;
	struct zt_ip vip = { .family = AF_INET };

	memset(out, 0, sizeof(*out));
	memcpy(vip.addr, &dst_ip, 4);
	if (m)
		svc = model_service_by_vip(m, &vip, ntohs(dst_port), &sp);
	/* Only enrolled pods of this node are proxied; a non-mesh pod is
	 * captured only for a VIP whose endpoints are in the mesh. */
	if (!enrolled_src && !svc)
		return refuse(out, "source is not an enrolled pod of this node");
	if ((ntohl(dst_ip) >> 24) == 127 && route_reserved_port(ntohs(dst_port)))
		return refuse(out, "attempted recursive call to ourselves");
	out->src = model_workload_by_v4(m, src_ip);
	if (enrolled_src && !out->src) {
		/* Never plaintext for a mesh pod only because it is new. */
		out->verdict = ROUTE_WAIT;
		out->reason = "failed to fetch information about local workload";
		out->gave_up = "failed to fetch information about local workload (waited 5 s)";
		return;
	}
	out->service = svc;
	if (svc) {
		if (!pick_endpoint(svc, sp, seed, &out->upstream_ip, &out->upstream_port))
			return refuse(out, "no healthy upstream");
	} else {
		out->upstream_ip = dst_ip;
		out->upstream_port = dst_port;
	}
	out->dst = model_workload_by_v4(m, out->upstream_ip);
	struct zt_pod dst_pod;
	out->local_dst = pods(ctx, out->upstream_ip, &dst_pod) == 0 && dst_pod.enrolled;
	if (enrolled_src && out->local_dst && !out->dst) {
		/* Enrolled here (CNI ADD) but newer than the snapshot: never
		 * plaintext to a mesh pod; wait for it as for a new source. */
		out->verdict = ROUTE_WAIT;
		out->reason = "destination pod of this node is enrolled but not in the snapshot yet";
		out->gave_up = "destination pod of this node is enrolled but not in the snapshot (waited 5 s)";
		return;
	}
	/* Mesh to mesh goes over HBONE (SPEC §3.1 step 6); a destination the
	 * snapshot does not enroll is passthrough. Only an enrolled source
	 * ever gets an identity: a non-mesh pod captured by a VIP leaves in
	 * plaintext and meets the destination's inbound checks. */
	out->hbone = enrolled_src && out->src && out->src->enrolled && out->dst && out->dst->enrolled &&
		     out->dst->identity;
	/* Hairpin: a pod reaching itself connects without spoofing. */
	out->bind_ip = src_ip == out->upstream_ip ? 0 : src_ip;
	out->verdict = ROUTE_CONNECT;
}

void route_inbound_plain(const struct zt_model *m, local_pod_fn pods, void *ctx, uint32_t src_ip,
			 uint32_t dst_ip, uint16_t dst_port, struct route *out)
{
	struct zt_pod local;

	memset(out, 0, sizeof(*out));
	/* Never an open relay: only to an enrolled pod of this node. */
	if (pods(ctx, dst_ip, &local) != 0 || !local.enrolled)
		return refuse(out, "destination is not an enrolled pod of this node");
	if (route_reserved_port(ntohs(dst_port)))
		return refuse(out, "destination port is reserved for ztunnel");
	out->src = model_workload_by_v4(m, src_ip);
	out->dst = model_workload_by_v4(m, dst_ip);
	out->upstream_ip = dst_ip;
	out->upstream_port = dst_port;
	out->bind_ip = src_ip == dst_ip ? 0 : src_ip;
	out->verdict = ROUTE_CONNECT;
}
