/* ztunnel preflight (docs/operations.md "Kernels and nodes"): can this node
 * run the agent? Each check says what it found and, when it is a problem,
 * what to do. The DaemonSet runs it before the agent (a blocking problem
 * keeps the pod from starting, with the reason in its log); the agent
 * logs the same table when it starts. */
#include "ztunnel/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <libgen.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "ztunnel/capture.h"
#include "ztunnel/cni_install.h"
#include "ztunnel/kube.h"
#include "ztunnel/log.h"

enum verdict { OK, WARN, FAIL };
static const char *const verdicts[] = { "ok", "warn", "FAIL" };

struct check {
	const char *name;
	enum verdict v;
	char detail[512];
	char remedy[512];
};

struct report {
	struct check c[16];
	int n;
};

static struct check *add(struct report *r, const char *name, enum verdict v, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct check *add(struct report *r, const char *name, enum verdict v, const char *fmt, ...)
{
	struct check *c = &r->c[r->n++];
	va_list ap;

	c->name = name;
	c->v = v;
	c->remedy[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
	return c;
}

#define REMEDY(c, ...) snprintf((c)->remedy, sizeof((c)->remedy), __VA_ARGS__)

static void kernel(struct report *r, const struct zt_config *cfg, bool probe)
{
	struct utsname u;
	int major = 0, minor = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &major, &minor);
	int v = major * 100 + minor;
	struct check *c = add(r, "kernel", OK, "%s: %s links, %s listeners", u.release,
			      v >= 606 ? "TCX" : "clsact (no TCX before 6.6)",
			      v >= 605 ? "reuseport" : "shared (reuseport + bpf_sk_assign needs 6.5)");
	if (v < 601) {
		c->v = FAIL;
		REMEDY(c, "a kernel >= 6.1 (Debian 12's): the program needs bpf_sk_assign, conntrack kfuncs and "
			  "io_uring's multishot accept");
	} else if ((cfg->attach == ATTACH_TCX && v < 606) || (cfg->listeners == LISTENERS_REUSEPORT && v < 605)) {
		c->v = FAIL;
		REMEDY(c, "--attach auto and --listeners auto pick what this kernel has");
	}
	/* The agent loads the program itself right after its log of this
	 * table: loading it twice would only slow every start down. */
	int e = probe ? capture_probe() : 0;
	c = add(r, "program", e ? FAIL : OK, e ? "the kernel refuses the capture program: %s" : "loads (%s)",
		e ? strerror(-e) : probe ? "verifier, helpers and kfuncs accepted; nothing pinned" : "checked as it loads");
	if (e)
		REMEDY(c, "see the verifier's log above; BTF (/sys/kernel/btf/vmlinux) and CONFIG_NF_CONNTRACK are "
			  "needed, and CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN)");
	bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	c = add(r, "btf", btf ? OK : FAIL, btf ? "/sys/kernel/btf/vmlinux" : "no /sys/kernel/btf/vmlinux");
	if (!btf)
		REMEDY(c, "a kernel built with CONFIG_DEBUG_INFO_BTF (every major distribution's is)");
}

static void bpffs(struct report *r, const struct zt_config *cfg)
{
	char dir[PATH_MAX];
	struct statfs st;

	snprintf(dir, sizeof(dir), "%s", cfg->bpf_pin_dir);
	const char *parent = dirname(dir);
	bool ok = statfs(parent, &st) == 0 && st.f_type == BPF_FS_MAGIC;
	struct check *c = add(r, "bpffs", ok ? OK : FAIL, "%s %s", parent, ok ? "is bpffs" : "is not a bpffs mount");
	if (!ok)
		REMEDY(c, "mount -t bpf bpf /sys/fs/bpf on the node, and mount it into the pod (hostPath "
			  "/sys/fs/bpf, mountPropagation HostToContainer), or point --bpf-pin-dir at one");
}

static void io_uring(struct report *r)
{
	struct io_uring ring;
	int disabled = -1;
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");

	if (f) {
		if (fscanf(f, "%d", &disabled) != 1)
			disabled = -1;
		fclose(f);
	}
	int e = io_uring_queue_init(2, &ring, 0);
	if (e == 0) {
		io_uring_queue_exit(&ring);
		add(r, "io_uring", OK, "allowed");
		return;
	}
	struct check *c = add(r, "io_uring", FAIL, "io_uring_setup: %s (kernel.io_uring_disabled = %d)", strerror(-e),
			      disabled);
	if (disabled == 2)
		REMEDY(c, "sysctl kernel.io_uring_disabled=0 (2 turns io_uring off for everyone)");
	else if (disabled == 1)
		REMEDY(c, "sysctl kernel.io_uring_disabled=0, or run the agent in kernel.io_uring_group");
	else if (e == -EPERM)
		REMEDY(c, "a seccomp profile blocks io_uring (container runtimes' default profiles do): run under "
			  "daemonset/seccomp/ztunnel.json (the DaemonSet's Localhost profile)");
	else
		REMEDY(c, "a kernel with io_uring (CONFIG_IO_URING)");
}

static bool has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

static void capabilities(struct report *r, const struct zt_config *cfg)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { 0 };
	char missing[128] = "";

	if (syscall(SYS_capget, &h, d) < 0) {
		add(r, "capabilities", WARN, "cannot read them: %s", strerror(errno));
		return;
	}
	/* SYS_ADMIN covers BPF and PERFMON (kernels before 5.8 know only it). */
	bool admin = has_cap(d, CAP_SYS_ADMIN);
	const struct {
		bool have;
		const char *name;
	} need[] = { { has_cap(d, CAP_NET_ADMIN), "NET_ADMIN" },
		     { has_cap(d, CAP_BPF) || admin, "BPF" },
		     { has_cap(d, CAP_PERFMON) || admin, "PERFMON" },
		     { admin || cfg->node_traffic != NODE_TRAFFIC_PROBES_ONLY, "SYS_ADMIN (--node-traffic probes-only)" } };
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!need[i].have)
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s%s",
				 missing[0] ? ", " : "", need[i].name);
	struct check *c = add(r, "capabilities", missing[0] ? FAIL : OK, missing[0] ? "missing: %s" : "%s",
			      missing[0] ? missing : "NET_ADMIN, BPF, PERFMON");
	if (missing[0])
		REMEDY(c, "add them to the container (daemonset/ztunnel.yaml says why each is needed)");
	if (!has_cap(d, CAP_SYS_RESOURCE))
		add(r, "capabilities", WARN, "no SYS_RESOURCE: the agent keeps the descriptor limit it is given and, "
					     "on kernels before 5.11, the locked-memory limit");
}

