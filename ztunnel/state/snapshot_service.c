/* Service and EndpointSlice objects -> services with resolved endpoints.
 * Endpoints come from EndpointSlices when the snapshot has any for a
 * service, else from the selector over ready-or-not pods of its namespace. */
#include "build.h"
#include "index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool service_vips(struct build *b, struct zt_service *s, const cJSON *spec, const cJSON *obj)
{
	const cJSON *list = json_arr(spec, "clusterIPs"), *it;
	const char *single = json_str(spec, "clusterIP");
	uint32_t n = 0, i = 0;

	if (!list && single) {
		/* Older objects have only clusterIP. */
		list = NULL;
		n = strcmp(single, "None") && *single ? 1 : 0;
	}
	cJSON_ArrayForEach(it, list) n += cJSON_IsString(it) && strcmp(it->valuestring, "None");
	if (!n)
		return true; /* headless or ExternalName */
	struct zt_ip *vips = build_calloc(b, n, sizeof(*vips));
	if (!vips)
		return false;
	if (!list) {
		if (zt_ip_parse(single, &vips[0]) < 0) {
			build_error(b, obj, "spec.clusterIP", "invalid IP \"%s\"", single);
			return false;
		}
	} else {
		uint32_t j = 0;
		cJSON_ArrayForEach(it, list) {
			if (!cJSON_IsString(it) || !strcmp(it->valuestring, "None")) {
				j++;
				continue;
			}
			if (zt_ip_parse(it->valuestring, &vips[i++]) < 0) {
				char field[40];
				snprintf(field, sizeof(field), "spec.clusterIPs[%u]", j);
				build_error(b, obj, field, "invalid IP \"%s\"", it->valuestring);
				return false;
			}
			j++;
		}
	}
	s->vips = vips;
	s->n_vips = n;
	return true;
}

static bool service_ports(struct build *b, struct zt_service *s, const cJSON *spec, const cJSON *obj)
{
	const cJSON *p;
	uint32_t n = 0, i = 0;

	cJSON_ArrayForEach(p, json_arr(spec, "ports")) n++;
	if (!n)
		return true;
	struct zt_service_port *ports = build_calloc(b, n, sizeof(*ports));
	if (!ports)
		return false;
	cJSON_ArrayForEach(p, json_arr(spec, "ports")) {
		const cJSON *port = cJSON_GetObjectItemCaseSensitive(p, "port");
		const cJSON *target = cJSON_GetObjectItemCaseSensitive(p, "targetPort");
		char field[48];

		snprintf(field, sizeof(field), "spec.ports[%u].port", i);
		if (!cJSON_IsNumber(port) || port->valuedouble < 1 || port->valuedouble > 65535) {
			build_error(b, obj, field, "must be a port number 1-65535");
			return false;
		}
		struct zt_service_port *sp = &ports[i++];
		const cJSON *np = cJSON_GetObjectItemCaseSensitive(p, "nodePort");
		if (cJSON_IsNumber(np) && np->valuedouble >= 1 && np->valuedouble <= 65535)
			sp->node_port = (uint16_t)np->valuedouble;
		sp->name = build_strdup(b, json_str(p, "name"));
		sp->port = (uint16_t)port->valuedouble;
		sp->protocol = zt_proto_parse(json_str(p, "protocol"));
		if (cJSON_IsString(target)) {
			sp->target_port_name = build_strdup(b, target->valuestring);
		} else if (cJSON_IsNumber(target) && target->valuedouble >= 1 &&
			   target->valuedouble <= 65535) {
			sp->target_port = (uint16_t)target->valuedouble;
		} else if (!target) {
			sp->target_port = sp->port; /* Kubernetes default */
		} else {
			snprintf(field, sizeof(field), "spec.ports[%u].targetPort", i - 1);
			build_error(b, obj, field, "must be a port number or a port name");
			return false;
		}
	}
	s->ports = ports;
	s->n_ports = n;
	return true;
}

/* spec.externalIPs and status.loadBalancer.ingress[].ip (hostname-only
 * ingress entries name no address of ours). An invalid one is skipped
 * with a warning: it cannot be forwarded to us either. */
