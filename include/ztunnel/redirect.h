/* Map keys, values and counters shared by bpf/redirect.bpf.c and the agent's
 * capture code. Fixed-width types only: this header is compiled both by
 * clang -target bpf (with vmlinux.h) and by the host compiler. */
#ifndef ZTUNNEL_REDIRECT_H
#define ZTUNNEL_REDIRECT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Packet mark that policy routing sends to the local table (DESIGN.md §1):
 * the default of --fwmark (with --fwmark-mask 0xf00, --route-table 100),
 * and what the program sets if zt_mark holds none. */
#define ZT_MARK 0x400
/* SO_MARK of the agent's own upstream sockets (Istio's PACKET_MARK, 1337),
 * which the policy rule must not match: tells its connections from the
 * node's own. */
#define ZT_AGENT_MARK 0x539

#define ZT_PORT_OUTBOUND 15001
#define ZT_PORT_INBOUND_PLAIN 15006
#define ZT_PORT_HBONE 15008

/* Slots of the zt_listeners SOCKMAP. */
enum zt_listener {
	ZT_LISTEN_OUTBOUND = 0,
	ZT_LISTEN_HBONE = 1,
	ZT_LISTEN_PLAIN = 2,
	ZT_LISTEN_MAX,
};

/* Every verdict of the program, counted in zt_stats and exported as the
 * "reason" label of a metric (Cilium-style drop/redirect reasons). Append
 * only: the numbers are the map keys of running agents' pinned stats. */
enum zt_stat {
	ZT_STAT_PASSED = 0,             /* TCP not for capture (no enrolled side) */
	ZT_STAT_NOT_TCP4,               /* not IPv4 TCP: never touched */
	ZT_STAT_ASSIGNED_ESTABLISHED,   /* segment of a node socket (agent's transparent legs) */
	ZT_STAT_CAPTURED_OUTBOUND,      /* SYN from an enrolled pod -> 15001 */
	ZT_STAT_CAPTURED_INBOUND_HBONE, /* SYN to an enrolled pod's 15008 -> 15008 */
	ZT_STAT_CAPTURED_INBOUND_PLAIN, /* other SYN to an enrolled pod -> 15006 */
	ZT_STAT_CAPTURED_SERVICE,       /* SYN to a VIP with enrolled endpoints -> 15001 */
	ZT_STAT_SPOOFED_SOURCE_DROPPED, /* pod IP arriving on another interface */
	ZT_STAT_NO_LISTENER_DROPPED,    /* should be captured, agent not listening (fail closed) */
	ZT_STAT_ASSIGN_FAILED_DROPPED,  /* bpf_sk_assign refused (fail closed) */
	ZT_STAT_NODE_ADDRESS_PASSED,    /* SYN to one of the node's own addresses */
	ZT_STAT_IPV6_DROPPED,           /* IPv6 TCP from or to an enrolled pod: not captured yet, fail closed */
	ZT_STAT_NODE_ORIGINATED,        /* enrolled pod accepted a connection opened on the node (exempt) */
	ZT_STAT_NODE_STRICT_REFUSED,    /* --node-traffic probes-only: a node process's connect to a STRICT pod refused */
	ZT_STAT_CAPTURED_INBOUND_HBONE_REUSED, /* SYN to 15008 on a 4-tuple in TIME_WAIT: to that socket, so the kernel recycles it */
	ZT_STAT_MAX,
};

/* zt_pods value, keyed by IPv4 address in network byte order. */
struct zt_pod {
	__u32 ifindex;  /* node-side veth the pod's packets must arrive on */
	__u8 enrolled;  /* 1 when the pod is in the ambient mesh */
	__u8 strict;    /* its PeerAuthentication refuses plaintext (workload level) */
	__u8 pad[2];
};

/* zt_node_policy, entry 0 (--node-traffic probes-only): connections opened
 * on the node to a STRICT pod are refused unless the process is in the
 * kubelet's cgroup (cgroup v2 id at that depth). */
struct zt_node_policy {
	__u64 kubelet_cgroup_id;
	__u64 node_netns_cookie; /* only sockets of the node's namespace are judged */
	__u32 kubelet_cgroup_level;
	__u32 enabled;
};

/* zt_veths value, keyed by the ifindex of a pod's node-side veth. */
struct zt_veth {
	__u8 enrolled;
	__u8 pad[3];
};

/* zt_services key: a service VIP and port (network byte order). */
struct zt_svc_key {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

/* zt_services key address standing for 127.0.0.0/8: nodePorts and
 * hostPorts the node also DNATs on loopback (kube-proxy's localhost
 * nodePorts, portmap), judged by --node-traffic probes-only only (no
 * packet on a tc hook carries it). */
#define ZT_SVC_LOOPBACK 0

struct zt_svc {
	__u8 enrolled;     /* some endpoint is an enrolled pod */
	__u8 strict_local; /* some endpoint is an enrolled STRICT pod of this node */
	__u8 pad[2];
};

#define ZT_MAX_NODE_ADDRS 16

/* zt_mark map, entry 0: the mark set on captured packets (--fwmark); 0
 * (an older agent's maps): ZT_MARK. Its own map, so maps pinned by an older
 * agent stay reusable across an upgrade. */

/* zt_config map, entry 0: node addresses are never captured as destinations. */
struct zt_bpf_config {
	__u32 node_addrs[ZT_MAX_NODE_ADDRS];
	__u32 n_node_addrs;
};

#endif
