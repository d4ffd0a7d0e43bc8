/* Report sections from the agent's counters (docs/metrics.md): how much
 * traffic was mutual TLS, every plaintext path and why it exists, and the
 * denials by policy. */
#include "compliance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "ztunnel/authz.h"
#include "ztunnel/state.h"

#define M_OPENED "istio_tcp_connections_opened_total"
#define M_RECEIVED "istio_tcp_received_bytes_total"
#define M_SENT "istio_tcp_sent_bytes_total"
#define M_CAPTURE "ztunnel_capture_packets_total"
#define M_AUTHZ "ztunnel_authorization_decisions_total"

/* Why a plaintext path exists. Append only: the names are report values. */
enum plaintext_reason {
	PT_NON_MESH_CLIENT = 0,	 /* inbound from a client without an identity */
	PT_PERMISSIVE,		 /* ... let in by a PERMISSIVE (or DISABLE) PeerAuthentication */
	PT_NON_MESH_DESTINATION, /* outbound to a pod outside the mesh (passthrough) */
	PT_NODE_ORIGINATED,	 /* opened on the node: exempt from capture, as in Istio */
	PT_FOLDED,		 /* series overflow folded its labels into unknown */
	PT_UNEXPLAINED,
};

static const char *const reason_names[] = {
	[PT_NON_MESH_CLIENT] = "non-mesh client",
	[PT_PERMISSIVE] = "PERMISSIVE port",
	[PT_NON_MESH_DESTINATION] = "non-mesh destination",
	[PT_NODE_ORIGINATED] = "node-originated",
	[PT_FOLDED] = "labels folded into unknown (series overflow)",
	[PT_UNEXPLAINED] = "unexplained",
};

static bool named(const struct prom_sample *s, const char *name)
{
	return !strcmp(s->name, name);
}

static const char *label(const struct prom_sample *s, const char *name)
{
	const char *v = prom_label(s, name);

	return v && *v ? v : "unknown";
}

/* A series without the label is counted as plaintext: an audit must not
 * take mutual TLS for granted. */
static bool is_mtls(const struct prom_sample *s)
{
	return !strcmp(label(s, "connection_security_policy"), "mutual_tls");
}

bool compliance_traffic_coverage(const struct prom_scrape *s, cJSON *coverage)
{
	double conns = 0, conns_mtls = 0, bytes = 0, bytes_mtls = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct prom_sample *x = &s->samples[i];
		if (named(x, M_OPENED)) {
			conns += x->value;
			conns_mtls += is_mtls(x) ? x->value : 0;
		} else if (named(x, M_RECEIVED) || named(x, M_SENT)) {
			bytes += x->value;
			bytes_mtls += is_mtls(x) ? x->value : 0;
		}
	}
	return compliance_add_coverage(coverage, "connections", "connections over mutual TLS", conns_mtls, conns) &&
	       compliance_add_coverage(coverage, "bytes", "bytes over mutual TLS (received + sent)", bytes_mtls,
				       bytes);
}

/* Series summed by a key the caller composes. */
struct group {
	char *key;
	const struct prom_sample *first; /* its labels name the group */
	double sum[2];
};

struct groups {
	struct group *v;
	size_t n, cap;
};

/* The group of key (taken over, freed here on failure); NULL: no memory. */
static struct group *group_get(struct groups *g, char *key, const struct prom_sample *s)
{
	for (size_t i = 0; key && i < g->n; i++) {
		if (!strcmp(g->v[i].key, key)) {
			free(key);
			return &g->v[i];
		}
	}
	if (key && g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 16;
		struct group *v = realloc(g->v, cap * sizeof(*v));
		if (v) {
			g->v = v;
			g->cap = cap;
		}
	}
	if (!key || g->n == g->cap) {
		free(key);
		return NULL;
	}
	g->v[g->n] = (struct group){ .key = key, .first = s };
	return &g->v[g->n++];
}

static void groups_free(struct groups *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i].key);
	free(g->v);
}

/* Most first, then by key: the same counters give the same report. */
static int cmp_group(const void *a, const void *b)
{
	const struct group *x = a, *y = b;

	if (x->sum[0] != y->sum[0])
		return x->sum[0] < y->sum[0] ? 1 : -1;
	return strcmp(x->key, y->key);
}

