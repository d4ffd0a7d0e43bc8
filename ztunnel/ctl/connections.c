/* ztunnel-ctl connections: the agent's live connections (/connections),
 * as each worker listed them on its next tick. */
#include "ctl.h"

#include <stdio.h>

#include "live.h"

static const struct live_cmd cmd = {
	.usage = "Usage: ztunnel-ctl connections [--admin URL] [-o table|json|yaml]\n\n"
		 "The connections open through the agent now: direction, protocol (HBONE:\n"
		 "mutual TLS between agents; TCP: plaintext), addresses, the SPIFFE\n"
		 "identities (only those authenticated), bytes each way and age. DST is the\n"
		 "address the application asked for (for HBONE, -o json also has the\n"
		 "tunnel's podIP:15008). Each worker answers on its next tick (200 ms); one\n"
		 "that does not is missing from the list, and a warning says so.\n"
		 "-o json|yaml: the agent's answer, with workloads, service and policy.\n"
		 "Exit status: 0, or 2 when the agent cannot be asked.\n\n"
		 "Examples:\n"
		 "  ztunnel-ctl connections\n"
		 "  ztunnel-ctl connections -o json | jq '.connections[] | select(.protocol == \"TCP\")'\n",
};

/* The application's destination: the CONNECT authority of an HBONE
 * connection rather than the tunnel's :15008. */
static void dst_cell(const cJSON *row, FILE *out)
{
	const cJSON *hbone = cJSON_GetObjectItemCaseSensitive(row, "hboneAddr");

	table_value(cJSON_IsString(hbone) && *hbone->valuestring ? hbone
								  : cJSON_GetObjectItemCaseSensitive(row, "dst"),
		    out);
}

static void age_cell(const cJSON *row, FILE *out)
{
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(row, "ageMs");
	long long s = (long long)(cJSON_GetNumberValue(ms) / 1000);

	if (!cJSON_IsNumber(ms))
		fputc('-', out);
	else if (s < 60)
		fprintf(out, "%.1fs", ms->valuedouble / 1000);
	else if (s < 3600)
		fprintf(out, "%lldm%llds", s / 60, s % 60);
	else
		fprintf(out, "%lldh%lldm", s / 3600, s / 60 % 60);
}

static const struct table_column cols[] = {
	{ "DIRECTION", "direction", NULL },	  { "PROTOCOL", "protocol", NULL },
	{ "SRC", "src", NULL },			  { "DST", NULL, dst_cell },
	{ "SRC-IDENTITY", "srcIdentity", NULL },  { "DST-IDENTITY", "dstIdentity", NULL },
	{ "BYTES-SENT", "bytesSent", NULL },	  { "BYTES-RECV", "bytesRecv", NULL },
	{ "AGE", NULL, age_cell },
};

/* A partial list must not pass for the whole. */
static void warn_incomplete(const cJSON *answer)
{
	const cJSON *workers = cJSON_GetObjectItemCaseSensitive(answer, "workers");
	const cJSON *answered = cJSON_GetObjectItemCaseSensitive(answer, "answered");

	if (cJSON_IsNumber(workers) && cJSON_IsNumber(answered) && answered->valueint < workers->valueint)
		fprintf(stderr, "warning: only %d of %d workers answered in time; the connections of the "
				"others are missing\n",
			answered->valueint, workers->valueint);
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(answer, "truncated")))
		fprintf(stderr, "warning: the agent lists at most 10000 connections; more are open\n");
}

int ctl_connections(int argc, char **argv)
{
	struct live_opts lo;
	const cJSON *conns;
	cJSON *answer;
	int status = live_parse(&cmd, argc, argv, NULL, &lo);

	if (status != LIVE_PROCEED)
		return status;
	if (live_get_list(lo.admin, "/connections", "connections", &answer, &conns) < 0)
		return CTL_EXIT_USAGE;
	warn_incomplete(answer);
	status = live_print(lo.format == OUTPUT_TABLE ? conns : answer, &lo, cols, sizeof(cols) / sizeof(cols[0]));
	cJSON_Delete(answer);
	return status;
}
