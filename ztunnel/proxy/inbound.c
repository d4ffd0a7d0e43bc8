/* Inbound HBONE streams (SPEC.md §3.2 step 3): validate the CONNECT
 * target, authorize, connect to the pod as the client pod's IP, answer
 * 200/400/401/503 (SPEC §2.4), then relay. The agent is never an open
 * relay: the target must be the very pod the connection was accepted for,
 * which was checked to be an enrolled pod of this node. */
#include "inbound.h"
#include "access.h"
#include "authorize.h"
#include "conn.h"
#include "link.h"
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#include "ztunnel/authz.h"
#include "ztunnel/log.h"
#include "ztunnel/tls.h"

/* An error status for a CONNECT (SPEC §2.4), counted by status. */
static void respond_error(struct link *l, int32_t stream, int status)
{
	tm_count(status == 400 ? TM_HBONE_REFUSED_400 : status == 401 ? TM_HBONE_REFUSED_401 : TM_HBONE_REFUSED_503, 1);
	hbone_respond(l->h2, stream, status);
}

/* A CONNECT refused before its destination was resolved. */
static void answer(struct link *l, int32_t stream, int status, const struct conn_info *ci, enum tm_reason reason,
		   const char *why)
{
	char src[32], dst[32];

	fmt_addr(&ci->src, src, sizeof(src));
	fmt_addr(&ci->up, dst, sizeof(dst));
	count_refused(PROXY_INBOUND_HBONE, reason);
	respond_error(l, stream, status);
	log_warn("HBONE request refused", LF_STR("src.addr", src), LF_STR("src.identity", identity_uri(ci->src_id)),
		 LF_STR("dst.addr", dst), LF_INT("status", status), LF_STR("error", why));
}

static void on_connect(struct op *op, int res, uint32_t flags)
{
	struct tunnel *t = CONTAINER(op, struct tunnel, connect_op);
	struct link *l = t->link;

	(void)flags;
	t->in_connect = false;
	if (t->aborting) {
	} else if (res < 0) {
		if (l) /* 503, header-only with END_STREAM: no RST after it. */
			respond_error(l, t->id, 503);
		tunnel_abort(t, connect_reason(res), connect_error(res), false);
	} else if (!l) {
		tunnel_abort(t, TM_R_STREAM_GONE, "HBONE stream gone", false);
	} else {
		/* ENABLE_RESPONSE_BAGGAGE (default on): who answered. */
		hbone_respond_headers(l->h2, t->id, 200, t->hdrs, t->n_hdrs);
		tunnel_opened(t);
		link_flush(l);
	}
	tunnel_put(t);
}

static void on_timeout(struct op *op, int res, uint32_t flags)
{
	struct tunnel *t = CONTAINER(op, struct tunnel, timeout_op);

	(void)res;
	(void)flags;
	tunnel_put(t);
}

