/* The data path: io_uring workers accepting captured connections on the
 * outbound (15001), inbound HBONE (15008) and inbound plaintext (15006)
 * listeners. Mesh-to-mesh traffic is carried over pooled HBONE (mutual
 * TLS 1.3 + HTTP/2 CONNECT); everything else is relayed as plain TCP with
 * the source pod's IP (transparent). */
#ifndef ZTUNNEL_PROXY_H
#define ZTUNNEL_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ztunnel/config.h"
#include "ztunnel/redirect.h"
#include "ztunnel/state.h"

/* Looks up a pod of this node by IPv4 (network order); 0 when found. */
typedef int (*local_pod_fn)(void *ctx, uint32_t ip, struct zt_pod *out);

enum route_verdict {
	ROUTE_CONNECT = 0,
	ROUTE_REFUSE,
	/* An enrolled pod of this node the snapshot does not list yet (it
	 * started before the snapshot caught up): its identity is unknown,
	 * ask again shortly (SPEC §3.1 step 3 waits up to 5 s). */
	ROUTE_WAIT,
};

enum proxy_direction {
	PROXY_OUTBOUND = 0,
	PROXY_INBOUND_PLAIN,
	PROXY_INBOUND_HBONE,
	PROXY_DIRECTIONS,
};

/* Decision for one accepted connection (sans-IO: pure over the model and
 * the local pod table). Addresses and ports in network byte order. */
struct route {
	uint8_t verdict;
	const char *reason;   /* why refused (or waiting), for logs */
	const char *gave_up;  /* ROUTE_WAIT: the refusal once the wait is over */
	uint32_t upstream_ip;
	uint16_t upstream_port;
	uint32_t bind_ip;     /* transparent source; 0: do not spoof */
	const struct zt_workload *src, *dst; /* NULL when unknown to the model */
	const struct zt_service *service;
	bool hbone; /* destination is in the mesh: tunnel to upstream_ip:15008 */
	/* The upstream is an enrolled pod of this node: unless the connection
	 * goes over HBONE (whose 15008 side checks it), it must pass exactly
	 * the plaintext inbound checks (SPEC §3.3), whatever its source. */
	bool local_dst;
};

/* This node, for the frontends it forwards: nodePorts and hostPorts on
 * its own addresses. */
struct route_node {
	const char *name;
	const uint32_t *addrs; /* network order */
	uint32_t n_addrs;
};

/* node may be NULL (no node-address frontends). */
void route_outbound(const struct zt_model *m, local_pod_fn pods, void *ctx, const struct route_node *node,
		    uint32_t src_ip, uint32_t dst_ip, uint16_t dst_port, unsigned *seed, struct route *out);
/* 15001/15006/15008 (host order): as destinations they would loop
 * through ourselves (SPEC §1 "illegal ports"). */
bool route_reserved_port(uint16_t port);
void route_inbound_plain(const struct zt_model *m, local_pod_fn pods, void *ctx, uint32_t src_ip,
			 uint32_t dst_ip, uint16_t dst_port, struct route *out);

/* Counters exported as metrics from issue 9/13. */
struct proxy_stats {
	atomic_uint_fast64_t accepted[PROXY_DIRECTIONS];
	atomic_uint_fast64_t refused[PROXY_DIRECTIONS];
	atomic_uint_fast64_t connect_failed[PROXY_DIRECTIONS];
	atomic_uint_fast64_t completed[PROXY_DIRECTIONS];
	atomic_uint_fast64_t reset[PROXY_DIRECTIONS];
	atomic_uint_fast64_t bytes_up[PROXY_DIRECTIONS];   /* client -> server */
	atomic_uint_fast64_t bytes_down[PROXY_DIRECTIONS]; /* server -> client */
	atomic_int_fast64_t active;
	/* HBONE connections: [0] dialled (client), [1] accepted (server). */
	atomic_uint_fast64_t hbone_opened[2];
	atomic_uint_fast64_t hbone_failed[2]; /* TCP, TLS or HTTP/2 setup failed */
	atomic_int_fast64_t hbone_active[2];
	atomic_uint_fast64_t hbone_streams[2];
	atomic_uint_fast64_t hbone_refused;   /* CONNECT answered 400/401/503 */
	atomic_uint_fast64_t denied[PROXY_DIRECTIONS]; /* by AuthorizationPolicy / PeerAuthentication */
	atomic_uint_fast64_t revoked;         /* closed by a policy change */
	/* Inbound HBONE connections closed before their handshake because the
	 * node-wide [0] or the per-source [1] cap of unauthenticated
	 * connections was reached. */
	atomic_uint_fast64_t handshake_refused[2];
	atomic_uint_fast64_t hbone_reset_unserved; /* streams reset by the peer before we served them */
	atomic_uint_fast64_t peer_streams_refused;  /* over --max-streams-per-peer */
	atomic_uint_fast64_t peer_connections_refused; /* over --max-connections-per-peer */
	atomic_uint_fast64_t idle_closed;           /* inbound streams closed by --stream-idle-timeout */
	atomic_uint_fast64_t peer_throttled;        /* times a peer's connection paused over --peer-buffer-mb */
};

struct proxy;
struct capture;
struct cert_share;

/* Creates the listeners (one per worker, SO_REUSEPORT), registers the first
 * of each port in the capture SOCKMAP and starts the workers. certs is
 * NULL without an identity provider: then nothing is tunnelled and 15008
 * refuses every handshake. */
int proxy_start(struct proxy **out, const struct zt_config *cfg, struct state_store *store,
		struct capture *capture, struct cert_share *certs);
void proxy_stop(struct proxy *p);
const struct proxy_stats *proxy_stats(const struct proxy *p);

int proxy_listen_transparent(uint16_t port);
int proxy_upstream_socket(uint32_t bind_ip);
struct sockaddr_in;
int proxy_socket_addrs(int fd, struct sockaddr_in *peer, struct sockaddr_in *local);

#endif
