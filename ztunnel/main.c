/* ztunnel agent entry point. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
	if (cfg.help) {
		config_print_help(stdout, "ztunnel");
		config_free(&cfg);
		return 0;
	}
	if (cfg.version) {
		printf("ztunnel %s\n", ZTUNNEL_VERSION);
		config_free(&cfg);
		return 0;
	}
	log_setup((enum log_level)cfg.log_level, (enum log_format)cfg.log_format, STDERR_FILENO);
	/* Foundation build: configuration and logging are real, the data path
	 * (issues 2-6/10) is not there yet, so refuse to pretend to serve. */
	log_error("data path not built yet: this agent can only validate its configuration",
		  LF_STR("node", cfg.node_name ? cfg.node_name : ""), LF_ERRNO(-ENOSYS));
	config_free(&cfg);
	return 1;
}
