/* Inbound authorization at the edge (SPEC.md §3.2 step 3, §3.3, §3.4):
 * builds the connection for the pure evaluator (ztunnel/policy), writes
 * the one log line of a denial, and keeps the worker's list of live
 * connections: inbound ones are re-checked when a new snapshot arrives
 * and closed when it now denies them. */
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "ztunnel/authz.h"
#include "ztunnel/log.h"

static const char *const direction_names[] = { "outbound", "inbound", "inbound" };

static void conn_of(const struct conn_info *ci, struct authz_conn *c)
{
	const char *id = ci->src_identity;

	memset(c, 0, sizeof(*c));
	c->peer = id[0] ? id : NULL;
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

bool authorize_inbound(struct worker *w, const struct zt_model *m, const struct conn_info *ci,
		       struct authz_decision *d, char *why, size_t why_size)
{
	struct authz_conn c;

	(void)w;
	const struct zt_workload *wl = model_workload_by_v4(m, ci->up.sin_addr.s_addr);
	if (!wl) {
		/* Fail closed: no policy can be known for it. */
		memset(d, 0, sizeof(*d));
		d->rule = d->dry_run_rule = -1;
		snprintf(why, why_size, "destination workload unknown to the snapshot");
		return false;
	}
	conn_of(ci, &c);
	authz_check(wl, &c, d);
	if (d->dry_run)
		log_info("dry-run policy matched (not enforced)", LF_STR("policy", d->dry_run->key),
			 LF_INT("rule", d->dry_run_rule),
			 LF_STR("action", d->dry_run->action == ZT_ACTION_DENY ? "DENY"
					  : d->dry_run->action == ZT_ACTION_AUDIT ? "AUDIT" : "ALLOW"),
			 LF_STR("src.identity", ci->src_identity), LF_STR("dst.workload", ci->dst_name));
	describe(d, why, why_size);
	return d->allowed;
}

void log_denied(struct worker *w, const struct conn_info *ci, const struct authz_decision *d,
		const char *why, int status)
{
	char src[32], dst[32];

	fmt_addr(&ci->src, src, sizeof(src));
	fmt_addr(&ci->up, dst, sizeof(dst));
	atomic_fetch_add(&w->p->stats.denied[ci->dir], 1);
	log_warn("connection denied", LF_STR("src.addr", src), LF_STR("src.workload", ci->src_name),
		 LF_STR("src.identity", ci->src_identity), LF_STR("dst.addr", dst),
		 LF_STR("dst.workload", ci->dst_name), LF_STR("direction", direction_names[ci->dir]),
		 LF_STR("protocol", ci->hbone ? "HBONE" : "TCP"),
		 LF_STR("policy", d->policy ? d->policy->key : d->peer_authn ? d->peer_authn->key : ""),
		 LF_INT("rule", d->rule), LF_INT("status", status), LF_STR("error", why));
}

void watch_add(struct worker *w, struct watch *wt)
{
	wt->prev = NULL;
	wt->next = w->watched;
	if (w->watched)
		w->watched->prev = wt;
	w->watched = wt;
	wt->on = true;
}

void watch_park(struct worker *w, struct watch *wt, void (*retry)(struct watch *wt))
{
	if (!wt->retry)
		w->n_parked++;
	wt->retry = retry;
}

void watch_unpark(struct worker *w, struct watch *wt)
{
	if (wt->retry)
		w->n_parked--;
	wt->retry = NULL;
}

void watch_del(struct worker *w, struct watch *wt)
{
	watch_unpark(w, wt);
	if (!wt->on)
		return;
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		w->watched = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	wt->on = false;
}

/* SPEC §3.4: a new snapshot re-checks every established inbound
 * connection; the ones it denies are closed. */
void watch_recheck(struct worker *w)
{
	uint64_t gen = atomic_load(&w->p->store->stats.generation);

	if (gen == w->policy_generation)
		return;
	w->policy_generation = gen;
	const struct zt_model *m = state_read_lock(w->p->store);
	for (struct watch *wt = w->watched; wt; wt = wt->next) {
		struct authz_decision d;
		char why[300];
		/* Outbound connections are the source side: never checked here. */
		wt->denied = wt->ci->dir != PROXY_OUTBOUND &&
			     !authorize_inbound(w, m, wt->ci, &d, why, sizeof(why));
		if (wt->denied) {
			atomic_fetch_add(&w->p->stats.revoked, 1);
			log_denied(w, wt->ci, &d, why, 0);
		}
	}
	state_read_unlock();
	/* Closing one connection may end others (a broken HBONE connection
	 * resets all its streams), so walk again from the head each time. */
	for (struct watch *wt = w->watched; wt;) {
		if (!wt->denied) {
			wt = wt->next;
			continue;
		}
		watch_del(w, wt);
		wt->revoke(wt, "connection closed due to policy change");
		wt = w->watched;
	}
}

void watch_idle(struct worker *w)
{
	int64_t now = loop_now_ms(), limit = (int64_t)w->p->cfg->stream_idle_timeout * 1000;

	if (!limit || now - w->idle_check_ms < 1000)
		return;
	w->idle_check_ms = now;
	for (struct watch *wt = w->watched; wt;) {
		const struct conn_info *ci = wt->ci;
		if (ci->dir != PROXY_INBOUND_HBONE || !ci->active_ms || now - ci->active_ms < limit) {
			wt = wt->next;
			continue;
		}
		atomic_fetch_add(&w->p->stats.idle_closed, 1);
		watch_del(w, wt);
		wt->revoke(wt, "idle timeout (--stream-idle-timeout)");
		wt = w->watched; /* closing one may end others */
	}
}

void watch_close_all(struct worker *w, const char *why)
{
	while (w->watched) {
		struct watch *wt = w->watched;
		watch_del(w, wt);
		wt->revoke(wt, why);
	}
}

void watch_retry(struct worker *w)
{
	struct watch *parked[256];
	uint32_t n = 0;

	if (!w->n_parked)
		return; /* the usual case: no walk over every live connection */
	/* Collected first: a retry may end its own connection (never
	 * another), which removes it from the list. */
	for (struct watch *wt = w->watched; wt && n < 256; wt = wt->next)
		if (wt->retry)
			parked[n++] = wt;
	for (uint32_t i = 0; i < n; i++)
		parked[i]->retry(parked[i]);
}
