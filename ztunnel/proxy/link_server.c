/* The server side of HBONE connections (15008): admission before the TLS
 * handshake (admission.c) with eviction when the node's slots are full,
 * the certificate of the pod a connection is for,
 * and the budgets for new streams (--max-stream-rate) and for streams a
 * peer resets before they are served (rapid reset). The connection itself
 * is link.c. */
#include "link.h"
#include "conn.h"
#include "tls_cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/log.h"
#include "ztunnel/tls.h"

#define WAIT_FOR_CERT_MS 5000 /* SPEC §3.2: a local workload gets 5 s to appear */
/* Streams a peer may reset before they are served: a burst of 100, then
 * 10 a second (legitimate clients hardly ever do it; rapid reset does it
 * thousands of times a second). */
#define RESET_BURST 100.0
#define RESET_PER_S 10.0
/* Waiting connections looked at for one eviction (oldest first). */
#define EVICT_SCAN 64

/* Server side: present the certificate of the pod the connection is for
 * (its original destination), require a client certificate of our trust
 * domain. A pod whose certificate is still being issued keeps the client
 * waiting (its ClientHello stays in the socket) for up to 5 s, retried on
 * every tick. */
void link_serve(struct link *l)
{
	struct worker *w = l->w;
	struct proxy *p = w->p;
	char err[300] = "";
	const struct zt_identity *id = NULL;
	const char *why = NULL;
	enum tm_reason reason = TM_R_NOT_ENROLLED;

	const struct zt_model *m = state_read_lock(p->store);
	const struct zt_workload *wl = model_workload_by_v4(m, l->local.sin_addr.s_addr);
	if (!link_pod_enrolled(w, l->local.sin_addr.s_addr) || !wl || !wl->enrolled || !wl->identity)
		why = "destination is not an enrolled pod of this node";
	else
		id = identity_intern(wl->identity);
	state_read_unlock();
	struct tls_ctx *ctx = why ? NULL : tls_cache_get(w, id, true, err, sizeof(err));
	l->awaiting_cert = !why && !ctx && loop_now_ms() - l->created_ms < WAIT_FOR_CERT_MS;
	if (l->awaiting_cert)
		return;
	if (!why && !ctx) {
		why = err;
		reason = TM_R_NO_CERTIFICATE;
	} else if (!why && tls_session_new(&l->tls, ctx, NULL, 0, p->cfg->trust_domain) < 0) {
		why = "out of memory";
		reason = TM_R_NO_MEMORY;
	}
	if (why) {
		snprintf(l->detail, sizeof(l->detail), "refused: %s", why);
		link_fail(l, reason, l->detail);
		return;
	}
	link_start(l);
}

static void accept_link(struct worker *w, int fd, const struct sockaddr_in *peer,
			const struct sockaddr_in *local, bool admitted)
{
	struct link *l = link_new(w, true, fd);

	if (!l) {
		log_error("out of memory: inbound HBONE connection reset");
		if (admitted)
			admission_leave(&w->p->admission, peer->sin_addr.s_addr);
		reset_socket(fd);
		close(fd);
		return;
	}
	l->peer = *peer;
	l->local = *local;
	l->admitted = admitted;
	if (admitted) {
		l->wait_prev = w->waiting_tail;
		if (w->waiting_tail)
			w->waiting_tail->wait_next = l;
		else
			w->waiting = l;
		w->waiting_tail = l;
	}
	link_hold(l);
	link_serve(l);
	link_put(l);
}

/* Takes l off the worker's waiting list. */
static void unwait(struct link *l)
{
	struct worker *w = l->w;

	if (l->wait_prev)
		l->wait_prev->wait_next = l->wait_next;
	else
		w->waiting = l->wait_next;
	if (l->wait_next)
		l->wait_next->wait_prev = l->wait_prev;
	else
		w->waiting_tail = l->wait_prev;
	l->wait_prev = l->wait_next = NULL;
}

void link_unadmit(struct link *l)
{
	if (!l->admitted)
		return;
	admission_leave(&l->w->p->admission, l->peer.sin_addr.s_addr);
	l->admitted = false;
	unwait(l);
}

/* The node's pre-handshake slots are full. Rather than refuse a source
 * that holds few of them, evict the oldest waiting connection of a source
 * holding at least two more (equals never evict each other) and hand its
 * slot straight to src: a few sources filling the slots together cannot
 * keep a new peer out, each keeps about its fair share. Only this
 * worker's connections (no locks); SO_REUSEPORT spreads every source over
 * the workers. True when src now holds the slot. */
