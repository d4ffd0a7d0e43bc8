/* The worker's live connections (relayed or tunnelled): inbound ones are
 * re-authorized when the snapshot changes (SPEC.md §3.4), idle ones closed,
 * waiting ones retried, all closed when the worker stops, and listed for
 * the admin API on request. */
#include "live.h"
#include "conn.h"
#include "access.h"
#include "authorize.h"

#include <stdlib.h>
#include <string.h>

#include "ztunnel/authz.h"
#include "ztunnel/log.h"

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
	uint64_t gen = state_store_generation(w->p->store);

	if (gen == w->policy_generation)
		return;
	w->policy_generation = gen;
	const struct zt_model *m = state_read_lock(w->p->store);
	for (struct watch *wt = w->watched; wt; wt = wt->next) {
		struct authz_decision d;
		char why[300];
		/* Outbound connections are the source side: never checked here. */
		enum tm_reason r = wt->ci->dir == PROXY_OUTBOUND ? TM_R_NONE
								 : authorize_inbound(m, wt->ci, &d, why, sizeof(why));
		wt->denied = r != TM_R_NONE;
		if (wt->denied)
			log_revoked(wt->ci, &d, r, why);
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
		wt->revoke(wt, TM_R_REVOKED, "connection closed due to policy change");
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
		tm_count(TM_LIMIT_STREAM_IDLE_TIMEOUT, 1);
		watch_del(w, wt);
		wt->revoke(wt, TM_R_IDLE_TIMEOUT, "idle timeout (--stream-idle-timeout)");
		wt = w->watched; /* closing one may end others */
	}
}

#define REPORT_BYTES_MS 30000

void watch_report(struct worker *w)
{
	int64_t now = loop_now_ms(), line_ms = (int64_t)w->p->cfg->access_log_interval * 1000;

	if (now - w->report_check_ms < 1000)
		return;
	w->report_check_ms = now;
	for (struct watch *wt = w->watched; wt; wt = wt->next) {
		struct conn_info *ci = wt->ci;
		int64_t age = now - ci->reported_ms;
		bool line = line_ms && age >= line_ms;
		if (line || age >= REPORT_BYTES_MS)
			conn_report(ci, line);
	}
}

void watch_close_all(struct worker *w, enum tm_reason reason, const char *why)
{
	while (w->watched) {
		struct watch *wt = w->watched;
		watch_del(w, wt);
		wt->revoke(wt, reason, why);
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

static void view_of(const struct conn_info *ci, int64_t now, struct proxy_conn_view *v)
{
	v->dir = ci->dir;
	v->hbone = ci->hbone;
	v->src = ci->src;
	v->up = ci->up;
	v->hbone_peer = ci->hbone_peer;
	v->bytes_up = ci->bytes_up;
	v->bytes_down = ci->bytes_down;
	v->age_ms = now - ci->start_ms;
	snprintf(v->src_name, sizeof(v->src_name), "%s", conn_info_src_name(ci));
	snprintf(v->dst_name, sizeof(v->dst_name), "%s", conn_info_dst_name(ci));
	snprintf(v->service, sizeof(v->service), "%s", conn_info_service(ci));
	snprintf(v->src_identity, sizeof(v->src_identity), "%s", identity_uri(ci->src_id));
	snprintf(v->dst_identity, sizeof(v->dst_identity), "%s", identity_uri(ci->dst_id));
	snprintf(v->policy, sizeof(v->policy), "%s", conn_info_policy(ci));
}

void live_answer_request(struct worker *w)
{
	uint32_t seq = atomic_load_explicit(&w->list_request, memory_order_acquire);
	size_t n = 0, cap = 0;
	int64_t now = loop_now_ms();

	if (seq == w->list_answered)
		return;
	w->list_answered = seq;
	for (struct watch *wt = w->watched; wt; wt = wt->next)
		cap += !wt->retry; /* waiting ones have no destination yet */
	/* The cap is for the whole answer: each worker its share. */
	size_t share = PROXY_LIST_MAX / (size_t)(w->p->n_workers > 0 ? w->p->n_workers : 1);
	bool truncated = cap > share;
	if (truncated)
		cap = share;
	struct live_answer *a = malloc(sizeof(*a) + cap * sizeof(a->v[0]));
	if (!a)
		return; /* the admin gives up waiting for this worker */
	for (struct watch *wt = w->watched; wt && n < cap; wt = wt->next)
		if (!wt->retry)
			view_of(wt->ci, now, &a->v[n++]);
	a->seq = seq;
	a->n = n;
	a->truncated = truncated;
	free(atomic_exchange_explicit(&w->answer, a, memory_order_acq_rel));
}
