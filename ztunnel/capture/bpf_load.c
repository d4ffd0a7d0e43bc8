/* Loading, pinning and attaching the redirect program. Maps are pinned by
 * name (libbpf auto-pinning) and links as <pin_dir>/links/if<ifindex>, so
 * capture survives agent restarts (DESIGN.md §1). */
#include "ztunnel/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "redirect.skel.h"
#include "ztunnel/config.h"
#include "ztunnel/log.h"

/* Debian's libbpf 1.1 headers predate TCX (kernel 6.6); the kernel ABI
 * values are stable. */
#define ZT_BPF_TCX_INGRESS 46
/* TCX ordering (kernel >= 6.6 uapi): before every program on the hook. */
#define ZT_BPF_F_BEFORE (1U << 3)

struct capture {
	struct redirect *skel;
	char pin_dir[PATH_MAX];
	char link_dir[PATH_MAX];
	struct capture_caps caps;
	int nprocs;
	int lock_fd; /* the pin directory, flock()ed while this agent runs */
	bool tcx_forced; /* --attach tcx: no fallback to clsact */
	bool adopt_pending; /* opened beside a running agent: its links stay its own until we lock */
};

static const char *const stat_names[ZT_STAT_MAX] = {
	[ZT_STAT_PASSED] = "passed",
	[ZT_STAT_NOT_TCP4] = "not_tcp4",
	[ZT_STAT_ASSIGNED_ESTABLISHED] = "assigned_established",
	[ZT_STAT_CAPTURED_INBOUND_HBONE_REUSED] = "captured_inbound_hbone_time_wait",
	[ZT_STAT_CAPTURED_OUTBOUND] = "captured_outbound",
	[ZT_STAT_CAPTURED_INBOUND_HBONE] = "captured_inbound_hbone",
	[ZT_STAT_CAPTURED_INBOUND_PLAIN] = "captured_inbound_plain",
	[ZT_STAT_CAPTURED_SERVICE] = "captured_service",
	[ZT_STAT_SPOOFED_SOURCE_DROPPED] = "spoofed_source_dropped",
	[ZT_STAT_NO_LISTENER_DROPPED] = "no_listener_dropped",
	[ZT_STAT_ASSIGN_FAILED_DROPPED] = "assign_failed_dropped",
	[ZT_STAT_NODE_ADDRESS_PASSED] = "node_address_passed",
	[ZT_STAT_IPV6_DROPPED] = "ipv6_dropped",
	[ZT_STAT_NODE_ORIGINATED] = "node_originated",
	[ZT_STAT_NODE_STRICT_REFUSED] = "node_strict_refused",
};

const char *capture_stat_name(enum zt_stat s)
{
	return (unsigned)s < ZT_STAT_MAX ? stat_names[s] : "unknown";
}

const struct capture_caps *capture_caps(const struct capture *c)
{
	return &c->caps;
}

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static void link_path(const struct capture *c, uint32_t ifindex, char *buf, size_t size)
{
	snprintf(buf, size, "%s/if%u", c->link_dir, ifindex);
}

/* A pinned link of an earlier agent keeps running its program; point it at
 * ours so an upgrade takes effect. A link whose device is gone is dropped. */
static void adopt_link(uint32_t ifindex, void *ctx)
{
	struct capture *c = ctx;
	char path[PATH_MAX], name[IF_NAMESIZE];

	link_path(c, ifindex, path, sizeof(path));
	int fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	int r = if_indextoname(ifindex, name) ? bpf_link_update(fd, bpf_program__fd(c->skel->progs.zt_ingress), NULL)
					      : -ENODEV;
	if (r < 0) {
		log_info("dropping stale capture link", LF_UINT("ifindex", ifindex), LF_ERRNO(r < 0 ? r : -ENODEV));
		unlink(path);
	}
	close(fd);
}

/* One agent per node: a second one would join the SO_REUSEPORT
 * listeners and take (and break) part of the traffic. The lock goes with
 * the process, so a killed agent never leaves it behind; a rolling restart
 * hands it over (the old agent unlocks as it hands its listeners over). */
