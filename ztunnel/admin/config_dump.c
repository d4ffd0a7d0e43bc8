/* GET /config_dump and GET /snapshot (docs/admin.md): the model in force,
 * the effective configuration and this node's certificates, in a shape
 * close to Istio's ztunnel's config_dump (SPEC.md §7). */
#include "admin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

#include "ztunnel/cert_share.h"
#include "ztunnel/state.h"
#include "ztunnel/trust.h"
#include "ztunnel/version.h"

void admin_time(int64_t unix_s, char *buf, size_t size)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static void add_ips(cJSON *o, const char *key, const struct zt_ip *ips, uint32_t n)
{
	cJSON *arr = cJSON_AddArrayToObject(o, key);
	char buf[64];

	for (uint32_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(zt_ip_format(&ips[i], buf, sizeof(buf))));
}

static cJSON *workload(const struct zt_workload *w, const char *node)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "uid", w->uid ? w->uid : "");
	cJSON_AddStringToObject(o, "name", w->name);
	cJSON_AddStringToObject(o, "namespace", w->namespace);
	cJSON_AddStringToObject(o, "node", w->node ? w->node : "");
	cJSON_AddStringToObject(o, "serviceAccount", w->service_account ? w->service_account : "");
	cJSON_AddStringToObject(o, "identity", w->identity ? w->identity : "");
	cJSON_AddStringToObject(o, "workloadName", w->workload_name ? w->workload_name : "");
	cJSON_AddStringToObject(o, "canonicalName", w->canonical_name ? w->canonical_name : "");
	cJSON_AddStringToObject(o, "canonicalRevision", w->canonical_revision ? w->canonical_revision : "");
	add_ips(o, "ips", w->ips, w->n_ips);
	cJSON_AddBoolToObject(o, "enrolled", w->enrolled);
	cJSON_AddStringToObject(o, "enrollment", zt_enrollment_reason((enum zt_enrollment)w->enrollment));
	cJSON_AddBoolToObject(o, "hostNetwork", w->host_network);
	cJSON_AddBoolToObject(o, "ready", w->ready);
	cJSON_AddStringToObject(o, "phase", w->phase ? w->phase : "");
	cJSON_AddBoolToObject(o, "local", node && w->node && !strcmp(node, w->node));
	cJSON_AddBoolToObject(o, "captured", w->captured);
	cJSON_AddStringToObject(o, "protocol", w->enrolled && w->captured ? "HBONE" : "TCP");
	return o;
}

static cJSON *service(const struct zt_service *s)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", s->name);
	cJSON_AddStringToObject(o, "namespace", s->namespace);
	cJSON_AddStringToObject(o, "hostname", s->hostname ? s->hostname : "");
	add_ips(o, "vips", s->vips, s->n_vips);
	add_ips(o, "externals", s->externals, s->n_externals);
	cJSON *ports = cJSON_AddArrayToObject(o, "ports");
	for (uint32_t i = 0; i < s->n_ports; i++) {
		const struct zt_service_port *p = &s->ports[i];
		cJSON *po = cJSON_CreateObject();
		cJSON_AddStringToObject(po, "name", p->name ? p->name : "");
		cJSON_AddNumberToObject(po, "port", p->port);
		if (p->target_port_name && !p->target_port)
			cJSON_AddStringToObject(po, "targetPort", p->target_port_name);
		else
			cJSON_AddNumberToObject(po, "targetPort", p->target_port);
		cJSON_AddNumberToObject(po, "nodePort", p->node_port);
		cJSON_AddItemToArray(ports, po);
	}
	cJSON *eps = cJSON_AddArrayToObject(o, "endpoints");
	for (uint32_t i = 0; i < s->n_endpoints; i++) {
		const struct zt_endpoint *e = &s->endpoints[i];
		cJSON *eo = cJSON_CreateObject();
		char ref[320];
		snprintf(ref, sizeof(ref), "%s/%s", e->workload->namespace, e->workload->name);
		cJSON_AddStringToObject(eo, "workload", ref);
		cJSON_AddBoolToObject(eo, "ready", e->ready);
		cJSON_AddItemToArray(eps, eo);
	}
	return o;
}

