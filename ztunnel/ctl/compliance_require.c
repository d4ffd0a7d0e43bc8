/* --require of `report compliance`: each requirement read from the report
 * (or from the same inputs), met or not, with the detail that says why. */
#include "compliance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live.h"
#include "ztunnel/state.h"

static const char *const req_names[] = { [REQ_MTLS] = "mtls", [REQ_DENY_BY_DEFAULT] = "deny-by-default",
					 [REQ_CERT_EXPIRY] = "cert-expiry" };

static int bad_require(const char *arg, const char *why)
{
	fprintf(stderr, "error: --require \"%s\": %s (mtls=PERCENT, deny-by-default=NS[,NS...], cert-expiry=HOURS)\n",
		arg, why);
	return -EINVAL;
}

int compliance_require_parse(const char *arg, struct compliance_req *out)
{
	const char *eq = strchr(arg, '='), *v = eq ? eq + 1 : "";
	size_t n = eq ? (size_t)(eq - arg) : 0, k;

	memset(out, 0, sizeof(*out));
	out->text = arg;
	for (k = 0; k < sizeof(req_names) / sizeof(req_names[0]); k++)
		if (strlen(req_names[k]) == n && !strncmp(arg, req_names[k], n))
			break;
	if (k == sizeof(req_names) / sizeof(req_names[0]))
		return bad_require(arg, "unknown requirement");
	out->kind = (enum compliance_req_kind)k;
	switch (out->kind) {
	case REQ_MTLS: return live_parse_number("--require mtls", v, 100, &out->number);
	case REQ_CERT_EXPIRY: return live_parse_number("--require cert-expiry", v, 87600, &out->number);
	case REQ_DENY_BY_DEFAULT:
		if (!*v || *v == ',' || v[strlen(v) - 1] == ',' || strstr(v, ",,"))
			return bad_require(arg, "want namespaces separated by commas");
		out->namespaces = v;
		return 0;
	}
	return -EINVAL;
}

static bool check_mtls(const cJSON *report, const struct compliance_req *r, FILE *detail)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "mtlsCoverage"),
							  "connections");
	double covered = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "covered"));
	double total = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "total"));

	if (!(total > 0)) {
		fprintf(detail, "no connections counted");
		return true;
	}
	/* Exact for counts below 2^53: mtls=100 fails on one plaintext
	 * connection in any number. */
	bool met = covered * 100 >= (double)r->number * total;
	fprintf(detail, "%.0f of %.0f connections plaintext (%g%% mutual TLS, need %lu%%)", total - covered, total,
		cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "percent")), r->number);
	return met;
}

static bool check_deny_by_default(const struct zt_model *m, const struct compliance_req *r, FILE *detail)
{
	char *list = strdup(r->namespaces), *save = NULL;
	bool met = list != NULL;

	for (char *ns = list ? strtok_r(list, ",", &save) : NULL; ns; ns = strtok_r(NULL, ",", &save)) {
		/* A misspelt namespace must not pass as protected. */
		bool known = model_namespace(m, ns) != NULL, ok = known && compliance_deny_by_default(m, ns);
		const char *why = ok	 ? "deny-by-default"
				  : known ? "no namespace-wide ALLOW policy or deny-all"
					  : "not in the agent's snapshot";
		met = met && ok;
		fprintf(detail, "%s%s: %s", ns == list ? "" : "; ", ns, why);
	}
	free(list);
	return met;
}

static bool check_cert_expiry(const struct compliance_input *in, const struct compliance_req *r, FILE *detail)
{
	cJSON *late = compliance_expiring(in->dump, in->now, (int64_t)r->number * 3600);
	const cJSON *c;

	if (!late) {
		fprintf(detail, "out of memory");
		return false;
	}
	if (!cJSON_GetArraySize(late))
		fprintf(detail, "no certificate of this node expires within %lu h", r->number);
	cJSON_ArrayForEach(c, late) {
		const cJSON *na = cJSON_GetObjectItemCaseSensitive(c, "expirationTime");
		fprintf(detail, "%s%s: %s", c == late->child ? "" : "; ",
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "identity")),
			cJSON_IsString(na) ? na->valuestring
					   : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "state")));
	}
	bool met = !cJSON_GetArraySize(late);
	cJSON_Delete(late);
	return met;
}

static cJSON *check_one(const cJSON *report, const struct compliance_input *in, const struct compliance_req *r)
{
	char *detail = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&detail, &len);
	bool met = false;
	cJSON *e = NULL;

	if (!f)
		return NULL;
	switch (r->kind) {
	case REQ_MTLS: met = check_mtls(report, r, f); break;
	case REQ_DENY_BY_DEFAULT: met = check_deny_by_default(in->model, r, f); break;
	case REQ_CERT_EXPIRY: met = check_cert_expiry(in, r, f); break;
	}
	if (fclose(f) == 0 && (e = cJSON_CreateObject()) &&
	    (!cJSON_AddStringToObject(e, "requirement", r->text) || !cJSON_AddBoolToObject(e, "met", met) ||
	     !cJSON_AddStringToObject(e, "detail", detail))) {
		cJSON_Delete(e);
		e = NULL;
	}
	free(detail);
	return e;
}

int compliance_require_check(cJSON *report, const struct compliance_input *in, const struct compliance_req *reqs,
			     size_t n, unsigned *missed)
{
	cJSON *list = cJSON_AddArrayToObject(report, "requirements");

	*missed = 0;
	for (size_t i = 0; list && i < n; i++) {
		cJSON *e = check_one(report, in, &reqs[i]);
		if (!e || !cJSON_AddItemToArray(list, e)) {
			cJSON_Delete(e);
			return -ENOMEM;
		}
		*missed += !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "met"));
	}
	return list ? 0 : -ENOMEM;
}
