/* ztunnel agent entry point. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ztunnel/agent.h"
#include "ztunnel/config.h"
#include "ztunnel/log.h"
#include "ztunnel/version.h"

int main(int argc, char **argv)
{
	struct zt_config cfg;
	char err[512] = "";
	int r = config_load(&cfg, argc, argv, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "ztunnel: %s\n", err[0] ? err : "invalid configuration");
		config_free(&cfg);
		return 2;
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
