/* Fuzz target: snapshot text (the ConfigMap the agent watches) through the
 * parser and model build, then the model's lookups and one L4
 * authorization decision for its first and last workload. Checks what a
 * built model promises: every workload is found by its uid and (not
 * hostNetwork) by its IPs, every service by its VIPs, and a deciding
 * policy names a rule of its own that matches the connection. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "ztunnel/authz.h"
#include "ztunnel/state.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	return 0;
}

static void check_indexes(const struct zt_model *m)
{
	for (uint32_t i = 0; i < m->n_workloads; i++) {
		const struct zt_workload *w = &m->workloads[i];
		if (w->uid && *w->uid)
			FUZZ_CHECK(model_workload_by_uid(m, w->uid) == w);
		for (uint32_t j = 0; !w->host_network && j < w->n_ips; j++)
			FUZZ_CHECK(model_workload_by_ip(m, &w->ips[j]) == w);
		model_namespace(m, w->namespace);
		model_node_workloads(m, w->node);
	}
	for (uint32_t i = 0; i < m->n_services; i++) {
		const struct zt_service *s = &m->services[i];
		for (uint32_t j = 0; j < s->n_vips; j++)
			for (uint32_t k = 0; k < s->n_ports; k++)
				if (s->ports[k].protocol == ZT_PROTO_TCP)
					FUZZ_CHECK(model_service_by_vip(m, &s->vips[j], s->ports[k].port, NULL) == s);
		model_service_by_name(m, s->namespace, s->name);
	}
}

static void check_decision(const struct zt_workload *dst, const struct authz_conn *c)
{
	struct authz_decision d;
	const struct zt_peer_authn *from = NULL;

	struct authz_decision linear;

	authz_check(dst, c, &d);
	/* The index may only skip rules that cannot match. */
	authz_check_linear(dst, c, &linear);
	FUZZ_CHECK(d.allowed == linear.allowed && d.reason == linear.reason && d.policy == linear.policy &&
		   d.rule == linear.rule && d.dry_run == linear.dry_run &&
		   d.dry_run_rule == linear.dry_run_rule && d.peer_authn == linear.peer_authn);
	authz_reason_text(d.reason);
	authz_mtls_mode(dst, c->dst_port, &from);
	if (d.reason == AUTHZ_ALLOWED_BY || d.reason == AUTHZ_DENIED_BY) {
		FUZZ_CHECK(d.policy && d.rule >= 0 && (uint32_t)d.rule < d.policy->n_rules);
		FUZZ_CHECK(authz_policy_match(d.policy, c) == d.rule);
	}
	if (d.dry_run)
		FUZZ_CHECK(d.dry_run_rule >= 0 && (uint32_t)d.dry_run_rule < d.dry_run->n_rules);
	if (!d.allowed) {
		const struct zt_authz_policy *p = NULL;
		int rule = -1;
		uint32_t failing = 0;
		if (authz_nearest_allow(dst, c, &p, &rule, &failing))
			FUZZ_CHECK(p && rule >= 0 && (uint32_t)rule < p->n_rules);
	}
}

/* src connects to dst's first IP on its first declared port (or 8080),
 * with src's identity when it has one, else in plaintext. */
static void decide(const struct zt_workload *src, const struct zt_workload *dst)
{
	struct authz_conn c = { .peer = src->identity, .dst_port = 8080 };

	c.src.family = c.dst.family = AF_INET;
	if (src->n_ips)
		c.src = src->ips[0];
	if (dst->n_ips)
		c.dst = dst->ips[0];
	if (dst->n_ports && dst->ports[0].port)
		c.dst_port = dst->ports[0].port;
	check_decision(dst, &c);
	c.peer = NULL; /* the same connection in plaintext */
	check_decision(dst, &c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot_opts opts = { "cluster.local", "istio-system" };
	struct zt_model *m = NULL;
	struct zt_diags d;

	diags_init(&d);
	int r = snapshot_build((const char *)data, size, &opts, &m, &d);
	FUZZ_CHECK((r == 0) == (m != NULL));
	if (devnull)
		diags_print(&d, devnull);
	diags_release(&d);
	if (!m)
		return 0;
	check_indexes(m);
	if (m->n_workloads) {
		const struct zt_workload *first = &m->workloads[0];
		const struct zt_workload *last = &m->workloads[m->n_workloads - 1];
		decide(last, first);
		decide(first, last);
	}
	model_free(m);
	return 0;
}