static void routing(struct report *r, const struct zt_config *cfg)
{
	struct capture_routing rt = { (uint32_t)cfg->fwmark, (uint32_t)cfg->fwmark_mask, (uint32_t)cfg->route_table };
	char why[400];
	int n = capture_routing_conflicts(&rt, why, sizeof(why));

	if (n < 0) {
		add(r, "routing", WARN, "cannot read the rules: %s", strerror(-n));
		return;
	}
	struct check *c = add(r, "routing", n ? FAIL : OK, "fwmark 0x%x/0x%x, table %u: %s", rt.mark, rt.mask,
			      rt.table, n ? why : "free");
	if (n)
		REMEDY(c, "another component (Cilium uses 0x400 in some modes) owns that mark or table: give the "
			  "agent free ones with --fwmark, --fwmark-mask and --route-table");
}

static void cni(struct report *r, const struct zt_config *cfg)
{
	if (!cfg->cni_conf_dir || !*cfg->cni_conf_dir)
		return;
	int chained = cni_chained(cfg->cni_conf_dir);
	struct check *c = add(r, "cni", chained < 0 ? FAIL : OK, chained < 0 ? "no primary network in %s: %s"
								    : chained ? "%s: ztunnel-cni chained%s"
									      : "%s: primary network found%s",
			      cfg->cni_conf_dir, chained < 0 ? strerror(-chained) : "");
	if (chained < 0)
		REMEDY(c, "install the cluster's network (CNI) first: ztunnel-cni chains itself into its "
			  "configuration");
}

static void api(struct report *r, const struct zt_config *cfg, const struct kube_config *kc)
{
	char why[512];

	if (!kc)
		return;
	int n = kube_check(kc, why, sizeof(why));
	struct check *c = add(r, "kubernetes", n ? FAIL : OK, "%s", n ? why : "every kind listed (RBAC and CRDs)");
	if (n == -EHOSTUNREACH)
		REMEDY(c, "the API server must be reachable from the node (hostNetwork) with its CA: check "
			  "KUBERNETES_SERVICE_HOST/PORT, --kube-server or --kubeconfig");
	else if (n)
		REMEDY(c, "apply daemonset/ztunnel.yaml (ClusterRole list/watch) and Istio's CRDs "
			  "(daemonset/istio-security-crds.yaml)");
	(void)cfg;
}

int preflight_run(const struct zt_config *cfg, const struct kube_config *kc, bool print)
{
	struct report r = { .n = 0 };
	int failed = 0;

	kernel(&r, cfg, print);
	bpffs(&r, cfg);
	io_uring(&r);
	capabilities(&r, cfg);
	routing(&r, cfg);
	cni(&r, cfg);
	api(&r, cfg, kc);
	for (int i = 0; i < r.n; i++) {
		const struct check *c = &r.c[i];
		failed += c->v == FAIL;
		if (print) {
			printf("%-13s %-5s %s\n", c->name, verdicts[c->v], c->detail);
			if (c->remedy[0])
				printf("%-13s %-5s fix: %s\n", "", "", c->remedy);
		} else {
			log_at(c->v == FAIL ? LOG_LEVEL_ERROR : c->v == WARN ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
			       "preflight", LF_STR("check", c->name), LF_STR("result", verdicts[c->v]),
			       LF_STR("detail", c->detail), LF_STR("fix", c->remedy));
		}
	}
	if (print)
		printf("%s\n", failed ? "preflight: blocking problems above" : "preflight: this node can run the agent");
	return failed;
}
