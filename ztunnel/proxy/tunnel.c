/* A TCP connection carried in one HBONE stream (SPEC.md §3.1 steps 7-8,
 * §3.2): the client socket of an outbound tunnel or the upstream socket of
 * an inbound one, relayed to and from its CONNECT stream. Half-close maps
 * FIN <-> END_STREAM, reset maps RST <-> RST_STREAM; received DATA is
 * acknowledged to the peer only once written to the socket, so flow
 * control reaches from one pod to the other. */
#include "tunnel.h"
#include "access.h"
#include "chunk.h"
#include "conn.h"
#include "inbound.h"
#include "link.h"
#include "live.h"
#include "tls_cache.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/log.h"
#include "ztunnel/tls.h"


static void arm_fd_recv(struct tunnel *t);
static void kick_send(struct tunnel *t);

static bool outbound(const struct tunnel *t)
{
	return t->info.dir == PROXY_OUTBOUND;
}

/* fd -> stream bytes count as client -> server for outbound tunnels and
 * server -> client for inbound ones. */
static uint64_t *to_stream_bytes(struct tunnel *t)
{
	return outbound(t) ? &t->info.bytes_up : &t->info.bytes_down;
}

static uint64_t *to_fd_bytes(struct tunnel *t)
{
	return outbound(t) ? &t->info.bytes_down : &t->info.bytes_up;
}

static void finish(struct tunnel *t)
{
	struct worker *w = t->w;

	watch_del(w, &t->watch);
	if (t->fd >= 0)
		close(t->fd);
	rxbuf_release(w, &t->up);
	while (t->down) {
		struct chunk *c = t->down;
		t->down = c->next;
		chunk_put(w, c);
	}
	if (t->info.dir == PROXY_INBOUND_HBONE) /* inbound_request took a peer_streams slot */
		admission_leave(&w->p->peer_streams, t->info.src.sin_addr.s_addr);
	if (t->peer_buffered)
		admission_sub(&w->p->peer_bytes, t->info.src.sin_addr.s_addr, (uint32_t)t->peer_buffered);
	if (!t->quiet)
		conn_log(w, &t->info);
	else
		conn_closed_quietly(&t->info);
	w->n_conns--;
	conn_info_release(&t->info);
	free(t->error);
	free(t->hdrs);
	free(t);
}

static void maybe_finish(struct tunnel *t)
{
	if (t->pending == 0 && !t->link && (t->aborting || (t->fd_eof && t->shut)))
		finish(t);
}

void tunnel_hold(struct tunnel *t)
{
	t->pending++;
}

void tunnel_put(struct tunnel *t)
{
	t->pending--;
	maybe_finish(t);
}


static void flush(struct tunnel *t)
{
	if (t->link)
		link_flush(t->link);
}

/* Bytes that will never be written (or not while the stream exists) go
 * back to the connection's window now: otherwise every stream that ends
 * with data queued would shrink the HBONE connection's window for good
 * and a pooled connection would eventually stall. */
static void release_window(struct tunnel *t)
{
	if (t->link && t->id && t->down_unacked)
		hbone_consumed(t->link->h2, t->id, t->down_unacked);
	t->down_unacked = 0;
}

/* Leaves the stream (RST_STREAM if rst_stream) and RSTs the socket. */
void tunnel_abort(struct tunnel *t, enum tm_reason reason, const char *why, bool rst_stream)
{
	struct link *l = t->link;

	if (t->aborting)
		return;
	tunnel_hold(t);
	t->aborting = true;
	if (!t->info.error) {
		t->info.error = why;
		t->info.reason = (uint8_t)reason;
	}
	if (l && t->awaiting_start) {
		t->awaiting_start = false;
		l->n_awaiting--;
	}
	if (l) {
		link_hold(l);
		release_window(t);
		if (t->id) {
			if (rst_stream)
				hbone_reset(l->h2, t->id);
			hbone_set_user(l->h2, t->id, NULL);
		}
		if (t->dialer && !l->handshaken)
			l->orphaned = true; /* nobody takes the stream the pool reserves */
		link_detach(l, t);
		link_flush(l);
		link_put(l);
	}
	if (!t->close_fd_cleanly)
		reset_socket(t->fd);
	struct op *ops[] = { t->in_recv ? &t->recv_op : NULL, t->in_send ? &t->send_op : NULL,
			     t->in_connect ? &t->connect_op : NULL };
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i])
			io_uring_prep_cancel(loop_sqe(&t->w->loop, NULL), ops[i], 0);
	tunnel_put(t);
}