static const char *scope_name(uint8_t scope)
{
	static const char *const names[] = { "global", "namespace", "workload", "waypoint" };
	return scope < 4 ? names[scope] : "unknown";
}

static const char *mode_name(uint8_t mode)
{
	static const char *const names[] = { "UNSET", "PERMISSIVE", "STRICT", "DISABLE" };
	return mode < 4 ? names[mode] : "UNSET";
}

static void policies(cJSON *arr, const struct zt_model *m)
{
	static const char *const actions[] = { "ALLOW", "DENY", "AUDIT", "CUSTOM" };

	for (uint32_t i = 0; i < m->n_policies; i++) {
		const struct zt_authz_policy *p = &m->policies[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", "AuthorizationPolicy");
		cJSON_AddStringToObject(o, "namespace", p->namespace);
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "action", p->action < 4 ? actions[p->action] : "UNKNOWN");
		cJSON_AddStringToObject(o, "scope", scope_name(p->scope));
		cJSON_AddNumberToObject(o, "rules", p->n_rules);
		cJSON_AddBoolToObject(o, "dryRun", p->dry_run);
		if (p->invalid)
			cJSON_AddStringToObject(o, "invalid", p->invalid_reason ? p->invalid_reason : "invalid");
		cJSON_AddItemToArray(arr, o);
	}
	for (uint32_t i = 0; i < m->n_peer_authns; i++) {
		const struct zt_peer_authn *p = &m->peer_authns[i];
		cJSON *o = cJSON_CreateObject(), *ports;
		cJSON_AddStringToObject(o, "kind", "PeerAuthentication");
		cJSON_AddStringToObject(o, "namespace", p->namespace);
		cJSON_AddStringToObject(o, "name", p->name);
		cJSON_AddStringToObject(o, "scope", scope_name(p->scope));
		cJSON_AddStringToObject(o, "mode", mode_name(p->mode));
		ports = cJSON_AddObjectToObject(o, "portLevelMtls");
		for (uint32_t k = 0; k < p->n_ports; k++) {
			char port[8];
			snprintf(port, sizeof(port), "%u", p->ports[k].port);
			cJSON_AddStringToObject(ports, port, mode_name(p->ports[k].mode));
		}
		if (p->invalid)
			cJSON_AddStringToObject(o, "invalid", p->invalid_reason ? p->invalid_reason : "invalid");
		cJSON_AddItemToArray(arr, o);
	}
}

/* Each certificate of a PEM bundle as SPEC §7's entry (wolfSSL reads them). */
static int pem_entry(const struct cert_summary *c, void *ctx)
{
	cJSON *o = cJSON_CreateObject();
	word32 b64_len = (word32)(c->pem_len * 4 / 3 + 16);
	byte *b64 = malloc(b64_len + 1);
	char from[32], to[32];

	if (b64 && Base64_Encode_NoNl((const byte *)c->pem, (word32)c->pem_len, b64, &b64_len) == 0) {
		b64[b64_len] = '\0';
		cJSON_AddStringToObject(o, "pem", (char *)b64);
	}
	free(b64);
	admin_time(c->not_before, from, sizeof(from));
	admin_time(c->not_after, to, sizeof(to));
	cJSON_AddStringToObject(o, "serialNumber", c->serial);
	cJSON_AddStringToObject(o, "validFrom", from);
	cJSON_AddStringToObject(o, "expirationTime", to);
	cJSON_AddItemToArray(ctx, o);
	return 0;
}

static void pem_entries(cJSON *arr, const char *pem)
{
	cert_for_each_in_pem(pem, pem_entry, arr);
}

static void certificate(const struct cert_share_entry *e, void *ctx)
{
	static const char *const states[] = { "Initializing", "Available", "Unavailable" };
	cJSON *o = cJSON_CreateObject();
	char state[300];

	cJSON_AddStringToObject(o, "identity", e->uri);
	if (e->state == CERT_UNAVAILABLE || (e->state == CERT_INITIALIZING && e->error[0]))
		snprintf(state, sizeof(state), "%s: %s", states[e->state], e->error[0] ? e->error : "expired");
	else
		snprintf(state, sizeof(state), "%s", e->state < 3 ? states[e->state] : "Unknown");
	cJSON_AddStringToObject(o, "state", state);
	pem_entries(cJSON_AddArrayToObject(o, "certChain"), e->usable ? e->cert.chain_pem : NULL);
	pem_entries(cJSON_AddArrayToObject(o, "rootCerts"), e->usable ? e->cert.roots_pem : NULL);
	cJSON_AddItemToArray(ctx, o);
}

