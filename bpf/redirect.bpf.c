// SPDX-License-Identifier: GPL-2.0
/* tc ingress program on every pod veth and on the node's uplinks: steers
 * the TCP of enrolled pods to the agent's listeners and the replies of the
 * agent's transparent sockets back to them (DESIGN.md §1). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ztunnel/redirect.h"

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_UNSPEC (-1)
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET6 10
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Maps are pinned by name under the agent's --bpf-pin-dir, so a restarted
 * agent (or a newer program) keeps the same state. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct zt_pod);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_pods SEC(".maps");

/* Node-originated connections (node processes, hostNetwork pods, the
 * kubelet's probes) that enrolled pods accepted, per pod IP: they never
 * cross a tc ingress hook on the way in and are exempt, as in Istio's
 * ambient mode; counted so an operator sees them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_node_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_node_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_node_policy SEC(".maps");

/* Every pod veth of the node (ifindex): IPv6 has no pod map yet, so it is
 * judged by the interface it comes from or would leave by. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct zt_veth);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_veths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct zt_svc_key);
	__type(value, struct zt_svc);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_bpf_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_config SEC(".maps");

/* A packet that is not ours goes on to the next program on the hook (TCX:
 * TCX_NEXT; clsact: the next filter), so the primary network's own tc or
 * TCX programs still see it; with none, the kernel passes it. Ours (steered
 * to a listener) end here with TC_ACT_OK, or are dropped. */
#define ZT_NOT_OURS TC_ACT_UNSPEC

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_mark SEC(".maps");

static __always_inline __u32 capture_mark(void)
{
	__u32 zero = 0, *m = bpf_map_lookup_elem(&zt_mark, &zero);

	return m && *m ? *m : ZT_MARK;
}

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, ZT_LISTEN_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zt_listeners SEC(".maps");

/* Conntrack lookups (kfuncs, kernel >= 6.0): see established_behind_dnat. */
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple_sz,
					 struct bpf_ct_opts *opts, __u32 opts_sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

static __always_inline void count(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&zt_stats, &reason);

	if (n)
		*n += 1;
}

static __always_inline bool is_node_addr(__u32 daddr)
{
	__u32 zero = 0;
	struct zt_bpf_config *cfg = bpf_map_lookup_elem(&zt_config, &zero);

	if (!cfg)
		return false;
	for (int i = 0; i < ZT_MAX_NODE_ADDRS; i++) {
		if (i >= cfg->n_node_addrs)
			break;
		if (cfg->node_addrs[i] == daddr)
			return true;
	}
	return false;
}

/* Hands the SYN to a listener; no listener means the agent is down and the
 * connection must fail, never bypass the mesh. */
static __always_inline int assign(struct __sk_buff *skb, __u32 slot, __u32 reason)
{
	struct bpf_sock *sk = bpf_map_lookup_elem(&zt_listeners, &slot);
	long r;

	if (!sk) {
		count(ZT_STAT_NO_LISTENER_DROPPED);
		return TC_ACT_SHOT;
	}
	r = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (r) {
		count(ZT_STAT_ASSIGN_FAILED_DROPPED);
		return TC_ACT_SHOT;
	}
	/* Policy routing sends marked packets to the local table. */
	skb->mark = capture_mark();
	count(reason);
	return TC_ACT_OK;
}

static __always_inline bool enrolled_veth(__u32 ifindex)
{
	struct zt_veth *v = bpf_map_lookup_elem(&zt_veths, &ifindex);

	return v && v->enrolled;
}

/* True when the IPv6 packet carries TCP, or when that cannot be told
 * (fragments, ESP/AH, too many extension headers): fail closed. */
static __always_inline bool ipv6_maybe_tcp(struct __sk_buff *skb, struct ipv6hdr *ip6, void *end)
{
	__u8 next = ip6->nexthdr;
	__u32 off = sizeof(struct ethhdr) + sizeof(*ip6);

	for (int i = 0; i < 4; i++) {
		switch (next) {
		case IPPROTO_TCP:
			return true;
		case 0: /* hop-by-hop */
		case 43: /* routing */
		case 60: { /* destination options */
			__u8 hdr[2];
			if (bpf_skb_load_bytes(skb, off, hdr, sizeof(hdr)))
				return true;
			next = hdr[0];
			off += (hdr[1] + 1) * 8;
			break;
		}
		case 58: /* ICMPv6 (neighbour discovery keeps working) */
		case 59: /* no next header */
		case IPPROTO_UDP:
			return false;
		default:
			return true;
		}
	}
	(void)end;
	return true;
}

