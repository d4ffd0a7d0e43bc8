/* ztunnel-ctl report compliance: fetches what the report needs from the
 * running agent, has compliance_* compute it, prints it and turns the
 * requirements into the exit status. */
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "admin_client.h"
#include "compliance.h"
#include "live.h"
#include "model_load.h"
#include "prom.h"
#include "ztunnel/state.h"

#define MAX_REQUIREMENTS 16

struct report_args {
	unsigned long expiry_hours, interval;
	struct compliance_req reqs[MAX_REQUIREMENTS];
	size_t n_reqs;
};

enum { OPT_EXPIRY_HOURS = 0x200, OPT_INTERVAL, OPT_REQUIRE };

static int on_opt(void *ctx, int opt, const char *arg)
{
	struct report_args *a = ctx;

	switch (opt) {
	case OPT_EXPIRY_HOURS: return live_parse_number("--expiry-hours", arg, 87600, &a->expiry_hours);
	case OPT_INTERVAL: return live_parse_number("--interval", arg, 86400, &a->interval);
	case OPT_REQUIRE:
		if (a->n_reqs == MAX_REQUIREMENTS) {
			fprintf(stderr, "error: at most %d --require\n", MAX_REQUIREMENTS);
			return -EINVAL;
		}
		return compliance_require_parse(arg, &a->reqs[a->n_reqs++]);
	default: return -EINVAL;
	}
}

static const struct option opts[] = {
	{ "expiry-hours", required_argument, NULL, OPT_EXPIRY_HOURS },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "require", required_argument, NULL, OPT_REQUIRE },
	{ 0 },
};

static const struct live_cmd cmd = {
	.usage =
		"Usage: ztunnel-ctl report compliance [--expiry-hours N] [--interval SECONDS]\n"
		"                                     [--require REQUIREMENT]... [--admin URL] [-o table|json|yaml]\n\n"
		"An audit of the node's agent for regulated environments, from its\n"
		"/config_dump, the model of its /snapshot and its /metrics:\n"
		"  1. mTLS coverage: pods enrolled (hostNetwork pods excluded), and the share\n"
		"     of connections and of bytes that were mutual TLS;\n"
		"  2. every plaintext path (reporter, source and destination workload) with\n"
		"     its reason: non-mesh client, PERMISSIVE port (naming the\n"
		"     PeerAuthentication), non-mesh destination, node-originated (kubelet\n"
		"     probes and host processes: exempt from capture as in Istio, listed but\n"
		"     not counted in the coverage);\n"
		"  3. namespaces with pods that are not deny-by-default (no namespace-wide or\n"
		"     mesh-wide ALLOW policy, no DENY policy matching everything);\n"
		"  4. PeerAuthentications that let plaintext in (PERMISSIVE or DISABLE, or\n"
		"     such a port);\n"
		"  5. identities of this node with no certificate valid for --expiry-hours\n"
		"     more (default 24);\n"
		"  6. denials by policy and reason.\n"
		"Traffic counters (1, 2, 6) count since the agent started; with --interval\n"
		"SECONDS, the increase between two scrapes that far apart.\n"
		"Requirements (repeatable), each met or missed with the reason:\n"
		"  mtls=PERCENT              at least that share of connections mutual TLS\n"
		"                            (mtls=100: not one plaintext connection)\n"
		"  deny-by-default=NS[,NS]   each namespace has a namespace-wide or mesh-wide\n"
		"                            ALLOW policy, or a deny-all\n"
		"  cert-expiry=HOURS         no certificate of this node expires within HOURS\n"
		"Exit status: 0 every requirement met, 1 any missed (each named on stderr),\n"
		"2 usage error or the agent cannot be asked.\n\n"
		"Examples:\n"
		"  ztunnel-ctl report compliance\n"
		"  ztunnel-ctl report compliance --interval 60 -o json > audit.json\n"
		"  ztunnel-ctl report compliance --require mtls=100 --require deny-by-default=shop,payments \\\n"
		"      --require cert-expiry=12\n",
	.opts = opts,
	.on_opt = on_opt,
};

static int scrape(const char *admin, struct prom_scrape *out)
{
	char *text, err[256];
	size_t len;
	int r = admin_request(admin, "GET", "/metrics", &text, &len);

	if (r < 0)
		return r;
	if ((r = prom_parse(text, len, out, err, sizeof(err))) < 0)
		fprintf(stderr, "error: GET %s/metrics: not the Prometheus text format: %s\n", admin, err);
	free(text);
	return r;
}

/* The counters, or their increase over interval seconds. */
static int scrape_window(const char *admin, unsigned long interval, struct prom_scrape *metrics)
{
	struct prom_scrape first = { 0 };
	int r = scrape(admin, interval ? &first : metrics);

	if (r < 0 || !interval) {
		prom_scrape_release(&first);
		return r;
	}
	for (unsigned left = (unsigned)interval; left;)
		left = sleep(left);
	if ((r = scrape(admin, metrics)) == 0 && (r = prom_delta(metrics, &first)) < 0)
		fprintf(stderr, "error: out of memory\n");
	prom_scrape_release(&first);
	return r;
}

static void percent_cell(const cJSON *row, FILE *out)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(row, "percent");

	if (cJSON_IsNumber(p))
		fprintf(out, "%g%%", p->valuedouble);
	else
		fputc('-', out);
}

