/* Typed AuthorizationPolicy and PeerAuthentication, already translated the
 * way istiod translates them for ztunnel (SPEC.md §5): a policy is rules
 * (OR) of clauses (AND) of matches (OR). Evaluation lives in ztunnel/policy/. */
#ifndef ZTUNNEL_POLICY_T_H
#define ZTUNNEL_POLICY_T_H

#include <stdbool.h>
#include <stdint.h>

#include "ztunnel/state-t.h"

enum zt_policy_action {
	ZT_ACTION_ALLOW = 0,
	ZT_ACTION_DENY,
	ZT_ACTION_AUDIT,  /* Istio: never reaches ztunnel; logged only */
	ZT_ACTION_CUSTOM, /* Istio: not supported at L4; never applied */
};

enum zt_policy_scope {
	ZT_SCOPE_GLOBAL = 0,  /* root namespace, no selector */
	ZT_SCOPE_NAMESPACE,   /* no selector */
	ZT_SCOPE_WORKLOAD,    /* selector.matchLabels */
	ZT_SCOPE_WAYPOINT,    /* targetRef(s): for waypoints, ignored by ztunnel */
};

/* istiod's string forms: "*" presence, "x*" prefix, "*x" suffix, else exact. */
enum zt_str_match_kind {
	ZT_MATCH_EXACT = 0,
	ZT_MATCH_PREFIX,
	ZT_MATCH_SUFFIX,
	ZT_MATCH_PRESENCE,
};

struct zt_str_match {
	const char *value; /* without the '*' */
	uint8_t kind;
	uint32_t len;      /* strlen(value): matching never measures */
};

struct zt_str_list {
	const struct zt_str_match *items;
	uint32_t n;
};

struct zt_cidr {
	struct zt_ip ip;
	uint8_t prefix;
};

struct zt_cidr_list {
	const struct zt_cidr *items;
	uint32_t n;
};

struct zt_port_list {
	const uint16_t *items;
	uint32_t n;
};

/* One source, operation or condition. Within a field kind values OR; the
 * non-empty kinds AND; positive and negative lists per SPEC.md §5.2. */
struct zt_match {
	struct zt_str_list namespaces, not_namespaces;
	struct zt_str_list principals, not_principals;
	struct zt_str_list service_accounts, not_service_accounts; /* exact "ns/sa" */
	struct zt_cidr_list source_ips, not_source_ips;
	struct zt_cidr_list destination_ips, not_destination_ips;
	struct zt_port_list destination_ports, not_destination_ports;
	/* DENY entry whose only attributes were HTTP ones: istiod makes DENY
	 * stricter, so it matches every connection. */
	bool match_all;
};

/* SPEC §5.2: a match with no field at all (and not match_all) is skipped:
 * it never matches. */
static inline bool zt_match_empty(const struct zt_match *m)
{
	return !m->match_all && !m->namespaces.n && !m->not_namespaces.n && !m->principals.n &&
	       !m->not_principals.n && !m->service_accounts.n && !m->not_service_accounts.n &&
	       !m->source_ips.n && !m->not_source_ips.n && !m->destination_ips.n &&
	       !m->not_destination_ips.n && !m->destination_ports.n && !m->not_destination_ports.n;
}

struct zt_clause {
	const struct zt_match *matches;
	uint32_t n;
};

struct zt_rule {
	const struct zt_clause *clauses;
	uint32_t n;
	/* ALLOW rule that used HTTP-only attributes: dropped whole, never matches. */
	bool dropped_l7;
	/* DENY rule whose HTTP-only attributes were removed. */
	bool stripped_l7;
};

struct zt_authz_policy {
	const char *name, *namespace, *key; /* key: "ns/name" */
	uint8_t action;                     /* enum zt_policy_action */
	uint8_t scope;                      /* enum zt_policy_scope */
	bool dry_run;                       /* istio.io/dry-run: "true" */
	/* Failed validation: applied fail-closed (ALLOW matches nothing, DENY
	 * matches everything in its scope); reason says why. */
	bool invalid;
	const char *invalid_reason;
	struct zt_labels selector;
	const struct zt_rule *rules;
	uint32_t n_rules;
	int64_t created; /* creationTimestamp, unix seconds (0 if absent) */
};

/* Enforced: not for a waypoint, not dry-run, and ALLOW or DENY. */
static inline bool zt_authz_enforced(const struct zt_authz_policy *p)
{
	return p->scope != ZT_SCOPE_WAYPOINT && !p->dry_run &&
	       (p->action == ZT_ACTION_ALLOW || p->action == ZT_ACTION_DENY);
}

/* Rules of a workload's policy list, numbered in evaluation order. */
struct zt_rule_ids {
	const uint32_t *ids; /* ascending */
	uint32_t n;
};

enum zt_mtls_mode {
	ZT_MTLS_UNSET = 0,
	ZT_MTLS_PERMISSIVE,
	ZT_MTLS_STRICT,
	ZT_MTLS_DISABLE,
};

struct zt_port_mtls {
	uint16_t port;
	uint8_t mode;
};

struct zt_peer_authn {
	const char *name, *namespace, *key;
	uint8_t scope; /* GLOBAL / NAMESPACE / WORKLOAD */
	uint8_t mode;  /* enum zt_mtls_mode; invalid objects become STRICT */
	bool invalid;
	const char *invalid_reason;
	struct zt_labels selector;
	const struct zt_port_mtls *ports; /* portLevelMtls (workload scope only) */
	uint32_t n_ports;
	int64_t created;
};

#endif
