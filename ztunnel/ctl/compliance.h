/* The compliance report of `ztunnel-ctl report compliance`: one cJSON
 * document built from a running agent's answers (its /config_dump, the
 * model of its /snapshot, its /metrics). Pure functions of those inputs:
 * the command fetches, these only compute, so the table, -o json and -o
 * yaml show the same numbers. */
#ifndef ZTUNNEL_CTL_COMPLIANCE_H
#define ZTUNNEL_CTL_COMPLIANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct zt_model;
struct prom_scrape;

struct compliance_input {
	const cJSON *dump;		   /* GET /config_dump */
	const struct zt_model *model;	   /* built from GET /snapshot */
	const struct prom_scrape *metrics; /* GET /metrics, or its increase over the window */
	unsigned long window_seconds;	   /* 0: counters since the agent started */
	unsigned long expiry_hours;
	int64_t now;
};

/* The whole report (without requirements); NULL when out of memory. */
cJSON *compliance_build(const struct compliance_input *in);

/* {"what", "covered", "total", "percent" (null when total is 0)} as
 * parent[key]; false when out of memory. */
bool compliance_add_coverage(cJSON *parent, const char *key, const char *what, double covered, double total);

/* From the model and /config_dump (compliance_model.c). */
bool compliance_workload_coverage(const struct zt_model *m, cJSON *coverage);
/* The namespace is deny-by-default: a namespace-wide or mesh-wide ALLOW
 * policy, or a DENY policy there that matches every connection. */
bool compliance_deny_by_default(const struct zt_model *m, const char *ns);
cJSON *compliance_open_namespaces(const struct zt_model *m);
cJSON *compliance_permissive(const struct zt_model *m);
/* Certificates without validity for within more seconds (cert_expiry_within). */
cJSON *compliance_expiring(const cJSON *dump, int64_t now, int64_t within);

/* From the metrics (compliance_traffic.c). */
bool compliance_traffic_coverage(const struct prom_scrape *s, cJSON *coverage);
cJSON *compliance_plaintext_paths(const struct prom_scrape *s, const struct zt_model *m);
cJSON *compliance_denials(const struct prom_scrape *s);

/* --require (compliance_require.c). */
enum compliance_req_kind {
	REQ_MTLS = 0,	     /* mtls=PERCENT of connections over mutual TLS */
	REQ_DENY_BY_DEFAULT, /* deny-by-default=NS[,NS...] */
	REQ_CERT_EXPIRY,     /* cert-expiry=HOURS: none expires sooner */
};

struct compliance_req {
	enum compliance_req_kind kind;
	const char *text;	/* as given, for the report */
	const char *namespaces; /* REQ_DENY_BY_DEFAULT: comma-separated */
	unsigned long number;	/* percent or hours */
};

/* "mtls=100" etc.: 0, or -EINVAL after printing why. */
int compliance_require_parse(const char *arg, struct compliance_req *out);

/* Evaluates each requirement against the report (built from in) and adds
 * "requirements": [{"requirement", "met", "detail"}] to it; *missed is how
 * many do not hold. -ENOMEM. */
int compliance_require_check(cJSON *report, const struct compliance_input *in, const struct compliance_req *reqs,
			     size_t n, unsigned *missed);

#endif
