/* Inbound authorization at the edge (SPEC.md §3.2 step 3, §3.3): builds
 * the connection for the pure evaluator (ztunnel/policy) and says why a
 * denial denied. */
#include "authorize.h"
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "ztunnel/authz.h"
#include "ztunnel/log.h"

static void conn_of(const struct conn_info *ci, struct authz_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->peer = ci->src_id ? ci->src_id->uri : NULL;
	c->src.family = c->dst.family = AF_INET;
	memcpy(c->src.addr, &ci->src.sin_addr.s_addr, 4);
	memcpy(c->dst.addr, &ci->up.sin_addr.s_addr, 4);
	c->dst_port = ntohs(ci->up.sin_port);
}

static void describe(const struct authz_decision *d, char *buf, size_t size)
{
	if (d->reason == AUTHZ_STRICT_MTLS && d->peer_authn)
		snprintf(buf, size, "%s (%s)", authz_reason_text(d->reason), d->peer_authn->key);
	else if (d->policy)
		snprintf(buf, size, "%s %s", authz_reason_text(d->reason), d->policy->key);
	else
		snprintf(buf, size, "%s", authz_reason_text(d->reason));
}

enum tm_reason authorize_inbound(const struct zt_model *m, const struct conn_info *ci, struct authz_decision *d,
				 char *why, size_t why_size)
{
	struct authz_conn c;

	const struct zt_workload *wl = model_workload_by_v4(m, ci->up.sin_addr.s_addr);
	if (!wl) {
		/* Fail closed: no policy can be known for it. */
		memset(d, 0, sizeof(*d));
		d->rule = d->dry_run_rule = -1;
		snprintf(why, why_size, "destination workload unknown to the snapshot");
		return TM_R_DST_UNKNOWN;
	}
	conn_of(ci, &c);
	authz_check(wl, &c, d);
	if (d->dry_run)
		log_info("dry-run policy matched (not enforced)", LF_STR("policy", d->dry_run->key),
			 LF_INT("rule", d->dry_run_rule),
			 LF_STR("action", d->dry_run->action == ZT_ACTION_DENY ? "DENY"
					  : d->dry_run->action == ZT_ACTION_AUDIT ? "AUDIT" : "ALLOW"),
			 LF_STR("src.identity", identity_uri(ci->src_id)), LF_STR("dst.workload", conn_info_dst_name(ci)));
	describe(d, why, why_size);
	if (d->allowed)
		return TM_R_NONE;
	return d->reason == AUTHZ_STRICT_MTLS ? TM_R_STRICT_PLAINTEXT : TM_R_POLICY_DENIED;
}
