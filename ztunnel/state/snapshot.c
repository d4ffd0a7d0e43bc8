/* Snapshot -> model: validates the v1 List, parses each kind into the
 * model's arena, then links endpoints and policies and builds the indexes.
 * Any error rejects the whole snapshot (the caller keeps its model). */
#include "build.h"
#include "index.h"

#include "ztunnel/clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_NAMESPACE, K_POD, K_SERVICE, K_AUTHZ, K_PEER_AUTHN, K_SLICE, K_SA, K_MAX };

static const struct {
	const char *kind;
	const char *api[3]; /* accepted apiVersions */
	bool namespaced;
} kinds[K_MAX] = {
	[K_NAMESPACE] = { "Namespace", { "v1" }, false },
	[K_POD] = { "Pod", { "v1" }, true },
	[K_SERVICE] = { "Service", { "v1" }, true },
	[K_AUTHZ] = { "AuthorizationPolicy", { "security.istio.io/v1", "security.istio.io/v1beta1" }, true },
	[K_PEER_AUTHN] = { "PeerAuthentication", { "security.istio.io/v1", "security.istio.io/v1beta1" }, true },
	[K_SLICE] = { "EndpointSlice", { "discovery.k8s.io/v1" }, true },
	[K_SA] = { "ServiceAccount", { "v1" }, true },
};

/* Classifies an item, reporting anything that makes it unusable. */
static int item_kind(struct build *b, const cJSON *item, uint32_t i)
{
	char field[32];
	const char *kind = json_str(item, "kind"), *api = json_str(item, "apiVersion");
	const cJSON *md = json_obj(item, "metadata");

	snprintf(field, sizeof(field), "items[%u]", i);
	if (!cJSON_IsObject(item) || !kind) {
		build_error(b, NULL, field, "not a Kubernetes object (no \"kind\")");
		return -1;
	}
	for (int k = 0; k < K_MAX; k++) {
		if (strcmp(kind, kinds[k].kind))
			continue;
		const cJSON *obj = item;
		bool api_ok = false;
		for (int j = 0; j < 3 && kinds[k].api[j]; j++)
			api_ok |= api && !strcmp(api, kinds[k].api[j]);
		if (!api_ok) {
			build_error(b, obj, "apiVersion", "unsupported apiVersion \"%s\" for %s",
				    api ? api : "", kind);
			return -1;
		}
		if (!json_str(md, "name") || !*json_str(md, "name")) {
			build_error(b, obj, "metadata.name", "missing");
			return -1;
		}
		if (kinds[k].namespaced && (!json_str(md, "namespace") || !*json_str(md, "namespace"))) {
			build_error(b, obj, "metadata.namespace", "missing");
			return -1;
		}
		return k;
	}
	build_error(b, item, field,
		    "unexpected kind \"%s\" (a snapshot holds Namespace, Pod, Service, "
		    "ServiceAccount, EndpointSlice, AuthorizationPolicy, PeerAuthentication)",
		    kind);
	return -1;
}

