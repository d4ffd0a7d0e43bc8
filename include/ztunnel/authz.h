/* L4 authorization at the destination (SPEC.md §5): AuthorizationPolicy and
 * PeerAuthentication of the destination workload, evaluated as Istio's
 * ztunnel does (assert_rbac), as pure functions over the model: no
 * allocation, no I/O, no locks. */
#ifndef ZTUNNEL_AUTHZ_H
#define ZTUNNEL_AUTHZ_H

#include <stdbool.h>
#include <stdint.h>

#include "ztunnel/identity.h"
#include "ztunnel/policy-t.h"

/* One inbound connection. peer is the client's SPIFFE id
 * ("spiffe://td/ns/x/sa/y"), NULL for plaintext. */
struct authz_conn {
	const char *peer;
	struct zt_ip src, dst;
	uint16_t dst_port; /* the pod's port (after service -> target translation) */
};

enum authz_reason {
	AUTHZ_NO_ALLOW_POLICIES = 0, /* allowed: nothing restricts the workload */
	AUTHZ_ALLOWED_BY,            /* allowed: policy/rule matched */
	AUTHZ_DENIED_BY,             /* denied: DENY policy/rule matched */
	AUTHZ_NOT_ALLOWED,           /* denied: ALLOW policies exist, none matched */
	AUTHZ_STRICT_MTLS,           /* denied: plaintext under STRICT PeerAuthentication */
};

struct authz_decision {
	bool allowed;
	uint8_t reason;                          /* enum authz_reason */
	const struct zt_authz_policy *policy;    /* the deciding policy, or NULL */
	int rule;                                /* its rule index, or -1 */
	const struct zt_peer_authn *peer_authn;  /* for AUTHZ_STRICT_MTLS (NULL: invalid/none) */
	/* Dry-run and AUDIT policies are evaluated, never enforced: the first
	 * that matched, for the log. */
	const struct zt_authz_policy *dry_run;
	int dry_run_rule;
};

/* The decision for conn to workload w. */
void authz_check(const struct zt_workload *w, const struct authz_conn *conn, struct authz_decision *out);
/* The same by checking every rule of every policy, without w's index: the
 * reference the index is tested against. */
void authz_check_linear(const struct zt_workload *w, const struct authz_conn *conn,
			struct authz_decision *out);

/* Effective PeerAuthentication mode for w on port (SPEC §5.4):
 * mesh -> namespace -> workload -> port, UNSET inherits, default
 * PERMISSIVE. *from is the object that set it (NULL: default). */
uint8_t authz_mtls_mode(const struct zt_workload *w, uint16_t port, const struct zt_peer_authn **from);

/* Index of the first rule of p that matches conn, or -1. */
int authz_policy_match(const struct zt_authz_policy *p, const struct authz_conn *conn);

/* For a denial: the ALLOW rule of w that came closest (fewest clauses
 * failing), and how many failed; false when w has no ALLOW rule. */
bool authz_nearest_allow(const struct zt_workload *w, const struct authz_conn *conn,
			 const struct zt_authz_policy **policy, int *rule, uint32_t *failing);

/* "explicitly denied by ns/name", ... for logs and the CLI. */
const char *authz_reason_text(uint8_t reason);

#endif