int capture_lock(struct capture *c)
{
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0) {
		if (c->adopt_pending) /* our program on the links pinned before us */
			capture_for_each_link(c, adopt_link, c);
		c->adopt_pending = false;
		return 0;
	}
	int r = -errno;
	if (r == -EWOULDBLOCK)
		log_error("another ztunnel agent runs on this node (it holds the BPF pin directory): "
			  "refusing to start",
			  LF_STR("pin_dir", c->pin_dir));
	else
		log_error("cannot lock the BPF pin directory", LF_STR("pin_dir", c->pin_dir), LF_ERRNO(r));
	return r == -EWOULDBLOCK ? -EBUSY : r;
}

void capture_unlock(struct capture *c)
{
	if (!c)
		return;
	flock(c->lock_fd, LOCK_UN);
	/* Whoever locks next switches the pinned links to its program; if we
	 * lock again (a failed handover), we switch them back. */
	c->adopt_pending = true;
}

/* A counters map pinned by an agent of another version has another number
 * of counters, and libbpf would refuse to reuse it (the upgrade would fail
 * to start): it is unpinned, and the counters start again from zero. */
static void drop_stale_stats(const char *pin_dir)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/zt_stats", pin_dir);
	if ((fd = bpf_obj_get(path)) < 0)
		return;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.max_entries != ZT_STAT_MAX) {
		log_info("capture counters of another agent version reset", LF_UINT("had", info.max_entries),
			 LF_UINT("now", ZT_STAT_MAX));
		unlink(path);
	}
	close(fd);
}

int capture_open(struct capture **out, const char *pin_dir, bool beside)
{
	struct capture *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	snprintf(c->pin_dir, sizeof(c->pin_dir), "%s", pin_dir);
	snprintf(c->link_dir, sizeof(c->link_dir), "%s/links", pin_dir);
	c->nprocs = libbpf_num_possible_cpus();
	if ((r = mkdir_p(c->link_dir)) < 0) {
		log_error("cannot create BPF pin directory (is it on a bpffs mount?)",
			  LF_STR("path", c->link_dir), LF_ERRNO(r));
		free(c);
		return r;
	}
	c->lock_fd = open(c->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->lock_fd < 0 || (!beside && (r = capture_lock(c)) < 0)) {
		r = c->lock_fd < 0 ? -errno : r;
		if (c->lock_fd < 0)
			log_error("cannot open the BPF pin directory", LF_STR("pin_dir", c->pin_dir), LF_ERRNO(r));
		else
			close(c->lock_fd);
		free(c);
		return r;
	}
	drop_stale_stats(c->pin_dir);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = c->pin_dir);
	c->skel = redirect__open_opts(&opts);
	if (!c->skel) {
		r = -errno;
		log_error("cannot open BPF object", LF_ERRNO(r));
		capture_close(c);
		return r;
	}
	if ((r = redirect__load(c->skel)) < 0) {
		log_error("cannot load BPF program or reuse pinned maps", LF_STR("pin_dir", pin_dir),
			  LF_ERRNO(r));
		capture_close(c);
		return r;
	}
	/* TCX needs an interface to probe: assumed, and the first attach that
	 * the kernel refuses switches to clsact for good. */
	c->caps.tcx = true;
	c->adopt_pending = beside;
	if (!beside)
		capture_for_each_link(c, adopt_link, c);
	*out = c;
	return 0;
}

int capture_probe(void)
{
	struct redirect *skel = redirect__open();
	struct bpf_map *m;
	int r;

	if (!skel)
		return -errno;
	/* Nothing pinned: a probe leaves no trace on the node. */
	bpf_object__for_each_map(m, skel->obj)
		bpf_map__set_pin_path(m, NULL);
	r = redirect__load(skel);
	redirect__destroy(skel);
	return r;
}

