/* Internal to ztunnel/proxy: relayed connections, HBONE links and
 * tunnels, and the worker that owns them. Everything here belongs to one
 * worker thread; nothing is shared but the proxy's counters. */
#ifndef ZTUNNEL_PROXY_CONN_H
#define ZTUNNEL_PROXY_CONN_H

#include <linux/time_types.h>
#include <netinet/in.h>
#include <pthread.h>

#include "ztunnel/hbone.h"
#include "ztunnel/hbone_headers.h"
#include "ztunnel/hbone_pool.h"
#include "ztunnel/identity.h"
#include "ztunnel/loop.h"
#include "ztunnel/proxy.h"
#include "ztunnel/telemetry.h"

#include "admission.h"

#define RELAY_BUF (64 * 1024)
#define CONNECT_TIMEOUT_S 10
#define CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct proxy;
struct worker;
struct link;

/* Received bytes waiting to be written to a socket, from the worker's pool. */
struct chunk {
	struct chunk *next;
	uint32_t len, off;
	uint8_t data[RELAY_BUF];
};

/* A socket's receive buffer: 2 KiB inside the connection while it is
 * quiet, a pooled 64 KiB chunk while it moves bulk (the last read filled
 * the buffer). An idle connection holds no chunk. Switch only between
 * reads, never while the kernel or a send uses the buffer. */
#define RX_SMALL 2048
struct rxbuf {
	struct chunk *chunk;
	bool bulk;
	uint8_t small[RX_SMALL];
};

/* One direction of the relay: bytes read from `from`, written to `to`. */
struct half {
	struct op recv_op, send_op, shut_op;
	struct conn *conn;
	int from, to;
	uint32_t len, off, cap;
	bool in_recv, in_send, eof, write_closed;
	uint8_t *buf;
};

/* What the access log and the metrics say about a connection (SPEC.md §6). */
struct conn_info {
	uint8_t dir; /* enum proxy_direction */
	bool hbone;
	uint8_t reason; /* enum tm_reason: why it ended badly, TM_R_NONE if it did not */
	struct sockaddr_in src, dst, up;
	struct sockaddr_in hbone_peer; /* outbound HBONE: the dialled podIP:15008 */
	int64_t start_ms;
	int64_t reported_ms; /* when its bytes last went into the metrics (long-lived ones) */
	int64_t active_ms; /* inbound HBONE: when bytes last moved (idle timeout) */
	uint64_t bytes_up, bytes_down; /* client -> server, server -> client */
	uint64_t bytes_counted_up, bytes_counted_down; /* of those, already in the metrics */
	struct tm_series *series; /* opened (destination resolved); NULL before and once closed */
	const char *error;
	const char *tls_version, *tls_cipher; /* wolfSSL's static names */
	char src_name[160], dst_name[160], service[160];
	char src_identity[300], dst_identity[300];
	char policy[128]; /* inbound: the policy that decided, "" for the default */
};

/* Every live connection of a worker (relayed or tunnelled): inbound ones
 * are re-authorized when the snapshot changes (authorize.c), all are
 * closed when the worker stops. */
struct watch {
	struct watch *prev, *next;
	struct conn_info *ci;
	void (*revoke)(struct watch *wt, enum tm_reason reason, const char *why);
	/* Set while the connection waits for state it needs (its workload in
	 * the snapshot, its certificate): called on every worker tick. */
	void (*retry)(struct watch *wt);
	bool on, denied;
};

/* A plain TCP relay (passthrough, inbound plaintext). */
struct conn {
	struct worker *w;
	struct conn *next_free;
	int cfd, ufd;
	struct conn_info info;
	struct op connect_op, timeout_op;
	struct __kernel_timespec timeout;
	struct half h[2]; /* [0] client -> upstream, [1] upstream -> client */
	struct watch watch;
	int pending;      /* operations in flight */
	bool aborting, connected;
	struct rxbuf rx[2]; /* last: conn_alloc clears everything before them */
};


/* A TCP connection carried in one HBONE stream: the client socket of an
 * outbound tunnel or the upstream socket of an inbound one. */