/* "line L, column C" of a byte offset, for JSON syntax errors. */
static void json_position(const char *json, size_t off, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && json[i]; i++) {
		if (json[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int put_name(struct build *b, struct zt_index *ix, const char *kind, const char *key,
		    void *val)
{
	void *dup = NULL;
	int r = index_put(ix, key, (uint32_t)strlen(key), val, &dup);

	if (r == -EEXIST)
		build_error(b, NULL, "", "duplicate %s %s", kind, key);
	else if (r < 0)
		b->oom = true;
	return r;
}

static int index_model(struct build *b)
{
	struct zt_model *m = b->m;
	char ipbuf[64];

	m->svc_by_name = index_new(b->a, m->n_services);
	m->by_uid = index_new(b->a, m->n_workloads);
	uint32_t n_ips = 0, n_vips = 0;
	for (uint32_t i = 0; i < m->n_workloads; i++)
		n_ips += m->workloads[i].n_ips;
	for (uint32_t i = 0; i < m->n_services; i++)
		n_vips += m->services[i].n_vips;
	m->by_ip = index_new(b->a, n_ips);
	m->svc_by_vip = index_new(b->a, n_vips);
	if (!m->svc_by_name || !m->by_uid || !m->by_ip || !m->svc_by_vip) {
		b->oom = true;
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->n_services; i++) {
		struct zt_service *s = &b->services[i];
		const char *key = arena_printf(b->a, "%s/%s", s->namespace, s->name);
		if (key)
			put_name(b, m->svc_by_name, "Service", key, s);
		for (uint32_t j = 0; j < s->n_vips; j++) {
			void *dup = NULL;
			if (index_put(m->svc_by_vip, &s->vips[j], sizeof(s->vips[j]), s, &dup) == -EEXIST)
				build_error_named(b, arena_printf(b->a, "Service %s/%s", s->namespace, s->name),
						  "spec.clusterIPs", "cluster IP %s is also used by Service %s/%s",
						  zt_ip_format(&s->vips[j], ipbuf, sizeof(ipbuf)),
						  ((struct zt_service *)dup)->namespace,
						  ((struct zt_service *)dup)->name);
		}
	}
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		struct zt_workload *w = &b->workloads[i];
		if (w->uid && *w->uid)
			put_name(b, m->by_uid, "Pod uid", w->uid, w);
		/* hostNetwork pods carry their node's IP: it identifies no pod. */
		for (uint32_t j = 0; !w->host_network && j < w->n_ips; j++) {
			void *dup = NULL;
			if (index_put(m->by_ip, &w->ips[j], sizeof(w->ips[j]), w, &dup) == -EEXIST)
				build_error_named(b, arena_printf(b->a, "Pod %s/%s", w->namespace, w->name),
						  "status.podIPs", "IP %s is also used by Pod %s/%s",
						  zt_ip_format(&w->ips[j], ipbuf, sizeof(ipbuf)),
						  ((struct zt_workload *)dup)->namespace,
						  ((struct zt_workload *)dup)->name);
		}
	}
	return 0;
}

struct node_group {
	struct zt_node_workloads nw;
	uint32_t fill;
};

static int index_nodes(struct build *b)
{
	struct zt_model *m = b->m;
	struct zt_index *ix = index_new(b->a, m->n_workloads);
	struct node_group **of = calloc(m->n_workloads ? m->n_workloads : 1, sizeof(*of));
	int r = -ENOMEM;

	if (!ix || !of)
		goto out;
	/* Two passes: count per node, then fill arrays of exact size. */
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		const char *node = b->workloads[i].node;
		if (!node)
			continue;
		struct node_group *g = index_get(ix, node, (uint32_t)strlen(node));
		if (!g) {
			g = build_calloc(b, 1, sizeof(*g));
			if (!g || index_put(ix, node, (uint32_t)strlen(node), g, NULL) < 0)
				goto out;
			g->nw.node = node;
		}
		g->nw.n++;
		of[i] = g;
	}
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		struct node_group *g = of[i];
		if (!g)
			continue;
		if (!g->nw.items && !(g->nw.items = build_calloc(b, g->nw.n, sizeof(void *))))
			goto out;
		((const struct zt_workload **)g->nw.items)[g->fill++] = &b->workloads[i];
	}
	m->by_node = ix;
	r = 0;
out:
	free(of);
	return r;
}

/* Parses items of one kind into a freshly sized array. */
static int parse_kind(struct build *b, const cJSON *items, const int *item_kinds, enum kind k,
		      void **array, size_t elem, uint32_t *count)
{
	uint32_t n = 0, i = 0;
	const cJSON *it;

	cJSON_ArrayForEach(it, items) n += item_kinds[i++] == (int)k;
	*count = 0;
	*array = build_calloc(b, n ? n : 1, elem);
	if (!*array)
		return -ENOMEM;
	i = 0;
	cJSON_ArrayForEach(it, items) {
		if (item_kinds[i++] != (int)k)
			continue;
		char *slot = (char *)*array + (size_t)*count * elem;
		int r = 0;
		switch (k) {
		case K_NAMESPACE: r = snapshot_parse_namespace(b, it, (void *)slot); break;
		case K_POD: r = snapshot_parse_pod(b, it, (void *)slot); break;
		case K_SERVICE: r = snapshot_parse_service(b, it, (void *)slot); break;
		case K_AUTHZ: r = policy_parse_authz(b, it, (void *)slot); break;
		case K_PEER_AUTHN: r = policy_parse_peer_authn(b, it, (void *)slot); break;
		case K_SLICE: b->slices[b->n_slices++] = it; continue;
		default: continue;
		}
		if (r > 0) /* parsed and kept; 0: skipped (e.g. finished pod) */
			(*count)++;
		if (b->oom)
			return -ENOMEM;
	}
	return 0;
}

static int workload_ns(struct build *b, uint32_t i, char *buf, size_t size)
{
	return snprintf(buf, size, "%s", b->workloads[i].namespace);
}

