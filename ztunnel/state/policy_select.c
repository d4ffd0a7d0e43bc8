/* Which policies apply to which workload, computed once per model so the
 * data path reads a ready list (SPEC.md §5.1, §5.4). */
#include "build.h"
#include "index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ptr_vec {
	const void **v;
	uint32_t n, cap;
};

static int vec_push(struct ptr_vec *v, const void *p)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 4;
		const void **nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
	return 0;
}

/* Istio: a root-namespace policy with a selector selects across namespaces. */
static bool authz_applies(const struct zt_model *m, const struct zt_authz_policy *p,
			  const struct zt_workload *w)
{
	switch (p->scope) {
	case ZT_SCOPE_GLOBAL: return true;
	case ZT_SCOPE_NAMESPACE: return !strcmp(p->namespace, w->namespace);
	case ZT_SCOPE_WORKLOAD:
		return (!strcmp(p->namespace, w->namespace) ||
			!strcmp(p->namespace, m->root_namespace)) &&
		       zt_labels_match(&p->selector, &w->labels);
	default: return false; /* waypoint policies are not ztunnel's */
	}
}

/* Oldest wins within a level; name breaks ties (Istio). */
static bool older(const struct zt_peer_authn *a, const struct zt_peer_authn *b)
{
	if (!b)
		return true;
	if (a->created != b->created)
		return a->created < b->created;
	return strcmp(a->name, b->name) < 0;
}

/* Candidates for a workload: its namespace's objects, then (merged in model
 * order) the root namespace's, which may select across namespaces. */
struct candidates {
	const struct group *ns, *root;
	uint32_t i, j;
};

static void candidates_init(struct candidates *c, const struct zt_index *groups,
			    const struct zt_model *m, const struct zt_workload *w)
{
	static const struct group none;

	c->ns = group_get(groups, w->namespace);
	c->root = strcmp(w->namespace, m->root_namespace) ? group_get(groups, m->root_namespace)
							    : &none;
	c->i = c->j = 0;
}

/* The next candidate's index, or false when there is none. */
static bool candidates_next(struct candidates *c, uint32_t *out)
{
	bool from_ns = c->i < c->ns->n, from_root = c->j < c->root->n;

	if (from_ns && (!from_root || c->ns->v[c->i] < c->root->v[c->j]))
		*out = c->ns->v[c->i++];
	else if (from_root)
		*out = c->root->v[c->j++];
	else
		return false;
	return true;
}

static void select_peer_authn(const struct zt_model *m, const struct zt_index *groups,
			      struct zt_workload *w)
{
	struct candidates c;
	uint32_t i;

	candidates_init(&c, groups, m, w);
	while (candidates_next(&c, &i)) {
		const struct zt_peer_authn *p = &m->peer_authns[i];
		bool same_ns = !strcmp(p->namespace, w->namespace);

		if (p->scope == ZT_SCOPE_GLOBAL) {
			if (older(p, w->peer_authn_mesh))
				w->peer_authn_mesh = p;
		} else if (p->scope == ZT_SCOPE_NAMESPACE && same_ns) {
			if (older(p, w->peer_authn_namespace))
				w->peer_authn_namespace = p;
		} else if (p->scope == ZT_SCOPE_WORKLOAD && same_ns &&
			   zt_labels_match(&p->selector, &w->labels)) {
			if (older(p, w->peer_authn_workload))
				w->peer_authn_workload = p;
		}
	}
}

static int authz_ns(struct build *b, uint32_t i, char *buf, size_t size)
{
	return snprintf(buf, size, "%s", b->policies[i].namespace);
}

static int peer_authn_ns(struct build *b, uint32_t i, char *buf, size_t size)
{
	return snprintf(buf, size, "%s", b->peer_authns[i].namespace);
}

/* Workloads with the same policies (a namespace's pods, mostly) share one
 * list and one index of it. */
static int share_list(struct build *b, struct zt_index *lists, const struct ptr_vec *v,
		      struct zt_workload *w)
{
	uint32_t len = v->n * (uint32_t)sizeof(*v->v);
	const struct zt_workload *same = index_get(lists, v->v, len);
	const struct zt_authz_policy **list;

	if (same) {
		w->policies = same->policies;
		w->n_policies = same->n_policies;
		w->authz_index = same->authz_index;
		return 0;
	}
	list = build_calloc(b, v->n, sizeof(*list));
	if (!list)
		return -ENOMEM;
	memcpy(list, v->v, len);
	w->policies = list;
	w->n_policies = v->n;
	w->authz_index = policy_index_build(b, list, v->n);
	if (!w->authz_index)
		return -ENOMEM;
	return index_put(lists, list, len, w, NULL);
}

int policy_select(struct build *b)
{
	struct zt_model *m = b->m;
	struct zt_index *authz = group_by(b, m->n_policies, authz_ns);
	struct zt_index *peer_authn = group_by(b, m->n_peer_authns, peer_authn_ns);
	struct zt_index *lists = index_new(&b->scratch, m->n_workloads);
	struct ptr_vec v = { 0 };
	struct candidates c;
	uint32_t j;
	int r = 0;

	if (!authz || !peer_authn || !lists)
		return -ENOMEM;
	for (uint32_t i = 0; r == 0 && i < m->n_workloads; i++) {
		struct zt_workload *w = &b->workloads[i];
		v.n = 0;
		candidates_init(&c, authz, m, w);
		while (r == 0 && candidates_next(&c, &j))
			if (authz_applies(m, &m->policies[j], w))
				r = vec_push(&v, &m->policies[j]);
		if (r == 0 && v.n)
			r = share_list(b, lists, &v, w);
		select_peer_authn(m, peer_authn, w);
	}
	free(v.v);
	return r;
}
