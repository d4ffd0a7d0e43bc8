/* ztunnel-ctl workloads | services | policies: the agent's model as its
 * /config_dump lists it (docs/admin.md), filtered; -o json|yaml gives the
 * agent's own objects unchanged. */
#include "ctl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin_client.h"
#include "live.h"

struct listing_filter {
	const char *namespace, *node;
	bool local;
};

struct listing {
	const char *member; /* of /config_dump; also the command's name */
	struct live_cmd cmd;
	const struct table_column *cols;
	size_t n_cols;
};

enum { OPT_NAMESPACE = 'n', OPT_NODE = 0x200, OPT_LOCAL };

static int on_filter(void *ctx, int opt, const char *arg)
{
	struct listing_filter *f = ctx;

	switch (opt) {
	case OPT_NAMESPACE: f->namespace = arg; return 0;
	case OPT_NODE: f->node = arg; return 0;
	case OPT_LOCAL: f->local = true; return 0;
	default: return -EINVAL;
	}
}

static bool member_is(const cJSON *item, const char *key, const char *want)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, key));

	return !want || (v && !strcmp(v, want));
}

static bool keep(const cJSON *item, const struct listing_filter *f)
{
	return member_is(item, "namespace", f->namespace) && member_is(item, "node", f->node) &&
	       (!f->local || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "local")));
}

static int listing_run(const struct listing *l, int argc, char **argv)
{
	struct listing_filter f = { 0 };
	struct live_opts lo;
	const cJSON *items, *it;
	cJSON *dump;
	int status = live_parse(&l->cmd, argc, argv, &f, &lo);

	if (status != LIVE_PROCEED)
		return status;
	if (live_get_list(lo.admin, "/config_dump", l->member, &dump, &items) < 0)
		return CTL_EXIT_USAGE;
	/* References: the rows are the dump's own objects, printed as they are. */
	cJSON *rows = cJSON_CreateArray();
	status = rows ? CTL_EXIT_OK : CTL_EXIT_USAGE;
	cJSON_ArrayForEach(it, items) {
		if (rows && keep(it, &f) && !cJSON_AddItemReferenceToArray(rows, (cJSON *)it))
			status = CTL_EXIT_USAGE;
	}
	if (status == CTL_EXIT_OK)
		status = live_print(rows, &lo, l->cols, l->n_cols);
	else
		fprintf(stderr, "error: out of memory\n");
	cJSON_Delete(rows);
	cJSON_Delete(dump);
	return status;
}

/* --- workloads --- */

static const struct option workload_opts[] = {
	{ "namespace", required_argument, NULL, OPT_NAMESPACE },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "local", no_argument, NULL, OPT_LOCAL },
	{ 0 },
};

static const struct table_column workload_cols[] = {
	{ "NAMESPACE", "namespace", NULL }, { "NAME", "name", NULL },	      { "NODE", "node", NULL },
	{ "IP", "ips", NULL },		    { "IDENTITY", "identity", NULL }, { "ENROLLED", "enrolled", NULL },
	{ "PROTOCOL", "protocol", NULL },
};

static const struct listing workloads = {
	.member = "workloads",
	.cmd = {
		.usage = "Usage: ztunnel-ctl workloads [-n|--namespace NS] [--node NODE] [--local]\n"
			 "                             [--admin URL] [-o table|json|yaml]\n\n"
			 "The pods of the agent's model (the whole cluster; --local: this node's):\n"
			 "namespace, name, node, addresses, SPIFFE identity, whether ztunnel\n"
			 "captures it (ENROLLED) and how it is reached (PROTOCOL: HBONE for a mesh\n"
			 "pod, TCP otherwise). -o json|yaml: the agent's objects, with the\n"
			 "enrollment reason, service account, phase and readiness.\n"
			 "Exit status: 0, or 2 when the agent cannot be asked.\n\n"
			 "Examples:\n"
			 "  ztunnel-ctl workloads --local\n"
			 "  ztunnel-ctl workloads -n shop -o yaml\n"
			 "  ztunnel-ctl workloads --node n2 --admin http://127.0.0.1:15000\n",
		.opts = workload_opts,
		.short_opts = "n:",
		.on_opt = on_filter,
	},
	.cols = workload_cols,
	.n_cols = sizeof(workload_cols) / sizeof(workload_cols[0]),
};

int ctl_workloads(int argc, char **argv)
{
	return listing_run(&workloads, argc, argv);
}

/* --- services --- */

static const struct option namespace_opts[] = {
	{ "namespace", required_argument, NULL, OPT_NAMESPACE },
	{ 0 },
};

