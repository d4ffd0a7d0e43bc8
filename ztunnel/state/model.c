/* Lookups on a built model, and the small value helpers they use. */
#include "index.h"
#include "ztunnel/state.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int zt_ip_parse(const char *s, struct zt_ip *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, out->addr) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->addr) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

const char *zt_ip_format(const struct zt_ip *ip, char *buf, size_t size)
{
	if (!inet_ntop(ip->family == AF_INET ? AF_INET : AF_INET6, ip->addr, buf, (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

uint8_t zt_proto_parse(const char *p)
{
	if (p && !strcmp(p, "UDP"))
		return ZT_PROTO_UDP;
	if (p && !strcmp(p, "SCTP"))
		return ZT_PROTO_SCTP;
	return ZT_PROTO_TCP; /* Kubernetes default */
}

static const char *const enrollment_reasons[] = {
	[ZT_ENROLLED_POD_LABEL] = "enrolled: pod label istio.io/dataplane-mode=ambient",
	[ZT_ENROLLED_NAMESPACE_LABEL] = "enrolled: namespace label istio.io/dataplane-mode=ambient",
	[ZT_NOT_ENROLLED_POD_OPT_OUT] = "not enrolled: pod label istio.io/dataplane-mode=none",
	[ZT_NOT_ENROLLED_NO_LABEL] = "not enrolled: neither pod nor namespace is labelled ambient",
	[ZT_NOT_ENROLLED_HOST_NETWORK] = "not enrolled: hostNetwork pod",
	[ZT_NOT_ENROLLED_SIDECAR] = "not enrolled: pod has an Istio sidecar",
	[ZT_NOT_ENROLLED_KUBE_SYSTEM] = "not enrolled: kube-system is never enrolled",
	[ZT_NOT_ENROLLED_ANNOTATION_OPT_OUT] = "not enrolled: pod annotation ambient.istio.io/redirection=disabled",
};

const char *zt_enrollment_reason(enum zt_enrollment e)
{
	return (unsigned)e <= ZT_NOT_ENROLLED_ANNOTATION_OPT_OUT ? enrollment_reasons[e] : "unknown";
}

static int label_key_cmp(const void *key, const void *item)
{
	return strcmp(key, ((const struct zt_label *)item)->key);
}

const char *zt_label_get(const struct zt_labels *labels, const char *key)
{
	const struct zt_label *l =
		labels->n ? bsearch(key, labels->items, labels->n, sizeof(*l), label_key_cmp) : NULL;
	return l ? l->value : NULL;
}

bool zt_labels_match(const struct zt_labels *selector, const struct zt_labels *labels)
{
	for (uint32_t i = 0; i < selector->n; i++) {
		const char *v = zt_label_get(labels, selector->items[i].key);
		if (!v || strcmp(v, selector->items[i].value))
			return false;
	}
	return true;
}

const struct zt_workload *model_workload_by_ip(const struct zt_model *m, const struct zt_ip *ip)
{
	return index_get(m->by_ip, ip, sizeof(*ip));
}

const struct zt_workload *model_workload_by_v4(const struct zt_model *m, uint32_t ip)
{
	struct zt_ip a = { .family = AF_INET };

	if (!m)
		return NULL;
	memcpy(a.addr, &ip, 4);
	return model_workload_by_ip(m, &a);
}

const struct zt_workload *model_workload_by_uid(const struct zt_model *m, const char *uid)
{
	return index_get(m->by_uid, uid, (uint32_t)strlen(uid));
}

const struct zt_service *model_service_by_vip(const struct zt_model *m, const struct zt_ip *vip,
					      uint16_t port, const struct zt_service_port **sport)
{
	const struct zt_service *s = index_get(m->svc_by_vip, vip, sizeof(*vip));

	for (uint32_t i = 0; s && i < s->n_ports; i++) {
		if (s->ports[i].port == port && s->ports[i].protocol == ZT_PROTO_TCP) {
			if (sport)
				*sport = &s->ports[i];
			return s;
		}
	}
	return NULL;
}

/* Linear: these frontends are rare and only looked up for a captured
 * connection to one; an IP-keyed index would not fit (one load-balancer
 * address may front several services on different ports). */
const struct zt_service *model_service_by_external(const struct zt_model *m, const struct zt_ip *ip,
						   uint16_t port, const struct zt_service_port **sport)
{
	for (uint32_t i = 0; m && i < m->n_services; i++) {
		const struct zt_service *s = &m->services[i];
		for (uint32_t e = 0; e < s->n_externals; e++) {
			if (memcmp(&s->externals[e], ip, sizeof(*ip)))
				continue;
			for (uint32_t p = 0; p < s->n_ports; p++) {
				if (s->ports[p].port == port && s->ports[p].protocol == ZT_PROTO_TCP) {
					*sport = &s->ports[p];
					return s;
				}
			}
		}
	}
	return NULL;
}

const struct zt_service *model_service_by_node_port(const struct zt_model *m, uint16_t port,
						    const struct zt_service_port **sport)
{
	for (uint32_t i = 0; m && port && i < m->n_services; i++) {
		const struct zt_service *s = &m->services[i];
		for (uint32_t p = 0; p < s->n_ports; p++) {
			if (s->ports[p].node_port == port && s->ports[p].protocol == ZT_PROTO_TCP) {
				*sport = &s->ports[p];
				return s;
			}
		}
	}
	return NULL;
}

const struct zt_workload *model_host_port(const struct zt_model *m, const char *node, uint16_t port,
					  uint16_t *target)
{
	const struct zt_node_workloads *nw = model_node_workloads(m, node);

	for (uint32_t i = 0; nw && port && i < nw->n; i++) {
		const struct zt_workload *w = nw->items[i];
		for (uint32_t p = 0; p < w->n_ports; p++) {
			if (w->ports[p].host_port == port && w->ports[p].protocol == ZT_PROTO_TCP) {
				*target = w->ports[p].port;
				return w;
			}
		}
	}
	return NULL;
}

const struct zt_service *model_service_by_name(const struct zt_model *m, const char *ns,
					       const char *name)
{
	char key[512];
	int n = snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name ? name : "");

	if (n < 0 || (size_t)n >= sizeof(key))
		return NULL;
	return index_get(m->svc_by_name, key, (uint32_t)n);
}

const struct zt_namespace *model_namespace(const struct zt_model *m, const char *name)
{
	return name ? index_get(m->ns_by_name, name, (uint32_t)strlen(name)) : NULL;
}

const struct zt_node_workloads *model_node_workloads(const struct zt_model *m, const char *node)
{
	return node ? index_get(m->by_node, node, (uint32_t)strlen(node)) : NULL;
}

void model_free(struct zt_model *m)
{
	if (!m)
		return;
	arena_release(&m->arena);
	free(m);
}