static void groups_sort(struct groups *g)
{
	if (g->n) /* qsort wants a base even for nothing */
		qsort(g->v, g->n, sizeof(*g->v), cmp_group);
}

/* "ns/workload", or "unknown" when neither is known. */
static char *workload_ref(const struct prom_sample *s, const char *side)
{
	char ns_key[64], wl_key[64], *out;

	snprintf(ns_key, sizeof(ns_key), "%s_workload_namespace", side);
	snprintf(wl_key, sizeof(wl_key), "%s_workload", side);
	const char *ns = label(s, ns_key), *wl = label(s, wl_key);
	if (!strcmp(ns, "unknown") && !strcmp(wl, "unknown"))
		return strdup("unknown");
	return asprintf(&out, "%s/%s", ns, wl) < 0 ? NULL : out;
}

/* The PeerAuthentication that lets plaintext into pods of workload ns/name,
 * resolved as the agent resolves it (authz_mtls_mode: mesh, namespace,
 * workload), or a port-level PERMISSIVE/DISABLE of the workload's. NULL:
 * no object does; plaintext is then in only by Istio's default. */
static const struct zt_peer_authn *permissive_cover(const struct zt_model *m, const char *ns, const char *name)
{
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		const struct zt_workload *w = &m->workloads[i];
		const struct zt_peer_authn *from, *pa = w->peer_authn_workload;
		if (strcmp(w->namespace, ns) || strcmp(w->workload_name ? w->workload_name : w->name, name))
			continue;
		/* Port 0 is no pod's port: the workload-wide mode. */
		uint8_t mode = authz_mtls_mode(w, 0, &from);
		if (from && (mode == ZT_MTLS_PERMISSIVE || mode == ZT_MTLS_DISABLE))
			return from;
		for (uint32_t p = 0; pa && p < pa->n_ports; p++)
			if (pa->ports[p].mode == ZT_MTLS_PERMISSIVE || pa->ports[p].mode == ZT_MTLS_DISABLE)
				return pa;
	}
	return NULL;
}

static enum plaintext_reason path_reason(const struct prom_sample *s, const struct zt_model *m,
					 const struct zt_peer_authn **pa)
{
	const char *reporter = label(s, "reporter");

	*pa = NULL;
	if (!strcmp(reporter, "unknown"))
		return PT_FOLDED;
	if (!strcmp(reporter, "destination")) {
		if ((*pa = permissive_cover(m, label(s, "destination_workload_namespace"),
					    label(s, "destination_workload"))))
			return PT_PERMISSIVE;
		if (!strcmp(label(s, "source_principal"), "unknown"))
			return PT_NON_MESH_CLIENT;
	} else if (!strcmp(reporter, "source") && !strcmp(label(s, "destination_principal"), "unknown")) {
		return PT_NON_MESH_DESTINATION;
	}
	return PT_UNEXPLAINED;
}