struct tunnel {
	struct worker *w;
	struct link *link;     /* NULL once the stream is gone */
	struct tunnel *lnext;  /* in link->tunnels */
	int32_t id;            /* HTTP/2 stream, 0 before CONNECT */
	int fd;
	int pending;           /* ring operations and holds */
	bool reserved;         /* holds one of the pooled link's streams */
	bool aborting, fd_eof, h2_eof, shut, blocked, connected;
	bool close_fd_cleanly; /* FIN, not RST, when it aborts */
	bool awaiting_start;   /* inbound: authorized, upstream not dialled yet */
	uint64_t peer_buffered; /* inbound: bytes counted in peer_bytes */
	bool quiet;            /* reset by the peer before it was served: no access line */
	bool in_recv, in_send, in_shut, in_connect;
	struct op recv_op, send_op, shut_op, connect_op, timeout_op;
	struct __kernel_timespec timeout;
	struct rxbuf up;             /* fd -> stream */
	uint8_t *ubuf;               /* the bytes of the last read: up's buffer */
	uint32_t ulen, uoff, ucap;
	struct chunk *down, *down_tail; /* stream -> fd */
	/* Received DATA not yet written to the socket, so not yet given back
	 * to the peer's window; given back at once when the stream goes. */
	uint64_t down_unacked;
	struct conn_info info;
	struct watch watch;
	char authority[64];
	struct hbone_header hdrs[HBONE_MAX_HEADERS];
	size_t n_hdrs;
	/* outbound */
	struct hbone_pool_key key;
	bool dialer; /* opened the link it waits on; its stream is reserved at handshake */
	char error[160];
};

/* An HBONE connection: TCP + TLS 1.3 + HTTP/2, client or server. */
struct link {
	struct worker *w;
	struct link *prev, *next; /* worker->links */
	int fd;
	int pending;              /* ring operations and holds */
	bool server, connected, handshaken, dead, draining;
	bool orphaned; /* its dialer left before the handshake */
	bool awaiting_cert; /* server: the pod's certificate is being issued */
	bool in_recv, in_send, busy, want_flush;
	struct tls_session *tls;
	struct hbone_conn *h2;
	struct op recv_op, send_op, connect_op, timeout_op;
	struct __kernel_timespec timeout;
	uint8_t *sbuf;            /* TLS output being sent */
	size_t scap, slen, soff;
	uint8_t *stage;           /* HTTP/2 output coalesced into big records */
	size_t stage_len;
	struct tunnel *tunnels;
	uint32_t n_blocked;       /* tunnels waiting for room in their stream */
	uint32_t n_awaiting;      /* server: streams to dial once the read batch is done */
	/* Server: streams the peer reset before they were served (rapid reset,
	 * CVE-2023-44487): a budget refilled over time, and what was logged. */
	double reset_budget;
	int64_t reset_budget_ms;
	uint32_t resets_unserved, resets_logged;
	int64_t resets_log_ms;
	/* Set when the peer is told to calm down: input is ignored, the GOAWAY
	 * goes out, then the connection ends with this reason. */
	const char *calm_why;
	int64_t calm_deadline_ms;
	bool throttled; /* server: not read while its peer is over its buffer budget */
	int64_t throttled_ms; /* since when */
	struct hbone_pooled *pooled;
	struct hbone_pool_key key;
	struct sockaddr_in peer, local;
	int64_t created_ms, next_ping_ms, ping_deadline_ms;
	const char *error;
	uint8_t reason; /* enum tm_reason of the failure */
	char detail[300];
	bool admitted;            /* holds an admission slot until its handshake is done */
	bool peer_counted;        /* server: holds a peer_conns slot */
	uint8_t *rbuf;            /* small until the handshake is done (server) */
	uint32_t rcap;
};

/* A listener's multishot accept; op first so a CQE maps back to it. */
struct accept_slot {
	struct op op;
	struct worker *w;
	uint8_t dir;
};

/* Per-worker TLS contexts, one per local identity and role, rebuilt when
 * the published certificate changes. */
struct tls_cache_entry {
	char uri[300];
	char serial[40];
	int64_t not_after;
	uint64_t generation;
	struct tls_ctx *ctx[2]; /* [0] client, [1] server */
};

struct tls_cache {
	struct tls_cache_entry *e;
	uint32_t n, cap;
};

/* A worker's answer to the admin's request for its live connections. */
struct live_answer {
	uint32_t seq;
	size_t n;
	bool truncated;
	struct proxy_conn_view v[];
};