static int build_model(struct build *b, const cJSON *root)
{
	const cJSON *items = json_arr(root, "items");
	const char *kind = json_str(root, "kind");
	uint32_t n = 0, i = 0;
	const cJSON *it;
	int r = 0;

	if (!cJSON_IsObject(root) || !kind || !strstr(kind, "List") || !items) {
		build_error(b, NULL, "", "not a Kubernetes List: expected {\"kind\": \"List\", "
				       "\"items\": [...]} as printed by kubectl get -o json");
		return -EINVAL;
	}
	cJSON_ArrayForEach(it, items) n++;
	int *item_kinds = calloc(n ? n : 1, sizeof(int));
	b->slices = calloc(n ? n : 1, sizeof(*b->slices));
	if (!item_kinds || !b->slices) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(it, items) {
		item_kinds[i] = item_kind(b, it, i);
		i++;
	}
	if (b->diags->n_errors) {
		r = -EINVAL;
		goto out;
	}
	/* Namespaces before pods: enrollment reads namespace labels. */
	struct zt_model *m = b->m;
	r = parse_kind(b, items, item_kinds, K_NAMESPACE, (void **)&b->namespaces,
		       sizeof(*b->namespaces), &m->n_namespaces);
	m->namespaces = b->namespaces;
	if (!r) {
		m->ns_by_name = index_new(b->a, m->n_namespaces);
		for (uint32_t j = 0; m->ns_by_name && j < m->n_namespaces; j++)
			put_name(b, m->ns_by_name, "Namespace", b->namespaces[j].name, &b->namespaces[j]);
	}
	if (!r)
		r = parse_kind(b, items, item_kinds, K_POD, (void **)&b->workloads,
			       sizeof(*b->workloads), &m->n_workloads);
	m->workloads = b->workloads;
	if (!r)
		r = parse_kind(b, items, item_kinds, K_SERVICE, (void **)&b->services,
			       sizeof(*b->services), &m->n_services);
	m->services = b->services;
	if (!r)
		r = parse_kind(b, items, item_kinds, K_AUTHZ, (void **)&b->policies,
			       sizeof(*b->policies), &m->n_policies);
	m->policies = b->policies;
	if (!r)
		r = parse_kind(b, items, item_kinds, K_PEER_AUTHN, (void **)&b->peer_authns,
			       sizeof(*b->peer_authns), &m->n_peer_authns);
	m->peer_authns = b->peer_authns;
	void *unused;
	uint32_t n_unused;
	if (!r)
		r = parse_kind(b, items, item_kinds, K_SLICE, &unused, 1, &n_unused);
	if (!r && !b->diags->n_errors)
		r = index_model(b);
	if (!r && !b->diags->n_errors)
		r = index_nodes(b);
	if (!r && !b->diags->n_errors && !(b->workloads_by_ns = group_by(b, m->n_workloads, workload_ns)))
		r = -ENOMEM;
	if (!r && !b->diags->n_errors)
		r = snapshot_link_endpoints(b);
	if (!r && !b->diags->n_errors)
		r = policy_select(b);
	for (uint32_t j = 0; j < m->n_workloads; j++)
		m->n_enrolled += m->workloads[j].enrolled;
out:
	free(item_kinds);
	free(b->slices);
	if (b->oom)
		return -ENOMEM;
	return r ? r : b->diags->n_errors ? -EINVAL : 0;
}

int snapshot_build_json(const cJSON *root, const struct snapshot_opts *opts, struct zt_model **out,
			struct zt_diags *diags)
{
	struct zt_model *m = calloc(1, sizeof(*m));
	int64_t t0 = clock_mono_ms();
	int r;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	arena_init(&m->arena);
	struct build b = { .m = m, .a = &m->arena, .diags = diags, .opts = opts };
	arena_init(&b.scratch);
	m->trust_domain = build_strdup(&b, opts && opts->trust_domain ? opts->trust_domain
								       : "cluster.local");
	m->root_namespace = build_strdup(&b, opts && opts->root_namespace ? opts->root_namespace
									   : "istio-system");
	r = build_model(&b, root);
	arena_release(&b.scratch);
	if (r < 0) {
		model_free(m);
		return r;
	}
	m->build_ms = (uint32_t)(clock_mono_ms() - t0);
	*out = m;
	return 0;
}

int snapshot_build(const char *json, size_t len, const struct snapshot_opts *opts,
		   struct zt_model **out, struct zt_diags *diags)
{
	const char *end = NULL;
	int64_t t0 = clock_mono_ms();

	*out = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!root) {
		unsigned line, col;
		size_t off = end && end >= json ? (size_t)(end - json) : 0;
		json_position(json, off, &line, &col);
		diags_add(diags, ZT_DIAG_ERROR, "", "", "invalid JSON at line %u, column %u%s", line,
			  col, off + 1 >= len ? " (unexpected end: truncated?)" : "");
		return -EINVAL;
	}
	int r = snapshot_build_json(root, opts, out, diags);
	cJSON_Delete(root);
	if (r == 0)
		(*out)->build_ms = (uint32_t)(clock_mono_ms() - t0);
	return r;
}