static bool service_externals(struct build *b, struct zt_service *s, const cJSON *item, const cJSON *obj)
{
	const cJSON *ext = json_arr(json_obj(item, "spec"), "externalIPs");
	const cJSON *ing = json_arr(json_obj(json_obj(item, "status"), "loadBalancer"), "ingress"), *it;
	uint32_t n = 0;

	cJSON_ArrayForEach(it, ext) n++;
	cJSON_ArrayForEach(it, ing) n++;
	if (!n)
		return true;
	struct zt_ip *ips = build_calloc(b, n, sizeof(*ips));
	if (!ips)
		return false;
	n = 0;
	cJSON_ArrayForEach(it, ext) {
		if (cJSON_IsString(it) && zt_ip_parse(it->valuestring, &ips[n]) == 0)
			n++;
		else
			build_warn(b, obj, "spec.externalIPs", "not an IP address: ignored");
	}
	cJSON_ArrayForEach(it, ing) {
		const char *ip = json_str(it, "ip");
		if (ip && zt_ip_parse(ip, &ips[n]) == 0)
			n++;
	}
	s->externals = ips;
	s->n_externals = n;
	return true;
}

int snapshot_parse_service(struct build *b, const cJSON *item, struct zt_service *s)
{
	const cJSON *md = json_obj(item, "metadata"), *spec = json_obj(item, "spec");
	const cJSON *obj = item;

	s->name = build_strdup(b, json_str(md, "name"));
	s->namespace = build_strdup(b, json_str(md, "namespace"));
	s->hostname = arena_printf(b->a, "%s.%s.svc.cluster.local", s->name, s->namespace);
	const char *etp = json_str(spec, "externalTrafficPolicy");
	s->external_local = etp && !strcmp(etp, "Local");
	if (!service_vips(b, s, spec, obj) || !service_ports(b, s, spec, obj) ||
	    !service_externals(b, s, item, obj) ||
	    !json_labels(b, json_obj(spec, "selector"), obj, "spec.selector", &s->selector))
		return 0;
	s->has_selector = s->selector.n > 0;
	return 1;
}

/* Named targetPort: the pod's container port of that name and protocol. */
static uint16_t resolve_target(const struct zt_service_port *sp, const struct zt_workload *w)
{
	if (!sp->target_port_name)
		return sp->target_port;
	for (uint32_t i = 0; i < w->n_ports; i++)
		if (w->ports[i].name && !strcmp(w->ports[i].name, sp->target_port_name) &&
		    w->ports[i].protocol == sp->protocol)
			return w->ports[i].port;
	return 0;
}

static int selector_endpoints(struct build *b, struct zt_service *s)
{
	uint32_t n = 0;

	const struct group *g = group_get(b->workloads_by_ns, s->namespace);

	for (int pass = 0; pass < 2; pass++) {
		uint32_t k = 0;
		for (uint32_t i = 0; i < g->n; i++) {
			const struct zt_workload *w = &b->workloads[g->v[i]];
			if (!w->n_ips || !zt_labels_match(&s->selector, &w->labels))
				continue;
			if (pass == 0) {
				n++;
				continue;
			}
			struct zt_endpoint *e = (struct zt_endpoint *)&s->endpoints[k++];
			uint16_t *tp = build_calloc(b, s->n_ports ? s->n_ports : 1, sizeof(*tp));
			if (!tp)
				return -ENOMEM;
			for (uint32_t p = 0; p < s->n_ports; p++)
				tp[p] = resolve_target(&s->ports[p], w);
			*e = (struct zt_endpoint){ w, tp, w->ready };
		}
		if (pass == 0) {
			if (!n)
				return 0;
			if (!(s->endpoints = build_calloc(b, n, sizeof(*s->endpoints))))
				return -ENOMEM;
			s->n_endpoints = n;
		}
	}
	return 0;
}

/* Port of an EndpointSlice matching a service port (by name, as Kubernetes
 * pairs them). */
