/* HBONE connections on the worker's ring: one TCP socket carrying TLS 1.3
 * (ztunnel/tls) carrying HTTP/2 (ztunnel/hbone), as a client from the
 * pool or as the server behind 15008. One receive is always in flight;
 * output goes out one send at a time, and the protocol cores only produce
 * more when the previous send finished (so a slow peer pushes back on
 * nghttp2, whose windows push back on the streams). */
#include "link.h"
#include "conn.h"
#include "inbound.h"
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ztunnel/log.h"
#include "ztunnel/tls.h"

#define STAGE_SIZE (64 * 1024)        /* HTTP/2 bytes per tls_write: full records */
#define TLS_RECORD 16384              /* TLS 1.3's largest record plaintext */
#define MAX_UNSENT (256 * 1024)       /* TLS output produced ahead of the socket */
#define PING_INTERVAL_MS 10000        /* SPEC §2.2 */
#define PING_TIMEOUT_MS 20000
#define HANDSHAKE_TIMEOUT_MS 10000
#define THROTTLE_MAX_MS 30000
#define PEER_CLOSE_WAIT_MS 2000       /* a retired client link waits this long for the peer's close */

static void arm_recv(struct link *l);
static int seal_data(void *ctx, const uint8_t *hd, size_t hlen, const uint8_t *payload, size_t len);

void link_hold(struct link *l)
{
	l->pending++;
}


static void link_free(struct link *l)
{
	struct worker *w = l->w;

	if (l->prev)
		l->prev->next = l->next;
	else
		w->links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	tm_count(l->server ? TM_HBONE_ACTIVE_SERVER : TM_HBONE_ACTIVE_CLIENT, -1);
	link_log_resets(l);
	link_unadmit(l);
	if (l->peer_counted)
		admission_leave(&w->p->peer_conns, l->peer.sin_addr.s_addr);
	if (l->fd >= 0)
		close(l->fd);
	hbone_conn_free(l->h2);
	tls_session_free(l->tls);
	free(l->sbuf);
	free(l->stage);
	free(l);
	atomic_fetch_add(&w->p->links_freed, 1);
}

void link_put(struct link *l)
{
	if (--l->pending == 0 && l->dead)
		link_free(l);
}


/* What a connection needs once its peer is authenticated: HTTP/2 and the
 * staging buffer (and receives of the relay size, arm_recv). A server
 * allocates them only after the handshake, so an unauthenticated
 * connection costs a few KiB, not hundreds. */
static int link_grow(struct link *l)
{
	struct hbone_events ev = tunnel_events;

	ev.ctx = l;
	ev.write_data = seal_data;
	if (!l->stage && !(l->stage = malloc(STAGE_SIZE)))
		return -ENOMEM;
	if (!l->h2 && hbone_conn_new(&l->h2, l->server, &ev) < 0)
		return -ENOMEM;
	return 0;
}

struct link *link_new(struct worker *w, bool server, int fd)
{
	struct link *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->server = server;
	if (!server && link_grow(l) < 0) {
		hbone_conn_free(l->h2);
		free(l->stage);
		free(l);
		return NULL;
	}
	l->w = w;
	l->fd = fd;
	l->created_ms = loop_now_ms();
	l->next = w->links;
	if (w->links)
		w->links->prev = l;
	w->links = l;
	tm_count(server ? TM_HBONE_ACTIVE_SERVER : TM_HBONE_ACTIVE_CLIENT, 1);
	return l;
}

void link_describe(const struct link *l, char *buf, size_t size)
{
	fmt_addr(l->server ? &l->peer : &l->local, buf, size);
}

void link_attach(struct link *l, struct tunnel *t)
{
	t->link = l;
	t->lnext = l->tunnels;
	l->tunnels = t;
}

/* l takes no new streams (out of the pool, GOAWAY to the peer); it closes
 * once the ones it carries are done. */
static void link_retire(struct link *l)
{
	if (l->pooled)
		hbone_pool_remove(&l->w->pool, l->pooled);
	l->pooled = NULL;
	l->draining = true;
	hbone_goaway(l->h2);
}

/* A stream of l's pool entry ended: a connection spent by its stream
 * limit (--pool-max-streams-per-connection) closes now, not at the next
 * expiry, so that spent connections do not pile up between ticks. */
static void release_stream(struct link *l)
{
	if (hbone_pool_release(&l->w->pool, l->pooled, loop_now_ms() / 1000))
		link_retire(l);
}

