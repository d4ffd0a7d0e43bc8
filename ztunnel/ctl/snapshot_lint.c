/* ztunnel-ctl snapshot lint: the agent's snapshot validation, offline. */
#include "ctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_load.h"
#include "ztunnel/state.h"

static void lint_usage(FILE *out)
{
	fprintf(out,
		"Usage: ztunnel-ctl snapshot lint FILE [--trust-domain TD] [--root-namespace NS]\n\n"
		"Validates a snapshot (kubectl get namespaces,pods,services,serviceaccounts,\n"
		"authorizationpolicies.security.istio.io,peerauthentications.security.istio.io\n"
		"-A -o json) exactly as the agent does. Prints one line per finding:\n"
		"  error    the agent rejects the whole snapshot and keeps its previous one\n"
		"  invalid  the object is applied fail-closed (ALLOW allows nothing, DENY\n"
		"           denies all in its scope, PeerAuthentication becomes STRICT)\n"
		"  warning  applied, but not everything as written\n"
		"Exit status: 0 clean or warnings only, 1 errors or invalid objects, 2 usage.\n");
}

int ctl_snapshot_lint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "trust-domain", required_argument, NULL, 't' },
		{ "root-namespace", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct snapshot_opts so = { "cluster.local", "istio-system" };
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't': so.trust_domain = optarg; break;
		case 'r': so.root_namespace = optarg; break;
		case 'h': lint_usage(stdout); return 0;
		default: lint_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		lint_usage(stderr);
		return 2;
	}
	const char *path = argv[optind];
	struct zt_diags diags;
	struct zt_model *m;
	int r = model_load_build_file(path, &so, &m, &diags);
	if (r < 0 && r != -EINVAL) {
		diags_release(&diags);
		return 1;
	}
	diags_print(&diags, stdout);
	if (m)
		printf("%s: %u namespaces, %u pods (%u enrolled), %u services, %u authorization "
		       "policies, %u peer authentications; %u errors, %u invalid, %u warnings\n",
		       path, m->n_namespaces, m->n_workloads, m->n_enrolled, m->n_services,
		       m->n_policies, m->n_peer_authns, diags.n_errors, diags.n_invalid,
		       diags.n_warnings);
	else
		printf("%s: rejected: %u errors, %u invalid, %u warnings\n", path, diags.n_errors,
		       diags.n_invalid, diags.n_warnings);
	int status = r < 0 || diags.n_invalid ? 1 : 0;
	model_free(m);
	diags_release(&diags);
	return status;
}
