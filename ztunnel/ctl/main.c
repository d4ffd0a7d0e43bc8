/* ztunnel-ctl: operator CLI. More subcommands arrive with later issues
 * (connections, report). */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "ztunnel/version.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ztunnel-ctl COMMAND [ARGS]\n\n"
		"Inspect and operate a ztunnel agent.\n\n"
		"Commands:\n"
		"  snapshot lint FILE   validate a cluster snapshot as the agent would\n"
		"  capture stats        eBPF capture counters per verdict (pinned maps)\n"
		"  ca init|mint         local CA for the agent; workload certificates\n"
		"  certificates         identity, serial, validity, issuer, state\n"
		"  check                would a connection be allowed? policy and rule (offline)\n"
		"  version              print the version\n"
		"  help                 print this help\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("ztunnel-ctl %s\n", ZTUNNEL_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "snapshot"))
		return ctl_snapshot(argc - 1, argv + 1);
	if (!strcmp(argv[1], "capture"))
		return ctl_capture(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ca"))
		return ctl_ca(argc - 1, argv + 1);
	if (!strcmp(argv[1], "certificates"))
		return ctl_certificates(argc - 1, argv + 1);
	if (!strcmp(argv[1], "check"))
		return ctl_check(argc - 1, argv + 1);
	fprintf(stderr, "ztunnel-ctl: unknown command \"%s\" (see ztunnel-ctl help)\n", argv[1]);
	return 2;
}