struct worker {
	struct proxy *p;
	atomic_uint list_request;             /* written by the admin thread */
	_Atomic(struct live_answer *) answer; /* published by the worker */
	uint32_t list_answered;               /* the worker's own: last request answered */
	int64_t idle_check_ms, report_check_ms;
	struct loop loop;
	pthread_t thread;
	int id;
	int lfd[PROXY_DIRECTIONS];
	struct accept_slot accept[PROXY_DIRECTIONS];
	struct conn *free_list;
	uint32_t n_free;
	uint32_t n_conns;          /* relays and tunnels not yet released */
	struct chunk *free_chunks;
	uint32_t n_free_chunks;
	unsigned seed;
	struct hbone_pool pool;
	struct link *links;
	struct tls_cache tls;
	struct op tick_op;
	struct __kernel_timespec tick;
	struct watch *watched;     /* live connections */
	uint32_t n_parked;         /* of those, waiting for state (watch_park) */
	uint64_t policy_generation;
	uint8_t plain[RELAY_BUF]; /* decrypted bytes on their way to HTTP/2 */
};

struct proxy {
	const struct zt_config *cfg;
	struct state_store *store;
	struct proxy_env env;
	struct cert_share *certs;
	struct admission admission; /* unauthenticated inbound HBONE */
	struct admission peer_streams; /* open inbound streams per peer */
	struct admission peer_conns;   /* authenticated inbound connections per peer */
	struct admission peer_bytes;   /* received bytes waiting for pods, per peer */
	uint32_t peer_budget;          /* bytes: --peer-buffer-mb */
	atomic_int_fast64_t last_peer_log_ms;
	struct route_node node;     /* for nodePorts and hostPorts */
	uint32_t node_addrs[ZT_MAX_NODE_ADDRS];
	atomic_uint links_freed;    /* since the last malloc_trim */
	atomic_int_fast64_t last_refusal_log_ms;
	struct worker *workers;
	int n_workers;
	pthread_mutex_t list_lock; /* one admin request at a time */
};

/* conn.c: takes an accepted client socket through routing, then a plain
 * relay or an outbound tunnel. */
void conn_start(struct worker *w, uint8_t dir, int cfd);
void reset_socket(int fd);
/* A socket error as the access log says it, and its reason. */
const char *errno_reason(int res);
enum tm_reason errno_tm_reason(int res);
/* A failed upstream connect (-ECANCELED: our timeout), both ways. */
enum tm_reason connect_reason(int res);
const char *connect_error(int res);
void fmt_addr(const struct sockaddr_in *a, char *buf, size_t size);
/* "namespace/name" of w, "" when unknown (the access log's workload). */
void workload_name(const struct zt_workload *w, char *buf, size_t size);

/* access.c: the destination is resolved (under the model's read lock:
 * the workloads and service point into it): the traffic series, opened. */
void conn_opened(struct worker *w, struct conn_info *ci, const struct zt_workload *src, const struct zt_workload *dst,
		 const struct zt_service *svc);
/* Closed: metrics and the access-log line. */
void conn_log(struct worker *w, struct conn_info *ci);
/* Closed without a line (reset by the peer before it was served: those
 * are logged in aggregate). */
void conn_closed_quietly(struct conn_info *ci);
/* A long-lived connection's bytes so far into the metrics, and a
 * "connection update" line when line is set. */
void conn_report(struct conn_info *ci, bool line);
const char *direction_name(uint8_t dir);
struct authz_decision;
/* Every inbound decision, counted by policy; r is TM_R_NONE when allowed. */
void count_decision(struct conn_info *ci, const struct authz_decision *d, enum tm_reason r);
/* A new connection denied: closed as such, one access-log line. */
void log_denied(struct conn_info *ci, const struct authz_decision *d, enum tm_reason r, const char *why, int status);
/* A live connection a new snapshot denies (it is closed next). */
void log_revoked(const struct conn_info *ci, const struct authz_decision *d, enum tm_reason r, const char *why);
/* Refused before its destination was resolved. */
void count_refused(uint8_t dir, enum tm_reason r);
/* Repeated events under attack are counted every time but logged at most
 * once a second, whichever worker sees them: true when it is this call's
 * turn to log (last: the shared time of the last line). */
bool log_turn(atomic_int_fast64_t *last);
void refuse_socket(struct worker *w, uint8_t dir, int fd, const struct sockaddr_in *src,
		   const struct sockaddr_in *dst, enum tm_reason reason, const char *why);

/* authorize.c: TM_R_NONE when allowed, else why not (and why says it). */
enum tm_reason authorize_inbound(const struct zt_model *m, const struct conn_info *ci, struct authz_decision *d,
				 char *why, size_t why_size);