static uint16_t slice_port(const cJSON *slice, const struct zt_service_port *sp)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, json_arr(slice, "ports")) {
		const char *name = json_str(p, "name");
		const cJSON *port = cJSON_GetObjectItemCaseSensitive(p, "port");
		bool same = (!name && !sp->name) || (name && sp->name && !strcmp(name, sp->name)) ||
			    (name && !*name && !sp->name);
		if (same && cJSON_IsNumber(port) && port->valuedouble >= 1 && port->valuedouble <= 65535)
			return (uint16_t)port->valuedouble;
	}
	return 0;
}

static int slice_endpoints(struct build *b, struct zt_service *s, const cJSON **slices, uint32_t n_slices)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < n_slices; i++) {
		const cJSON *e;
		cJSON_ArrayForEach(e, json_arr(slices[i], "endpoints")) {
			const cJSON *a;
			cJSON_ArrayForEach(a, json_arr(e, "addresses")) n++;
		}
	}
	struct zt_endpoint *eps = build_calloc(b, n ? n : 1, sizeof(*eps));
	if (!eps)
		return -ENOMEM;
	n = 0;
	for (uint32_t i = 0; i < n_slices; i++) {
		const cJSON *e;
		cJSON_ArrayForEach(e, json_arr(slices[i], "endpoints")) {
			const cJSON *a, *ready = cJSON_GetObjectItemCaseSensitive(json_obj(e, "conditions"), "ready");
			cJSON_ArrayForEach(a, json_arr(e, "addresses")) {
				struct zt_ip ip;
				const struct zt_workload *w;
				if (!cJSON_IsString(a) || zt_ip_parse(a->valuestring, &ip) < 0 ||
				    !(w = model_workload_by_ip(b->m, &ip)))
					continue; /* not a pod we know: no identity to use */
				uint16_t *tp = build_calloc(b, s->n_ports ? s->n_ports : 1, sizeof(*tp));
				if (!tp)
					return -ENOMEM;
				for (uint32_t p = 0; p < s->n_ports; p++)
					tp[p] = slice_port(slices[i], &s->ports[p]);
				/* Kubernetes: a missing ready condition means ready. */
				eps[n++] = (struct zt_endpoint){ w, tp, !cJSON_IsFalse(ready) };
			}
		}
	}
	s->endpoints = eps;
	s->n_endpoints = n;
	s->from_endpoint_slices = true;
	return 0;
}

static int slice_key(struct build *b, uint32_t i, char *buf, size_t size)
{
	const cJSON *md = json_obj(b->slices[i], "metadata");
	const char *ns = json_str(md, "namespace");
	const char *svc = json_str(json_obj(md, "labels"), "kubernetes.io/service-name");

	if (!ns || !svc)
		return -1;
	return snprintf(buf, size, "%s/%s", ns, svc);
}

int snapshot_link_endpoints(struct build *b)
{
	const cJSON **mine = calloc(b->n_slices ? b->n_slices : 1, sizeof(*mine));
	struct zt_index *by_service = group_by(b, b->n_slices, slice_key);
	char key[512];
	int r = 0;

	if (!mine || !by_service) {
		free(mine);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < b->n_slices; i++) {
		const cJSON *md = json_obj(b->slices[i], "metadata");
		const char *svc = json_str(json_obj(md, "labels"), "kubernetes.io/service-name");
		if (!svc || !model_service_by_name(b->m, json_str(md, "namespace"), svc))
			build_warn(b, b->slices[i],
				   "metadata.labels[kubernetes.io/service-name]",
				   "no such Service in the snapshot: slice ignored");
	}
	for (uint32_t i = 0; r == 0 && i < b->m->n_services; i++) {
		struct zt_service *s = &b->services[i];
		snprintf(key, sizeof(key), "%s/%s", s->namespace, s->name);
		const struct group *g = group_get(by_service, key);
		for (uint32_t j = 0; j < g->n; j++)
			mine[j] = b->slices[g->v[j]];
		if (g->n)
			r = slice_endpoints(b, s, mine, g->n);
		else if (s->has_selector)
			r = selector_endpoints(b, s);
	}
	free(mine);
	return r;
}
