/* One captured connection: route, transparent connect, then a byte relay
 * in both directions with half-close (FIN -> shutdown(SHUT_WR)), reset
 * propagation (RST -> SO_LINGER 0) and backpressure (one buffer per
 * direction: nothing is read until the previous chunk is written). */
#include "conn.h"
#include "access.h"
#include "authorize.h"
#include "chunk.h"
#include "live.h"
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/authz.h"
#include "ztunnel/log.h"

#define MAX_FREE_CONNS 64

void fmt_addr(const struct sockaddr_in *a, char *buf, size_t size)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
}

int conn_info_set_names(struct conn_info *ci, const struct zt_workload *src, const struct zt_workload *dst,
			const char *service)
{
	char *names = NULL;
	int n = asprintf(&names, "%s%s%s%c%s%s%s%c%s", src ? src->namespace : "", src ? "/" : "", src ? src->name : "",
			 0, dst ? dst->namespace : "", dst ? "/" : "", dst ? dst->name : "", 0, service ? service : "");

	free(ci->names);
	ci->names = n < 0 ? NULL : names;
	return n < 0 ? -ENOMEM : 0;
}

const char *conn_info_src_name(const struct conn_info *ci)
{
	return ci->names ? ci->names : "";
}

const char *conn_info_dst_name(const struct conn_info *ci)
{
	return ci->names ? ci->names + strlen(ci->names) + 1 : "";
}

const char *conn_info_service(const struct conn_info *ci)
{
	const char *dst = conn_info_dst_name(ci);

	return ci->names ? dst + strlen(dst) + 1 : "";
}

void conn_info_set_policy(struct conn_info *ci, const char *policy)
{
	free(ci->policy);
	ci->policy = policy && *policy ? strdup(policy) : NULL;
}

const char *conn_info_policy(const struct conn_info *ci)
{
	return ci->policy ? ci->policy : "";
}

void conn_info_release(struct conn_info *ci)
{
	free(ci->names);
	free(ci->policy);
	conn_info_disown(ci);
}

void conn_info_disown(struct conn_info *ci)
{
	ci->names = ci->policy = NULL;
}

