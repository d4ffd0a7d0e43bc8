/* Netlink with libmnl: policy routing for captured packets and the node's
 * own addresses. Only ever touches the agent's own network namespace. */
#include "ztunnel/capture.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Sends one request and waits for its ack (or dump replies, fed to cb). */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_ROUTE);
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int r;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	unsigned portid = mnl_socket_get_portid(nl);
	nlh->nlmsg_seq = (unsigned)time(NULL);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
			break;
		}
		r = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, cb, data);
		if (r <= MNL_CB_STOP) {
			r = r < 0 ? -errno : 0;
			break;
		}
	}
out:
	mnl_socket_close(nl);
	return r;
}

/* A message's attributes by type, up to max (libmnl's parse callback). */
struct attrs {
	const struct nlattr **tb;
	uint16_t max;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	struct attrs *t = data;

	if (mnl_attr_type_valid(a, t->max) >= 0)
		t->tb[mnl_attr_get_type(a)] = a;
	return MNL_CB_OK;
}

static void parse_attrs(const struct nlmsghdr *nlh, size_t header, const struct nlattr **tb, uint16_t max)
{
	struct attrs t = { tb, max };

	mnl_attr_parse(nlh, (unsigned)header, attr_cb, &t);
}

/* "fwmark MARK/MASK lookup TABLE", as an add (RTM_NEWRULE) or a delete. */
static int rule_request(const struct capture_routing *rt, uint16_t type, uint16_t flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	frh->table = RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_TABLE, rt->table);
	mnl_attr_put_u32(nlh, FRA_FWMARK, rt->mark);
	mnl_attr_put_u32(nlh, FRA_FWMASK, rt->mask);
	mnl_attr_put_u32(nlh, FRA_PRIORITY, 100);
	return nl_talk(nlh, NULL, NULL);
}

/* "local 0.0.0.0/0 dev lo table TABLE", as an add or a delete. */
static int route_request(const struct capture_routing *rt, uint16_t type, uint16_t flags)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	unsigned lo = if_nametoindex("lo");

	if (!lo)
		return -ENODEV;
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 0;
	rtm->rtm_table = RT_TABLE_UNSPEC;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, rt->table);
	mnl_attr_put_u32(nlh, RTA_OIF, lo);
	return nl_talk(nlh, NULL, NULL);
}

int capture_routing_ensure(const struct capture_routing *rt)
{
	const uint16_t create = NLM_F_CREATE | NLM_F_EXCL;
	int r = rule_request(rt, RTM_NEWRULE, create);

	if (r < 0 && r != -EEXIST)
		return r;
	r = route_request(rt, RTM_NEWROUTE, create);
	return r == -EEXIST ? 0 : r;
}

/* ztunnel uninstall: the rule and the route above, if present (1 each
 * removed, 0 when absent). */
int capture_routing_remove(const struct capture_routing *rt)
{
	int rule = rule_request(rt, RTM_DELRULE, 0);

	if (rule < 0 && rule != -ENOENT)
		return rule;
	int route = route_request(rt, RTM_DELROUTE, 0);
	if (route < 0 && route != -ENOENT && route != -ESRCH)
		return route;
	return (rule == 0) + (route == 0);
}

struct addr_dump {
	uint32_t *addrs, max, n;
	uint32_t *ifs, max_if, n_if;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_dump *d = data;
	struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	char name[IF_NAMESIZE];

	if (ifa->ifa_family != AF_INET || !if_indextoname(ifa->ifa_index, name) || !strcmp(name, "lo"))
		return MNL_CB_OK;
	parse_attrs(nlh, sizeof(*ifa), tb, IFA_MAX);
	if (!tb[IFA_LOCAL] && !tb[IFA_ADDRESS])
		return MNL_CB_OK;
	uint32_t a = mnl_attr_get_u32(tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS]);
	/* ptp CNIs put the same gateway address on every pod's host-side
	 * veth: listed once, or the copies crowd out the node's real ones. */
	bool dup = false;
	for (uint32_t i = 0; i < d->n && !dup; i++)
		dup = d->addrs[i] == a;
	if (!dup && d->n < d->max)
		d->addrs[d->n++] = a;
	bool seen = false;
	for (uint32_t i = 0; i < d->n_if; i++)
		seen |= d->ifs[i] == ifa->ifa_index;
	if (!seen && d->n_if < d->max_if)
		d->ifs[d->n_if++] = ifa->ifa_index;
	return MNL_CB_OK;
}

int capture_local_addrs(uint32_t *addrs, uint32_t max, uint32_t *n, uint32_t *ifindexes,
			uint32_t max_if, uint32_t *n_if)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct addr_dump d = { addrs, max, 0, ifindexes, max_if, 0 };

	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	int r = nl_talk(nlh, addr_cb, &d);
	*n = d.n;
	*n_if = d.n_if;
	return r;
}

struct route_reply {
	uint32_t oif;
	uint8_t dst_len;
	bool gateway;
};

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route_reply *rr = data;
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };

	rr->dst_len = ((const struct rtmsg *)mnl_nlmsg_get_payload(nlh))->rtm_dst_len;
	parse_attrs(nlh, sizeof(struct rtmsg), tb, RTA_MAX);
	if (tb[RTA_OIF])
		rr->oif = mnl_attr_get_u32(tb[RTA_OIF]);
	rr->gateway = tb[RTA_GATEWAY] != NULL;
	return MNL_CB_STOP;
}

