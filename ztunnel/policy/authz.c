/* assert_rbac (SPEC.md §5.2-5.4) over the typed policies of ztunnel/state.
 * Plaintext has no identity: its principal, namespace and service account
 * are "", which no positive list matches and every negative list lets by. */
#include "ztunnel/authz.h"
#include "ztunnel/state.h"

#include <string.h>

/* A string of the connection with its length, measured once. */
struct str {
	const char *s;
	size_t n;
};

static bool str_match(const struct zt_str_match *m, const struct str *s)
{
	size_t n = s->n, v = m->len;

	if (!n)
		return false; /* plaintext: nothing positive matches "" */
	switch (m->kind) {
	case ZT_MATCH_PRESENCE:
		return true;
	case ZT_MATCH_PREFIX:
		return n >= v && !memcmp(s->s, m->value, v);
	case ZT_MATCH_SUFFIX:
		return n >= v && !memcmp(s->s + n - v, m->value, v);
	default:
		return n == v && !memcmp(s->s, m->value, v);
	}
}

static bool any_str(const struct zt_str_list *l, const struct str *s)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (str_match(&l->items[i], s))
			return true;
	return false;
}

static bool in_cidr(const struct zt_cidr *c, const struct zt_ip *ip)
{
	if (c->ip.family != ip->family)
		return false;
	uint32_t bits = c->prefix, full = bits / 8, rest = bits % 8;
	if (memcmp(c->ip.addr, ip->addr, full))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (c->ip.addr[full] & mask) == (ip->addr[full] & mask);
}

static bool any_cidr(const struct zt_cidr_list *l, const struct zt_ip *ip)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (in_cidr(&l->items[i], ip))
			return true;
	return false;
}

static bool any_port(const struct zt_port_list *l, uint16_t port)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->items[i] == port)
			return true;
	return false;
}

/* (P empty OR any(P)) AND (N empty OR none(N)) */
#define FIELD(pos, neg, test) \
	(((pos).n == 0 || test(&(pos))) && ((neg).n == 0 || !test(&(neg))))

#define SPIFFE_SCHEME "spiffe://"

/* What the rules compare: the principal (the SPIFFE id without its
 * scheme, SPEC §5.2) and the namespace and service account that
 * spiffe_parse takes from it; all empty for plaintext. */
struct peer_parts {
	struct str principal, ns, sa;
	struct spiffe_id id;
};

static void split_peer(const char *peer, struct peer_parts *p)
{
	bool spiffe = peer && !strncmp(peer, SPIFFE_SCHEME, strlen(SPIFFE_SCHEME));
	const char *principal = spiffe ? peer + strlen(SPIFFE_SCHEME) : "";

	p->principal = (struct str){ principal, strlen(principal) };
	if (!spiffe || spiffe_parse(peer, &p->id) < 0)
		p->id.ns[0] = p->id.sa[0] = '\0';
	p->ns = (struct str){ p->id.ns, strlen(p->id.ns) };
	p->sa = (struct str){ p->id.sa, strlen(p->id.sa) };
}

/* serviceAccounts entries are exact "ns/sa" (the trust domain ignored). */
static bool any_service_account(const struct zt_str_list *l, const struct peer_parts *pp)
{
	size_t ns = pp->ns.n, sa = pp->sa.n;

	for (uint32_t i = 0; ns && sa && i < l->n; i++) {
		const struct zt_str_match *m = &l->items[i];
		if (m->len == ns + 1 + sa && !memcmp(m->value, pp->ns.s, ns) && m->value[ns] == '/' &&
		    !memcmp(m->value + ns + 1, pp->sa.s, sa))
			return true;
	}
	return false;
}

static bool match_true(const struct zt_match *m, const struct peer_parts *pp, const struct authz_conn *c)
{
	if (m->match_all)
		return true;
	if (zt_match_empty(m))
		return false;
#define NS(l) any_str(l, &pp->ns)
#define PR(l) any_str(l, &pp->principal)
#define SA(l) any_service_account(l, pp)
#define SRC(l) any_cidr(l, &c->src)
#define DST(l) any_cidr(l, &c->dst)
#define PORT(l) any_port(l, c->dst_port)
	return FIELD(m->namespaces, m->not_namespaces, NS) && FIELD(m->principals, m->not_principals, PR) &&
	       FIELD(m->service_accounts, m->not_service_accounts, SA) &&
	       FIELD(m->source_ips, m->not_source_ips, SRC) &&
	       FIELD(m->destination_ips, m->not_destination_ips, DST) &&
	       FIELD(m->destination_ports, m->not_destination_ports, PORT);
#undef NS
#undef PR
#undef SA
#undef SRC
#undef DST
#undef PORT
}

