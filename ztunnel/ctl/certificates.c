/* ztunnel-ctl certificates: the running agent's certificates for its
 * node's identities (/config_dump .certificates); with --cert-dir, a
 * files-provider directory offline instead. */
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "cert_expiry.h"
#include "certificates_files.h"
#include "live.h"

struct certs_args {
	const char *cert_dir, *trust_domain;
	bool expiring;
	unsigned long hours;
};

enum { OPT_CERT_DIR = 0x200, OPT_TRUST_DOMAIN, OPT_EXPIRING };

static int on_opt(void *ctx, int opt, const char *arg)
{
	struct certs_args *a = ctx;

	switch (opt) {
	case OPT_CERT_DIR: a->cert_dir = arg; return 0;
	case OPT_TRUST_DOMAIN: a->trust_domain = arg; return 0;
	case OPT_EXPIRING:
		a->expiring = true;
		/* Ten years: certificates live hours to days. */
		return live_parse_number("--expiring-within", arg, 87600, &a->hours);
	default: return -EINVAL;
	}
}

static const struct option opts[] = {
	{ "cert-dir", required_argument, NULL, OPT_CERT_DIR },
	{ "trust-domain", required_argument, NULL, OPT_TRUST_DOMAIN },
	{ "expiring-within", required_argument, NULL, OPT_EXPIRING },
	{ 0 },
};

static const struct live_cmd cmd = {
	.usage = "Usage: ztunnel-ctl certificates [--expiring-within HOURS] [--admin URL] [-o table|json|yaml]\n"
		 "       ztunnel-ctl certificates --cert-dir DIR [--trust-domain TD]\n\n"
		 "The running agent's certificate for each identity of its node's pods:\n"
		 "state (Available, Initializing, Unavailable: why), serial and validity of\n"
		 "the leaf. -o json|yaml: the agent's objects, with the chain and roots\n"
		 "(base64 PEM). --expiring-within HOURS: exit 1, naming them on stderr,\n"
		 "when an identity has no certificate valid for that long.\n"
		 "--cert-dir DIR: offline, the certificates of a files-provider directory\n"
		 "(DIR/<namespace>/<service account>/): identity, serial, validity, issuer\n"
		 "and state (Available, or why the agent would refuse the set); exit 1 when\n"
		 "any is not usable.\n"
		 "Exit status: 0, 1 as above, 2 usage error or the agent cannot be asked.\n\n"
		 "Examples:\n"
		 "  ztunnel-ctl certificates\n"
		 "  ztunnel-ctl certificates --expiring-within 24 || page-the-oncall\n"
		 "  ztunnel-ctl certificates --cert-dir /var/run/secrets/ztunnel\n",
	.opts = opts,
	.on_opt = on_opt,
};

static void leaf_member(const cJSON *row, const char *key, FILE *out)
{
	table_value(cJSON_GetObjectItemCaseSensitive(cert_expiry_leaf(row), key), out);
}

static void serial_cell(const cJSON *row, FILE *out)
{
	leaf_member(row, "serialNumber", out);
}

static void not_before_cell(const cJSON *row, FILE *out)
{
	leaf_member(row, "validFrom", out);
}

static void not_after_cell(const cJSON *row, FILE *out)
{
	leaf_member(row, "expirationTime", out);
}

static const struct table_column cols[] = {
	{ "IDENTITY", "identity", NULL },	{ "STATE", "state", NULL },
	{ "SERIAL", NULL, serial_cell },	{ "NOT-BEFORE", NULL, not_before_cell },
	{ "NOT-AFTER", NULL, not_after_cell },
};

/* Names each identity without a certificate valid for hours more: 1 if
 * any, else 0. */
static int check_expiring(const cJSON *certs, unsigned long hours)
{
	int64_t now = (int64_t)time(NULL);
	const cJSON *c;
	int status = CTL_EXIT_OK;

	cJSON_ArrayForEach(c, certs) {
		if (!cert_expiry_within(c, now, (int64_t)hours * 3600))
			continue;
		const cJSON *leaf = cert_expiry_leaf(c);
		fprintf(stderr, "expiring within %lu h: %s (%s)\n", hours,
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "identity")),
			leaf ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(leaf, "expirationTime"))
			     : cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "state")));
		status = CTL_EXIT_NO;
	}
	return status;
}

int ctl_certificates(int argc, char **argv)
{
	struct certs_args a = { 0 };
	struct live_opts lo;
	const cJSON *certs;
	cJSON *dump;
	int status = live_parse(&cmd, argc, argv, &a, &lo);

	if (status != LIVE_PROCEED)
		return status;
	if (a.cert_dir) {
		if (a.expiring || lo.format != OUTPUT_TABLE)
			return live_usage_error(&cmd, "--cert-dir lists a directory as text; "
						      "--expiring-within and -o are for the running agent");
		return certificates_files_list(a.cert_dir, a.trust_domain ? a.trust_domain : "cluster.local");
	}
	if (a.trust_domain)
		return live_usage_error(&cmd, "--trust-domain goes with --cert-dir");
	if (live_get_list(lo.admin, "/config_dump", "certificates", &dump, &certs) < 0)
		return CTL_EXIT_USAGE;
	status = live_print(certs, &lo, cols, sizeof(cols) / sizeof(cols[0]));
	if (status == CTL_EXIT_OK && a.expiring)
		status = check_expiring(certs, a.hours);
	cJSON_Delete(dump);
	return status;
}