void reset_socket(int fd)
{
	struct linger l = { 1, 0 };

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

static void conn_free(struct conn *c)
{
	struct worker *w = c->w;

	conn_info_release(&c->info);
	w->n_conns--;
	if (w->n_free < MAX_FREE_CONNS) {
		c->next_free = w->free_list;
		w->free_list = c;
		w->n_free++;
	} else {
		free(c);
	}
}

static struct conn *conn_alloc(struct worker *w)
{
	struct conn *c = w->free_list;

	if (c) {
		w->free_list = c->next_free;
		w->n_free--;
	} else if (!(c = malloc(sizeof(*c)))) {
		return NULL;
	}
	/* Everything but the inline receive buffers. */
	memset(c, 0, offsetof(struct conn, rx));
	c->rx[0] = c->rx[1] = (struct rxbuf){ 0 };
	c->w = w;
	w->n_conns++;
	return c;
}

/* Last step of every plain relay: log, counters, close. */
static void conn_finish(struct conn *c)
{
	watch_del(c->w, &c->watch);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	rxbuf_release(c->w, &c->rx[0]);
	rxbuf_release(c->w, &c->rx[1]);
	conn_log(c->w, &c->info);
	conn_free(c);
}

static void op_done(struct conn *c)
{
	if (--c->pending == 0 && (c->aborting || (c->h[0].write_closed && c->h[1].write_closed)))
		conn_finish(c);
}

static void submit_recv(struct conn *c, struct half *h);

/* Abort: RST both sides, cancel what is in flight, finish when it drains. */
static void conn_abort(struct conn *c, enum tm_reason reason, const char *why)
{
	if (c->aborting)
		return;
	c->aborting = true;
	if (!c->info.error) {
		c->info.error = why;
		c->info.reason = (uint8_t)reason;
	}
	reset_socket(c->cfd);
	reset_socket(c->ufd);
	for (int i = 0; i < 2; i++) {
		struct half *h = &c->h[i];
		if (h->in_recv)
			io_uring_prep_cancel(loop_sqe(&c->w->loop, NULL), &h->recv_op, 0);
		if (h->in_send)
			io_uring_prep_cancel(loop_sqe(&c->w->loop, NULL), &h->send_op, 0);
	}
	if (c->pending == 0)
		conn_finish(c);
}

const char *errno_reason(int res)
{
	switch (-res) {
	case ECONNRESET: return "connection reset by peer";
	case EPIPE: return "broken pipe";
	case ETIMEDOUT: return "connection timed out";
	default: return "socket error";
	}
}

enum tm_reason errno_tm_reason(int res)
{
	return res == -ENOMEM ? TM_R_NO_MEMORY : TM_R_RESET;
}

static void on_shutdown(struct op *op, int res, uint32_t flags)
{
	struct half *h = CONTAINER(op, struct half, shut_op);
	struct conn *c = h->conn;

	(void)res;
	(void)flags;
	h->write_closed = true;
	op_done(c);
}

static void on_send(struct op *op, int res, uint32_t flags)
{
	struct half *h = CONTAINER(op, struct half, send_op);
	struct conn *c = h->conn;

	(void)flags;
	h->in_send = false;
	if (c->aborting || res <= 0) {
		if (res <= 0 && res != -ECANCELED)
			conn_abort(c, errno_tm_reason(res), errno_reason(res));
		op_done(c);
		return;
	}
	h->off += (uint32_t)res;
	/* Counted as they go: the admin lists live connections with them. */
	*(h == &c->h[0] ? &c->info.bytes_up : &c->info.bytes_down) += (uint64_t)res;
	if (h->off < h->len) {
		h->in_send = true;
		c->pending++;
		io_uring_prep_send(loop_sqe(&c->w->loop, &h->send_op), h->to, h->buf + h->off,
				   h->len - h->off, MSG_NOSIGNAL);
	} else {
		submit_recv(c, h);
	}
	op_done(c);
}

static void on_recv(struct op *op, int res, uint32_t flags)
{
	struct half *h = CONTAINER(op, struct half, recv_op);
	struct conn *c = h->conn;
	struct rxbuf *b = &c->rx[h - c->h];

	h->in_recv = false;
	if (res > 0)
		h->buf = rxbuf_received(c->w, b, res, flags, &h->cap);
	if (res == -ENOBUFS && !c->aborting) {
		rxbuf_starved(b); /* the worker's ring ran dry: a buffer of its own */
		submit_recv(c, h);
		op_done(c);
		return;
	}
	if (c->aborting) {
		op_done(c);
		return;
	}
	if (res < 0) {
		if (res != -ECANCELED)
			conn_abort(c, errno_tm_reason(res), errno_reason(res));
		op_done(c);
		return;
	}
	if (res == 0) {
		/* FIN from `from`: pass the half-close on, keep the other way. */
		h->eof = true;
		c->pending++;
		io_uring_prep_shutdown(loop_sqe(&c->w->loop, &h->shut_op), h->to, SHUT_WR);
		op_done(c);
		return;
	}
	h->len = (uint32_t)res;
	h->off = 0;
	h->in_send = true;
	c->pending++;
	io_uring_prep_send(loop_sqe(&c->w->loop, &h->send_op), h->to, h->buf, h->len, MSG_NOSIGNAL);
	op_done(c);
}

static void submit_recv(struct conn *c, struct half *h)
{
	if (rxbuf_recv(c->w, &c->rx[h - c->h], &h->recv_op, h->from) < 0) {
		conn_abort(c, TM_R_NO_MEMORY, "out of memory");
		return;
	}
	h->buf = NULL;
	h->in_recv = true;
	c->pending++;
}

static void start_relay(struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		struct half *h = &c->h[i];
		h->recv_op.fn = on_recv;
		h->send_op.fn = on_send;
		h->shut_op.fn = on_shutdown;
		h->from = i == 0 ? c->cfd : c->ufd;
		h->to = i == 0 ? c->ufd : c->cfd;
		h->buf = NULL;
		h->conn = c;
		submit_recv(c, h);
	}
}

enum tm_reason connect_reason(int res)
{
	return res == -ECANCELED ? TM_R_CONNECT_TIMEOUT : res == -ECONNREFUSED ? TM_R_CONNECT_REFUSED
										: TM_R_CONNECT_FAILED;
}

const char *connect_error(int res)
{
	return res == -ECANCELED ? "upstream connect timed out (10s)"
	       : res == -ECONNREFUSED ? "upstream refused the connection" : "upstream connect failed";
}

static void on_connect(struct op *op, int res, uint32_t flags)
{
	struct conn *c = CONTAINER(op, struct conn, connect_op);

	(void)flags;
	if (res < 0) {
		conn_abort(c, connect_reason(res), connect_error(res));
	} else if (!c->aborting) {
		c->connected = true;
		start_relay(c);
	}
	op_done(c);
}