void link_detach(struct link *l, struct tunnel *t)
{
	for (struct tunnel **p = &l->tunnels; *p; p = &(*p)->lnext) {
		if (*p == t) {
			*p = t->lnext;
			break;
		}
	}
	if (t->blocked)
		l->n_blocked--;
	t->blocked = false;
	t->link = NULL;
	t->lnext = NULL;
	if (t->reserved && l->pooled)
		release_stream(l);
	t->reserved = false;
	if (l->draining && !l->tunnels)
		link_flush(l);
}

struct link *link_dialing(struct worker *w, const struct hbone_pool_key *key)
{
	for (struct link *l = w->links; l; l = l->next)
		if (!l->server && !l->dead && !l->handshaken && l->pooled && hbone_pool_key_equal(&l->key, key))
			return l;
	return NULL;
}

/* Plaintext HTTP/2 bytes into TLS records; false if the session failed
 * (the bytes would be lost: the connection must go). */
static bool seal(struct link *l, const void *data, size_t len)
{
	if (tls_write(l->tls, data, len) == (ssize_t)len)
		return true;
	l->tls_failed = true;
	return false;
}

static bool seal_stage(struct link *l)
{
	size_t n = l->stage_len;

	l->stage_len = 0;
	return !n || seal(l, l->stage, n);
}

/* A DATA frame straight from its stream's queue (hbone's write_data): the
 * header joins the staged bytes, topped up with payload to a record's end
 * (no record of 9 bytes), and the rest is sealed from the queue itself,
 * with no copy into nghttp2 or the stage. */
static int seal_data(void *ctx, const uint8_t *hd, size_t hlen, const uint8_t *payload, size_t len)
{
	struct link *l = ctx;
	const void *pend;

	if (tls_output(l->tls, &pend) >= MAX_UNSENT)
		return -EAGAIN;
	if (l->stage_len + hlen > STAGE_SIZE && !seal_stage(l))
		return -EPROTO;
	memcpy(l->stage + l->stage_len, hd, hlen);
	l->stage_len += hlen;
	size_t top = (TLS_RECORD - l->stage_len % TLS_RECORD) % TLS_RECORD;
	top = top < len ? top : len;
	memcpy(l->stage + l->stage_len, payload, top);
	l->stage_len += top;
	if (top < len && (!seal_stage(l) || !seal(l, payload + top, len - top)))
		return -EPROTO;
	return 0;
}

/* HTTP/2 -> TLS -> one send. Re-entrant calls (from callbacks inside the
 * protocol cores) only mark the link; the outer call loops. */
void link_flush(struct link *l)
{
	if (l->busy) {
		l->want_flush = true;
		return;
	}
	if (l->dead || !l->connected)
		return;
	link_hold(l);
	l->busy = true;
	do {
		l->want_flush = false;
		if (l->handshaken) {
			const uint8_t *d;
			ssize_t n = 0;
			const void *pend;
			while (!l->tls_failed && tls_output(l->tls, &pend) < MAX_UNSENT) {
				n = hbone_output(l->h2, &d);
				if (n <= 0)
					break;
				if (l->stage_len + (size_t)n > STAGE_SIZE && !seal_stage(l))
					break;
				if ((size_t)n >= STAGE_SIZE) {
					seal(l, d, (size_t)n);
				} else {
					memcpy(l->stage + l->stage_len, d, (size_t)n);
					l->stage_len += (size_t)n;
				}
			}
			if (n < 0 || !seal_stage(l) || l->tls_failed) {
				l->busy = false;
				link_fail(l, l->tls_failed ? TM_R_TLS : TM_R_HTTP2,
					  l->tls_failed ? "TLS write failed" : "HTTP/2 protocol error");
				link_put(l);
				return;
			}
		}
		if (!l->in_send) {
			l->slen = tls_output_take(l->tls, &l->sbuf, &l->scap);
			l->soff = 0;
			if (l->slen) {
				l->in_send = true;
				link_hold(l);
				io_uring_prep_send(loop_sqe(&l->w->loop, &l->send_op), l->fd, l->sbuf, l->slen,
						   MSG_NOSIGNAL);
			}
		}
		/* Room may have opened in stream buffers: blocked tunnels retry.
		 * A retry can end its tunnel (detached, maybe freed): hold it
		 * and continue from where it was, or stop if the link died. */
		for (struct tunnel *t = l->n_blocked ? l->tunnels : NULL, *next; l->handshaken && t && !l->dead;
		     t = next) {
			next = t->lnext;
			if (!t->blocked)
				continue;
			tunnel_hold(t);
			tunnel_unblock(t);
			if (t->link == l)
				next = t->lnext;
			tunnel_put(t);
		}
	} while (l->want_flush && !l->dead);
	l->busy = false;
	bool drained = !l->dead && l->draining && !l->tunnels && !l->in_send && hbone_streams(l->h2) == 0;
	if (drained && !l->server && !l->calm_why && l->handshaken) {
		/* Ours to close, but the peer, told by our GOAWAY, closes too:
		 * let it close first (on_recv sees the end; links_tick ends the
		 * wait). Closing first would leave our side in TIME_WAIT for a
		 * minute, and a client dialling fast would run out of ports. */
		if (!l->closing_deadline_ms)
			l->closing_deadline_ms = loop_now_ms() + PEER_CLOSE_WAIT_MS;
	} else if (drained) {
		link_fail(l, l->calm_why ? TM_R_LIMIT : TM_R_NONE, l->calm_why);
	} else if (!l->dead && l->handshaken && hbone_done(l->h2) && !l->in_send && !l->closing_deadline_ms) {
		const char *code;
		const char *h2err = hbone_goaway_sent_error(l->h2, &code);
		if (!l->calm_why && h2err) { /* nghttp2 ended it (a peer's protocol error, its limits) */
			snprintf(l->detail, sizeof(l->detail), "HTTP/2 connection error: GOAWAY %s sent%s%s",
				 code, *h2err ? ": " : "", h2err);
			link_fail(l, TM_R_HTTP2, l->detail);
		} else {
			link_fail(l, l->calm_why ? TM_R_LIMIT : TM_R_STREAM_GONE,
				  l->calm_why ? l->calm_why : l->server ? NULL : "HBONE connection closed by the peer");
		}
	}
	link_put(l);
}

