/* Who may have which certificate (DESIGN.md §4): a node agent only for
 * identities that have a pod on its own node, the node taken from the
 * token's pod binding as the API server reported it (never from the
 * request); anyone else only for its own ServiceAccount's identity. */
#include "ca_int.h"

#include <stdio.h>
#include <string.h>

static const char *const outcome_names[CA_OUTCOMES] = {
	[CA_ISSUED] = "issued",
	[CA_UNAUTHENTICATED] = "unauthenticated",
	[CA_IMPERSONATION] = "impersonation_denied",
	[CA_NO_NODE] = "no_node_claim",
	[CA_NOT_ON_NODE] = "not_on_node",
	[CA_BAD_REQUEST] = "bad_request",
	[CA_UNAVAILABLE] = "unavailable",
};

const char *ca_outcome_name(enum ca_outcome o)
{
	return (unsigned)o < CA_OUTCOMES ? outcome_names[o] : "?";
}

static bool is_agent(const struct ca_rules *rules, const struct kube_caller *who)
{
	size_t nl = strlen(who->ns);

	for (size_t i = 0; i < rules->n_agents; i++) {
		const char *a = rules->agents[i];
		if (!strncmp(a, who->ns, nl) && a[nl] == '/' && !strcmp(a + nl + 1, who->sa))
			return true;
	}
	return false;
}

static bool runs_on(const struct zt_model *m, const char *node, const char *uri)
{
	const struct zt_node_workloads *nw = model_node_workloads(m, node);

	for (uint32_t i = 0; nw && i < nw->n; i++)
		if (!strcmp(nw->items[i]->identity, uri))
			return true;
	return false;
}

enum ca_outcome ca_authorize(const struct ca_rules *rules, const struct kube_caller *who,
			     const char *impersonated, const struct zt_model *m, struct spiffe_id *grant, char *why,
			     size_t why_size)
{
	char uri[800];

	memset(grant, 0, sizeof(*grant));
	if (!who->ns[0] || !who->sa[0]) {
		snprintf(why, why_size, "%s is not a ServiceAccount", who->username);
		return CA_UNAUTHENTICATED;
	}
	if (!impersonated || !impersonated[0]) {
		snprintf(grant->td, sizeof(grant->td), "%s", rules->trust_domain);
		snprintf(grant->ns, sizeof(grant->ns), "%s", who->ns);
		snprintf(grant->sa, sizeof(grant->sa), "%s", who->sa);
		return CA_ISSUED;
	}
	if (!is_agent(rules, who)) {
		snprintf(why, why_size, "only node agents may ask on behalf of others, not %s/%s", who->ns, who->sa);
		return CA_IMPERSONATION;
	}
	if (spiffe_parse(impersonated, grant) < 0 || spiffe_format(grant, uri, sizeof(uri)) < 0 ||
	    strcmp(uri, impersonated)) {
		snprintf(why, why_size, "not a SPIFFE id");
		return CA_BAD_REQUEST;
	}
	if (strcmp(grant->td, rules->trust_domain)) {
		snprintf(why, why_size, "trust domain %s is not this CA's (%s)", grant->td, rules->trust_domain);
		return CA_BAD_REQUEST;
	}
	if (!who->node[0]) {
		snprintf(why, why_size, "the token is not bound to a pod on a node (use a projected ServiceAccount token)");
		return CA_NO_NODE;
	}
	if (!m) {
		snprintf(why, why_size, "the pods are not known yet");
		return CA_UNAVAILABLE;
	}
	if (!runs_on(m, who->node, uri)) {
		snprintf(why, why_size, "identity has no pod on the caller's node %s", who->node);
		return CA_NOT_ON_NODE;
	}
	return CA_ISSUED;
}
