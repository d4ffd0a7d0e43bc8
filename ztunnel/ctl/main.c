/* ztunnel-ctl: operator CLI. The help is made from the command table, so
 * it lists exactly what runs. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin_client.h"
#include "ctl.h"
#include "live.h"
#include "ztunnel/version.h"

struct command {
	const char *name, *sub; /* sub: the second word, NULL when none */
	int (*run)(int argc, char **argv);
	bool live;		/* reads a running agent's admin API */
	const char *synopsis, *summary;
};

static const struct command commands[] = {
	{ "workloads", NULL, ctl_workloads, true, "workloads", "pods: node, IP, identity, enrolled, protocol" },
	{ "services", NULL, ctl_services, true, "services", "services: VIPs, ports, endpoints" },
	{ "policies", NULL, ctl_policies, true, "policies", "AuthorizationPolicies and PeerAuthentications" },
	{ "certificates", NULL, ctl_certificates, true, "certificates",
	  "this node's certificates (--cert-dir DIR: a files-provider directory)" },
	{ "connections", NULL, ctl_connections, true, "connections", "live connections through the agent" },
	{ "log", NULL, ctl_log, true, "log [LEVEL]", "show or set the agent's log level (--reset)" },
	{ "check", NULL, ctl_check, true, "check", "would a connection be allowed? (--snapshot FILE: offline)" },
	{ "snapshot", "dump", ctl_snapshot_dump, true, "snapshot dump", "the snapshot the agent's model is built from" },
	{ "report", "compliance", ctl_report_compliance, true, "report compliance",
	  "mTLS coverage, plaintext paths, policy gaps, expiring certificates, denials" },
	{ "snapshot", "lint", ctl_snapshot_lint, false, "snapshot lint FILE",
	  "validate a cluster snapshot as the agent would" },
	{ "capture", "stats", ctl_capture_stats, false, "capture stats", "eBPF capture counters per verdict (pinned maps)" },
	{ "ca", NULL, ctl_ca, false, "ca init|mint", "local CA for the agent; workload certificates" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void list_commands(FILE *out, bool live, const char *only)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].live == live && (!only || !strcmp(only, commands[i].name)))
			fprintf(out, "  %-20s %s\n", commands[i].synopsis, commands[i].summary);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ztunnel-ctl COMMAND [ARGS]   (ztunnel-ctl COMMAND --help for each)\n\n"
		"Inspect and operate a ztunnel agent.\n\n"
		"Of a running agent, through its admin API (--admin URL, default\n"
		"$ZTUNNEL_ADMIN or %s, on the agent's node; -o table|json|yaml):\n",
		ADMIN_DEFAULT_URL);
	list_commands(out, true, NULL);
	fprintf(out, "\nOffline, or of the node:\n");
	list_commands(out, false, NULL);
	fprintf(out, "  %-20s %s\n  %-20s %s\n", "version", "print the version", "help", "print this help");
	fprintf(out, "\nExit status: 0 ok, 1 the answer is no (denied, a requirement missed),\n"
		     "2 usage error or the agent could not be asked.\n");
}

/* argv[1] names a command with subcommands: run the one argv[2] names. */
static int dispatch_sub(const char *name, int argc, char **argv)
{
	const char *sub = argc > 2 ? argv[2] : "";

	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name) && !strcmp(commands[i].sub, sub))
			return commands[i].run(argc - 2, argv + 2);
	bool help = !strcmp(sub, "--help") || !strcmp(sub, "-h");
	FILE *out = help ? stdout : stderr;
	if (!help && *sub)
		fprintf(out, "ztunnel-ctl %s: unknown subcommand \"%s\"\n", name, sub);
	else if (!help)
		fprintf(out, "ztunnel-ctl %s: missing subcommand\n", name);
	fprintf(out, "Usage:\n");
	list_commands(out, true, name);
	list_commands(out, false, name);
	return help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
}

static int dispatch(int argc, char **argv)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].name, argv[1]))
			continue;
		return commands[i].sub ? dispatch_sub(argv[1], argc, argv) : commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "ztunnel-ctl: unknown command \"%s\" (see ztunnel-ctl help)\n", argv[1]);
	return CTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("ztunnel-ctl %s\n", ZTUNNEL_VERSION);
		return CTL_EXIT_OK;
	}
	/* Once, before any thread could exist, and released for a clean
	 * leak check. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "error: libcurl initialisation failed\n");
		return CTL_EXIT_USAGE;
	}
	int status = dispatch(argc, argv);
	curl_global_cleanup();
	return status;
}
