/* Who may have which certificate (DESIGN.md §4): a node agent only for
 * identities that have a pod on its own node, the node taken from the pod
 * its token is bound to as the API server reported it (and that pod must
 * be an agent pod on that node: a token bound to a Node object, or to
 * some other pod, does not make its holder that node's agent), never from
 * the request; any other ServiceAccount only for its own identity. */
#include "ca_int.h"

#include <stdio.h>
#include <string.h>

static const char *const outcome_names[CA_OUTCOMES] = {
	[CA_ISSUED] = "issued",
	[CA_UNAUTHENTICATED] = "unauthenticated",
	[CA_NOT_SA] = "not_service_account",
	[CA_IMPERSONATION] = "impersonation_denied",
	[CA_UNBOUND_TOKEN] = "unbound_token",
	[CA_NOT_ON_NODE] = "not_on_node",
	[CA_BAD_REQUEST] = "bad_request",
	[CA_TOO_MANY] = "too_many",
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

enum ca_outcome ca_authorize(const struct ca_rules *rules, const struct kube_caller *who,
			     const char *impersonated, const struct ca_pods *pods, struct spiffe_id *grant, char *why,
			     size_t why_size)
{
	char uri[800];

	memset(grant, 0, sizeof(*grant));
	if (!who->service_account || !who->ns[0] || !who->sa[0]) {
		snprintf(why, why_size, "%s is not a ServiceAccount", who->username);
		return CA_NOT_SA;
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
	if (!who->node[0] || !who->pod[0]) {
		snprintf(why, why_size, "the token is not bound to an agent pod (use the DaemonSet's projected token)");
		return CA_UNBOUND_TOKEN;
	}
	if (!pods) {
		snprintf(why, why_size, "the pods are not known (yet), or no longer followed on the API server");
		return CA_UNAVAILABLE;
	}
	if (!ca_pods_is(pods, who->ns, who->pod, who->sa, who->node)) {
		snprintf(why, why_size, "the token's pod %s/%s is not an agent pod on node %s", who->ns, who->pod, who->node);
		return CA_UNBOUND_TOKEN;
	}
	if (!ca_pods_runs_on(pods, who->node, grant->ns, grant->sa)) {
		snprintf(why, why_size, "identity has no pod on the caller's node %s", who->node);
		return CA_NOT_ON_NODE;
	}
	return CA_ISSUED;
}
