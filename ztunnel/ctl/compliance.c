/* The compliance report's document: header, then one member per section,
 * each built by compliance_model.c (what the agent enforces) or
 * compliance_traffic.c (what its counters saw). */
#include "compliance.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

#include "ztunnel/state.h"

bool compliance_add_coverage(cJSON *parent, const char *key, const char *what, double covered, double total)
{
	cJSON *c = cJSON_AddObjectToObject(parent, key);

	/* Two decimals: 99.99 must not print as 100 while one connection in
	 * ten thousand is plaintext. */
	double pct = total > 0 ? floor(covered / total * 10000) / 100 : NAN;
	return c && cJSON_AddStringToObject(c, "what", what) && cJSON_AddNumberToObject(c, "covered", covered) &&
	       cJSON_AddNumberToObject(c, "total", total) &&
	       (total > 0 ? cJSON_AddNumberToObject(c, "percent", pct) != NULL
			  : cJSON_AddNullToObject(c, "percent") != NULL);
}

/* Takes item (NULL: out of memory) into doc. */
static bool add_section(cJSON *doc, const char *key, cJSON *item)
{
	if (item && cJSON_AddItemToObject(doc, key, item))
		return true;
	cJSON_Delete(item);
	return false;
}

static bool add_header(cJSON *doc, const struct compliance_input *in)
{
	const cJSON *config = cJSON_GetObjectItemCaseSensitive(in->dump, "config");
	const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "nodeName"));
	char at[32], window[64];
	time_t now = (time_t)in->now;
	struct tm tm;

	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	if (in->window_seconds)
		snprintf(window, sizeof(window), "the last %lu s", in->window_seconds);
	else
		snprintf(window, sizeof(window), "since the agent started");
	return cJSON_AddStringToObject(doc, "node", node ? node : "unknown") &&
	       cJSON_AddStringToObject(doc, "trustDomain", in->model->trust_domain) &&
	       cJSON_AddStringToObject(doc, "generatedAt", at) &&
	       cJSON_AddStringToObject(doc, "trafficWindow", window) &&
	       cJSON_AddNumberToObject(doc, "trafficWindowSeconds", (double)in->window_seconds);
}

cJSON *compliance_build(const struct compliance_input *in)
{
	cJSON *doc = cJSON_CreateObject(), *cov = NULL;
	const struct zt_model *m = in->model;

	bool ok = doc && add_header(doc, in) && (cov = cJSON_AddObjectToObject(doc, "mtlsCoverage")) &&
		  compliance_workload_coverage(m, cov) && compliance_traffic_coverage(in->metrics, cov) &&
		  add_section(doc, "plaintextPaths", compliance_plaintext_paths(in->metrics, m)) &&
		  add_section(doc, "namespacesWithoutDenyByDefault", compliance_open_namespaces(m)) &&
		  add_section(doc, "permissivePeerAuthentications", compliance_permissive(m)) &&
		  cJSON_AddNumberToObject(doc, "expiryHours", (double)in->expiry_hours) &&
		  add_section(doc, "expiringCertificates",
			      compliance_expiring(in->dump, in->now, (int64_t)in->expiry_hours * 3600)) &&
		  add_section(doc, "denials", compliance_denials(in->metrics));
	if (!ok) {
		cJSON_Delete(doc);
		return NULL;
	}
	return doc;
}