/* ---- socket -> stream ---- */

static void push_up(struct tunnel *t)
{
	ssize_t n = hbone_send(t->link->h2, t->id, t->ubuf + t->uoff, t->ulen - t->uoff);

	if (n < 0)
		return tunnel_abort(t, TM_R_STREAM_GONE, "HBONE stream closed while sending", true);
	t->uoff += (uint32_t)n;
	*to_stream_bytes(t) += (uint64_t)n;
	bool blocked = t->uoff < t->ulen;
	if (blocked != t->blocked)
		t->link->n_blocked += blocked ? 1 : -1;
	t->blocked = blocked;
	if (!t->blocked)
		arm_fd_recv(t);
}

void tunnel_unblock(struct tunnel *t)
{
	if (t->blocked && !t->aborting && t->link)
		push_up(t);
}

static void on_fd_recv(struct op *op, int res, uint32_t flags)
{
	struct tunnel *t = CONTAINER(op, struct tunnel, recv_op);
	uint8_t *data = res > 0 ? rxbuf_received(t->w, &t->up, res, flags, &t->ucap) : NULL;

	t->in_recv = false;
	if (res == -ENOBUFS && !t->aborting && t->link) {
		rxbuf_starved(&t->up); /* the worker's ring ran dry: a buffer of its own */
		arm_fd_recv(t);
	} else if (t->aborting || !t->link) {
		if (!t->aborting && res > 0)
			tunnel_abort(t, TM_R_STREAM_GONE, "HBONE stream gone", false);
	} else if (res < 0) {
		if (res != -ECANCELED)
			tunnel_abort(t, errno_tm_reason(res), errno_reason(res), true);
	} else if (res == 0) {
		t->fd_eof = true;
		hbone_close_write(t->link->h2, t->id);
		flush(t);
	} else {
		t->info.active_ms = loop_now_ms();
		t->ubuf = data;
		t->ulen = (uint32_t)res;
		t->uoff = 0;
		push_up(t);
		flush(t);
	}
	tunnel_put(t);
}

static void arm_fd_recv(struct tunnel *t)
{
	if (t->in_recv || t->fd_eof || t->aborting)
		return;
	if (rxbuf_recv(t->w, &t->up, &t->recv_op, t->fd) < 0)
		return tunnel_abort(t, TM_R_NO_MEMORY, "out of memory", true);
	t->ubuf = NULL;
	t->in_recv = true;
	tunnel_hold(t);
}

/* ---- stream -> socket ---- */

static void on_shut(struct op *op, int res, uint32_t flags)
{
	struct tunnel *t = CONTAINER(op, struct tunnel, shut_op);

	(void)res;
	(void)flags;
	t->shut = true;
	tunnel_put(t);
}

static void on_fd_send(struct op *op, int res, uint32_t flags)
{
	struct tunnel *t = CONTAINER(op, struct tunnel, send_op);

	(void)flags;
	t->in_send = false;
	if (t->aborting) {
	} else if (res <= 0) {
		if (res != -ECANCELED)
			tunnel_abort(t, errno_tm_reason(res), errno_reason(res), true);
	} else {
		t->down->off += (uint32_t)res;
		*to_fd_bytes(t) += (uint64_t)res;
		t->info.active_ms = loop_now_ms();
		if (t->peer_buffered) {
			uint32_t n = t->peer_buffered < (uint64_t)res ? (uint32_t)t->peer_buffered : (uint32_t)res;
			admission_sub(&t->w->p->peer_bytes, t->info.src.sin_addr.s_addr, n);
			t->peer_buffered -= n;
		}
		if (t->link && t->id && t->down_unacked >= (uint64_t)res) {
			hbone_consumed(t->link->h2, t->id, (size_t)res);
			t->down_unacked -= (uint64_t)res;
			flush(t);
		}
		kick_send(t);
	}
	tunnel_put(t);
}