int capture_set_mark(struct capture *c, uint32_t mark)
{
	uint32_t zero = 0;

	return bpf_map__update_elem(c->skel->maps.zt_mark, &zero, sizeof(zero), &mark, sizeof(mark), BPF_ANY);
}

void capture_set_attach(struct capture *c, int mode)
{
	c->tcx_forced = mode == ATTACH_TCX;
	if (mode == ATTACH_CLSACT) {
		c->caps.tcx = false;
		log_info("capture attaches with clsact (--attach clsact); pinned TCX links of an earlier agent "
			 "stay until their interfaces go");
	}
}

void capture_close(struct capture *c)
{
	if (!c)
		return;
	redirect__destroy(c->skel);
	close(c->lock_fd);
	free(c);
}

int capture_for_each_link(struct capture *c, void (*fn)(uint32_t ifindex, void *ctx), void *ctx)
{
	DIR *d = opendir(c->link_dir);
	struct dirent *e;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *end;
		unsigned long ifindex;
		if (strncmp(e->d_name, "if", 2))
			continue;
		ifindex = strtoul(e->d_name + 2, &end, 10);
		if (*end || !ifindex || ifindex > UINT32_MAX)
			continue;
		fn((uint32_t)ifindex, ctx);
	}
	closedir(d);
	return 0;
}

/* A link pinned at path by us or an earlier agent keeps running, now with
 * prog: 0. Releasing and re-creating it would race the kernel's deferred
 * link release (-EEXIST). A defunct one (its device or cgroup gone) is
 * unpinned: -ENOENT, the caller creates a new link. */
static int reuse_pinned_link(const char *path, int prog)
{
	int fd = bpf_obj_get(path), r = -ENOENT;

	if (fd < 0)
		return -ENOENT;
	if (bpf_link_update(fd, prog, NULL) == 0)
		r = 0;
	else
		unlink(path);
	close(fd);
	return r;
}

/* Pins a new link (fd, closed here); 0 or -errno. */
static int pin_link(int fd, const char *path)
{
	int r = bpf_obj_pin(fd, path) < 0 ? -errno : 0;

	close(fd);
	return r;
}

static int attach_tc(struct capture *c, uint32_t ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY,
		    .prog_fd = bpf_program__fd(c->skel->progs.zt_ingress),
		    .flags = BPF_TC_F_REPLACE);
	int r = bpf_tc_hook_create(&hook);

	if (r < 0 && r != -EEXIST)
		return r;
	return bpf_tc_attach(&hook, &opts);
}

int capture_attach(struct capture *c, uint32_t ifindex)
{
	int prog = bpf_program__fd(c->skel->progs.zt_ingress);
	char path[PATH_MAX];

	if (!c->caps.tcx)
		return attach_tc(c, ifindex);
	link_path(c, ifindex, path, sizeof(path));
	/* Already attached: an earlier ADD, or a pin adopted at start-up. */
	if (reuse_pinned_link(path, prog) == 0)
		return 0;
	/* First on the hook: nothing attached before us may redirect a pod's
	 * SYN around capture; what is not ours goes on to the others. */
	LIBBPF_OPTS(bpf_link_create_opts, first, .flags = ZT_BPF_F_BEFORE);
	int fd = bpf_link_create(prog, (int)ifindex, ZT_BPF_TCX_INGRESS, &first);
	if ((fd == -EINVAL || fd == -EOPNOTSUPP) && !c->tcx_forced) {
		log_warn("TCX links not supported: falling back to clsact", LF_ERRNO(fd));
		c->caps.tcx = false;
		return attach_tc(c, ifindex);
	}
	return fd < 0 ? fd : pin_link(fd, path);
}

