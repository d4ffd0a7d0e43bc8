/* ztunnel agent entry point. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/agent.h"
#include "ztunnel/config.h"
#include "ztunnel/kube.h"
#include "ztunnel/log.h"
#include "ztunnel/redirect.h"
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

static const char preflight_help[] =
	"usage: ztunnel preflight [the agent's flags]\n"
	"\n"
	"Checks that this node can run the agent, as the agent would run (same\n"
	"flags): kernel version and features (TCX, reuseport listeners), that the\n"
	"kernel accepts the capture program, BTF, bpffs at --bpf-pin-dir's parent,\n"
	"io_uring (kernel.io_uring_disabled, seccomp), capabilities, that no other\n"
	"rule or route uses --fwmark/--fwmark-mask/--route-table, the primary CNI\n"
	"configuration in --cni-conf-dir, and with --kube or --kubeconfig that the\n"
	"API server lists every kind the agent follows (RBAC, Istio's CRDs). Prints\n"
	"one line per check, with a fix for each problem. Exit 0 when nothing\n"
	"blocks, 1 otherwise.\n";

/* ztunnel preflight: the agent's settings, checked and printed. */
static int preflight(const struct zt_config *cfg)
{
	struct kube_config kc;
	struct kubeconfig file = { 0 };
	char server[300];
	bool kube = cfg->kube || (cfg->kubeconfig && *cfg->kubeconfig);

	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, STDERR_FILENO);
	if (kube && agent_kube_config(cfg, &kc, &file, server, sizeof(server)) < 0)
		return 1;
	int n = preflight_run(cfg, kube ? &kc : NULL, true);
	kubeconfig_free(&file);
	return n ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct zt_config cfg;
	char err[512] = "";
	const char *command = argc > 1 && (!strcmp(argv[1], "uninstall") || !strcmp(argv[1], "preflight"))
				      ? argv[1]
				      : NULL;
	bool uninstall = command && !strcmp(command, "uninstall");

	if (command) { /* the agent's flags, after the command */
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
	/* The agent's own sockets carry ZT_AGENT_MARK: the rule must not
	 * match them, and the mark must be one the rule matches. */
	if (((cfg.fwmark & cfg.fwmark_mask) != cfg.fwmark ||
		       (ZT_AGENT_MARK & cfg.fwmark_mask) == (unsigned)cfg.fwmark)) {
		fprintf(stderr, "ztunnel: --fwmark 0x%x must lie within --fwmark-mask 0x%x, and the agent's own "
				"socket mark 0x%x must not match them\n",
			cfg.fwmark, cfg.fwmark_mask, ZT_AGENT_MARK);
		config_free(&cfg);
		return 2;
	}
	if (uninstall) {
		r = cfg.help ? (fputs(uninstall_help, stdout), 0) : uninstall_run(&cfg);
		config_free(&cfg);
		return r;
	}
	if (command) {
		r = cfg.help ? (fputs(preflight_help, stdout), 0) : preflight(&cfg);
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
