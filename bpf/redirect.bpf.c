// SPDX-License-Identifier: GPL-2.0
/* tc ingress program on pod veths and node uplinks: steers captured TCP to
 * the agent's listeners (DESIGN.md §1). This is the foundation build: maps
 * and stats are in place; the capture logic arrives with issue 3/10. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ztunnel/redirect.h"

#define TC_ACT_OK 0
#define ETH_P_IP 0x0800

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} zt_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct zt_pod);
} zt_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zt_config);
} zt_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, ZT_LISTEN_MAX);
	__type(key, __u32);
	__type(value, __u64);
} zt_listeners SEC(".maps");

static __always_inline void count(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&zt_stats, &reason);

	if (n)
		*n += 1;
}

SEC("tc")
int zt_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_TCP) {
		count(ZT_STAT_NOT_TCP4);
		return TC_ACT_OK;
	}
	count(ZT_STAT_PASSED);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
