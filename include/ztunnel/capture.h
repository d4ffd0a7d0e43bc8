/* Traffic capture: the tc program on pod veths and uplinks, its pinned
 * maps, and the policy routing that delivers captured packets locally
 * (DESIGN.md §1). Everything happens in the agent's own (node) netns. */
#ifndef ZTUNNEL_CAPTURE_H
#define ZTUNNEL_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztunnel/redirect.h"

/* Found once at start-up (STYLE: a capability struct, no #ifdef matrix). */
struct capture_caps {
	bool tcx; /* TCX links (kernel >= 6.6); else clsact + bpf_tc_attach */
};

struct capture;

/* Loads the program, creating or reusing the maps pinned in pin_dir, and
 * switches links pinned by an earlier agent to this program. Locks the
 * node (one agent at a time) unless beside: a successor started beside a
 * running agent locks when it takes over (capture_lock). */
int capture_open(struct capture **out, const char *pin_dir, bool beside);
/* Loads the program (the kernel's verifier, its helpers and kfuncs) without
 * pinning or attaching anything: 0, or why not (-errno). */
int capture_probe(void);
/* --attach (enum attach_mode): clsact forces tc filters, tcx forbids the
 * fallback. Before the first attach. */
void capture_set_attach(struct capture *c, int mode);
/* -EBUSY (logged) when another agent holds the node. */
int capture_lock(struct capture *c);
/* The running agent, handing over: the successor locks next. */
void capture_unlock(struct capture *c);
/* Closes our handles; pinned maps and links (capture) stay in place. */
void capture_close(struct capture *c);
const struct capture_caps *capture_caps(const struct capture *c);

/* Attaches to an interface (idempotent: replaces an earlier attachment). */
int capture_attach(struct capture *c, uint32_t ifindex);
int capture_detach(struct capture *c, uint32_t ifindex);
/* 0 when our program is attached to every interface given and every
 * listener is in the SOCKMAP; else -ENOENT and why (readiness). */
int capture_health(struct capture *c, const uint32_t *ifindexes, uint32_t n, char *why, size_t size);
/* Calls fn for each interface with a pinned attachment. */
int capture_for_each_link(struct capture *c, void (*fn)(uint32_t ifindex, void *ctx), void *ctx);

/* zt_pods: ip in network byte order. */
int capture_pod_set(struct capture *c, uint32_t ip, uint32_t ifindex, bool enrolled, bool strict);
int capture_pod_del(struct capture *c, uint32_t ip);
int capture_pod_get(struct capture *c, uint32_t ip, struct zt_pod *out);
/* zt_veths: a pod's node-side veth and whether the pod is enrolled (its
 * IPv6 TCP is dropped until IPv6 is captured). */
int capture_veth_set(struct capture *c, uint32_t ifindex, bool enrolled);
int capture_veth_del(struct capture *c, uint32_t ifindex);
int capture_for_each_pod(struct capture *c, void (*fn)(uint32_t ip, const struct zt_pod *p, void *ctx),
			 void *ctx);

/* zt_services: replaces the whole set (addr, port in network byte order),
 * each key with its value. */
int capture_services_replace(struct capture *c, const struct zt_svc_key *keys, const struct zt_svc *vals,
			     uint32_t n);

int capture_listener_set(struct capture *c, enum zt_listener slot, int fd);
int capture_node_addrs_set(struct capture *c, const uint32_t *addrs, uint32_t n);
/* The node addresses the program knows (at most max); their number or -errno. */
int capture_node_addrs_get(struct capture *c, uint32_t *addrs, uint32_t max);
/* Sums the per-CPU counters. */
int capture_stats_read(struct capture *c, uint64_t out[ZT_STAT_MAX]);
const char *capture_stat_name(enum zt_stat s);

/* The node-side interface a pod IP is routed to directly (ptp-style CNIs:
 * one veth per pod), for pods the agent never heard of from the CNI
 * plugin. -ENOENT: through a gateway, a bridge, or no route. */
int capture_pod_route(uint32_t ip, uint32_t *ifindex);
/* --node-traffic: exempt (Istio's default: connections opened on the node
 * are not captured) or probes-only (the connect hook on node_cgroup, a
 * cgroup v2 directory, refuses them towards STRICT pods unless from
 * kubelet_cgroup). Idempotent; a restarted agent re-points the link. */
int capture_node_traffic(struct capture *c, bool probes_only, const char *node_cgroup,
			 const char *kubelet_cgroup);
/* Policy routing for marked packets, idempotent (libmnl). */
struct capture_routing {
	uint32_t mark, mask, table; /* --fwmark, --fwmark-mask, --route-table */
};
int capture_routing_ensure(const struct capture_routing *rt);
/* Removes that rule and route: how many were there (0-2), or -errno. */
int capture_routing_remove(const struct capture_routing *rt);
/* Rules or routes of others that collide with ours (another CNI's mark
 * bits, our table in use): how many, described in why; -errno. */
int capture_routing_conflicts(const struct capture_routing *rt, char *why, size_t size);
/* The mark the program sets (zt_mark): before capture starts. */
int capture_set_mark(struct capture *c, uint32_t mark);

/* Our clsact filter (kernels without TCX): ingress, this handle and priority. */
#define ZT_TC_HANDLE 0x2a
#define ZT_TC_PRIORITY 1

/* What ztunnel uninstall removed. */
struct capture_removed {
	int links;    /* pinned TCX and cgroup links: detached */
	int filters;  /* clsact filters of our program */
	int pins;     /* pinned maps and programs */
};
/* Removes everything capture left on the node (while no agent runs: -EBUSY
 * if one holds pin_dir): links, clsact filters, pins, the directory. */
int capture_uninstall(const char *pin_dir, struct capture_removed *out);
/* IPv4 addresses of this netns (node addresses) and the interfaces that
 * carry them, excluding loopback. */
int capture_local_addrs(uint32_t *addrs, uint32_t max, uint32_t *n, uint32_t *ifindexes,
			uint32_t max_if, uint32_t *n_if);
/* Changes of the node's IPv4 addresses (rtnetlink RTMGRP_IPV4_IFADDR):
 * poll the fd; drain says how many notices came (the caller then reads
 * the addresses again with capture_local_addrs), or -errno. */
struct capture_addr_monitor;
int capture_addr_monitor_open(struct capture_addr_monitor **out);
int capture_addr_monitor_fd(const struct capture_addr_monitor *m);
int capture_addr_monitor_drain(struct capture_addr_monitor *m);
void capture_addr_monitor_close(struct capture_addr_monitor *m);

#endif