/* IPv6 is not captured yet (DESIGN.md §1): its TCP from an enrolled pod's
 * veth, or routed to one, is dropped and counted instead of passing
 * around mTLS and policy. */
static __always_inline int ipv6_ingress(struct __sk_buff *skb, void *data, void *end)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

	if ((void *)(ip6 + 1) > end || !ipv6_maybe_tcp(skb, ip6, end)) {
		count(ZT_STAT_NOT_TCP4);
		return ZT_NOT_OURS;
	}
	if (enrolled_veth(skb->ingress_ifindex)) {
		count(ZT_STAT_IPV6_DROPPED);
		return TC_ACT_SHOT;
	}
	struct bpf_fib_lookup fib = { .family = AF_INET6, .ifindex = skb->ingress_ifindex };
	__builtin_memcpy(fib.ipv6_src, &ip6->saddr, sizeof(fib.ipv6_src));
	__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, sizeof(fib.ipv6_dst));
	long r = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if ((r == BPF_FIB_LKUP_RET_SUCCESS || r == BPF_FIB_LKUP_RET_NO_NEIGH) && enrolled_veth(fib.ifindex)) {
		count(ZT_STAT_IPV6_DROPPED);
		return TC_ACT_SHOT;
	}
	count(ZT_STAT_NOT_TCP4);
	return ZT_NOT_OURS;
}

/* A captured frontend (VIP, nodePort, hostPort, external IP) is DNATed by
 * kube-proxy after tc ingress, so our socket for it is keyed by the pod
 * address kube-proxy chose while the client's later segments still carry
 * the frontend. Conntrack knows the rewrite: find our socket by the
 * connection's post-DNAT destination. Only for frontends of mesh services
 * (zt_services), so nothing else pays for the lookup. */
static __always_inline int established_behind_dnat(struct __sk_buff *skb, struct iphdr *ip, struct tcphdr *tcp)
{
	struct zt_svc_key key = { .addr = ip->daddr, .port = tcp->dest };
	struct zt_svc *svc = bpf_map_lookup_elem(&zt_services, &key);
	struct bpf_ct_opts opts = { .netns_id = BPF_F_CURRENT_NETNS, .l4proto = IPPROTO_TCP };
	struct bpf_sock_tuple t = {
		.ipv4 = { .saddr = ip->saddr, .daddr = ip->daddr, .sport = tcp->source, .dport = tcp->dest },
	};

	if (!svc || !svc->enrolled)
		return -1;
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, &t, sizeof(t.ipv4), &opts, sizeof(opts));
	if (!ct)
		return -1;
	t.ipv4.daddr = ct->tuplehash[IP_CT_DIR_REPLY].tuple.src.u3.ip;
	t.ipv4.dport = ct->tuplehash[IP_CT_DIR_REPLY].tuple.src.u.tcp.port;
	bpf_ct_release(ct);
	if (t.ipv4.daddr == ip->daddr && t.ipv4.dport == tcp->dest)
		return -1; /* not rewritten */
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return -1;
	if (sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_TIME_WAIT) {
		bpf_sk_release(sk);
		return -1;
	}
	long r = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (r)
		return -1;
	skb->mark = capture_mark();
	count(ZT_STAT_ASSIGNED_ESTABLISHED);
	return TC_ACT_OK;
}