static const struct table_column coverage_cols[] = {
	{ "MEASURE", "what", NULL },
	{ "COVERED", "covered", NULL },
	{ "TOTAL", "total", NULL },
	{ "PERCENT", NULL, percent_cell },
};
static const struct table_column path_cols[] = {
	{ "REPORTER", "reporter", NULL },
	{ "SOURCE", "source", NULL },
	{ "DESTINATION", "destination", NULL },
	{ "REASON", "reason", NULL },
	{ "PEER-AUTHENTICATION", "peerAuthentication", NULL },
	{ "CONNECTIONS", "connections", NULL },
	{ "BYTES", "bytes", NULL },
};
static const struct table_column namespace_cols[] = {
	{ "NAMESPACE", "namespace", NULL },
	{ "PODS", "workloads", NULL },
	{ "ENROLLED", "enrolled", NULL },
	{ "ALLOW-POLICIES", "allowPolicies", NULL },
};
static const struct table_column permissive_cols[] = {
	{ "NAMESPACE", "namespace", NULL }, { "NAME", "name", NULL },	      { "SCOPE", "scope", NULL },
	{ "MODE", "mode", NULL },	    { "PORTS", "portLevelMtls", NULL },
};
static const struct table_column cert_cols[] = {
	{ "IDENTITY", "identity", NULL },
	{ "STATE", "state", NULL },
	{ "NOT-AFTER", "expirationTime", NULL },
};
static const struct table_column denial_cols[] = {
	{ "POLICY", "policy", NULL },
	{ "REASON", "reason", NULL },
	{ "DENIALS", "denials", NULL },
};
static const struct table_column requirement_cols[] = {
	{ "REQUIREMENT", "requirement", NULL },
	{ "MET", "met", NULL },
	{ "DETAIL", "detail", NULL },
};

struct section {
	const char *title, *member;
	const struct table_column *cols;
	size_t n_cols;
	bool if_any; /* left out when empty */
};

#define SECTION(title, member, cols, if_any) { title, member, cols, sizeof(cols) / sizeof(cols[0]), if_any }

static const struct section sections[] = {
	SECTION("mTLS coverage", "mtlsCoverage", coverage_cols, false),
	SECTION("Plaintext paths", "plaintextPaths", path_cols, false),
	SECTION("Namespaces not deny-by-default", "namespacesWithoutDenyByDefault", namespace_cols, false),
	SECTION("PeerAuthentications letting plaintext in", "permissivePeerAuthentications", permissive_cols,
		false),
	SECTION("Certificates expiring within --expiry-hours", "expiringCertificates", cert_cols, false),
	SECTION("Denials by policy", "denials", denial_cols, false),
	SECTION("Requirements", "requirements", requirement_cols, true),
};

static const char *doc_string(const cJSON *doc, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, key));
}

static int print_table(const cJSON *doc)
{
	printf("Compliance report of node %s (trust domain %s) at %s\n"
	       "Traffic counted %s; --expiry-hours %.0f\n",
	       doc_string(doc, "node"), doc_string(doc, "trustDomain"), doc_string(doc, "generatedAt"),
	       doc_string(doc, "trafficWindow"), cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(doc, "expiryHours")));
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		const struct section *s = &sections[i];
		const cJSON *rows = cJSON_GetObjectItemCaseSensitive(doc, s->member);
		if (s->if_any && !cJSON_GetArraySize(rows))
			continue;
		printf("\n%s\n", s->title);
		if (!cJSON_GetArraySize(rows))
			printf("  none\n");
		else if (table_print(rows, s->cols, s->n_cols, 2, stdout) < 0)
			return -ENOMEM;
	}
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/* Each missed requirement on stderr: the exit status alone says too little. */
static void name_missed(const cJSON *doc)
{
	const cJSON *r;

	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "requirements")) {
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "met")))
			fprintf(stderr, "requirement not met: %s: %s\n",
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "requirement")),
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "detail")));
	}
}

/* Builds, checks and prints the report: the exit status. */
static int report(const struct report_args *a, const struct live_opts *lo, const struct compliance_input *in)
{
	unsigned missed = 0;
	cJSON *doc = compliance_build(in);
	int status;

	if (!doc || compliance_require_check(doc, in, a->reqs, a->n_reqs, &missed) < 0) {
		fprintf(stderr, "error: out of memory\n");
		cJSON_Delete(doc);
		return CTL_EXIT_USAGE;
	}
	if (lo->format == OUTPUT_TABLE)
		status = print_table(doc) < 0 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
	else
		status = live_print(doc, lo, NULL, 0);
	name_missed(doc);
	cJSON_Delete(doc);
	return status == CTL_EXIT_OK && missed ? CTL_EXIT_NO : status;
}

int ctl_report_compliance(int argc, char **argv)
{
	struct report_args a = { .expiry_hours = 24 };
	struct prom_scrape metrics = { 0 };
	struct zt_model *m = NULL;
	struct live_opts lo;
	cJSON *dump = NULL;
	int status = live_parse(&cmd, argc, argv, &a, &lo);

	if (status != LIVE_PROCEED)
		return status;
	if (admin_get_json(lo.admin, "/config_dump", &dump) < 0 || model_load_agent(lo.admin, dump, &m) < 0) {
		cJSON_Delete(dump);
		return CTL_EXIT_USAGE;
	}
	if (scrape_window(lo.admin, a.interval, &metrics) == 0) {
		struct compliance_input in = { .dump = dump, .model = m, .metrics = &metrics,
					       .window_seconds = a.interval, .expiry_hours = a.expiry_hours,
					       .now = (int64_t)time(NULL) };
		status = report(&a, &lo, &in);
	} else {
		status = CTL_EXIT_USAGE;
	}
	prom_scrape_release(&metrics);
	model_free(m);
	cJSON_Delete(dump);
	return status;
}