void watch_add(struct worker *w, struct watch *wt);
void watch_del(struct worker *w, struct watch *wt);
void watch_recheck(struct worker *w);
/* Stopping: every live connection is reset, every HBONE connection closed. */
void watch_close_all(struct worker *w, enum tm_reason reason, const char *why);
/* Every tick: parked connections try again. */
void watch_retry(struct worker *w);
/* --stream-idle-timeout: inbound HBONE streams with no bytes either way
 * for that long are closed (at most once a second). */
void watch_idle(struct worker *w);
/* Long-lived connections: bytes into the metrics every 30 s, and an
 * access-log line every --access-log-interval seconds when set. */
void watch_report(struct worker *w);
/* Marks wt as waiting (retry on every tick) or no longer waiting. */
void watch_park(struct worker *w, struct watch *wt, void (*retry)(struct watch *wt));
void watch_unpark(struct worker *w, struct watch *wt);
/* Every tick: answers the admin's request for live connections. */
void live_answer_request(struct worker *w);

/* chunk.c */
struct chunk *chunk_get(struct worker *w);
void chunk_put(struct worker *w, struct chunk *c);
/* The buffer for the next read (NULL: out of memory) and its size. */
uint8_t *rxbuf_get(struct worker *w, struct rxbuf *b, uint32_t *cap);
/* A read of n bytes into a buffer of cap: bulk when it filled it. */
void rxbuf_filled(struct rxbuf *b, uint32_t n, uint32_t cap);
void rxbuf_release(struct worker *w, struct rxbuf *b);

/* tls_cache.c: NULL (err says why) when no usable certificate. */
struct tls_ctx *tls_cache_get(struct worker *w, const char *uri, bool server, char *err, size_t err_size);
void tls_cache_fini(struct tls_cache *tc);

/* link.c */
struct link *link_dial(struct worker *w, const struct hbone_pool_key *key, struct tls_ctx *ctx,
		       const struct spiffe_id *expected);
void link_accept(struct worker *w, int fd);
void link_accept_pair(struct worker *w, int fd, const struct sockaddr_in *peer,
		      const struct sockaddr_in *local);
void link_flush(struct link *l);
void link_attach(struct link *l, struct tunnel *t);
void link_detach(struct link *l, struct tunnel *t);
/* A stream the peer reset before it was served: spends the link's budget
 * for those; an exhausted budget ends the connection (rapid reset). */
void link_reset_unserved(struct link *l);
struct link *link_dialing(struct worker *w, const struct hbone_pool_key *key);
/* Keeps l allocated across calls that may tear it down. */
void link_hold(struct link *l);
void link_put(struct link *l);
/* link.c, for link_server.c: a new connection, start its I/O, tear it
 * down (why NULL: orderly), its peer for logs. */
struct link *link_new(struct worker *w, bool server, int fd);
void link_start(struct link *l);
void link_fail(struct link *l, enum tm_reason reason, const char *why);
void link_describe(const struct link *l, char *buf, size_t size);
/* Nonzero when ip is an enrolled pod of this node (the capture's table). */
int link_pod_enrolled(struct worker *w, uint32_t ip);
/* link_server.c: (re)try serving a 15008 connection with its pod's
 * certificate; the aggregated line for streams reset before served. */
void link_serve(struct link *l);
void link_log_resets(struct link *l);
void links_tick(struct worker *w);
void links_close_all(struct worker *w);

/* tunnel.c */
void tunnel_outbound(struct worker *w, int cfd, const struct conn_info *ci, const struct route *rt,
		     const struct hbone_header *hdrs, size_t n_hdrs);
struct tunnel *tunnel_new(struct worker *w, int fd, const struct conn_info *ci);
void tunnel_abort(struct tunnel *t, enum tm_reason reason, const char *why, bool rst_stream);
void tunnel_opened(struct tunnel *t);
/* Registers a tunnel among the worker's live connections. */
void tunnel_watch(struct tunnel *t);
void tunnel_hold(struct tunnel *t);
void tunnel_put(struct tunnel *t);

/* inbound.c: a CONNECT arrived on a 15008 connection; it is dialled by
 * inbound_start_awaiting() once the read batch it came in is done, so a
 * stream the peer resets in the same batch never reaches the pod. */
void inbound_request(void *link, int32_t stream, const char *authority);
void inbound_start_awaiting(struct link *l);
void tunnel_link_ready(struct tunnel *t);
void tunnel_link_failed(struct tunnel *t, enum tm_reason reason, const char *why);
void tunnel_unblock(struct tunnel *t);
extern const struct hbone_events tunnel_events;

#endif