static void on_send(struct op *op, int res, uint32_t flags)
{
	struct link *l = CONTAINER(op, struct link, send_op);

	(void)flags;
	l->in_send = false;
	if (res <= 0) {
		if (res != -ECANCELED)
			link_fail(l, TM_R_RESET, "HBONE connection broken (send failed)");
	} else if ((l->soff += (size_t)res) < l->slen) {
		l->in_send = true;
		link_hold(l);
		io_uring_prep_send(loop_sqe(&l->w->loop, &l->send_op), l->fd, l->sbuf + l->soff,
				   l->slen - l->soff, MSG_NOSIGNAL);
	} else {
		link_flush(l);
		if (l->calm_why && !l->in_send)
			link_fail(l, TM_R_LIMIT, l->calm_why); /* the GOAWAY is out */
	}
	link_put(l);
}

static const char *side(const struct link *l)
{
	return l->server ? "server" : "client";
}

static void count_failed(const struct link *l)
{
	struct tm_labels lb;

	tm_labels_init(&lb);
	tm_labels_add(&lb, "side", side(l), true);
	tm_labels_add(&lb, "reason", tm_reason_name((enum tm_reason)l->reason), true);
	tm_series_add(tm_series_get(TM_F_HBONE_FAILED, &lb), TM_V_OPENED, 1);
}

/* By wolfSSL's error (a bounded set), so a dashboard tells an expired
 * certificate from a peer of another trust domain. */
static void count_tls_failure(const struct link *l)
{
	struct tm_labels lb;

	tm_labels_init(&lb);
	tm_labels_add(&lb, "side", side(l), true);
	tm_labels_add(&lb, "error", tls_error_name(l->tls), true);
	tm_series_add(tm_series_get(TM_F_TLS_FAILED, &lb), TM_V_OPENED, 1);
}