int capture_pod_route(uint32_t ip, uint32_t *ifindex)
{
	char buf[MNL_SOCKET_BUFFER_SIZE], name[IF_NAMESIZE], path[64 + IF_NAMESIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct route_reply rr = { 0 };

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	rtm->rtm_flags = RTM_F_FIB_MATCH; /* the matching route itself, with its prefix */
	mnl_attr_put_u32(nlh, RTA_DST, ip);
	int r = nl_talk(nlh, route_cb, &rr);
	if (r < 0)
		return r;
	/* A pod's own veth: a host route (/32) straight to it, not a subnet
	 * (an uplink), not through a gateway, not a bridge (bridge CNIs have no
	 * per-pod interface to attach to). */
	if (!rr.oif || rr.gateway || rr.dst_len != 32 || !if_indextoname(rr.oif, name))
		return -ENOENT;
	snprintf(path, sizeof(path), "/sys/class/net/%s/bridge", name);
	if (access(path, F_OK) == 0)
		return -ENOENT;
	*ifindex = rr.oif;
	return 0;
}

struct rule_scan {
	const struct capture_routing *rt;
	char *why;
	size_t size;
	int conflicts;
};

static void note(struct rule_scan *s, const char *fmt, uint32_t a, uint32_t b, uint32_t c)
{
	size_t n = strlen(s->why);

	if (n + 2 < s->size)
		snprintf(s->why + n, s->size - n, fmt, n ? "; " : "", a, b, c);
	s->conflicts++;
}

/* Another rule that looks at our mark bits, or sends to our table. */
static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rule_scan *s = data;
	const struct nlattr *tb[FRA_MAX + 1] = { 0 };

	parse_attrs(nlh, sizeof(struct fib_rule_hdr), tb, FRA_MAX);
	uint32_t mark = tb[FRA_FWMARK] ? mnl_attr_get_u32(tb[FRA_FWMARK]) : 0;
	uint32_t mask = tb[FRA_FWMASK] ? mnl_attr_get_u32(tb[FRA_FWMASK]) : (tb[FRA_FWMARK] ? 0xffffffff : 0);
	uint32_t table = tb[FRA_TABLE] ? mnl_attr_get_u32(tb[FRA_TABLE]) : 0;
	bool ours = mark == s->rt->mark && mask == s->rt->mask && table == s->rt->table;

	if (ours)
		return MNL_CB_OK;
	/* Our marked packets match their rule, or theirs (mark under a mask
	 * that covers ours) match ours. */
	bool ours_match = (s->rt->mark & mask) == mark;
	bool theirs_match = (mask & s->rt->mask) == s->rt->mask && (mark & s->rt->mask) == s->rt->mark;
	if (tb[FRA_FWMARK] && (ours_match || theirs_match))
		note(s, "%sanother rule uses the same mark: fwmark 0x%x/0x%x lookup %u", mark, mask, table);
	else if (table == s->rt->table)
		note(s, "%sa rule (fwmark 0x%x/0x%x) already sends to table %u", mark, mask, table);
	return MNL_CB_OK;
}

/* Routes in our table other than ours (local default via lo). */
static int table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rule_scan *s = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };

	parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX);
	uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table != s->rt->table || (rtm->rtm_type == RTN_LOCAL && rtm->rtm_dst_len == 0))
		return MNL_CB_OK;
	note(s, "%stable %u holds a route that is not ours (type %u, /%u)", table, rtm->rtm_type, rtm->rtm_dst_len);
	return MNL_CB_OK;
}

int capture_routing_conflicts(const struct capture_routing *rt, char *why, size_t size)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct rule_scan s = { rt, why, size, 0 };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	why[0] = '\0';
	nlh->nlmsg_type = RTM_GETRULE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = AF_INET;
	int r = nl_talk(nlh, rule_cb, &s);
	if (r < 0)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_table = RT_TABLE_UNSPEC;
	if ((r = nl_talk(nlh, table_cb, &s)) < 0)
		return r;
	return s.conflicts;
}

struct capture_addr_monitor {
	struct mnl_socket *nl;
};

int capture_addr_monitor_open(struct capture_addr_monitor **out)
{
	struct capture_addr_monitor *m = calloc(1, sizeof(*m));
	int r;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!m->nl || mnl_socket_bind(m->nl, RTMGRP_IPV4_IFADDR, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		capture_addr_monitor_close(m);
		return r;
	}
	*out = m;
	return 0;
}

int capture_addr_monitor_fd(const struct capture_addr_monitor *m)
{
	return mnl_socket_get_fd(m->nl);
}

int capture_addr_monitor_drain(struct capture_addr_monitor *m)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int events = 0;

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(m->nl, buf, sizeof(buf));
		if (n < 0)
			/* ENOBUFS: events were lost; the caller re-reads them all anyway. */
			return errno == EAGAIN || errno == ENOBUFS ? events + (errno == ENOBUFS) : -errno;
		events++;
	}
}

void capture_addr_monitor_close(struct capture_addr_monitor *m)
{
	if (!m)
		return;
	if (m->nl)
		mnl_socket_close(m->nl);
	free(m);
}
