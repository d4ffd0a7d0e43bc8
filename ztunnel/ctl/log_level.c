/* ztunnel-ctl log: the agent's log level through POST /logging (Istio's
 * /logging is POST-only, SPEC.md §7). */
#include "ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"
#include "live.h"

enum { OPT_RESET = 0x200 };

static int on_opt(void *ctx, int opt, const char *arg)
{
	(void)arg;
	if (opt != OPT_RESET)
		return -EINVAL;
	*(bool *)ctx = true;
	return 0;
}

static const struct option opts[] = {
	{ "reset", no_argument, NULL, OPT_RESET },
	{ 0 },
};

static const struct live_cmd cmd = {
	.usage = "Usage: ztunnel-ctl log [LEVEL | --reset] [--admin URL] [-o table|json|yaml]\n\n"
		 "Shows the agent's log level, or sets it. LEVEL is off|error|warn|info|debug\n"
		 "for every target (as RUST_LOG), TARGET:LEVEL for one target (default,\n"
		 "access), or a comma-separated list of those. --reset restores the level the agent\n"
		 "started with. Prints the agent's answer (\"current log level is\n"
		 "debug,access=info\"); -o json|yaml: {\"answer\": that, \"levels\":\n"
		 "{\"default\": \"debug\", \"access\": \"info\"}}.\n"
		 "Exit status: 0, or 2 for a level the agent refuses or when it cannot be\n"
		 "asked.\n\n"
		 "Examples:\n"
		 "  ztunnel-ctl log\n"
		 "  ztunnel-ctl log debug\n"
		 "  ztunnel-ctl log info,access:debug\n"
		 "  ztunnel-ctl log --reset\n",
	.opts = opts,
	.on_opt = on_opt,
	.max_operands = 1,
};

#define CURRENT_PREFIX "current log level is "

/* "current log level is debug,access=info" as {"default": "debug",
 * "access": "info"}; NULL when the answer is not of that form. */
static cJSON *parse_levels(const char *answer)
{
	if (strncmp(answer, CURRENT_PREFIX, strlen(CURRENT_PREFIX)))
		return NULL;
	char *copy = strdup(answer + strlen(CURRENT_PREFIX)), *save = NULL;
	cJSON *levels = cJSON_CreateObject();
	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && levels; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq)
			*eq = '\0';
		if (!cJSON_AddStringToObject(levels, eq ? t : "default", eq ? eq + 1 : t)) {
			cJSON_Delete(levels);
			levels = NULL;
		}
	}
	free(copy);
	return levels;
}

static int print_answer(char *answer, const struct live_opts *lo)
{
	answer[strcspn(answer, "\r\n")] = '\0';
	if (lo->format == OUTPUT_TABLE) {
		printf("%s\n", answer);
		return CTL_EXIT_OK;
	}
	cJSON *doc = cJSON_CreateObject(), *levels = parse_levels(answer);
	int status = CTL_EXIT_USAGE;
	if (doc && cJSON_AddStringToObject(doc, "answer", answer) && (!levels || cJSON_AddItemToObject(doc, "levels", levels))) {
		levels = NULL;
		status = live_print(doc, lo, NULL, 0);
	}
	cJSON_Delete(levels);
	cJSON_Delete(doc);
	return status;
}

int ctl_log(int argc, char **argv)
{
	struct live_opts lo;
	bool reset = false;
	char *path = NULL, *answer;
	size_t len;
	int status = live_parse(&cmd, argc, argv, &reset, &lo);

	if (status != LIVE_PROCEED)
		return status;
	if (reset && optind < argc)
		return live_usage_error(&cmd, "give one LEVEL, or --reset");
	if (optind < argc) {
		/* "info,access:debug" travels as one query value. */
		char *level = curl_easy_escape(NULL, argv[optind], 0);
		if (!level || asprintf(&path, "/logging?level=%s", level) < 0)
			path = NULL;
		curl_free(level);
	} else {
		path = strdup(reset ? "/logging?reset" : "/logging");
	}
	if (!path) {
		fprintf(stderr, "error: out of memory\n");
		return CTL_EXIT_USAGE;
	}
	status = admin_request(lo.admin, "POST", path, &answer, &len) < 0 ? CTL_EXIT_USAGE : LIVE_PROCEED;
	free(path);
	if (status != LIVE_PROCEED)
		return status;
	status = print_answer(answer, &lo);
	free(answer);
	return status;
}