SEC("tc")
int zt_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 ihl;

	if ((void *)(eth + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ipv6_ingress(skb, data, end);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_TCP || (ip->frag_off & bpf_htons(IP_OFFSET))) {
		count(ZT_STAT_NOT_TCP4);
		return ZT_NOT_OURS;
	}
	ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip) || ihl > 60) {
		count(ZT_STAT_NOT_TCP4);
		return ZT_NOT_OURS;
	}
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > end) {
		count(ZT_STAT_NOT_TCP4);
		return ZT_NOT_OURS;
	}

	/* Anti-spoofing for every segment, not only SYNs: a pod must not
	 * inject into another pod's established agent connection (it would
	 * leave in HBONE under the victim's identity). */
	__u32 saddr = ip->saddr, daddr = ip->daddr;
	struct zt_pod *src = bpf_map_lookup_elem(&zt_pods, &saddr);
	if (src && src->ifindex != skb->ingress_ifindex) {
		count(ZT_STAT_SPOOFED_SOURCE_DROPPED);
		return TC_ACT_SHOT;
	}

	/* A socket of this node owns the 4-tuple (the agent's transparent
	 * legs, whose addresses are not local): deliver to it. */
	struct bpf_sock_tuple tuple = {
		.ipv4 = { .saddr = ip->saddr, .daddr = ip->daddr,
			  .sport = tcp->source, .dport = tcp->dest },
	};
	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4),
						 BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		/* An enrolled pod answering a SYN that a socket of the node
		 * other than the agent's sent (its SYN-ACK comes back through
		 * here to that socket). */
		if (tcp->syn && tcp->ack && src && src->enrolled) {
			struct bpf_sock *full = bpf_sk_fullsock(sk);
			if (full && full->mark != ZT_AGENT_MARK) {
				__u64 one = 1, *n = bpf_map_lookup_elem(&zt_node_conns, &saddr);
				if (n)
					__sync_fetch_and_add(n, 1);
				else
					bpf_map_update_elem(&zt_node_conns, &saddr, &one, BPF_NOEXIST);
				count(ZT_STAT_NODE_ORIGINATED);
			}
		}
		/* A new HBONE SYN on the 4-tuple of one of our closed
		 * connections still in TIME_WAIT (a peer agent dialling at a
		 * high rate reuses its ports): the kernel's TIME_WAIT handling
		 * must see it, so that it retires the old socket and passes the
		 * SYN to the listener of (pod, 15008), ours. Handed to the
		 * listener directly, the new request collides with the old
		 * socket and is dropped, and the peer's retries with it, until
		 * the TIME_WAIT ends: a minute of failed dials. Only for 15008:
		 * for other ports the listener of (pod, port) the kernel would
		 * look for is not the agent's (nor for 15008 with another
		 * --inbound-port: those SYNs then wait out the TIME_WAIT, as
		 * before). */
		if (sk->state == BPF_TCP_TIME_WAIT && tcp->syn && !tcp->ack && !tcp->rst && !tcp->fin &&
		    tcp->dest == bpf_htons(ZT_PORT_HBONE) && !(src && src->enrolled)) {
			struct zt_pod *to = bpf_map_lookup_elem(&zt_pods, &daddr);
			if (to && to->enrolled && !bpf_sk_assign(skb, sk, 0)) {
				bpf_sk_release(sk);
				skb->mark = capture_mark();
				count(ZT_STAT_CAPTURED_INBOUND_HBONE_REUSED);
				return TC_ACT_OK;
			}
		}
		if (sk->state != BPF_TCP_LISTEN && sk->state != BPF_TCP_TIME_WAIT) {
			long r = bpf_sk_assign(skb, sk, 0);
			bpf_sk_release(sk);
			if (r) {
				count(ZT_STAT_PASSED);
				return ZT_NOT_OURS;
			}
			skb->mark = capture_mark();
			count(ZT_STAT_ASSIGNED_ESTABLISHED);
			return TC_ACT_OK;
		}
		bpf_sk_release(sk);
	}

	if (!tcp->syn || tcp->ack) {
		if (established_behind_dnat(skb, ip, tcp) == TC_ACT_OK)
			return TC_ACT_OK;
		count(ZT_STAT_PASSED);
		return ZT_NOT_OURS;
	}
	/* kube-proxy (or the portmap plugin) DNATs a nodePort or hostPort on
	 * the node's addresses after tc ingress, straight to a pod and around
	 * its inbound checks: capture those frontends of mesh services like a
	 * VIP. Other node-local destinations never: a transparent upstream to
	 * one would have its reply routed locally, not to the agent. */
	if (is_node_addr(ip->daddr)) {
		struct zt_svc_key nkey = { .addr = ip->daddr, .port = tcp->dest };
		struct zt_svc *nsvc = bpf_map_lookup_elem(&zt_services, &nkey);
		if (nsvc && nsvc->enrolled)
			return assign(skb, ZT_LISTEN_OUTBOUND, ZT_STAT_CAPTURED_SERVICE);
		count(ZT_STAT_NODE_ADDRESS_PASSED);
		return ZT_NOT_OURS;
	}
	if (src && src->enrolled)
		return assign(skb, ZT_LISTEN_OUTBOUND, ZT_STAT_CAPTURED_OUTBOUND);
	struct zt_pod *dst = bpf_map_lookup_elem(&zt_pods, &daddr);
	if (dst && dst->enrolled) {
		if (tcp->dest == bpf_htons(ZT_PORT_HBONE))
			return assign(skb, ZT_LISTEN_HBONE, ZT_STAT_CAPTURED_INBOUND_HBONE);
		return assign(skb, ZT_LISTEN_PLAIN, ZT_STAT_CAPTURED_INBOUND_PLAIN);
	}
	/* kube-proxy DNATs a ClusterIP after tc ingress: capture by VIP, or a
	 * non-mesh client would reach an enrolled pod around inbound policy. */
	struct zt_svc_key key = { .addr = daddr, .port = tcp->dest };
	struct zt_svc *svc = bpf_map_lookup_elem(&zt_services, &key);
	if (svc && svc->enrolled)
		return assign(skb, ZT_LISTEN_OUTBOUND, ZT_STAT_CAPTURED_SERVICE);
	count(ZT_STAT_PASSED);
	return ZT_NOT_OURS;
}