/* "80->8080" when the service port is translated, "80->http" when to a
 * named container port (resolved per endpoint), "80" when not. */
static void service_ports_cell(const cJSON *row, FILE *out)
{
	const cJSON *p;
	const char *sep = "";

	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(row, "ports")) {
		const cJSON *port = cJSON_GetObjectItemCaseSensitive(p, "port");
		const cJSON *target = cJSON_GetObjectItemCaseSensitive(p, "targetPort");
		fputs(sep, out);
		table_value(port, out);
		if (cJSON_IsString(target) ? *target->valuestring != '\0'
					   : cJSON_IsNumber(target) && target->valuedouble > 0 &&
						     target->valuedouble != cJSON_GetNumberValue(port)) {
			fputs("->", out);
			table_value(target, out);
		}
		sep = ",";
	}
}

/* Ready of all, as kubectl's READY column. */
static void service_endpoints_cell(const cJSON *row, FILE *out)
{
	const cJSON *e, *eps = cJSON_GetObjectItemCaseSensitive(row, "endpoints");
	int ready = 0;

	cJSON_ArrayForEach(e, eps)
		ready += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "ready"));
	fprintf(out, "%d/%d", ready, cJSON_GetArraySize(eps));
}

static const struct table_column service_cols[] = {
	{ "NAMESPACE", "namespace", NULL },
	{ "NAME", "name", NULL },
	{ "VIPS", "vips", NULL },
	{ "PORTS", NULL, service_ports_cell },
	{ "ENDPOINTS", NULL, service_endpoints_cell },
};

static const struct listing services = {
	.member = "services",
	.cmd = {
		.usage = "Usage: ztunnel-ctl services [-n|--namespace NS] [--admin URL] [-o table|json|yaml]\n\n"
			 "The services of the agent's model: cluster IPs, ports (80->8080: the\n"
			 "service port and the pod port it is sent to) and endpoints (ready/all).\n"
			 "-o json|yaml: the agent's objects, with hostname, external addresses and\n"
			 "each endpoint.\n"
			 "Exit status: 0, or 2 when the agent cannot be asked.\n\n"
			 "Examples:\n"
			 "  ztunnel-ctl services\n"
			 "  ztunnel-ctl services -n shop -o json | jq '.[].endpoints'\n",
		.opts = namespace_opts,
		.short_opts = "n:",
		.on_opt = on_filter,
	},
	.cols = service_cols,
	.n_cols = sizeof(service_cols) / sizeof(service_cols[0]),
};

int ctl_services(int argc, char **argv)
{
	return listing_run(&services, argc, argv);
}

/* --- policies --- */

/* An AuthorizationPolicy's action, a PeerAuthentication's mode and its
 * port-level modes ("STRICT 8080:PERMISSIVE"). */
static void policy_action_cell(const cJSON *row, FILE *out)
{
	const cJSON *action = cJSON_GetObjectItemCaseSensitive(row, "action");
	const cJSON *ports = cJSON_GetObjectItemCaseSensitive(row, "portLevelMtls");

	table_value(action ? action : cJSON_GetObjectItemCaseSensitive(row, "mode"), out);
	if (cJSON_GetArraySize(ports)) {
		fputc(' ', out);
		table_value(ports, out);
	}
}

static const struct table_column policy_cols[] = {
	{ "KIND", "kind", NULL },
	{ "NAMESPACE", "namespace", NULL },
	{ "NAME", "name", NULL },
	{ "ACTION/MODE", NULL, policy_action_cell },
	{ "SCOPE", "scope", NULL },
};

static const struct listing policies = {
	.member = "policies",
	.cmd = {
		.usage = "Usage: ztunnel-ctl policies [-n|--namespace NS] [--admin URL] [-o table|json|yaml]\n\n"
			 "The AuthorizationPolicies (ACTION) and PeerAuthentications (MODE, then\n"
			 "port-level modes as PORT:MODE) of the agent's model, and their scope:\n"
			 "global (root namespace), namespace or workload (selector).\n"
			 "Exit status: 0, or 2 when the agent cannot be asked.\n\n"
			 "Examples:\n"
			 "  ztunnel-ctl policies\n"
			 "  ztunnel-ctl policies -n shop -o yaml\n",
		.opts = namespace_opts,
		.short_opts = "n:",
		.on_opt = on_filter,
	},
	.cols = policy_cols,
	.n_cols = sizeof(policy_cols) / sizeof(policy_cols[0]),
};

int ctl_policies(int argc, char **argv)
{
	return listing_run(&policies, argc, argv);
}
