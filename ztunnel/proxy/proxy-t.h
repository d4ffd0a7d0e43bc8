/* Internal to ztunnel/proxy: the types of relayed connections, HBONE
 * links and tunnels, and the worker that owns them (each file's functions
 * are in its own header). Everything here belongs to one worker thread. */
#ifndef ZTUNNEL_PROXY_T_H
#define ZTUNNEL_PROXY_T_H

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
/* Where a connection's next read lands: a 64 KiB chunk while it moves
 * bulk; otherwise a small buffer the kernel picks from the worker's ring
 * when data arrives, so a connection waiting for data holds none (without
 * a ring, on older kernels, or when it ran dry: one of its own). */
struct rxbuf {
	struct chunk *chunk;
	uint8_t *small;
	uint32_t held;   /* the ring buffer holding unconsumed bytes: id + 1; 0: none */
	bool bulk, starved;
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
	/* "namespace/name" of both ends and the service's hostname, in one
	 * exact-size block ("src\0dst\0service\0"), and the policy that decided
	 * (inbound): owned, NULL when none (conn_info_set_names, conn_info_release).
	 * An idle connection keeps tens of bytes here, not 600. */
	char *names, *policy;
	/* Authenticated or presented identities (NULL: plaintext): interned. */
	const struct zt_identity *src_id, *dst_id;
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
	/* Extra CONNECT request (outbound) or response (inbound) headers: held
	 * only until the stream is open (an idle tunnel keeps none). */
	struct hbone_header *hdrs;
	size_t n_hdrs;
	/* outbound */
	struct hbone_pool_key key;
	bool dialer; /* opened the link it waits on; its stream is reserved at handshake */
	bool retried; /* refused unprocessed once (GOAWAY race) and sent again */
	char *error;  /* a formatted reason it failed (owned), for info.error */
};

/* An HBONE connection: TCP + TLS 1.3 + HTTP/2, client or server. */
struct link {
	struct worker *w;
	struct link *prev, *next; /* worker->links */
	struct link *wait_prev, *wait_next; /* worker->waiting, while admitted */
	int fd;
	int pending;              /* ring operations and holds */
	bool server, connected, handshaken, dead, draining;
	/* client: done and its GOAWAY sent; waits (until then) for the peer to
	 * close first, so that the peer, not we, keeps the TIME_WAIT: our
	 * ports to it stay free for the next dials (0: not waiting) */
	int64_t closing_deadline_ms;
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
	bool tls_failed;          /* a write into the session failed: the link must go */
	struct tunnel *tunnels;
	uint32_t n_blocked;       /* tunnels waiting for room in their stream */
	uint32_t n_awaiting;      /* server: streams to dial once the read batch is done */
	/* Server: streams the peer reset before they were served (rapid reset,
	 * CVE-2023-44487): a budget refilled over time, and what was logged. */
	double reset_budget;
	int64_t reset_budget_ms;
	double stream_budget;     /* server: new streams it may still open now (--max-stream-rate) */
	int64_t stream_budget_ms;
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
	const struct zt_identity *id;
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
	struct route_node node; /* its own copy of the node's addresses */
	uint32_t node_addrs[ZT_MAX_NODE_ADDRS];
	unsigned node_gen;
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
	struct loop_bufs rx_ring;  /* small receive buffers (struct rxbuf) */
	unsigned seed;
	struct hbone_pool pool;
	struct link *links;
	/* Admitted inbound links still in their handshake, oldest first. */
	struct link *waiting, *waiting_tail;
	struct tls_cache tls;
	struct op tick_op;
	struct __kernel_timespec tick;
	struct watch *watched;     /* live connections */
	uint32_t n_parked;         /* of those, waiting for state (watch_park) */
	uint64_t policy_generation;
	atomic_uint live; /* during a drain: connections left, as of the last tick */
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
	atomic_int_fast64_t last_rate_log_ms;
	/* The node's addresses (nodePorts, hostPorts), as the control thread
	 * last saw them; each worker copies them when node_gen moves. */
	pthread_mutex_t node_lock;
	uint32_t node_addrs[ZT_MAX_NODE_ADDRS], n_node_addrs;
	atomic_uint node_gen;
	atomic_uint links_freed;    /* since the last malloc_trim */
	atomic_int_fast64_t last_refusal_log_ms;
	atomic_int_fast64_t last_evict_log_ms;
	atomic_bool draining; /* proxy_drain was called */
	atomic_bool handed_over; /* the listeners went to a successor */
	struct worker *workers;
	int n_workers;
	pthread_mutex_t list_lock; /* one admin request at a time */
};

#endif