/* --node-traffic probes-only, attached to the node's cgroup: a connection
 * opened on the node never crosses a tc ingress hook, so it is judged at
 * connect(): to an enrolled pod of this node whose PeerAuthentication is
 * STRICT, or to a frontend (ClusterIP, nodePort, hostPort, on loopback
 * too: kube-proxy's OUTPUT DNAT follows this hook) with such a pod among
 * its endpoints, only the kubelet (its probes) may connect; anyone else
 * gets EPERM, as plaintext under STRICT is refused. */
static __always_inline int node_connect(struct bpf_sock_addr *ctx, __u32 dst)
{
	__u32 zero = 0;
	struct zt_node_policy *pol = bpf_map_lookup_elem(&zt_node_policy, &zero);

	if (!pol || !pol->enabled || ctx->protocol != IPPROTO_TCP)
		return 1;
	/* Pods' own sockets (their namespaces) and the agent's (its mark) are
	 * judged by capture, not here. */
	if (bpf_get_netns_cookie(ctx) != pol->node_netns_cookie)
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (sk && sk->mark == ZT_AGENT_MARK)
		return 1;
	struct zt_pod *pod = bpf_map_lookup_elem(&zt_pods, &dst);
	bool loopback = (bpf_ntohl(dst) >> 24) == 127;
	struct zt_svc_key key = { .addr = loopback ? ZT_SVC_LOOPBACK : dst, .port = (__u16)ctx->user_port };
	struct zt_svc *svc = pod ? NULL : bpf_map_lookup_elem(&zt_services, &key);
	if (!(pod && pod->enrolled && pod->strict) && !(svc && svc->strict_local))
		return 1;
	if (pol->kubelet_cgroup_id &&
	    bpf_get_current_ancestor_cgroup_id((int)pol->kubelet_cgroup_level) == pol->kubelet_cgroup_id)
		return 1;
	count(ZT_STAT_NODE_STRICT_REFUSED);
	return 0;
}

SEC("cgroup/connect4")
int zt_node_connect(struct bpf_sock_addr *ctx)
{
	return node_connect(ctx, ctx->user_ip4);
}

/* An IPv6 socket reaches IPv4 pods through v4-mapped addresses
 * (::ffff:a.b.c.d): the same judgement. */
SEC("cgroup/connect6")
int zt_node_connect6(struct bpf_sock_addr *ctx)
{
	if (ctx->user_ip6[0] || ctx->user_ip6[1] || ctx->user_ip6[2] != bpf_htonl(0xffff))
		return 1;
	return node_connect(ctx, ctx->user_ip6[3]);
}

char LICENSE[] SEC("license") = "GPL";