static bool clause_true(const struct zt_clause *cl, const struct peer_parts *pp, const struct authz_conn *c)
{
	if (!cl->n)
		return true;
	for (uint32_t i = 0; i < cl->n; i++)
		if (match_true(&cl->matches[i], pp, c))
			return true;
	return false;
}

/* Clauses of r that fail (0: the rule matches); UINT32_MAX for a rule
 * dropped for HTTP-only attributes. */
static uint32_t rule_failing(const struct zt_rule *r, const struct peer_parts *pp, const struct authz_conn *c)
{
	uint32_t failing = 0;

	if (r->dropped_l7)
		return UINT32_MAX;
	for (uint32_t i = 0; i < r->n; i++)
		failing += !clause_true(&r->clauses[i], pp, c);
	return failing;
}

static int policy_match(const struct zt_authz_policy *p, const struct peer_parts *pp, const struct authz_conn *c)
{
	for (uint32_t i = 0; i < p->n_rules; i++)
		if (rule_failing(&p->rules[i], pp, c) == 0)
			return (int)i;
	return -1;
}

int authz_policy_match(const struct zt_authz_policy *p, const struct authz_conn *conn)
{
	struct peer_parts pp;

	split_peer(conn->peer, &pp);
	return policy_match(p, &pp, conn);
}

static uint8_t level(const struct zt_peer_authn *pa, uint8_t mode, const struct zt_peer_authn **from)
{
	if (pa && pa->mode != ZT_MTLS_UNSET) {
		*from = pa;
		return pa->mode;
	}
	return mode;
}

uint8_t authz_mtls_mode(const struct zt_workload *w, uint16_t port, const struct zt_peer_authn **from)
{
	uint8_t mode = ZT_MTLS_PERMISSIVE;
	const struct zt_peer_authn *pa = w->peer_authn_workload;

	*from = NULL;
	mode = level(w->peer_authn_mesh, mode, from);
	mode = level(w->peer_authn_namespace, mode, from);
	mode = level(pa, mode, from);
	for (uint32_t i = 0; pa && i < pa->n_ports; i++) {
		if (pa->ports[i].port == port && pa->ports[i].mode != ZT_MTLS_UNSET) {
			*from = pa;
			mode = pa->ports[i].mode;
		}
	}
	return mode;
}

static void note_dry_run(struct authz_decision *out, const struct zt_authz_policy *p, int rule)
{
	if (!out->dry_run) {
		out->dry_run = p;
		out->dry_run_rule = rule;
	}
}

/* The rules a decision checks, in list order: every rule, or (with the
 * workload's index) only those the connection could match. Skipping a
 * rule that cannot match changes no outcome: each pass below stops at, or
 * notes, the first rule that matches. */
struct rules {
	const struct zt_workload *w;
	const struct zt_authz_index *ix;
	struct policy_cursor cursor;
	uint32_t policy, rule;
};

static void rules_start(struct rules *it, const struct zt_workload *w, const struct zt_authz_index *ix,
			const struct peer_parts *pp, const struct authz_conn *c)
{
	it->w = w;
	it->ix = ix;
	it->policy = it->rule = 0;
	if (ix) {
		struct policy_probe probe = { pp->principal.s, pp->ns.s, pp->principal.n, pp->ns.n,
					      &c->src, c->dst_port };
		policy_index_probe(ix, &probe, &it->cursor);
	}
}

static bool rules_next(struct rules *it, const struct zt_authz_policy **p, uint32_t *rule)
{
	if (it->ix) {
		uint32_t i;
		if (!policy_cursor_next(&it->cursor, &i, rule))
			return false;
		*p = it->w->policies[i];
		return true;
	}
	while (it->policy < it->w->n_policies && it->rule >= it->w->policies[it->policy]->n_rules) {
		it->policy++;
		it->rule = 0;
	}
	if (it->policy == it->w->n_policies)
		return false;
	*p = it->w->policies[it->policy];
	*rule = it->rule++;
	return true;
}

