/* Report sections from what the agent enforces: its model (built from its
 * /snapshot by the agent's own code, so selectors and scopes resolve as the
 * agent resolves them) and the certificates of its /config_dump. */
#include "compliance.h"

#include <string.h>

#include "cert_expiry.h"
#include "ztunnel/policy-t.h"
#include "ztunnel/state.h"

static const char *const scope_names[] = { [ZT_SCOPE_GLOBAL] = "global", [ZT_SCOPE_NAMESPACE] = "namespace",
					   [ZT_SCOPE_WORKLOAD] = "workload", [ZT_SCOPE_WAYPOINT] = "waypoint" };
static const char *const mtls_names[] = { [ZT_MTLS_UNSET] = "UNSET", [ZT_MTLS_PERMISSIVE] = "PERMISSIVE",
					  [ZT_MTLS_STRICT] = "STRICT", [ZT_MTLS_DISABLE] = "DISABLE" };

bool compliance_workload_coverage(const struct zt_model *m, cJSON *coverage)
{
	uint32_t pods = 0, enrolled = 0;

	/* A hostNetwork pod shares the node's network namespace: ztunnel
	 * cannot capture it, as in Istio; it is not a gap to close. */
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		pods += !m->workloads[i].host_network;
		enrolled += !m->workloads[i].host_network && m->workloads[i].enrolled;
	}
	return compliance_add_coverage(coverage, "workloads", "pods enrolled in the mesh (hostNetwork excluded)",
				       enrolled, pods);
}

/* Every match list empty, or an HTTP-only DENY entry istiod widened to
 * everything. */
static bool match_total(const struct zt_match *mt)
{
	return mt->match_all ||
	       !(mt->namespaces.n || mt->not_namespaces.n || mt->principals.n || mt->not_principals.n ||
		 mt->service_accounts.n || mt->not_service_accounts.n || mt->source_ips.n || mt->not_source_ips.n ||
		 mt->destination_ips.n || mt->not_destination_ips.n || mt->destination_ports.n ||
		 mt->not_destination_ports.n);
}

/* A DENY policy that matches every connection: an invalid one (applied
 * fail-closed) or a rule whose every clause always holds ("rules: [{}]"). */
static bool denies_everything(const struct zt_authz_policy *p)
{
	if (p->invalid)
		return true;
	for (uint32_t r = 0; r < p->n_rules; r++) {
		const struct zt_rule *rule = &p->rules[r];
		bool all = !rule->dropped_l7;
		for (uint32_t c = 0; all && c < rule->n; c++) {
			bool clause = rule->clauses[c].n == 0;
			for (uint32_t k = 0; !clause && k < rule->clauses[c].n; k++)
				clause = match_total(&rule->clauses[c].matches[k]);
			all = clause;
		}
		if (all)
			return true;
	}
	return false;
}

/* Istio: once any ALLOW policy applies to a pod, what no ALLOW rule matches
 * is denied; an invalid ALLOW allows nothing, so it counts too. Dry-run and
 * waypoint policies are not enforced by ztunnel. */
static bool enforced_on_namespace(const struct zt_authz_policy *p, const char *ns)
{
	return !p->dry_run &&
	       (p->scope == ZT_SCOPE_GLOBAL || (p->scope == ZT_SCOPE_NAMESPACE && !strcmp(p->namespace, ns)));
}

bool compliance_deny_by_default(const struct zt_model *m, const char *ns)
{
	for (uint32_t i = 0; i < m->n_policies; i++) {
		const struct zt_authz_policy *p = &m->policies[i];
		if (enforced_on_namespace(p, ns) &&
		    (p->action == ZT_ACTION_ALLOW || (p->action == ZT_ACTION_DENY && denies_everything(p))))
			return true;
	}
	return false;
}

static bool has_workload_allow(const struct zt_model *m, const char *ns)
{
	for (uint32_t i = 0; i < m->n_policies; i++) {
		const struct zt_authz_policy *p = &m->policies[i];
		if (!p->dry_run && p->action == ZT_ACTION_ALLOW && p->scope == ZT_SCOPE_WORKLOAD &&
		    !strcmp(p->namespace, ns))
			return true;
	}
	return false;
}

static void count_pods(const struct zt_model *m, const char *ns, uint32_t *pods, uint32_t *enrolled)
{
	*pods = *enrolled = 0;
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		*pods += !strcmp(m->workloads[i].namespace, ns);
		*enrolled += !strcmp(m->workloads[i].namespace, ns) && m->workloads[i].enrolled;
	}
}