static void kick_send(struct tunnel *t)
{
	if (t->in_send || !t->connected || t->aborting)
		return;
	/* Sent chunks go back to the pool at once: an idle tunnel holds none. */
	while (t->down && t->down->off == t->down->len) {
		struct chunk *c = t->down;
		t->down = c->next;
		if (c == t->down_tail)
			t->down_tail = NULL;
		chunk_put(t->w, c);
	}
	struct chunk *c = t->down;
	if (c && c->off < c->len) {
		t->in_send = true;
		tunnel_hold(t);
		io_uring_prep_send(loop_sqe(&t->w->loop, &t->send_op), t->fd, c->data + c->off, c->len - c->off,
				   MSG_NOSIGNAL);
	} else if (t->h2_eof && !t->shut && !t->in_shut) {
		t->in_shut = true;
		tunnel_hold(t);
		io_uring_prep_shutdown(loop_sqe(&t->w->loop, &t->shut_op), t->fd, SHUT_WR);
	}
}

static void ev_data(void *ctx, int32_t id, const uint8_t *data, size_t len)
{
	struct link *l = ctx;
	struct tunnel *t = hbone_user(l->h2, id);

	if (!t || t->aborting) {
		hbone_consumed(l->h2, id, len);
		return;
	}
	t->down_unacked += len;
	t->info.active_ms = loop_now_ms();
	if (l->server) {
		/* A peer whose data piles up for slow pods is not read any more
		 * until they catch up (links_tick resumes it). */
		struct proxy *p = t->w->p;
		admission_add(&p->peer_bytes, t->info.src.sin_addr.s_addr, (uint32_t)len);
		t->peer_buffered += len;
		if (!l->throttled && admission_usage(&p->peer_bytes, t->info.src.sin_addr.s_addr) > p->peer_budget) {
			char src[32];
			l->throttled = true;
			l->throttled_ms = loop_now_ms();
			tm_count(TM_LIMIT_PEER_BUFFER, 1);
			fmt_addr(&t->info.src, src, sizeof(src));
			log_warn("HBONE peer over its buffer budget: its connection is paused until the pods catch up",
				 LF_STR("peer", src), LF_STR("src.identity", identity_uri(t->info.src_id)),
				 LF_UINT("budget_mb", p->cfg->peer_buffer_mb));
		}
	}
	while (len) {
		struct chunk *c = t->down_tail;
		if (!c || c->len == RELAY_BUF) {
			if (!(c = chunk_get(t->w)))
				return tunnel_abort(t, TM_R_NO_MEMORY, "out of memory", true);
			if (t->down_tail)
				t->down_tail->next = c;
			else
				t->down = c;
			t->down_tail = c;
		}
		size_t n = RELAY_BUF - c->len < len ? RELAY_BUF - c->len : len;
		memcpy(c->data + c->len, data, n);
		c->len += (uint32_t)n;
		data += n;
		len -= n;
	}
	kick_send(t);
}

static void ev_eof(void *ctx, int32_t id)
{
	struct link *l = ctx;
	struct tunnel *t = hbone_user(l->h2, id);

	if (!t)
		return;
	t->h2_eof = true;
	kick_send(t);
}

static void dispatch(struct tunnel *t);

static void ev_closed(void *ctx, int32_t id, uint32_t code)
{
	struct link *l = ctx;
	struct tunnel *t = hbone_user(l->h2, id);

	if (!t)
		return;
	tunnel_hold(t);
	release_window(t);
	hbone_set_user(l->h2, id, NULL);
	if (t->awaiting_start) {
		/* Reset before we dialled the pod: nothing reached it. Counted on
		 * the link and logged there in aggregate, not once per stream. */
		t->awaiting_start = false;
		l->n_awaiting--;
		t->quiet = true;
		link_reset_unserved(l);
	}
	link_detach(l, t);
	if (code == HBONE_REFUSED_STREAM && !l->server && !t->connected && !t->retried && !t->aborting) {
		/* The peer never processed it (our CONNECT crossed its GOAWAY:
		 * it is draining): nothing reached the destination, and nothing
		 * was read from the pod yet. Once more, on a new connection. */
		t->retried = true;
		t->id = 0;
		t->dialer = false;
		if (l->pooled && hbone_goaway_received(l->h2)) {
			hbone_pool_remove(&l->w->pool, l->pooled);
			l->pooled = NULL;
			l->draining = true;
		}
		dispatch(t);
	} else if (code)
		tunnel_abort(t, TM_R_RESET, "HBONE stream reset by the peer", false);
	else if (!t->fd_eof || !t->h2_eof)
		tunnel_abort(t, TM_R_RESET, "HBONE stream closed early", false);
	tunnel_put(t);
}