static void on_timeout(struct op *op, int res, uint32_t flags)
{
	struct conn *c = CONTAINER(op, struct conn, timeout_op);

	(void)res;
	(void)flags;
	op_done(c);
}

static void conn_revoke(struct watch *wt, enum tm_reason reason, const char *why)
{
	conn_abort(CONTAINER(wt, struct conn, watch), reason, why);
}

bool log_turn(atomic_int_fast64_t *last)
{
	return log_every(last, loop_now_ms(), 1000);
}

/* A connection that never got past routing: logged, counted, reset. */
void refuse_socket(struct worker *w, uint8_t dir, int fd, const struct sockaddr_in *src,
		   const struct sockaddr_in *dst, enum tm_reason reason, const char *why)
{
	char s[32], d[32];

	(void)w;
	fmt_addr(src, s, sizeof(s));
	fmt_addr(dst, d, sizeof(d));
	count_refused(dir, reason);
	log_warn("connection refused", LF_STR("src.addr", s), LF_STR("dst.addr", d),
		 LF_STR("direction", direction_name(dir)), LF_STR("reason", tm_reason_name(reason)),
		 LF_STR("error", why));
	reset_socket(fd);
	close(fd);
}

static void refuse(struct conn *c, enum tm_reason reason, const char *why)
{
	refuse_socket(c->w, c->info.dir, c->cfd, &c->info.src, &c->info.dst, reason, why);
	conn_free(c);
}

#define WAIT_FOR_WORKLOAD_MS 5000 /* SPEC §3.1 step 3 */

static void conn_route(struct conn *c);

static void conn_retry(struct watch *wt)
{
	conn_route(CONTAINER(wt, struct conn, watch));
}

/* A connection that never opens: reset, logged as its outcome. */
static void conn_drop(struct conn *c)
{
	reset_socket(c->cfd);
	close(c->cfd);
	conn_free(c);
}

/* Route: where it goes (sans-IO, route.c), under the model's lock. */
static void route(struct conn *c, const struct zt_model *m, struct route *rt)
{
	struct proxy *p = c->w->p;
	const struct conn_info *ci = &c->info;

	if (ci->dir == PROXY_OUTBOUND)
		route_outbound(m, p->env.pods, p->env.pods_ctx, &c->w->node, ci->src.sin_addr.s_addr, ci->dst.sin_addr.s_addr,
			       ci->dst.sin_port, &c->w->seed, rt);
	else
		route_inbound_plain(m, p->env.pods, p->env.pods_ctx, ci->src.sin_addr.s_addr, ci->dst.sin_addr.s_addr,
				    ci->dst.sin_port, rt);
	/* Without an identity provider nothing can be tunnelled (the agent
	 * warned at start-up): plain relay, as before HBONE. */
	rt->hbone = rt->hbone && p->certs;
}

/* Wait: a connection from a pod the snapshot does not list yet is parked
 * (retried every tick) instead of leaving in plaintext; true while it
 * waits, or once it gave up (refused). */
static bool wait_for_workload(struct conn *c, const struct route *rt)
{
	struct worker *w = c->w;

	if (rt->verdict != ROUTE_WAIT) {
		watch_del(w, &c->watch);
		return false;
	}
	if (loop_now_ms() - c->info.start_ms < WAIT_FOR_WORKLOAD_MS) {
		if (!c->watch.on) {
			c->watch.ci = &c->info;
			c->watch.revoke = conn_revoke;
			watch_add(w, &c->watch);
			watch_park(w, &c->watch, conn_retry);
		}
		return true;
	}
	watch_del(w, &c->watch);
	refuse(c, (enum tm_reason)rt->refusal, rt->gave_up);
	return true;
}

/* Resolve and authorize: the log fields, the HBONE request headers, the
 * traffic series; plaintext inbound is authorized with no identity (SPEC
 * §3.3). Under the model's lock (rt points into it). */