int capture_detach(struct capture *c, uint32_t ifindex)
{
	char path[PATH_MAX];

	if (!c->caps.tcx) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
		int r = bpf_tc_detach(&hook, &opts);
		return r == -ENOENT || r == -ENODEV ? 0 : r;
	}
	link_path(c, ifindex, path, sizeof(path));
	/* The pin is the last reference: unlinking it detaches the program. */
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int capture_pod_set(struct capture *c, uint32_t ip, uint32_t ifindex, bool enrolled, bool strict)
{
	struct zt_pod v = { .ifindex = ifindex, .enrolled = enrolled, .strict = strict };

	return bpf_map__update_elem(c->skel->maps.zt_pods, &ip, sizeof(ip), &v, sizeof(v), BPF_ANY);
}

/* cgroup v2 id and depth of path: the id is the directory's inode number;
 * the depth counts directories up to the cgroup2 mount's root. */
static int cgroup_id_level(const char *given, uint64_t *id, uint32_t *level)
{
	char p[PATH_MAX], path[PATH_MAX];
	struct statfs fs;
	struct stat st;

	/* Relative, trailing slashes, links: the depth needs the real path. */
	if (!realpath(given, path) || stat(path, &st) < 0 || statfs(path, &fs) < 0)
		return -errno;
	if (fs.f_type != CGROUP2_SUPER_MAGIC)
		return -EINVAL;
	*id = st.st_ino;
	*level = 0;
	snprintf(p, sizeof(p), "%s", path);
	for (;;) {
		char *slash = strrchr(p, '/');
		if (!slash || slash == p)
			break;
		*slash = '\0';
		if (statfs(p, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
			break;
		(*level)++;
	}
	return 0;
}

/* One connect hook on the node's cgroup, pinned as link_dir/name (an agent
 * restart keeps it: the pinned link is updated to our program). */
static int attach_connect_hook(struct capture *c, const char *name, struct bpf_program *p,
			       enum bpf_attach_type type, const char *node_cgroup)
{
	char path[PATH_MAX];
	int prog = bpf_program__fd(p), r;

	snprintf(path, sizeof(path), "%s/%s", c->link_dir, name);
	if (reuse_pinned_link(path, prog) == 0)
		return 0;
	int cg = open(node_cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		r = -errno;
		log_error("cannot open --node-cgroup", LF_STR("path", node_cgroup), LF_ERRNO(r));
		return r;
	}
	int fd = bpf_link_create(prog, cg, type, NULL);
	close(cg);
	if (fd < 0) {
		log_error("cannot attach the node connect hook", LF_STR("hook", name), LF_STR("cgroup", node_cgroup),
			  LF_ERRNO(fd));
		return fd;
	}
	return pin_link(fd, path);
}

int capture_node_traffic(struct capture *c, bool probes_only, const char *node_cgroup,
			 const char *kubelet_cgroup)
{
	struct zt_node_policy pol = { .enabled = probes_only };
	char path[PATH_MAX];
	uint32_t zero = 0;
	int r;

	snprintf(path, sizeof(path), "%s/cgroup-connect4", c->link_dir);
	uint64_t id = 0;
	uint32_t level = 0;
	if (probes_only && (!kubelet_cgroup || !*kubelet_cgroup)) {
		log_error("--node-traffic probes-only needs --kubelet-cgroup (else health probes to STRICT pods fail)");
		return -EINVAL;
	}
	if (probes_only && (r = cgroup_id_level(kubelet_cgroup, &id, &level)) < 0) {
		log_error("--kubelet-cgroup is not a cgroup v2 directory", LF_STR("path", kubelet_cgroup), LF_ERRNO(r));
		return r;
	}
	pol.kubelet_cgroup_id = id;
	pol.kubelet_cgroup_level = level;
	socklen_t len = sizeof(pol.node_netns_cookie);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	r = s < 0 || getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &pol.node_netns_cookie, &len) < 0 ? -errno : 0;
	if (s >= 0)
		close(s);
	if (probes_only && r < 0) {
		log_error("cannot read this network namespace's cookie (kernel >= 5.14)", LF_ERRNO(r));
		return r;
	}
	if ((r = bpf_map__update_elem(c->skel->maps.zt_node_policy, &zero, sizeof(zero), &pol, sizeof(pol),
				      BPF_ANY)) < 0)
		return r;
	if (!probes_only) { /* exempt: no hooks */
		unlink(path);
		snprintf(path, sizeof(path), "%s/cgroup-connect6", c->link_dir);
		unlink(path);
		return 0;
	}
	if ((r = attach_connect_hook(c, "cgroup-connect4", c->skel->progs.zt_node_connect, BPF_CGROUP_INET4_CONNECT,
				     node_cgroup)) < 0)
		return r;
	return attach_connect_hook(c, "cgroup-connect6", c->skel->progs.zt_node_connect6, BPF_CGROUP_INET6_CONNECT,
				   node_cgroup);
}

int capture_veth_set(struct capture *c, uint32_t ifindex, bool enrolled)
{
	struct zt_veth v = { .enrolled = enrolled };

	return bpf_map__update_elem(c->skel->maps.zt_veths, &ifindex, sizeof(ifindex), &v, sizeof(v), BPF_ANY);
}

int capture_veth_del(struct capture *c, uint32_t ifindex)
{
	int r = bpf_map__delete_elem(c->skel->maps.zt_veths, &ifindex, sizeof(ifindex), 0);
	return r == -ENOENT ? 0 : r;
}

int capture_pod_del(struct capture *c, uint32_t ip)
{
	bpf_map__delete_elem(c->skel->maps.zt_node_conns, &ip, sizeof(ip), 0);
	int r = bpf_map__delete_elem(c->skel->maps.zt_pods, &ip, sizeof(ip), 0);
	return r == -ENOENT ? 0 : r;
}

int capture_pod_get(struct capture *c, uint32_t ip, struct zt_pod *out)
{
	return bpf_map__lookup_elem(c->skel->maps.zt_pods, &ip, sizeof(ip), out, sizeof(*out), 0);
}

int capture_for_each_pod(struct capture *c, void (*fn)(uint32_t ip, const struct zt_pod *p, void *ctx),
			 void *ctx)
{
	uint32_t key, next;
	struct zt_pod v;
	int r = bpf_map__get_next_key(c->skel->maps.zt_pods, NULL, &next, sizeof(next));

	while (r == 0) {
		key = next;
		r = bpf_map__get_next_key(c->skel->maps.zt_pods, &key, &next, sizeof(next));
		if (capture_pod_get(c, key, &v) == 0)
			fn(key, &v, ctx);
	}
	return r == -ENOENT ? 0 : r;
}

static int svc_key_cmp(const void *a, const void *b)
{
	const struct zt_svc_key *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->port < y->port ? -1 : x->port > y->port;
}

int capture_services_replace(struct capture *c, const struct zt_svc_key *keys, const struct zt_svc *vals,
			     uint32_t n)
{
	struct bpf_map *m = c->skel->maps.zt_services;
	struct zt_svc_key key, next, *wanted = malloc((n ? n : 1) * sizeof(*wanted));
	int r;

	if (!wanted)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		if ((r = bpf_map__update_elem(m, &keys[i], sizeof(keys[i]), &vals[i], sizeof(vals[i]), BPF_ANY)) < 0)
			goto out;
	/* Then drop what is no longer wanted (add first: no window without),
	 * looked up in a sorted copy: thousands of frontends on every model. */
	if (n) { /* keys may be NULL when none is wanted */
		memcpy(wanted, keys, n * sizeof(*keys));
		qsort(wanted, n, sizeof(*wanted), svc_key_cmp);
	}
	r = bpf_map__get_next_key(m, NULL, &next, sizeof(next));
	while (r == 0) {
		key = next;
		r = bpf_map__get_next_key(m, &key, &next, sizeof(next));
		if (!bsearch(&key, wanted, n, sizeof(*wanted), svc_key_cmp))
			bpf_map__delete_elem(m, &key, sizeof(key), 0);
	}
	r = r == -ENOENT ? 0 : r;
out:
	free(wanted);
	return r;
}

int capture_listener_set(struct capture *c, enum zt_listener slot, int fd)
{
	uint32_t key = slot;
	uint64_t v = (uint64_t)fd;

	return bpf_map__update_elem(c->skel->maps.zt_listeners, &key, sizeof(key), &v, sizeof(v), BPF_ANY);
}

/* Whether our program is the one attached at ifindex's ingress, as the
 * kernel sees it now (someone may have detached it by hand). */
static bool attached(struct capture *c, uint32_t ifindex)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);
	int prog = bpf_program__fd(c->skel->progs.zt_ingress);

	if (bpf_obj_get_info_by_fd(prog, &info, &len) < 0)
		return false;
	if (!c->caps.tcx) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = (int)ifindex, .attach_point = BPF_TC_INGRESS);
		LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
		return bpf_tc_query(&hook, &opts) == 0 && opts.prog_id == info.id;
	}
	uint32_t ids[64], n = 64, flags = 0;
	/* For TCX the kernel reads the query's target as an ifindex. */
	if (bpf_prog_query((int)ifindex, ZT_BPF_TCX_INGRESS, 0, &flags, ids, &n) < 0)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == info.id)
			return true;
	return false;
}