/* ---- outbound ---- */

/* Formats why it failed into memory it owns (an idle tunnel keeps none).
 * The first error is the one logged (tunnel_abort keeps it): once there
 * is one, that one is returned and nothing it points to is freed. */
__attribute__((format(printf, 2, 3))) static const char *error_text(struct tunnel *t, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	if (t->info.error)
		return t->info.error;
	va_start(ap, fmt);
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	free(t->error);
	t->error = n < 0 ? NULL : text;
	return t->error ? t->error : "out of memory";
}

static void open_stream(struct tunnel *t)
{
	struct link *l = t->link;
	char authority[32];

	fmt_addr(&t->info.up, authority, sizeof(authority)); /* the pod's address:port (SPEC §2.3) */
	int32_t id = hbone_connect(l->h2, authority, t->hdrs, t->n_hdrs);

	if (id < 0)
		return tunnel_abort(t, TM_R_HTTP2, "cannot open an HBONE stream", false);
	t->id = id;
	hbone_set_user(l->h2, id, t);
	tm_count(TM_HBONE_STREAMS_CLIENT, 1);
	t->info.tls_version = tls_version(l->tls);
	t->info.tls_cipher = tls_cipher(l->tls);
	if (l->pooled && hbone_ids_running_out(l->h2)) {
		/* It keeps serving its streams; the next checkout dials anew. */
		hbone_pool_remove(&t->w->pool, l->pooled);
		l->pooled = NULL;
		t->reserved = false;
		l->draining = true;
	}
	link_flush(l);
}

static void ev_response(void *ctx, int32_t id, int status)
{
	struct link *l = ctx;
	struct tunnel *t = hbone_user(l->h2, id);

	if (!t)
		return;
	if (status != 200) {
		/* As Istio's client: cancel the stream, close the pod's socket
		 * (FIN; the kernel still resets it if the pod's bytes are unread). */
		hbone_cancel(l->h2, id);
		t->close_fd_cleanly = true;
		return tunnel_abort(t, status == 401 ? TM_R_POLICY_DENIED : TM_R_PEER_REFUSED,
				    error_text(t, "HBONE CONNECT refused by the destination: status %d%s", status,
					       status == 401 ? " (denied by authorization policy)" : ""),
				    false);
	}
	tunnel_opened(t);
}

/* The stream is open both ways (200 sent or received): relay. */
void tunnel_opened(struct tunnel *t)
{
	free(t->hdrs);
	t->hdrs = NULL;
	t->n_hdrs = 0;
	t->connected = true;
	arm_fd_recv(t);
	kick_send(t);
}

#define WAIT_FOR_CERT_MS 5000

static void tunnel_retry(struct watch *wt)
{
	struct tunnel *t = CONTAINER(wt, struct tunnel, watch);

	tunnel_hold(t);
	dispatch(t);
	tunnel_put(t);
}

/* Pool checkout (SPEC §2.5): a ready connection, a new dial, or a wait
 * for the dial already in flight for the same key. */