static bool evict_for(struct worker *w, uint32_t src)
{
	struct proxy *p = w->p;
	struct admission *a = &p->admission;
	uint32_t mine = admission_usage(a, src);
	int scanned = 0;

	for (struct link *l = w->waiting; l && scanned < EVICT_SCAN; l = l->wait_next, scanned++) {
		uint32_t victim = l->peer.sin_addr.s_addr;
		if (l->dead || victim == src || admission_usage(a, victim) < mine + 2)
			continue;
		tm_count(TM_LIMIT_PENDING_HANDSHAKES_EVICTED, 1);
		admission_move(a, victim, src);
		l->admitted = false;
		unwait(l);
		if (log_turn(&p->last_evict_log_ms)) {
			char from[32];
			fmt_addr(&l->peer, from, sizeof(from));
			log_warn("inbound HBONE connection evicted before its handshake: the node's slots are full and a "
				 "source holding fewer came", LF_STR("evicted.src", from),
				 LF_UINT("evicted.total", tm_counter_value(TM_LIMIT_PENDING_HANDSHAKES_EVICTED)));
		}
		reset_socket(l->fd);
		link_fail(l, TM_R_LIMIT, NULL); /* counted and logged above */
		return true;
	}
	return false;
}

/* Our own same-node connections: their source is one of our pods. */
void link_accept_pair(struct worker *w, int fd, const struct sockaddr_in *peer,
		      const struct sockaddr_in *local)
{
	accept_link(w, fd, peer, local, false);
}

/* Refusals under a flood are counted always and logged at most once a
 * second (one line per second, not one per connection). */
static void refused_unauthenticated(struct worker *w, const struct sockaddr_in *peer, enum admission_verdict v)
{
	struct proxy *p = w->p;
	char src[32];

	tm_count(v == ADMIT_OVER_PER_SOURCE ? TM_LIMIT_PENDING_HANDSHAKES_PER_SOURCE : TM_LIMIT_PENDING_HANDSHAKES, 1);
	if (!log_turn(&p->last_refusal_log_ms))
		return;
	fmt_addr(peer, src, sizeof(src));
	log_warn("inbound HBONE connections refused before their handshake",
		 LF_STR("reason", v == ADMIT_OVER_PER_SOURCE ? "per-source limit of unauthenticated connections"
							      : "node-wide limit of unauthenticated connections"),
		 LF_STR("latest.src", src), LF_UINT("pending", admission_pending(&p->admission)),
		 LF_UINT("refused.total", tm_counter_value(TM_LIMIT_PENDING_HANDSHAKES) +
						  tm_counter_value(TM_LIMIT_PENDING_HANDSHAKES_PER_SOURCE)),
		 LF_UINT("evicted.total", tm_counter_value(TM_LIMIT_PENDING_HANDSHAKES_EVICTED)));
}

void link_accept(struct worker *w, int fd)
{
	struct sockaddr_in peer, local;
	enum admission_verdict v;

	if (proxy_socket_addrs(fd, &peer, &local) < 0) {
		reset_socket(fd);
		close(fd);
		return;
	}
	v = admission_enter(&w->p->admission, peer.sin_addr.s_addr);
	if (v == ADMIT_OVER_TOTAL && evict_for(w, peer.sin_addr.s_addr))
		v = ADMIT_OK; /* the evicted one's slot, handed over */
	if (v != ADMIT_OK) {
		refused_unauthenticated(w, &peer, v);
		reset_socket(fd);
		close(fd);
		return;
	}
	accept_link(w, fd, &peer, &local, true);
}

/* One line per connection and second at most, whatever the peer does. */
void link_log_resets(struct link *l)
{
	char peer[32];

	if (l->resets_unserved == l->resets_logged)
		return;
	l->resets_log_ms = loop_now_ms();
	link_describe(l, peer, sizeof(peer));
	log_warn("HBONE streams reset by the peer before they were served", LF_STR("peer", peer),
		 LF_UINT("streams", l->resets_unserved - l->resets_logged), LF_UINT("total", l->resets_unserved));
	l->resets_logged = l->resets_unserved;
}

/* A token bucket: full (burst) at first, refilled at per_s; false when
 * empty (the token is still spent: a peer that keeps pushing stays out). */
static bool budget_take(double *tokens, int64_t *at_ms, double burst, double per_s, int64_t now)
{
	if (!*at_ms)
		*tokens = burst;
	else
		*tokens += (double)(now - *at_ms) * per_s / 1000.0;
	if (*tokens > burst)
		*tokens = burst;
	*at_ms = now;
	return (*tokens -= 1.0) >= 0;
}

bool link_stream_allowed(struct link *l)
{
	double rate = l->w->p->cfg->max_stream_rate;

	if (budget_take(&l->stream_budget, &l->stream_budget_ms, rate, rate, loop_now_ms()))
		return true;
	/* A refusal costs no token: a connection above the rate still gets
	 * the rate served, not nothing. */
	l->stream_budget += 1.0;
	return false;
}

void link_reset_unserved(struct link *l)
{
	int64_t now = loop_now_ms();

	l->resets_unserved++;
	if (budget_take(&l->reset_budget, &l->reset_budget_ms, RESET_BURST, RESET_PER_S, now) || l->dead ||
	    l->calm_why)
		return;
	tm_count(TM_LIMIT_RAPID_RESET, 1);
	link_log_resets(l);
	hbone_goaway_calm(l->h2);
	l->calm_why = "HBONE peer reset too many streams before they were served (rapid reset): GOAWAY ENHANCE_YOUR_CALM";
	l->calm_deadline_ms = now + 1000;
	link_flush(l);
}