static int by_identity(const void *a, const void *b)
{
	const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;

	return strcmp(cJSON_GetObjectItem(x, "identity")->valuestring, cJSON_GetObjectItem(y, "identity")->valuestring);
}

/* Sorted by identity (SPEC §7). */
static cJSON *certificates(struct cert_share *share)
{
	cJSON *arr = cJSON_CreateArray(), *sorted = cJSON_CreateArray();
	int n = 0;

	if (share)
		cert_share_each(share, certificate, arr);
	n = cJSON_GetArraySize(arr);
	cJSON **items = calloc(n ? (size_t)n : 1, sizeof(*items));
	if (!items) {
		cJSON_Delete(sorted);
		return arr;
	}
	for (int i = 0; i < n; i++)
		items[i] = cJSON_DetachItemFromArray(arr, 0);
	qsort(items, (size_t)n, sizeof(*items), by_identity);
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(sorted, items[i]);
	free(items);
	cJSON_Delete(arr);
	return sorted;
}

static cJSON *snapshot_info(struct state_store *store)
{
	cJSON *o = cJSON_CreateObject();
	char at[32] = "", origin[256] = "";

	cJSON_AddNumberToObject(o, "generation", (double)state_store_generation(store));
	if (state_store_applied_at(store))
		admin_time(state_store_applied_at(store), at, sizeof(at));
	cJSON_AddStringToObject(o, "appliedAt", at);
	state_store_origin(store, origin, sizeof(origin));
	cJSON_AddStringToObject(o, "source", origin);
	cJSON_AddNumberToObject(o, "loads", (double)tm_counter_value(TM_SNAPSHOT_APPLIED));
	cJSON_AddNumberToObject(o, "rejected", (double)tm_counter_value(TM_SNAPSHOT_REJECTED));
	cJSON_AddNumberToObject(o, "invalidObjects", (double)tm_counter_value(TM_SNAPSHOT_INVALID_OBJECTS));
	return o;
}

void admin_config_dump(struct admin *a, struct admin_reply *r)
{
	cJSON *doc = cJSON_CreateObject(), *version = cJSON_AddObjectToObject(doc, "version");
	const char *node = a->d.cfg->node_name;

	cJSON_AddStringToObject(version, "component", "ztunnel");
	cJSON_AddStringToObject(version, "version", ZTUNNEL_VERSION);
	cJSON_AddItemToObject(doc, "config", config_to_json(a->d.cfg));
	cJSON_AddItemToObject(doc, "snapshot", snapshot_info(a->d.store));
	cJSON *wls = cJSON_AddArrayToObject(doc, "workloads"), *svcs = cJSON_AddArrayToObject(doc, "services");
	cJSON *pols = cJSON_AddArrayToObject(doc, "policies");
	/* This thread reads the model like a worker does (RCU). */
	state_reader_register();
	const struct zt_model *m = state_read_lock(a->d.store);
	for (uint32_t i = 0; m && i < m->n_workloads; i++)
		cJSON_AddItemToArray(wls, workload(&m->workloads[i], node));
	for (uint32_t i = 0; m && i < m->n_services; i++)
		cJSON_AddItemToArray(svcs, service(&m->services[i]));
	if (m)
		policies(pols, m);
	state_read_unlock();
	state_reader_unregister();
	cJSON_AddItemToObject(doc, "certificates", certificates(a->d.certs));
	reply_json(r, 200, doc);
}

void admin_snapshot(struct admin *a, struct admin_reply *r)
{
	char origin[256], *text = NULL;
	size_t len = 0;

	if (state_store_source(a->d.store, &text, &len, origin, sizeof(origin)) < 0)
		return reply_error(r, 503, "no snapshot applied yet");
	r->status = 200;
	r->type = "application/json";
	r->body.p = text; /* handed over: freed with the response */
	r->body.len = len;
	r->body.cap = len + 1;
}
