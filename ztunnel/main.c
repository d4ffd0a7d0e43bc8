/* ztunnel agent entry point. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/agent.h"
#include "ztunnel/config.h"
#include "ztunnel/log.h"
#include "ztunnel/version.h"

static const char uninstall_help[] =
	"usage: ztunnel uninstall [--bpf-pin-dir DIR] [--cni-conf-dir DIR] [--cni-socket PATH]\n"
	"\n"
	"Removes what ztunnel agents leave on a node, once none runs (the DaemonSet\n"
	"deleted): the program on every interface (pinned TCX links, clsact filters),\n"
	"the pinned maps, the policy-routing rule and route, ztunnel-cni from the CNI\n"
	"configuration in --cni-conf-dir, and stale sockets. The same flags and\n"
	"defaults as the agent. Exit 0 when all of it is gone, 1 otherwise (an agent\n"
	"still runs, or something could not be removed).\n";

int main(int argc, char **argv)
{
	struct zt_config cfg;
	char err[512] = "";
	bool uninstall = argc > 1 && !strcmp(argv[1], "uninstall");

	if (uninstall) { /* the agent's flags, after the command */
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	int r = config_load(&cfg, argc, argv, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "ztunnel: %s\n", err[0] ? err : "invalid configuration");
		config_free(&cfg);
		return 2;
	}
	if (uninstall) {
		r = cfg.help ? (fputs(uninstall_help, stdout), 0) : uninstall_run(&cfg);
		config_free(&cfg);
		return r;
	}
	if (cfg.help || cfg.version) {
		if (cfg.help)
			config_print_help(stdout, "ztunnel");
		else
			printf("ztunnel %s\n", ZTUNNEL_VERSION);
		config_free(&cfg);
		return 0;
	}
	if (cfg.kubeconfig && *cfg.kubeconfig)
		cfg.kube = true; /* --kubeconfig implies --kube */
	if (!cfg.snapshot && !cfg.kube) {
		fprintf(stderr, "ztunnel: --snapshot (file or ConfigMap directory) or --kube (or --kubeconfig) is required\n");
		config_free(&cfg);
		return 2;
	}
	log_setup((enum log_level)cfg.log_level, (enum log_format)cfg.log_format, STDERR_FILENO);
	log_info("starting", LF_STR("version", ZTUNNEL_VERSION),
		 LF_STR("node", cfg.node_name ? cfg.node_name : ""), LF_STR("state", cfg.kube ? "kubernetes" : cfg.snapshot),
		 LF_STR("trust_domain", cfg.trust_domain));
	int status = agent_run(&cfg);
	config_free(&cfg);
	return status;
}
