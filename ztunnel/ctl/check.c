/* ztunnel-ctl check: offline what-if for one connection against a snapshot,
 * decided by the agent's own evaluator (ztunnel/policy), with the rule that
 * decided and, for a denial, the ALLOW rule that came closest. */
#include "ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/authz.h"
#include "ztunnel/state.h"

static void check_usage(FILE *out)
{
	fprintf(out,
		"Usage: ztunnel-ctl check --snapshot FILE (--from NS/POD | --from-ip IP)\n"
		"                         (--to NS/POD[:PORT] | --to-ip IP[:PORT]) [--port PORT]\n"
		"                         [--trust-domain TD] [--root-namespace NS]\n\n"
		"Would this connection be allowed? Evaluates the destination's\n"
		"AuthorizationPolicy and PeerAuthentication exactly as the destination agent\n"
		"does: an enrolled source arrives over HBONE with its SPIFFE identity, any\n"
		"other source in plaintext. Prints the decision and the policy and rule that\n"
		"made it; for a denial, the ALLOW rule that came closest. The port is the\n"
		"pod's port (after a Service's targetPort); default: its first declared port.\n"
		"Works offline on a snapshot file (querying a running agent's live snapshot\n"
		"arrives with its admin API, issue 9/13).\n"
		"Exit status: 0 allowed, 1 denied, 2 usage or input error.\n");
}

static const struct zt_workload *by_name(const struct zt_model *m, const char *ref)
{
	const char *slash = strchr(ref, '/');

	if (!slash)
		return NULL;
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		const struct zt_workload *w = &m->workloads[i];
		if (strlen(w->namespace) == (size_t)(slash - ref) && !strncmp(w->namespace, ref, (size_t)(slash - ref)) &&
		    !strcmp(w->name, slash + 1))
			return w;
	}
	return NULL;
}

/* "x[:port]" -> x and port (0 if absent); false if the port is bad. */
static bool split_port(char *s, uint16_t *port)
{
	char *colon = strrchr(s, ':'), *end;

	*port = 0;
	if (!colon)
		return true;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (*end || !colon[1] || !p || p > 65535)
		return false;
	*colon = '\0';
	*port = (uint16_t)p;
	return true;
}

static bool first_v4(const struct zt_workload *w, struct zt_ip *ip)
{
	for (uint32_t i = 0; w && i < w->n_ips; i++) {
		if (w->ips[i].family == AF_INET) {
			*ip = w->ips[i];
			return true;
		}
	}
	return false;
}

static void print_policy(const char *what, const struct zt_authz_policy *p, int rule)
{
	printf("  %s: %s%s rule %d%s%s\n", what, p->key, p->dry_run ? " (dry-run)" : "", rule,
	       p->invalid ? " - INVALID, applied fail-closed: " : "", p->invalid ? p->invalid_reason : "");
}

static int decide(const struct zt_model *m, const struct zt_workload *src, const struct zt_ip *src_ip,
		  const struct zt_workload *dst, const struct zt_ip *dst_ip, uint16_t port)
{
	char a[64], b[64];
	struct authz_conn c = { .src = *src_ip, .dst = *dst_ip, .dst_port = port };
	struct authz_decision d;
	bool hbone = src && src->enrolled && src->identity;

	(void)m;
	if (hbone)
		c.peer = src->identity;
	if (src)
		printf("from %s/%s\n", src->namespace, src->name);
	else
		printf("from (no pod of the snapshot)\n");
	printf("  address %s, %s\n", zt_ip_format(src_ip, a, sizeof(a)),
	       hbone ? src->identity : "no identity (not in the mesh): plaintext");
	printf("to %s/%s %s:%u\n", dst->namespace, dst->name, zt_ip_format(dst_ip, b, sizeof(b)), port);
	if (!dst->enrolled) {
		printf("ALLOWED: the destination is not in the mesh; ztunnel enforces nothing for it\n");
		return 0;
	}
	authz_check(dst, &c, &d);
	printf("%s: %s", d.allowed ? "ALLOWED" : "DENIED", authz_reason_text(d.reason));
	if (d.policy)
		printf(" %s rule %d", d.policy->key, d.rule);
	if (d.reason == AUTHZ_STRICT_MTLS)
		printf(" (%s)", d.peer_authn ? d.peer_authn->key : "invalid PeerAuthentication");
	printf("\n");
	if (d.policy && d.policy->invalid)
		print_policy("decided by", d.policy, d.rule);
	if (d.dry_run)
		print_policy("also matched, not enforced", d.dry_run, d.dry_run_rule);
	const struct zt_authz_policy *np;
	int rule;
	uint32_t failing;
	if (!d.allowed && d.reason == AUTHZ_NOT_ALLOWED) {
		if (authz_nearest_allow(dst, &c, &np, &rule, &failing))
			printf("  nearest ALLOW: %s rule %d (%u of %u conditions (from/to/when) do not hold)\n",
			       np->key, rule, failing, np->rules[rule].n);
		else
			printf("  no ALLOW rule can match at L4 (empty rules, or HTTP-only rules dropped)\n");
	}
	if (d.reason == AUTHZ_STRICT_MTLS)
		printf("  plaintext needs PERMISSIVE, or the source enrolled in the mesh\n");
	return d.allowed ? 0 : 1;
}