static uint32_t enforced_allows(const struct zt_workload *w, const struct zt_authz_index *ix)
{
	uint32_t n = 0;

	if (ix)
		return policy_index_allows(ix);
	for (uint32_t i = 0; i < w->n_policies; i++)
		n += w->policies[i]->action == ZT_ACTION_ALLOW && zt_authz_enforced(w->policies[i]);
	return n;
}

static bool matches(const struct zt_authz_policy *p, uint32_t rule, const struct peer_parts *pp,
		    const struct authz_conn *c)
{
	return rule_failing(&p->rules[rule], pp, c) == 0;
}

static void decide(const struct zt_workload *w, const struct zt_authz_index *ix,
		   const struct authz_conn *c, struct authz_decision *out)
{
	const struct zt_authz_policy *p;
	struct peer_parts pp;
	struct rules deny, allow;
	uint32_t r, n_allow;

	memset(out, 0, sizeof(*out));
	out->rule = out->dry_run_rule = -1;
	/* STRICT: istiod adds a DENY of everything without an identity. */
	if (!c->peer && authz_mtls_mode(w, c->dst_port, &out->peer_authn) == ZT_MTLS_STRICT) {
		out->reason = AUTHZ_STRICT_MTLS;
		return;
	}
	split_peer(c->peer, &pp);
	rules_start(&deny, w, ix, &pp, c);
	allow = deny;
	while (rules_next(&deny, &p, &r)) {
		if (p->action != ZT_ACTION_DENY && p->action != ZT_ACTION_AUDIT)
			continue;
		if (!matches(p, r, &pp, c))
			continue;
		if (!zt_authz_enforced(p) || p->action == ZT_ACTION_AUDIT) {
			if (p->scope != ZT_SCOPE_WAYPOINT)
				note_dry_run(out, p, (int)r);
		} else {
			out->reason = AUTHZ_DENIED_BY;
			out->policy = p;
			out->rule = (int)r;
			return;
		}
	}
	while (rules_next(&allow, &p, &r)) {
		if (p->action != ZT_ACTION_ALLOW || p->scope == ZT_SCOPE_WAYPOINT || !matches(p, r, &pp, c))
			continue;
		if (p->dry_run) {
			note_dry_run(out, p, (int)r);
			continue;
		}
		out->allowed = true;
		out->reason = AUTHZ_ALLOWED_BY;
		out->policy = p;
		out->rule = (int)r;
		return;
	}
	n_allow = enforced_allows(w, ix);
	out->allowed = n_allow == 0;
	out->reason = n_allow ? AUTHZ_NOT_ALLOWED : AUTHZ_NO_ALLOW_POLICIES;
}

void authz_check(const struct zt_workload *w, const struct authz_conn *c, struct authz_decision *out)
{
	decide(w, w->authz_index, c, out);
}

void authz_check_linear(const struct zt_workload *w, const struct authz_conn *c, struct authz_decision *out)
{
	decide(w, NULL, c, out);
}

bool authz_nearest_allow(const struct zt_workload *w, const struct authz_conn *c,
			 const struct zt_authz_policy **policy, int *rule, uint32_t *failing)
{
	struct peer_parts pp;
	bool found = false;

	split_peer(c->peer, &pp);
	*failing = UINT32_MAX;
	for (uint32_t i = 0; i < w->n_policies; i++) {
		const struct zt_authz_policy *p = w->policies[i];
		if (p->action != ZT_ACTION_ALLOW || !zt_authz_enforced(p))
			continue;
		for (uint32_t j = 0; j < p->n_rules; j++) {
			uint32_t f = rule_failing(&p->rules[j], &pp, c);
			if (f != UINT32_MAX && (!found || f < *failing)) {
				found = true;
				*failing = f;
				*policy = p;
				*rule = (int)j;
			}
		}
	}
	return found;
}

const char *authz_reason_text(uint8_t reason)
{
	switch (reason) {
	case AUTHZ_NO_ALLOW_POLICIES: return "no allow policies";
	case AUTHZ_ALLOWED_BY: return "allowed by";
	case AUTHZ_DENIED_BY: return "explicitly denied by";
	case AUTHZ_NOT_ALLOWED: return "allow policies exist, but none allowed";
	case AUTHZ_STRICT_MTLS: return "plaintext refused: PeerAuthentication mode STRICT";
	default: return "unknown";
	}
}