static cJSON *path_entry(const char *reporter, char *src, char *dst, enum plaintext_reason reason,
			 const struct zt_peer_authn *pa, double conns, const double *bytes)
{
	cJSON *e = cJSON_CreateObject();
	bool ok = e && src && dst && cJSON_AddStringToObject(e, "reporter", reporter) &&
		  cJSON_AddStringToObject(e, "source", src) && cJSON_AddStringToObject(e, "destination", dst) &&
		  cJSON_AddStringToObject(e, "reason", reason_names[reason]) &&
		  (pa ? cJSON_AddStringToObject(e, "peerAuthentication", pa->key)
		      : cJSON_AddNullToObject(e, "peerAuthentication")) &&
		  cJSON_AddNumberToObject(e, "connections", conns) &&
		  (bytes ? cJSON_AddNumberToObject(e, "bytes", *bytes) : cJSON_AddNullToObject(e, "bytes"));

	free(src);
	free(dst);
	if (!ok) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

/* Plaintext series grouped by reporter, source and destination workload
 * (and principals, which for plaintext are unknown: docs/metrics.md). */
static bool group_plaintext(const struct prom_scrape *s, struct groups *g)
{
	static const char *const keys[] = { "reporter",
					    "source_workload_namespace",
					    "source_workload",
					    "source_principal",
					    "destination_workload_namespace",
					    "destination_workload",
					    "destination_principal" };
	const char *v[7];
	char *key;

	for (size_t i = 0; i < s->n; i++) {
		const struct prom_sample *x = &s->samples[i];
		bool opened = named(x, M_OPENED);
		if (!(opened || named(x, M_RECEIVED) || named(x, M_SENT)) || is_mtls(x) || x->value == 0)
			continue;
		for (int k = 0; k < 7; k++)
			v[k] = label(x, keys[k]);
		if (asprintf(&key, "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", v[0], v[1], v[2], v[3], v[4], v[5],
			     v[6]) < 0)
			key = NULL;
		struct group *gr = group_get(g, key, x);
		if (!gr)
			return false;
		gr->sum[opened ? 0 : 1] += x->value;
	}
	groups_sort(g);
	return true;
}

static double node_originated(const struct prom_scrape *s)
{
	double n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (named(&s->samples[i], M_CAPTURE) && !strcmp(label(&s->samples[i], "verdict"), "node_originated"))
			n += s->samples[i].value;
	return n;
}

cJSON *compliance_plaintext_paths(const struct prom_scrape *s, const struct zt_model *m)
{
	struct groups g = { 0 };
	cJSON *list = cJSON_CreateArray(), *e = NULL;
	const struct zt_peer_authn *pa;
	double node = node_originated(s);

	if (list && !group_plaintext(s, &g))
		goto fail;
	for (size_t i = 0; list && i < g.n; i++) {
		const struct prom_sample *x = g.v[i].first;
		enum plaintext_reason reason = path_reason(x, m, &pa);
		e = path_entry(label(x, "reporter"), workload_ref(x, "source"), workload_ref(x, "destination"), reason,
			       pa, g.v[i].sum[0], &g.v[i].sum[1]);
		if (!e || !cJSON_AddItemToArray(list, e))
			goto fail_entry;
	}
	/* Connections opened on the node (kubelet probes, host processes) are
	 * exempt from capture, as in Istio's ambient mode: listed, with no
	 * bytes known, and not part of the connection coverage. */
	if (list && node > 0) {
		e = path_entry("node", strdup("the node (kubelet probes, host processes)"),
			       strdup("enrolled pods of this node"), PT_NODE_ORIGINATED, NULL, node, NULL);
		if (!e || !cJSON_AddItemToArray(list, e))
			goto fail_entry;
	}
	groups_free(&g);
	return list;
fail_entry:
	cJSON_Delete(e);
fail:
	groups_free(&g);
	cJSON_Delete(list);
	return NULL;
}

cJSON *compliance_denials(const struct prom_scrape *s)
{
	struct groups g = { 0 };
	cJSON *list = cJSON_CreateArray(), *e = NULL;
	char *key;

	for (size_t i = 0; list && i < s->n; i++) {
		const struct prom_sample *x = &s->samples[i];
		if (!named(x, M_AUTHZ) || strcmp(label(x, "action"), "deny") || x->value == 0)
			continue;
		if (asprintf(&key, "%s\x1f%s", label(x, "policy"), label(x, "reason")) < 0)
			key = NULL;
		struct group *gr = group_get(&g, key, x);
		if (!gr)
			goto fail;
		gr->sum[0] += x->value;
	}
	groups_sort(&g);
	for (size_t i = 0; list && i < g.n; i++) {
		/* "-": no policy matched and the default decided (docs/metrics.md). */
		if (!(e = cJSON_CreateObject()) || !cJSON_AddStringToObject(e, "policy", label(g.v[i].first, "policy")) ||
		    !cJSON_AddStringToObject(e, "reason", label(g.v[i].first, "reason")) ||
		    !cJSON_AddNumberToObject(e, "denials", g.v[i].sum[0]) || !cJSON_AddItemToArray(list, e))
			goto fail;
	}
	groups_free(&g);
	return list;
fail:
	cJSON_Delete(e);
	groups_free(&g);
	cJSON_Delete(list);
	return NULL;
}