static void handshake_done(struct link *l)
{
	char peer[32], id[800] = "";
	const struct spiffe_id *pid = tls_peer_identity(l->tls);

	if (l->admitted) {
		/* Authenticated now: it leaves the pre-handshake budget and
		 * takes one of its peer's connections. */
		link_unadmit(l);
		if (admission_enter(&l->w->p->peer_conns, l->peer.sin_addr.s_addr) != ADMIT_OK) {
			tm_count(TM_LIMIT_CONNECTIONS_PER_PEER, 1);
			link_fail(l, TM_R_LIMIT, "peer holds its limit of HBONE connections (--max-connections-per-peer)");
			return;
		}
		l->peer_counted = true;
	}
	if (link_grow(l) < 0) {
		link_fail(l, TM_R_NO_MEMORY, "out of memory");
		return;
	}
	l->handshaken = true;
	l->next_ping_ms = loop_now_ms() + PING_INTERVAL_MS;
	tm_count(l->server ? TM_HBONE_OPENED_SERVER : TM_HBONE_OPENED_CLIENT, 1);
	link_describe(l, peer, sizeof(peer));
	if (pid)
		spiffe_format(pid, id, sizeof(id));
	log_info(l->server ? "HBONE connection accepted" : "HBONE connection established",
		  LF_STR("peer", peer), LF_STR("peer.identity", id), LF_STR("tls", tls_version(l->tls)),
		  LF_STR("cipher", tls_cipher(l->tls)));
	if (!l->server) {
		if (l->pooled) {
			hbone_pool_dialed(&l->w->pool, l->pooled, l, hbone_peer_max_streams(l->h2));
			if (l->orphaned)
				release_stream(l);
		}
		/* The dialer holds the reserved stream; waiters check out again. */
		struct tunnel *t = l->tunnels, *next;
		for (; t; t = next) {
			next = t->lnext;
			tunnel_link_ready(t);
		}
	}
}

static void on_recv(struct op *op, int res, uint32_t flags)
{
	struct link *l = CONTAINER(op, struct link, recv_op);

	(void)flags;
	l->in_recv = false;
	if (l->dead || res < 0) {
		if (!l->dead && res != -ECANCELED) /* while waiting for the peer's close: its close */
			link_fail(l, TM_R_RESET, l->closing_deadline_ms ? NULL : "HBONE connection broken (receive failed)");
		link_put(l);
		return;
	}
	if (res == 0) {
		link_fail(l, TM_R_STREAM_GONE, l->tunnels && !l->closing_deadline_ms ? "HBONE connection closed by the peer" : NULL);
		link_put(l);
		return;
	}
	if (l->calm_why) {
		link_put(l); /* told to calm down: nothing more is read */
		return;
	}
	tls_input_commit(l->tls, (size_t)res); /* received in place: arm_recv */
	if (!l->handshaken) {
		int r = tls_handshake(l->tls);
		if (r < 0) {
			snprintf(l->detail, sizeof(l->detail), "TLS %s", tls_error(l->tls));
			count_tls_failure(l);
			link_flush(l); /* the alert */
			link_fail(l, TM_R_TLS, l->detail);
			link_put(l);
			return;
		}
		if (r == 1)
			handshake_done(l);
	}
	if (l->handshaken && !l->dead) {
		ssize_t n;
		l->busy = true;
		bool bad_h2 = false;
		while ((n = tls_read(l->tls, l->w->plain, sizeof(l->w->plain))) > 0) {
			if (hbone_recv(l->h2, l->w->plain, (size_t)n) < 0) {
				n = -EPROTO;
				bad_h2 = true;
				break;
			}
		}
		l->busy = false;
		if (l->n_awaiting && !l->dead && !l->calm_why)
			inbound_start_awaiting(l);
		if (hbone_goaway_received(l->h2) && l->pooled) {
			/* No new streams on it; the ones it has finish. */
			char peer[INET_ADDRSTRLEN] = "";
			inet_ntop(AF_INET, &l->peer.sin_addr, peer, sizeof(peer));
			log_info("HBONE peer is draining (GOAWAY): new streams go on a new connection",
				 LF_STR("peer", peer));
			hbone_pool_remove(&l->w->pool, l->pooled);
			l->pooled = NULL;
			l->draining = true;
		}
		if (n < 0 && n != -EPIPE && !l->dead) {
			if (bad_h2)
				snprintf(l->detail, sizeof(l->detail), "HBONE peer sent invalid HTTP/2");
			else
				snprintf(l->detail, sizeof(l->detail), "TLS %s", tls_error(l->tls));
			link_fail(l, bad_h2 ? TM_R_HTTP2 : TM_R_TLS, l->detail);
			link_put(l);
			return;
		}
		if (n == -EPIPE && !l->dead)
			l->draining = true; /* close_notify: finish what is in flight */
	}
	link_flush(l);
	if (!l->dead && !l->calm_why && !l->throttled)
		arm_recv(l);
	link_put(l);
}

/* Straight into the TLS session's input (no copy through a buffer of
 * ours): small until the handshake is done, the relay size after. */
static void arm_recv(struct link *l)
{
	size_t room;
	void *at = tls_input_space(l->tls, l->handshaken ? RELAY_BUF : RX_SMALL, &room);

	if (!at) {
		link_fail(l, TM_R_NO_MEMORY, "out of memory");
		return;
	}
	l->in_recv = true;
	link_hold(l);
	io_uring_prep_recv(loop_sqe(&l->w->loop, &l->recv_op), l->fd, at, room, 0);
}