static enum tm_reason resolve(struct conn *c, const struct zt_model *m, struct route *rt, struct hbone_header *hdrs,
			      size_t *n_hdrs, struct authz_decision *d, char *why, size_t why_size)
{
	struct worker *w = c->w;
	struct conn_info *ci = &c->info;
	enum tm_reason denied = TM_R_NONE;

	conn_info_set_names(ci, rt->src, rt->dst, rt->service ? rt->service->hostname : NULL);
	/* Plaintext to an enrolled pod of this node is plaintext inbound,
	 * however it was captured (pod IP, VIP, from a pod the snapshot does
	 * not list yet): authorized, logged and re-checked as such. */
	if (!rt->hbone && rt->local_dst)
		ci->dir = PROXY_INBOUND_PLAIN;
	*n_hdrs = 0;
	if (rt->hbone) {
		char client[32];
		struct hbone_source_info si = {
			.namespace = rt->src->namespace, .workload_type = rt->src->workload_type,
			.workload_name = rt->src->workload_name, .canonical_name = rt->src->canonical_name,
			.canonical_revision = rt->src->canonical_revision,
		};
		ci->src_id = identity_intern(rt->src->identity);
		ci->dst_id = identity_intern(rt->dst->identity);
		fmt_addr(&ci->src, client, sizeof(client));
		*n_hdrs = hbone_request_headers(&si, client, rt->service ? rt->service->hostname : NULL, &w->seed,
						hdrs);
	}
	ci->up = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = rt->upstream_ip,
				       .sin_port = rt->upstream_port };
	ci->hbone = rt->hbone;
	conn_opened(w, ci, rt->src, rt->dst, rt->service);
	if (ci->dir == PROXY_INBOUND_PLAIN) {
		denied = authorize_inbound(m, ci, d, why, why_size);
		count_decision(ci, d, denied);
	}
	return denied;
}

/* Connect: the transparent upstream socket, bounded by the connect
 * timeout; live (re-authorized, closed at shutdown) from here on. */
static void connect_upstream(struct conn *c, uint32_t bind_ip)
{
	struct worker *w = c->w;
	struct conn_info *ci = &c->info;

	c->ufd = proxy_upstream_socket(bind_ip);
	if (c->ufd < 0) {
		log_error("cannot create upstream socket", LF_ERRNO(c->ufd));
		c->ufd = -1;
		ci->reason = TM_R_SOCKET;
		ci->error = "cannot create upstream socket";
		conn_log(w, ci);
		return conn_drop(c);
	}
	c->watch.ci = ci;
	c->watch.revoke = conn_revoke;
	watch_add(w, &c->watch);
	c->connect_op.fn = on_connect;
	c->timeout_op.fn = on_timeout;
	c->timeout.tv_sec = CONNECT_TIMEOUT_S;
	c->pending = 2;
	loop_connect(&w->loop, &c->connect_op, &c->timeout_op, &c->timeout, c->ufd, (struct sockaddr *)&ci->up,
		     sizeof(ci->up));
}

/* route -> wait -> resolve and authorize -> connect (or tunnel). */
static void conn_route(struct conn *c)
{
	struct worker *w = c->w;
	struct hbone_header hdrs[HBONE_MAX_HEADERS];
	struct authz_decision d;
	struct route rt;
	size_t n_hdrs = 0;
	char why[300];
	enum tm_reason denied = TM_R_NONE;

	const struct zt_model *m = state_read_lock(w->p->store);
	route(c, m, &rt);
	if (rt.verdict == ROUTE_CONNECT)
		denied = resolve(c, m, &rt, hdrs, &n_hdrs, &d, why, sizeof(why));
	state_read_unlock();
	if (wait_for_workload(c, &rt))
		return;
	if (rt.verdict != ROUTE_CONNECT)
		return refuse(c, (enum tm_reason)rt.refusal, rt.reason);
	if (denied) {
		log_denied(&c->info, &d, denied, why, 0);
		return conn_drop(c);
	}
	if (rt.hbone) {
		/* The tunnel takes over the client socket and the log fields. */
		tunnel_outbound(w, c->cfd, &c->info, &rt, hdrs, n_hdrs);
		c->cfd = -1;
		conn_free(c);
		return;
	}
	connect_upstream(c, rt.bind_ip);
}

void conn_start(struct worker *w, uint8_t dir, int cfd)
{
	struct conn *c = conn_alloc(w);
	struct conn_info *ci;

	if (!c) {
		reset_socket(cfd);
		close(cfd);
		log_error("out of memory: connection reset");
		return;
	}
	ci = &c->info;
	ci->dir = dir;
	c->cfd = cfd;
	c->ufd = -1;
	ci->start_ms = loop_now_ms();
	if (proxy_socket_addrs(cfd, &ci->src, &ci->dst) < 0)
		return refuse(c, TM_R_SOCKET, "cannot read connection addresses");
	conn_route(c);
}