int ctl_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, 's' }, { "from", required_argument, NULL, 'f' },
		{ "from-ip", required_argument, NULL, 'F' },  { "to", required_argument, NULL, 't' },
		{ "to-ip", required_argument, NULL, 'T' },    { "port", required_argument, NULL, 'p' },
		{ "trust-domain", required_argument, NULL, 'd' },
		{ "root-namespace", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },           { 0 },
	};
	struct snapshot_opts so = { "cluster.local", "istio-system" };
	char *snap = NULL, *from = NULL, *from_ip = NULL, *to = NULL, *to_ip = NULL;
	uint16_t port = 0;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': snap = optarg; break;
		case 'f': from = optarg; break;
		case 'F': from_ip = optarg; break;
		case 't': to = optarg; break;
		case 'T': to_ip = optarg; break;
		case 'p': port = (uint16_t)atoi(optarg); break;
		case 'd': so.trust_domain = optarg; break;
		case 'r': so.root_namespace = optarg; break;
		case 'h': check_usage(stdout); return 0;
		default: check_usage(stderr); return 2;
		}
	}
	if (!snap || !(from || from_ip) || !(to || to_ip) || optind != argc) {
		check_usage(stderr);
		return 2;
	}
	struct zt_diags diags;
	struct zt_model *m;
	int r = ctl_build_snapshot(snap, &so, &m, &diags);
	if (r < 0) {
		diags_print(&diags, stderr);
		if (r == -EINVAL)
			fprintf(stderr, "error: %s is rejected (the agent would keep its previous snapshot)\n", snap);
		diags_release(&diags);
		return 2;
	}
	if (diags.n_invalid)
		fprintf(stderr, "note: %u invalid objects are applied fail-closed (ztunnel-ctl snapshot lint)\n",
			diags.n_invalid);
	diags_release(&diags);

	int status = 2;
	uint16_t to_port = 0, ignored;
	char *dst_ref = to ? to : to_ip;
	const struct zt_workload *src = NULL, *dst = NULL;
	struct zt_ip src_ip = { 0 }, dst_ip = { 0 };
	if (!split_port(dst_ref, &to_port)) {
		fprintf(stderr, "error: bad port in \"%s\"\n", dst_ref);
		goto out;
	}
	if (from) {
		if (!(src = by_name(m, from)) || !first_v4(src, &src_ip)) {
			fprintf(stderr, "error: no pod \"%s\" with an IPv4 address in the snapshot\n", from);
			goto out;
		}
	} else if (!split_port(from_ip, &ignored) || zt_ip_parse(from_ip, &src_ip) < 0) {
		fprintf(stderr, "error: \"%s\" is not an IP address\n", from_ip);
		goto out;
	} else {
		src = model_workload_by_ip(m, &src_ip);
	}
	if (to) {
		if (!(dst = by_name(m, to)) || !first_v4(dst, &dst_ip)) {
			fprintf(stderr, "error: no pod \"%s\" with an IPv4 address in the snapshot\n", to);
			goto out;
		}
	} else if (zt_ip_parse(to_ip, &dst_ip) < 0 || !(dst = model_workload_by_ip(m, &dst_ip))) {
		fprintf(stderr, "error: no pod with address \"%s\" in the snapshot\n", to_ip);
		goto out;
	}
	if (!to_port)
		to_port = port;
	if (!to_port && dst->n_ports)
		to_port = dst->ports[0].port;
	if (!to_port) {
		fprintf(stderr, "error: %s/%s declares no port: give one (--to NS/POD:PORT)\n", dst->namespace,
			dst->name);
		goto out;
	}
	status = decide(m, src, &src_ip, dst, &dst_ip, to_port);
out:
	model_free(m);
	return status;
}