void inbound_request(void *ctx, int32_t stream, const char *authority)
{
	struct link *l = ctx;
	struct worker *w = l->w;
	struct proxy *p = w->p;
	struct conn_info ci = { .dir = PROXY_INBOUND_HBONE, .hbone = true, .src = l->peer, .dst = l->local };
	const struct spiffe_id *peer = tls_peer_identity(l->tls);
	uint32_t ip = 0;
	uint16_t port = 0;

	ci.start_ms = loop_now_ms();
	ci.up = (struct sockaddr_in){ .sin_family = AF_INET };
	/* Before any work for it (policy, access log, a dial to the pod):
	 * refusing must cost less than serving. Counted, logged once a
	 * second, no access-log line per refused stream. */
	if (!link_stream_allowed(l)) {
		char src[32];
		tm_count(TM_LIMIT_STREAM_RATE, 1);
		respond_error(l, stream, 503);
		if (log_turn(&p->last_rate_log_ms)) {
			fmt_addr(&l->peer, src, sizeof(src));
			log_warn("HBONE streams refused: the connection opens them faster than --max-stream-rate",
				 LF_STR("peer", src), LF_UINT("limit", p->cfg->max_stream_rate),
				 LF_UINT("refused.total", tm_counter_value(TM_LIMIT_STREAM_RATE)));
		}
		return;
	}
	if (peer)
		ci.src_id = identity_intern_id(peer);
	if (hbone_parse_authority(authority, &ip, &port) < 0)
		return answer(l, stream, 400, &ci, TM_R_BAD_REQUEST, "CONNECT authority is not IPv4:port");
	ci.up.sin_addr.s_addr = ip;
	ci.up.sin_port = htons(port);
	if (ip != l->local.sin_addr.s_addr)
		return answer(l, stream, 400, &ci, TM_R_BAD_REQUEST,
			      "ip mismatch: CONNECT target is not the pod this connection is for");
	if (route_reserved_port(port))
		return answer(l, stream, 503, &ci, TM_R_RESERVED_PORT, "CONNECT target port is reserved for ztunnel");

	const struct zt_model *m = state_read_lock(p->store);
	const struct zt_workload *src = model_workload_by_v4(m, l->peer.sin_addr.s_addr);
	const struct zt_workload *dst = model_workload_by_v4(m, ip);
	conn_info_set_names(&ci, src, dst, NULL);
	if (dst && dst->identity)
		ci.dst_id = identity_intern(dst->identity);
	struct hbone_header baggage;
	size_t n_baggage = 0;
	if (dst) {
		struct hbone_source_info di = {
			.namespace = dst->namespace, .workload_type = dst->workload_type,
			.workload_name = dst->workload_name, .canonical_name = dst->canonical_name,
			.canonical_revision = dst->canonical_revision,
		};
		n_baggage = hbone_baggage(&di, &baggage);
	}
	ci.tls_version = tls_version(l->tls);
	ci.tls_cipher = tls_cipher(l->tls);
	conn_opened(w, &ci, src, dst, NULL);
	struct authz_decision d;
	char why[300];
	enum tm_reason denied = authorize_inbound(m, &ci, &d, why, sizeof(why));
	count_decision(&ci, &d, denied);
	state_read_unlock();
	if (denied) {
		/* SPEC §2.4: 401, header-only; one log line says which policy. */
		respond_error(l, stream, 401);
		log_denied(&ci, &d, denied, why, 401);
		conn_info_release(&ci);
		return;
	}

	/* One peer cannot hold more than its share of streams on the node,
	 * whatever number of connections it opens. */
	if (admission_enter(&p->peer_streams, l->peer.sin_addr.s_addr) != ADMIT_OK) {
		tm_count(TM_LIMIT_STREAMS_PER_PEER, 1);
		respond_error(l, stream, 503);
		ci.reason = TM_R_LIMIT;
		ci.error = "the peer holds its limit of open streams (--max-streams-per-peer)";
		conn_log(w, &ci);
		if (log_turn(&p->last_peer_log_ms))
			log_warn("HBONE streams refused: the peer holds its limit of open streams",
				 LF_STR("src.identity", identity_uri(ci.src_id)), LF_UINT("limit", p->cfg->max_streams_per_peer),
				 LF_UINT("refused.total", tm_counter_value(TM_LIMIT_STREAMS_PER_PEER)));
		conn_info_release(&ci);
		return;
	}
	struct tunnel *t = tunnel_new(w, -1, &ci);
	if (!t) {
		admission_leave(&p->peer_streams, l->peer.sin_addr.s_addr);
		respond_error(l, stream, 503);
		ci.reason = TM_R_NO_MEMORY;
		ci.error = "out of memory";
		conn_log(w, &ci);
		conn_info_release(&ci);
		return;
	}
	tm_count(TM_HBONE_STREAMS_SERVER, 1);
	if (n_baggage && (t->hdrs = malloc(sizeof(*t->hdrs))))
		t->hdrs[t->n_hdrs++] = baggage;
	link_attach(l, t);
	t->id = stream;
	hbone_set_user(l->h2, stream, t);
	tunnel_watch(t);
	t->awaiting_start = true;
	l->n_awaiting++;
}

static void start(struct tunnel *t)
{
	struct link *l = t->link;
	struct worker *w = t->w;
	uint32_t client = l->peer.sin_addr.s_addr;

	/* As the client pod (transparent), unless it is the pod itself. */
	int fd = proxy_upstream_socket(client == t->info.up.sin_addr.s_addr ? 0 : client);
	if (fd < 0) {
		log_error("cannot create upstream socket", LF_ERRNO(fd));
		respond_error(l, t->id, 503);
		return tunnel_abort(t, TM_R_SOCKET, "cannot create upstream socket", false);
	}
	t->fd = fd;
	t->connect_op.fn = on_connect;
	t->timeout_op.fn = on_timeout;
	t->timeout.tv_sec = CONNECT_TIMEOUT_S;
	t->in_connect = true;
	tunnel_hold(t);
	tunnel_hold(t);
	loop_connect(&w->loop, &t->connect_op, &t->timeout_op, &t->timeout, fd, (struct sockaddr *)&t->info.up,
		     sizeof(t->info.up));
}

void inbound_start_awaiting(struct link *l)
{
	struct tunnel *todo[256];
	uint32_t n = 0;

	/* Collected and held first: starting one may fail the connection,
	 * which aborts (and would free) the others. */
	for (struct tunnel *t = l->tunnels; t && n < 256; t = t->lnext) {
		if (t->awaiting_start) {
			tunnel_hold(t);
			todo[n++] = t;
		}
	}
	link_hold(l);
	for (uint32_t i = 0; i < n; i++) {
		struct tunnel *t = todo[i];
		if (t->awaiting_start && !t->aborting && t->link == l) {
			t->awaiting_start = false;
			l->n_awaiting--;
			start(t);
		}
		tunnel_put(t);
	}
	link_put(l);
}