void link_start(struct link *l)
{
	l->connected = true;
	l->recv_op.fn = on_recv;
	l->send_op.fn = on_send;
	arm_recv(l);
	if (!l->server)
		tls_handshake(l->tls); /* ClientHello */
	link_flush(l);
}

/* Tears the connection down: every tunnel on it is reset. why NULL: an
 * orderly close, nothing to report. */
void link_fail(struct link *l, enum tm_reason reason, const char *why)
{
	struct worker *w = l->w;
	char peer[32];

	if (l->dead)
		return;
	link_hold(l);
	l->dead = true;
	l->error = why;
	l->reason = (uint8_t)(why && reason == TM_R_NONE ? TM_R_STREAM_GONE : reason);
	link_describe(l, peer, sizeof(peer));
	if (why && !l->handshaken)
		count_failed(l);
	if (why)
		log_warn(l->server ? "inbound HBONE connection failed" : "HBONE connection failed",
			 LF_STR("peer", peer), LF_STR("error", why));
	if (l->pooled) {
		if (l->handshaken)
			hbone_pool_remove(&w->pool, l->pooled);
		else
			hbone_pool_dialed(&w->pool, l->pooled, NULL, 0);
		l->pooled = NULL;
	}
	while (l->tunnels) {
		struct tunnel *t = l->tunnels;
		tunnel_link_failed(t, why ? (enum tm_reason)l->reason : TM_R_STREAM_GONE, why ? why : "HBONE connection closed");
		if (l->tunnels == t) /* the tunnel did not detach itself */
			link_detach(l, t);
	}
	if (l->fd >= 0 && why)
		reset_socket(l->fd);
	if (l->in_recv)
		io_uring_prep_cancel(loop_sqe(&w->loop, NULL), &l->recv_op, 0);
	if (l->in_send)
		io_uring_prep_cancel(loop_sqe(&w->loop, NULL), &l->send_op, 0);
	link_put(l);
}

static void on_connect(struct op *op, int res, uint32_t flags)
{
	struct link *l = CONTAINER(op, struct link, connect_op);

	(void)flags;
	if (l->dead) {
	} else if (res == -ECANCELED) {
		link_fail(l, TM_R_CONNECT_TIMEOUT,
			  "connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008");
	} else if (res < 0) {
		snprintf(l->detail, sizeof(l->detail), "HBONE connect to port 15008 failed: %s", strerror(-res));
		link_fail(l, connect_reason(res), l->detail);
	} else {
		link_start(l);
	}
	link_put(l);
}

static void on_timeout(struct op *op, int res, uint32_t flags)
{
	struct link *l = CONTAINER(op, struct link, timeout_op);

	(void)res;
	(void)flags;
	link_put(l);
}

int link_pod_enrolled(struct worker *w, uint32_t ip)
{
	struct zt_pod pod;
	return w->p->env.pods(w->p->env.pods_ctx, ip, &pod) == 0 && pod.enrolled;
}

/* A client connection for key. Same-node destinations are served by this
 * worker's own 15008 side over a socket pair: the same handshake, policy
 * and logs as from another node (DESIGN.md §1), without a tc hook that
 * would never see our SYN. */
struct link *link_dial(struct worker *w, const struct hbone_pool_key *key, struct tls_ctx *ctx,
		       const struct spiffe_id *expected)
{
	struct link *l = link_new(w, false, -1);
	int r;

	if (!l)
		return NULL;
	l->key = *key;
	l->local = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = key->dst_ip,
					 .sin_port = key->dst_port };
	l->recv_op.fn = on_recv;
	l->send_op.fn = on_send;
	l->connect_op.fn = on_connect;
	l->timeout_op.fn = on_timeout;
	if ((r = tls_session_new(&l->tls, ctx, expected, 1, NULL)) < 0)
		goto fail;
	if (link_pod_enrolled(w, key->dst_ip)) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
			r = -errno;
			goto fail;
		}
		l->fd = sv[0];
		struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = key->src_ip };
		link_hold(l);
		link_accept_pair(w, sv[1], &src, &l->local);
		link_start(l);
		bool dead = l->dead; /* (out of memory): the caller must not use it */
		link_put(l);
		return dead ? NULL : l;
	}
	if ((l->fd = proxy_upstream_socket(key->src_ip)) < 0) {
		r = l->fd;
		l->fd = -1;
		goto fail;
	}
	l->timeout.tv_sec = CONNECT_TIMEOUT_S;
	l->pending += 2;
	loop_connect(&w->loop, &l->connect_op, &l->timeout_op, &l->timeout, l->fd, (struct sockaddr *)&l->local,
		     sizeof(l->local));
	return l;