int capture_health(struct capture *c, const uint32_t *ifindexes, uint32_t n, char *why, size_t size)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!attached(c, ifindexes[i])) {
			char name[IF_NAMESIZE] = "?";
			if_indextoname(ifindexes[i], name);
			snprintf(why, size, "capture program not attached to %s", name);
			return -ENOENT;
		}
	}
	for (uint32_t slot = 0; slot < ZT_LISTEN_MAX; slot++) {
		uint64_t cookie;
		if (bpf_map__lookup_elem(c->skel->maps.zt_listeners, &slot, sizeof(slot), &cookie, sizeof(cookie), 0) < 0) {
			snprintf(why, size, "listener %u missing from the capture SOCKMAP", slot);
			return -ENOENT;
		}
	}
	return 0;
}

int capture_node_addrs_get(struct capture *c, uint32_t *addrs, uint32_t max)
{
	struct zt_bpf_config cfg;
	uint32_t zero = 0;
	int r = bpf_map__lookup_elem(c->skel->maps.zt_config, &zero, sizeof(zero), &cfg, sizeof(cfg), 0);

	if (r < 0)
		return r;
	uint32_t n = cfg.n_node_addrs < max ? cfg.n_node_addrs : max;
	memcpy(addrs, cfg.node_addrs, n * sizeof(*addrs));
	return (int)n;
}

