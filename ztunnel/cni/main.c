/* ztunnel-cni: chained CNI plugin (spec 1.0.0). VERSION is complete; ADD,
 * CHECK and DEL talk to the agent once enrollment lands (issue 3/10) and
 * until then fail with a CNI error instead of pretending to enroll. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/version.h"

/* CNI spec error codes. */
enum { CNI_ERR_INVALID_ENV = 4, CNI_ERR_TRY_AGAIN = 11 };

static int print_json(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	int r = s ? 0 : 1;

	if (s) {
		puts(s);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	return r;
}

static int cni_error(int code, const char *msg, const char *details)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cniVersion", "1.0.0");
	cJSON_AddNumberToObject(o, "code", code);
	cJSON_AddStringToObject(o, "msg", msg);
	if (details)
		cJSON_AddStringToObject(o, "details", details);
	print_json(o);
	return 1;
}

static int cni_version(void)
{
	static const char *const versions[] = { "0.4.0", "1.0.0" };
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cniVersion", "1.0.0");
	cJSON_AddItemToObject(o, "supportedVersions", cJSON_CreateStringArray(versions, 2));
	return print_json(o);
}

int main(int argc, char **argv)
{
	const char *cmd = getenv("CNI_COMMAND");

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: ztunnel-cni (run by the container runtime with CNI_COMMAND set)\n\n"
		       "Chained CNI plugin (spec 1.0.0) that hands new pods to the node's ztunnel\n"
		       "agent for ambient enrollment. Commands: ADD CHECK DEL VERSION.\n");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("ztunnel-cni %s\n", ZTUNNEL_VERSION);
		return 0;
	}
	if (!cmd)
		return cni_error(CNI_ERR_INVALID_ENV, "CNI_COMMAND is not set", NULL);
	if (!strcmp(cmd, "VERSION"))
		return cni_version();
	if (!strcmp(cmd, "ADD") || !strcmp(cmd, "CHECK") || !strcmp(cmd, "DEL"))
		return cni_error(CNI_ERR_TRY_AGAIN, "ztunnel agent enrollment is not available",
				 "this build has no enrollment support yet");
	return cni_error(CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND", cmd);
}