fail:
	log_error("cannot set up an HBONE connection", LF_ERRNO(r));
	l->dead = true;
	l->pending = 1;
	link_put(l);
	return NULL;
}

/* Once a second: keepalive PINGs (SPEC §2.2), handshake deadline, idle
 * pooled connections (SPEC §2.5). */
void links_tick(struct worker *w)
{
	int64_t now = loop_now_ms();
	void *idle[64];
	uint32_t n = hbone_pool_expire(&w->pool, now / 1000, idle, 64);

	for (uint32_t i = 0; i < n; i++) {
		struct link *l = idle[i];
		l->pooled = NULL; /* expiry took it out of the pool */
		link_retire(l);
		link_flush(l);
	}
	for (struct link *l = w->links, *next; l; l = next) {
		next = l->next;
		if (l->dead)
			continue;
		link_hold(l);
		if (l->awaiting_cert)
			link_serve(l);
		if (now - l->resets_log_ms >= 1000)
			link_log_resets(l);
		if (l->calm_why && now > l->calm_deadline_ms)
			link_fail(l, TM_R_LIMIT, l->calm_why);
		if (l->closing_deadline_ms && now > l->closing_deadline_ms)
			link_fail(l, TM_R_NONE, NULL); /* the peer did not close: we do */
		struct proxy *p = w->p;
		if (l->throttled && !l->dead &&
		    admission_usage(&p->peer_bytes, l->peer.sin_addr.s_addr) <= p->peer_budget / 4 * 3) {
			l->throttled = false;
			if (!l->in_recv && !l->calm_why)
				arm_recv(l);
		} else if (l->throttled && !l->dead && now - l->throttled_ms > THROTTLE_MAX_MS) {
			/* Its pods do not drain: what it parked is not held forever
			 * (and a paused connection would not see the peer leave). */
			link_fail(l, TM_R_LIMIT, "HBONE peer over its buffer budget for 30 s: connection closed");
		}
		if (l->handshaken && l->ping_deadline_ms && !hbone_ping_outstanding(l->h2)) {
			/* acknowledged: the next one in 10 s */
			l->ping_deadline_ms = 0;
			l->next_ping_ms = now + PING_INTERVAL_MS;
		}
		if (!l->handshaken && now - l->created_ms > HANDSHAKE_TIMEOUT_MS) {
			link_fail(l, TM_R_TLS, "TLS handshake timed out");
		} else if (l->handshaken && l->ping_deadline_ms && now > l->ping_deadline_ms && !l->throttled) {
			/* (A throttled connection is not read: its ACK waits there.) */
			if (l->server) {
				hbone_goaway(l->h2);
				link_flush(l);
			}
			link_fail(l, TM_R_RESET, "HBONE keepalive: no PING acknowledgement within 20 s");
		} else if (l->handshaken && !l->ping_deadline_ms && now >= l->next_ping_ms) {
			hbone_ping(l->h2);
			l->ping_deadline_ms = now + PING_TIMEOUT_MS;
			link_flush(l);
		}
		next = l->next;
		link_put(l);
	}
}

/* The agent is stopping (SPEC §10): HBONE peers open no new streams on
 * our connections (GOAWAY), the streams they have finish; pooled ones take
 * no new streams of ours either. Called every tick of the drain: a
 * connection still in its handshake is drained once it is up. */
void links_drain(struct worker *w)
{
	for (struct link *l = w->links, *next; l; l = next) {
		next = l->next;
		if (l->dead || l->draining || !l->handshaken)
			continue;
		link_hold(l);
		link_retire(l);
		link_flush(l);
		next = l->next;
		link_put(l);
	}
}

uint32_t links_live(const struct worker *w)
{
	uint32_t n = 0;

	for (const struct link *l = w->links; l; l = l->next)
		n += !l->dead;
	return n;
}

void links_close_all(struct worker *w)
{
	for (struct link *l = w->links, *next; l; l = next) {
		next = l->next;
		link_hold(l);
		link_fail(l, TM_R_SHUTDOWN, NULL);
		next = l->next;
		link_put(l);
	}
}
