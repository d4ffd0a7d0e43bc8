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
#include <netinet/in.h>

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
	uint8_t refusal;      /* enum tm_reason of either */
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


struct proxy;
struct cert_share;

/* One live connection as the admin API lists it. */
struct proxy_conn_view {
	uint8_t dir; /* enum proxy_direction */
	bool hbone;
	struct sockaddr_in src, up, hbone_peer;
	uint64_t bytes_up, bytes_down; /* client -> server, server -> client */
	int64_t age_ms;
	char src_name[160], dst_name[160], service[160];
	char src_identity[300], dst_identity[300], policy[128];
};

struct proxy_conn_list {
	struct proxy_conn_view *v;
	size_t n;
	int workers, answered; /* workers that answered within the time given */
	bool truncated;        /* more than PROXY_LIST_MAX */
};

#define PROXY_LIST_MAX 10000

/* Asks every worker for its live connections; each answers on its next
 * tick (within 200 ms), nothing on the data path waits or locks. Waits
 * up to timeout_ms. 0 or -errno; free the list with proxy_conn_list_free. */
int proxy_connections(struct proxy *p, struct proxy_conn_list *out, int timeout_ms);
void proxy_conn_list_free(struct proxy_conn_list *l);
int proxy_workers(const struct proxy *p);

/* What the agent hands the data path: the proxy never calls capture or
 * enrollment itself. */
struct proxy_env {
	local_pod_fn pods; /* this node's pod table */
	void *pods_ctx;
	const uint32_t *node_addrs; /* network order: for nodePorts and hostPorts */
	uint32_t n_node_addrs;
	/* Puts the listener fd of dir where captured SYNs are steered. */
	int (*listen)(void *ctx, enum proxy_direction dir, int fd);
	void *listen_ctx;
};

/* Creates the listeners (one per worker, SO_REUSEPORT), has the first of
 * each port registered (env->listen) and starts the workers. certs is
 * NULL without an identity provider: then nothing is tunnelled and 15008
 * refuses every handshake. */
struct handover_fds;
/* adopt: the listeners a predecessor handed over (handover.h), taken
 * instead of new ones (the descriptors become the proxy's); NULL: new. */
int proxy_start(struct proxy **out, const struct zt_config *cfg, struct state_store *store,
		const struct proxy_env *env, struct cert_share *certs, struct handover_fds *adopt);
/* The listening sockets (still the proxy's), for a successor. */
void proxy_listeners(const struct proxy *p, struct handover_fds *out);
/* A successor has the listeners: stop accepting from them (within a tick). */
void proxy_handed_over(struct proxy *p);
/* Starts the drain (SPEC §10): HBONE peers get GOAWAY, pooled
 * connections take no new streams, live connections run on (and new ones
 * are still accepted: a SYN already steered to our listeners is served,
 * not reset). */
void proxy_drain(struct proxy *p);
/* The node's addresses changed (nodePorts and hostPorts on them): the
 * workers take the new set on their next tick. */
void proxy_set_node_addrs(struct proxy *p, const uint32_t *addrs, uint32_t n);
/* During a drain: connections and HBONE connections still open, as the
 * workers last counted them (within 200 ms); -EAGAIN until each counted. */
int64_t proxy_live(struct proxy *p);
/* Stops the workers; what is still open is reset and logged. */
void proxy_stop(struct proxy *p);

int proxy_listen_transparent(uint16_t port, bool reuseport);
int proxy_upstream_socket(uint32_t bind_ip);
struct sockaddr_in;
int proxy_socket_addrs(int fd, struct sockaddr_in *peer, struct sockaddr_in *local);

#endif