static void dispatch(struct tunnel *t)
{
	struct worker *w = t->w;
	struct hbone_pooled *pc;
	char err[300];
	struct link *l;

	struct tls_ctx *ctx = tls_cache_get(w, t->info.src_id, false, err, sizeof(err));
	if (!ctx && loop_now_ms() - t->info.start_ms < WAIT_FOR_CERT_MS) {
		/* A new pod's certificate is being issued: wait for it (the
		 * worker tick retries), as Istio waits for its CSR. */
		watch_park(w, &t->watch, tunnel_retry);
		return;
	}
	watch_unpark(w, &t->watch);
	if (!ctx) {
		return tunnel_abort(t, TM_R_NO_CERTIFICATE, error_text(t, "IDENTITY_ERROR: %s", err), false);
	}
	if (!t->info.dst_id)
		return tunnel_abort(t, TM_R_NO_CERTIFICATE, "destination identity is not a SPIFFE id", false);
	switch (hbone_pool_checkout(&w->pool, &t->key, loop_now_ms() / 1000, &pc)) {
	case HBONE_POOL_USE:
		link_attach(pc->conn, t);
		t->reserved = true;
		open_stream(t);
		break;
	case HBONE_POOL_DIAL:
		if (!(l = link_dial(w, &t->key, ctx, &t->info.dst_id->id))) {
			hbone_pool_dialed(&w->pool, pc, NULL, 0);
			return tunnel_abort(t, TM_R_NO_MEMORY, "cannot set up an HBONE connection", false);
		}
		l->pooled = pc;
		t->dialer = true;
		link_attach(l, t);
		break;
	case HBONE_POOL_WAIT:
		if (!(l = link_dialing(w, &t->key)))
			return tunnel_abort(t, TM_R_NO_MEMORY, "out of memory", false);
		link_attach(l, t);
		break;
	}
}

/* The link finished its handshake: its dialer takes the stream the pool
 * reserved; the tunnels that waited check out again (the connection may
 * be full by now). */
void tunnel_link_ready(struct tunnel *t)
{
	struct link *l = t->link;

	if (t->aborting)
		return;
	if (t->dialer) {
		t->dialer = false;
		t->reserved = true;
		open_stream(t);
		return;
	}
	link_detach(l, t);
	dispatch(t);
}

static void tunnel_revoke(struct watch *wt, enum tm_reason reason, const char *why)
{
	tunnel_abort(CONTAINER(wt, struct tunnel, watch), reason, why, true);
}

void tunnel_watch(struct tunnel *t)
{
	t->watch.ci = &t->info;
	t->watch.revoke = tunnel_revoke;
	watch_add(t->w, &t->watch);
}

void tunnel_link_failed(struct tunnel *t, enum tm_reason reason, const char *why)
{
	/* why may be the link's own text (l->detail): the tunnel can outlive
	 * the link, so it keeps a copy for its log line. */
	tunnel_abort(t, reason, why ? error_text(t, "%s", why) : NULL, false);
}

struct tunnel *tunnel_new(struct worker *w, int fd, struct conn_info *ci)
{
	struct tunnel *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->w = w;
	w->n_conns++;
	t->fd = fd;
	t->info = *ci;
	conn_info_disown(ci); /* the tunnel owns its names now */
	t->info.active_ms = loop_now_ms();
	t->info.hbone = true;
	t->recv_op.fn = on_fd_recv;
	t->send_op.fn = on_fd_send;
	t->shut_op.fn = on_shut;
	return t;
}

void tunnel_outbound(struct worker *w, int cfd, struct conn_info *ci, const struct route *rt,
		     const struct hbone_header *hdrs, size_t n_hdrs)
{
	struct tunnel *t = tunnel_new(w, cfd, ci);

	if (!t) {
		struct conn_info failed = *ci;
		failed.reason = TM_R_NO_MEMORY;
		failed.error = "out of memory";
		conn_log(w, &failed);
		reset_socket(cfd);
		close(cfd);
		return;
	}
	tunnel_watch(t);
	if (n_hdrs && !(t->hdrs = malloc(n_hdrs * sizeof(*hdrs)))) {
		tunnel_abort(t, TM_R_NO_MEMORY, "out of memory", false);
		return;
	}
	memcpy(t->hdrs, hdrs, n_hdrs * sizeof(*hdrs));
	t->n_hdrs = n_hdrs;
	t->key.src_id = ci->src_id;
	t->key.dst_id = ci->dst_id;
	t->key.src_ip = ci->src.sin_addr.s_addr;
	t->key.dst_ip = rt->upstream_ip;
	t->key.dst_port = htons(ZT_PORT_HBONE);
	/* The access log's dst.addr is the address dialled (SPEC §6.2). */
	t->info.hbone_peer = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = t->key.dst_ip,
						   .sin_port = t->key.dst_port };
	tunnel_hold(t);
	dispatch(t);
	tunnel_put(t);
}

const struct hbone_events tunnel_events = {
	.request = inbound_request,
	.response = ev_response,
	.data = ev_data,
	.eof = ev_eof,
	.closed = ev_closed,
};
