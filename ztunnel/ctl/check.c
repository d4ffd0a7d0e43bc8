/* ztunnel-ctl check: what-if for one connection against the running
 * agent's snapshot or a snapshot file, decided by the agent's own evaluator
 * (ztunnel/policy), with the rule that decided and, for a denial, the ALLOW
 * rule that came closest. */
#include "ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"
#include "live.h"
#include "model_load.h"
#include "ztunnel/authz.h"
#include "ztunnel/state.h"

static void check_usage(FILE *out)
{
	fprintf(out,
		"Usage: ztunnel-ctl check (--from NS/POD | --from-ip IP) (--to NS/POD[:PORT] | --to-ip IP[:PORT])\n"
		"                         [--port PORT] [--admin URL]\n"
		"       ztunnel-ctl check --snapshot FILE [--trust-domain TD] [--root-namespace NS] ...\n\n"
		"Would this connection be allowed? Evaluates the destination's\n"
		"AuthorizationPolicy and PeerAuthentication exactly as the destination agent\n"
		"does: an enrolled source arrives over HBONE with its SPIFFE identity, any\n"
		"other source in plaintext. Prints the decision and the policy and rule that\n"
		"made it; for a denial, the ALLOW rule that came closest. The port is the\n"
		"pod's port (after a Service's targetPort); default: its first declared port.\n"
		"Asks the running agent (--admin URL, default $ZTUNNEL_ADMIN or\n"
		"%s): its /snapshot, with the trust domain and root namespace of\n"
		"its /config_dump. With --snapshot, works offline on a snapshot file (default\n"
		"trust domain cluster.local, root namespace istio-system). Both are evaluated\n"
		"by the same code, so they agree on the same snapshot.\n"
		"Exit status: 0 allowed, 1 denied, 2 usage or input error, or the agent\n"
		"could not be asked.\n\n"
		"Examples:\n"
		"  ztunnel-ctl check --from shop/web-1 --to shop/db-1:5432\n"
		"  ztunnel-ctl check --from-ip 10.1.1.9 --to-ip 10.1.2.3:8080\n"
		"  ztunnel-ctl check --snapshot snap.json --from shop/web-1 --to shop/db-1\n",
		ADMIN_DEFAULT_URL);
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
	/* SPEC §8.5: mesh sources send HBONE only once the destination's
	 * capture is reported in place (a live dump's redirection annotation). */
	bool hbone = src && src->enrolled && src->identity && dst->captured;

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
	if (!dst->captured)
		printf("  the destination's capture is not reported in place yet (no %s=%s): "
		       "sources send it plaintext\n", ZT_ANNOTATION_REDIRECTION, ZT_REDIRECTION_ENABLED);
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

struct check_args {
	const char *snapshot, *admin;
	char *from, *from_ip, *to, *to_ip;
	uint16_t port;
	struct snapshot_opts so;
	bool so_given;
};

/* LIVE_PROCEED, or the exit status. */
static int parse_args(int argc, char **argv, struct check_args *a)
{
	static const struct option opts[] = {
		{ "snapshot", required_argument, NULL, 's' }, { "from", required_argument, NULL, 'f' },
		{ "from-ip", required_argument, NULL, 'F' },  { "to", required_argument, NULL, 't' },
		{ "to-ip", required_argument, NULL, 'T' },    { "port", required_argument, NULL, 'p' },
		{ "trust-domain", required_argument, NULL, 'd' },
		{ "root-namespace", required_argument, NULL, 'r' },
		{ "admin", required_argument, NULL, 'a' },    { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->snapshot = optarg; break;
		case 'f': a->from = optarg; break;
		case 'F': a->from_ip = optarg; break;
		case 't': a->to = optarg; break;
		case 'T': a->to_ip = optarg; break;
		case 'p': a->port = (uint16_t)atoi(optarg); break;
		case 'd': a->so.trust_domain = optarg; a->so_given = true; break;
		case 'r': a->so.root_namespace = optarg; a->so_given = true; break;
		case 'a': a->admin = optarg; break;
		case 'h': check_usage(stdout); return CTL_EXIT_OK;
		default: check_usage(stderr); return CTL_EXIT_USAGE;
		}
	}
	if (!(a->from || a->from_ip) || !(a->to || a->to_ip) || optind != argc) {
		check_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (a->snapshot && a->admin) {
		fprintf(stderr, "error: --snapshot reads a file, --admin the running agent: give one\n");
		return CTL_EXIT_USAGE;
	}
	if (!a->snapshot && a->so_given) {
		fprintf(stderr, "error: --trust-domain and --root-namespace go with --snapshot; the running "
				"agent's own are used\n");
		return CTL_EXIT_USAGE;
	}
	return LIVE_PROCEED;
}

static int load_model(const struct check_args *a, struct zt_model **m)
{
	cJSON *dump;
	int r;

	if (a->snapshot)
		return model_load_file(a->snapshot, &a->so, m);
	const char *admin = a->admin ? a->admin : live_admin_default();
	if ((r = admin_get_json(admin, "/config_dump", &dump)) < 0)
		return r;
	r = model_load_agent(admin, dump, m);
	cJSON_Delete(dump);
	return r;
}

/* The source and destination named on the command line, then the decision. */
static int resolve_and_decide(const struct zt_model *m, struct check_args *a)
{
	uint16_t to_port = 0, ignored;
	char *dst_ref = a->to ? a->to : a->to_ip;
	const struct zt_workload *src = NULL, *dst = NULL;
	struct zt_ip src_ip = { 0 }, dst_ip = { 0 };

	if (!split_port(dst_ref, &to_port)) {
		fprintf(stderr, "error: bad port in \"%s\"\n", dst_ref);
		return CTL_EXIT_USAGE;
	}
	if (a->from) {
		if (!(src = by_name(m, a->from)) || !first_v4(src, &src_ip)) {
			fprintf(stderr, "error: no pod \"%s\" with an IPv4 address in the snapshot\n", a->from);
			return CTL_EXIT_USAGE;
		}
	} else if (!split_port(a->from_ip, &ignored) || zt_ip_parse(a->from_ip, &src_ip) < 0) {
		fprintf(stderr, "error: \"%s\" is not an IP address\n", a->from_ip);
		return CTL_EXIT_USAGE;
	} else {
		src = model_workload_by_ip(m, &src_ip);
	}
	if (a->to) {
		if (!(dst = by_name(m, a->to)) || !first_v4(dst, &dst_ip)) {
			fprintf(stderr, "error: no pod \"%s\" with an IPv4 address in the snapshot\n", a->to);
			return CTL_EXIT_USAGE;
		}
	} else if (zt_ip_parse(a->to_ip, &dst_ip) < 0 || !(dst = model_workload_by_ip(m, &dst_ip))) {
		fprintf(stderr, "error: no pod with address \"%s\" in the snapshot\n", a->to_ip);
		return CTL_EXIT_USAGE;
	}
	if (!to_port)
		to_port = a->port;
	if (!to_port && dst->n_ports)
		to_port = dst->ports[0].port;
	if (!to_port) {
		fprintf(stderr, "error: %s/%s declares no port: give one (--to NS/POD:PORT)\n", dst->namespace,
			dst->name);
		return CTL_EXIT_USAGE;
	}
	return decide(m, src, &src_ip, dst, &dst_ip, to_port);
}

int ctl_check(int argc, char **argv)
{
	struct check_args a = { .so = { "cluster.local", "istio-system" } };
	struct zt_model *m;
	int status = parse_args(argc, argv, &a);

	if (status != LIVE_PROCEED)
		return status;
	if (load_model(&a, &m) < 0)
		return CTL_EXIT_USAGE;
	status = resolve_and_decide(m, &a);
	model_free(m);
	return status;
}