int capture_node_addrs_set(struct capture *c, const uint32_t *addrs, uint32_t n)
{
	struct zt_bpf_config cfg = { 0 };
	uint32_t zero = 0;

	if (n > ZT_MAX_NODE_ADDRS) {
		log_warn("more node addresses than the program tracks; extra ones may be captured",
			 LF_UINT("addresses", n), LF_UINT("max", ZT_MAX_NODE_ADDRS));
		n = ZT_MAX_NODE_ADDRS;
	}
	memcpy(cfg.node_addrs, addrs, n * sizeof(*addrs));
	cfg.n_node_addrs = n;
	return bpf_map__update_elem(c->skel->maps.zt_config, &zero, sizeof(zero), &cfg, sizeof(cfg), BPF_ANY);
}

int capture_stats_read(struct capture *c, uint64_t out[ZT_STAT_MAX])
{
	uint64_t *per = calloc((size_t)c->nprocs, sizeof(*per));

	if (!per)
		return -ENOMEM;
	for (uint32_t k = 0; k < ZT_STAT_MAX; k++) {
		out[k] = 0;
		if (bpf_map__lookup_elem(c->skel->maps.zt_stats, &k, sizeof(k), per,
					 (size_t)c->nprocs * sizeof(*per), 0) < 0)
			continue;
		for (int i = 0; i < c->nprocs; i++)
			out[k] += per[i];
	}
	free(per);
	return 0;
}