static cJSON *open_namespace(const struct zt_model *m, const char *ns, uint32_t pods, uint32_t enrolled)
{
	/* Workload-scoped ALLOWs leave every pod they do not select open. */
	const char *allow = has_workload_allow(m, ns) ? "workload-scoped only" : "none";
	cJSON *e = cJSON_CreateObject();

	if (!e || !cJSON_AddStringToObject(e, "namespace", ns) || !cJSON_AddNumberToObject(e, "workloads", pods) ||
	    !cJSON_AddNumberToObject(e, "enrolled", enrolled) || !cJSON_AddStringToObject(e, "allowPolicies", allow)) {
		cJSON_Delete(e);
		return NULL;
	}
	return e;
}

/* Namespaces with pods and without deny-by-default. */
cJSON *compliance_open_namespaces(const struct zt_model *m)
{
	cJSON *list = cJSON_CreateArray();
	uint32_t pods, enrolled;

	for (uint32_t i = 0; list && i < m->n_namespaces; i++) {
		const char *ns = m->namespaces[i].name;
		count_pods(m, ns, &pods, &enrolled);
		if (!pods || compliance_deny_by_default(m, ns))
			continue;
		cJSON *e = open_namespace(m, ns, pods, enrolled);
		if (!e || !cJSON_AddItemToArray(list, e)) {
			cJSON_Delete(e);
			cJSON_Delete(list);
			list = NULL;
		}
	}
	return list;
}

static bool lets_plaintext_in(uint8_t mode)
{
	/* In ambient mode DISABLE does not turn HBONE off; for plaintext it
	 * is the same as PERMISSIVE (SPEC.md §5.4). */
	return mode == ZT_MTLS_PERMISSIVE || mode == ZT_MTLS_DISABLE;
}

static cJSON *permissive_entry(const struct zt_peer_authn *pa)
{
	cJSON *e = cJSON_CreateObject(), *ports = NULL;
	char port[8];

	if (!e || !cJSON_AddStringToObject(e, "namespace", pa->namespace) ||
	    !cJSON_AddStringToObject(e, "name", pa->name) ||
	    !cJSON_AddStringToObject(e, "scope", scope_names[pa->scope]) ||
	    !cJSON_AddStringToObject(e, "mode", mtls_names[pa->mode]) ||
	    !(ports = cJSON_AddObjectToObject(e, "portLevelMtls")))
		goto fail;
	for (uint32_t i = 0; i < pa->n_ports; i++) {
		snprintf(port, sizeof(port), "%u", pa->ports[i].port);
		if (!cJSON_AddStringToObject(ports, port, mtls_names[pa->ports[i].mode]))
			goto fail;
	}
	return e;
fail:
	cJSON_Delete(e);
	return NULL;
}

cJSON *compliance_permissive(const struct zt_model *m)
{
	cJSON *list = cJSON_CreateArray();

	for (uint32_t i = 0; list && i < m->n_peer_authns; i++) {
		const struct zt_peer_authn *pa = &m->peer_authns[i];
		bool plain = lets_plaintext_in(pa->mode);
		for (uint32_t p = 0; !plain && p < pa->n_ports; p++)
			plain = lets_plaintext_in(pa->ports[p].mode);
		/* An invalid PeerAuthentication is applied as STRICT. */
		if (!plain || pa->invalid)
			continue;
		cJSON *e = permissive_entry(pa);
		if (!e || !cJSON_AddItemToArray(list, e)) {
			cJSON_Delete(e);
			cJSON_Delete(list);
			return NULL;
		}
	}
	return list;
}

cJSON *compliance_expiring(const cJSON *dump, int64_t now, int64_t within)
{
	cJSON *list = cJSON_CreateArray();
	const cJSON *c;

	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(dump, "certificates")) {
		if (!list || !cert_expiry_within(c, now, within))
			continue;
		const cJSON *leaf = cert_expiry_leaf(c);
		cJSON *e = cJSON_CreateObject();
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "identity"));
		const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "state"));
		const char *na = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(leaf, "expirationTime"));
		if (!e || !cJSON_AddStringToObject(e, "identity", id ? id : "unknown") ||
		    !cJSON_AddStringToObject(e, "state", state ? state : "unknown") ||
		    !(na ? cJSON_AddStringToObject(e, "expirationTime", na) : cJSON_AddNullToObject(e, "expirationTime")) ||
		    !cJSON_AddItemToArray(list, e)) {
			cJSON_Delete(e);
			cJSON_Delete(list);
			list = NULL;
		}
	}
	return list;
}
