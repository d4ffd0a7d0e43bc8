/* Agent start-up and shutdown: capture, data path, enrollment, control. */
#include "ztunnel/agent.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ztunnel/access_log.h"
#include "ztunnel/admin.h"
#include "ztunnel/capture.h"
#include "ztunnel/cni_chain.h"
#include "ztunnel/cert_cache.h"
#include "ztunnel/cert_fetcher.h"
#include "ztunnel/cert_share.h"
#include "ztunnel/control.h"
#include "ztunnel/ca_provider.h"
#include "ztunnel/files_provider.h"
#include "ztunnel/local_ca_provider.h"
#include "ztunnel/enroll.h"
#include "ztunnel/handover.h"
#include "ztunnel/lifecycle.h"
#include "ztunnel/log.h"
#include "ztunnel/kube.h"
#include "ztunnel/proxy.h"
#include "ztunnel/snapshot_source.h"
#include "ztunnel/telemetry.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define MAX_IFS 64

/* Uplinks and node addresses. "auto" takes every interface with an IPv4
 * address: pod veths qualify too, which is harmless (they get the program
 * on CNI ADD anyway). */
static int capture_node(struct capture *c, const char *uplinks, uint32_t *ifs, uint32_t *n_out)
{
	uint32_t addrs[ZT_MAX_NODE_ADDRS * 4], n_addrs, n_ifs;
	int r = capture_local_addrs(addrs, ZT_MAX_NODE_ADDRS * 4, &n_addrs, ifs, MAX_IFS, &n_ifs);

	if (r < 0) {
		log_error("cannot list node addresses", LF_ERRNO(r));
		return r;
	}
	if ((r = capture_node_addrs_set(c, addrs, n_addrs)) < 0) {
		log_error("cannot set node addresses", LF_ERRNO(r));
		return r;
	}
	if (strcmp(uplinks, "auto")) {
		char *list = strdup(uplinks), *save = NULL;
		n_ifs = 0;
		for (char *name = strtok_r(list, ",", &save); name && n_ifs < MAX_IFS;
		     name = strtok_r(NULL, ",", &save)) {
			if (!(ifs[n_ifs] = if_nametoindex(name))) {
				log_error("uplink not found", LF_STR("interface", name));
				free(list);
				return -ENODEV;
			}
			n_ifs++;
		}
		free(list);
	}
	for (uint32_t i = 0; i < n_ifs; i++) {
		char name[IF_NAMESIZE] = "";
		if_indextoname(ifs[i], name);
		if ((r = capture_attach(c, ifs[i])) < 0) {
			log_error("cannot attach capture", LF_STR("interface", name), LF_ERRNO(r));
			return r;
		}
		log_info("capture attached", LF_STR("interface", name),
			 LF_STR("mode", capture_caps(c)->tcx ? "tcx" : "clsact"));
	}
	*n_out = n_ifs;
	return 0;
}

/* The data path's view of capture: the pod table and the SOCKMAP. */
static int pod_lookup(void *ctx, uint32_t ip, struct zt_pod *out)
{
	return capture_pod_get(ctx, ip, out);
}

static int listen_in_sockmap(void *ctx, enum proxy_direction dir, int fd)
{
	static const enum zt_listener slot[PROXY_DIRECTIONS] = {
		[PROXY_OUTBOUND] = ZT_LISTEN_OUTBOUND,
		[PROXY_INBOUND_PLAIN] = ZT_LISTEN_PLAIN,
		[PROXY_INBOUND_HBONE] = ZT_LISTEN_HBONE,
	};

	return capture_listener_set(ctx, slot[dir], fd);
}

int agent_kube_config(const struct zt_config *cfg, struct kube_config *kc, struct kubeconfig *file, char *server,
		      size_t size)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	char err[512];
	int r;

	*kc = (struct kube_config){ .opts = { cfg->trust_domain, cfg->root_namespace } };
	if (cfg->kubeconfig && *cfg->kubeconfig) {
		if (cfg->kube_server && *cfg->kube_server) {
			log_error("--kube-server and --kubeconfig both given: choose one");
			return -EINVAL;
		}
		if ((r = kubeconfig_load(cfg->kubeconfig, file, err, sizeof(err))) < 0) {
			log_error("unusable --kubeconfig", LF_STR("path", cfg->kubeconfig), LF_STR("reason", err));
			return r;
		}
		kubeconfig_apply(file, kc);
		return 0;
	}
	if (cfg->kube_server && *cfg->kube_server)
		snprintf(server, size, "%s", cfg->kube_server);
	else if (host && port)
		snprintf(server, size, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	else {
		log_error("--kube: no API server (--kube-server or --kubeconfig, or KUBERNETES_SERVICE_HOST/PORT in "
			  "a pod)");
		return -EINVAL;
	}
	kc->server = server;
	kc->token_file = cfg->kube_token_file;
	kc->ca_file = cfg->kube_ca_file;
	return 0;
}

/* The Kubernetes API (--kube; in-cluster settings by default) or the
 * snapshot file. */
static int open_source(const struct zt_config *cfg, struct snapshot_source **out)
{
	char server[300];
	int r;

	if (!cfg->kube) {
		if ((r = snapshot_source_file(out, cfg->snapshot)) < 0)
			log_error("cannot watch snapshot path", LF_STR("path", cfg->snapshot), LF_ERRNO(r));
		return r;
	}
	struct kube_config kc;
	struct kubeconfig file = { 0 };
	if ((r = agent_kube_config(cfg, &kc, &file, server, sizeof(server))) < 0)
		return r;
	/* Other nodes' pods are HBONE once their agents say their capture is
	 * in place; this agent says it for its own (SPEC §8.5). */
	kc.opts.capture_annotated = true;
	kc.node_name = cfg->node_name;
	if ((r = snapshot_source_kube(out, &kc)) < 0)
		log_error("cannot follow the Kubernetes API", LF_STR("server", kc.server), LF_ERRNO(r));
	kubeconfig_free(&file); /* the source keeps copies */
	return r;
}

/* What the agent runs once it serves traffic: the data path's listeners,
 * the CNI socket, the HTTP servers and the handover socket. Started at
 * once, or, beside a running agent, when this one is ready to take over
 * (handover.h). */
struct serving {
	const struct zt_config *cfg;
	struct state_store *store;
	struct cert_share *share;
	struct proxy_env env;
	struct capture *capture;
	struct admin_deps deps;
	struct admin *admin;
	struct proxy *proxy;
	struct enroll *enroll;
	struct control *ctl;
	char handover_path[PATH_MAX];
	bool beside;              /* started beside a running agent: the node is not ours yet */
	uint32_t *uplinks, *n_uplinks;
};

/* What this agent changes on the node itself: the mark the program sets,
 * policy routing, the program on the uplinks, the node-traffic hook. Only
 * while it holds the node (never beside a running agent: a different
 * --fwmark would strand the running agent's packets). */
static int node_setup(struct serving *s)
{
	const struct zt_config *cfg = s->cfg;
	struct capture_routing rt = { (uint32_t)cfg->fwmark, (uint32_t)cfg->fwmark_mask, (uint32_t)cfg->route_table };
	int r;

	if ((r = capture_routing_ensure(&rt)) < 0) {
		log_error("cannot install policy routing for captured packets", LF_ERRNO(r));
		return r;
	}
	if ((r = capture_set_mark(s->capture, rt.mark)) < 0) {
		log_error("cannot set the capture mark", LF_ERRNO(r));
		return r;
	}
	if ((r = capture_node(s->capture, cfg->uplinks, s->uplinks, s->n_uplinks)) < 0)
		return r;
	s->deps.n_uplinks = *s->n_uplinks;
	return capture_node_traffic(s->capture, cfg->node_traffic == NODE_TRAFFIC_PROBES_ONLY, cfg->node_cgroup,
				    cfg->kubelet_cgroup);
}

static int serve_begin(void *ctx, struct handover_fds *adopt)
{
	struct serving *s = ctx;
	const struct zt_config *cfg = s->cfg;
	int r;

	if (s->beside) {
		/* The node is ours only now: lock it (waiting a little for the
		 * predecessor's release), then take it over. */
		for (int i = 0; (r = capture_lock(s->capture)) == -EBUSY && adopt && i < 20; i++)
			usleep(100 * 1000);
		if (r < 0)
			return r;
		s->beside = false;
		if ((r = node_setup(s)) < 0)
			return r;
	}
	/* Ports and sockets first, the data path last: a failure before it
	 * has accepted nothing (the predecessor takes the node back). The
	 * predecessor closes its HTTP servers as it hands over: its ports may
	 * take a moment to be free. */
	for (int i = 0; !s->admin && i < 50; i++)
		if (admin_start(&s->admin, &s->deps) < 0 && (!adopt || i == 49))
			return -EADDRINUSE;
		else if (!s->admin)
			usleep(100 * 1000);
	if ((r = enroll_listen(s->enroll, cfg->cni_socket)) < 0) {
		log_error("cannot listen for the CNI plugin", LF_STR("path", cfg->cni_socket), LF_ERRNO(r));
		return r;
	}
	log_info("ready for CNI requests", LF_STR("socket", cfg->cni_socket));
	if ((r = proxy_start(&s->proxy, cfg, s->store, &s->env, s->share, adopt)) < 0)
		return r;
	s->ctl->proxy = s->proxy;
	admin_set_proxy(s->admin, s->proxy);
	/* Not fatal: without it the next agent starts the way a first one does. */
	if ((s->ctl->handover_fd = handover_listen(s->handover_path)) < 0)
		log_warn("no handover socket: the next agent cannot take over without a gap",
			 LF_STR("path", s->handover_path), LF_ERRNO(s->ctl->handover_fd));
	if (adopt)
		log_info("took over the listeners of the previous agent: it drains, this one serves");
	return 0;
}

/* A successor is ready: it gets our listeners and the node's lock, then
 * our ports and our CNI socket (it retries binding them for a while). We
 * still accept until it says it serves (serve_commit), or take it all back
 * (serve_take_back). */
static int serve_hand_over(void *ctx, int conn)
{
	struct serving *s = ctx;
	struct handover_fds fds;
	int r = handover_wait_take(conn);

	if (r < 0)
		return r; /* not a successor's request: the node stays ours */
	proxy_listeners(s->proxy, &fds);
	capture_unlock(s->capture);
	if ((r = handover_give(conn, &fds)) < 0) {
		log_error("handover to the new agent failed: serving on", LF_ERRNO(r));
		if (capture_lock(s->capture) < 0)
			log_error("the node's lock is gone after a failed handover: a third agent may start");
		return r;
	}
	admin_set_proxy(s->admin, NULL);
	admin_stop(s->admin);
	s->admin = NULL;
	if (s->enroll->listen_fd >= 0) {
		close(s->enroll->listen_fd); /* the path is the successor's now */
		s->enroll->listen_fd = -1;
	}
	log_info("gave the listeners to a new agent: waiting for it to serve");
	return 0;
}

static void serve_commit(void *ctx)
{
	struct serving *s = ctx;

	proxy_handed_over(s->proxy);
	log_info("handed the listeners over to a new agent: draining");
}

/* The successor failed after it got the listeners: the node is ours again. */
static void serve_take_back(void *ctx)
{
	struct serving *s = ctx;
	int r;

	log_error("the new agent failed to take over: this agent serves on");
	for (int i = 0; (r = capture_lock(s->capture)) == -EBUSY && i < 50; i++)
		usleep(100 * 1000);
	if (r < 0)
		log_error("cannot take the node's lock back: a third agent may start", LF_ERRNO(r));
	else if ((r = node_setup(s)) < 0) /* the successor had put its program on the uplinks */
		log_error("cannot set the node up again", LF_ERRNO(r));
	for (int i = 0; !s->admin && i < 50; i++)
		if (admin_start(&s->admin, &s->deps) < 0)
			usleep(100 * 1000);
	admin_set_proxy(s->admin, s->proxy);
	if ((r = enroll_listen(s->enroll, s->cfg->cni_socket)) < 0)
		log_error("cannot listen for the CNI plugin again", LF_ERRNO(r));
}

/* POST /quitquitquit: the control thread's signalfd takes it as SIGTERM. */
static void quit(void *ctx)
{
	(void)ctx;
	kill(getpid(), SIGTERM);
}

/* Where certificates come from: 1, or 0 when the agent runs without
 * identities (--identity-provider insecure-plaintext, or no capture), or
 * -errno. A cluster CA answers over the network, seconds at worst: its
 * fetches run on *fetcher's threads, off the control thread. The local CA
 * and files answer at once and their contexts are not thread-safe: they
 * stay in cert_cache_tick. */
static int identity_setup(const struct zt_config *cfg, struct cert_cache *certs, struct local_ca_provider *lp,
			  struct files_provider *fp, struct ca_provider *cp, struct cert_fetcher **fetcher)
{
	struct cert_provider p;
	int r;

	switch (cfg->identity_provider) {
	case IDENTITY_LOCAL_CA:
		snprintf(lp->dir, sizeof(lp->dir), "%s", cfg->ca_dir);
		p = (struct cert_provider){ "local-ca", local_ca_provider_fetch, NULL, lp };
		break;
	case IDENTITY_CA:
		snprintf(cp->address, sizeof(cp->address), "%s", cfg->ca_address);
		snprintf(cp->roots_file, sizeof(cp->roots_file), "%s", cfg->ca_root_cert);
		snprintf(cp->token_file, sizeof(cp->token_file), "%s", cfg->ca_token_file);
		snprintf(cp->cluster_id, sizeof(cp->cluster_id), "%s", cfg->cluster_id ? cfg->cluster_id : "Kubernetes");
		cp->timeout_ms = 5000;
		p = (struct cert_provider){ "ca", ca_provider_fetch, NULL, cp };
		break;
	case IDENTITY_FILES:
		snprintf(fp->root, sizeof(fp->root), "%s", cfg->cert_dir);
		p = (struct cert_provider){ "files", files_provider_fetch, files_provider_changed, fp };
		break;
	default:
		return 0;
	}
	cert_cache_init(certs, p, cfg->cert_lifetime, (unsigned)getpid());
	if (cfg->identity_provider == IDENTITY_CA) {
		if ((r = cert_fetcher_start(fetcher, p)) < 0) {
			log_error("cannot start the certificate fetch threads", LF_ERRNO(r));
			cert_cache_fini(certs);
			return r;
		}
		cert_cache_set_runner(certs, cert_fetcher_runner(*fetcher));
	}
	log_info("workload identities enabled", LF_STR("provider", p.name),
		 LF_STR("node", cfg->node_name ? cfg->node_name : ""));
	return 1;
}

/* Descriptors are the agent's capacity: take the hard limit (a container
 * runtime's default soft limit is often 1,024, which a flood or a busy
 * node exhausts) and say what we got. */
static void raise_fd_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) < 0)
		return;
	if (r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &r) < 0)
			getrlimit(RLIMIT_NOFILE, &r);
	}
	log_info("descriptor limit", LF_UINT("nofile", r.rlim_cur));
}

int agent_run(const struct zt_config *cfg)
{
	struct cert_cache certs;
	struct cert_share share;
	struct local_ca_provider lp = { 0 };
	struct files_provider fp = { 0 };
	struct ca_provider cp = { 0 };
	struct cert_fetcher *fetcher = NULL;
	struct state_store store;
	struct snapshot_opts opts = { cfg->trust_domain, cfg->root_namespace };
	struct capture *capture = NULL;
	struct admin *admin = NULL; /* --capture=false only */
	struct serving sv = { 0 };
	struct snapshot_source *source = NULL;
	struct cni_chain cni = { .fd = -1 };
	uint32_t uplinks[MAX_IFS], n_uplinks = 0;
	struct enroll enroll;
	struct lifecycle life;
	bool have_enroll = false;
	int status = 1, r;

	if (cfg->capture && cfg->identity_provider == IDENTITY_UNSET) {
		log_error("no --identity-provider: refusing to start, mesh traffic would be relayed in plaintext "
			  "(choose local-ca or files; --identity-provider insecure-plaintext for tests and demos only)");
		return 1;
	}
	if (cfg->identity_provider == IDENTITY_INSECURE_PLAINTEXT)
		log_warn("INSECURE: --identity-provider insecure-plaintext: mesh traffic is relayed WITHOUT mTLS "
			 "and without identities, inbound HBONE (15008) is refused, and policies that name "
			 "principals or namespaces deny everything");
	raise_fd_limit();
	lifecycle_init(&life);
	/* Once, before any thread makes a TLS context. */
	wolfSSL_Init();
	if ((r = control_block_signals()) < 0) {
		log_error("cannot block signals", LF_ERRNO(r));
		return 1;
	}
	if (tm_init() < 0 || tm_thread_register() < 0 || (r = access_log_start(log_get_fd())) < 0) {
		log_error("cannot set up metrics and the access log", LF_ERRNO(r < 0 ? r : -ENOMEM));
		return 1;
	}
	state_store_init(&store, &opts);
	cert_share_init(&share);
	int identities = identity_setup(cfg, &certs, &lp, &fp, &cp, &fetcher);
	bool have_certs = identities > 0;
	struct control ctl = { .cfg = cfg, .store = &store, .certs = have_certs ? &certs : NULL,
				.fetcher = fetcher, .share = have_certs ? &share : NULL, .life = &life,
				.handover_fd = -1, .predecessor_fd = -1, .successor_fd = -1 };
	if (identities < 0 || open_source(cfg, &source) < 0)
		goto out;
	ctl.source = source;
	if (have_certs && !cfg->node_name) {
		log_error("--node-name is required to issue identities (only this node's pods get them)");
		goto out;
	}
	sv = (struct serving){ .cfg = cfg, .store = &store, .share = have_certs ? &share : NULL, .enroll = &enroll,
			       .ctl = &ctl };
	struct admin_deps deps = { cfg, &store, have_certs ? &share : NULL, NULL, uplinks, 0, quit, NULL, &life };
	handover_path(cfg, sv.handover_path, sizeof(sv.handover_path));
	if (!cfg->capture) {
		log_warn("capture disabled (--capture=false): following the snapshot only");
		if (admin_start(&admin, &deps) < 0)
			goto out;
		status = control_run(&ctl);
		goto out;
	}
	preflight_run(cfg, NULL, false); /* the node as the agent finds it, in its log */
	/* An agent runs: this one takes over once it is ready (no gap). */
	ctl.predecessor_fd = handover_connect(sv.handover_path);
	if ((r = capture_open(&capture, cfg->bpf_pin_dir, ctl.predecessor_fd >= 0)) < 0)
		goto out;
	capture_set_attach(capture, cfg->attach);
	sv.capture = capture;
	sv.beside = ctl.predecessor_fd >= 0;
	sv.uplinks = uplinks;
	sv.n_uplinks = &n_uplinks;
	deps.capture = capture;
	sv.deps = deps;
	if (sv.beside)
		log_info("another agent serves this node: taking over once ready", LF_STR("socket", sv.handover_path));
	else if ((r = node_setup(&sv)) < 0 || admin_start(&sv.admin, &sv.deps) < 0)
		goto out; /* admin up before the data path: readiness says what is missing */
	/* Beside a running agent: read its pods (for their certificates), change nothing. */
	if ((r = enroll_init(&enroll, capture, sv.beside)) < 0) {
		log_error("cannot read pinned pod state", LF_ERRNO(r));
		goto out;
	}
	have_enroll = true;
	enroll.node = cfg->node_name;
	uint32_t node_addrs[ZT_MAX_NODE_ADDRS];
	int n_node_addrs = capture_node_addrs_get(capture, node_addrs, ZT_MAX_NODE_ADDRS);
	sv.env = (struct proxy_env){ pod_lookup, capture, node_addrs, n_node_addrs > 0 ? (uint32_t)n_node_addrs : 0,
				     listen_in_sockmap, capture };
	ctl.serving = &sv;
	ctl.serve_begin = serve_begin;
	ctl.hand_over = serve_hand_over;
	ctl.commit_handover = serve_commit;
	ctl.take_back = serve_take_back;
	if (ctl.predecessor_fd < 0 && serve_begin(&sv, NULL) < 0)
		goto out;
	if (cfg->cni_conf_dir && *cfg->cni_conf_dir) {
		if ((r = cni_chain_open(&cni, cfg->cni_conf_dir, cfg->cni_socket)) < 0) {
			log_error("cannot watch the CNI configuration directory", LF_STR("dir", cfg->cni_conf_dir),
				  LF_ERRNO(r));
			goto out;
		}
		ctl.cni = &cni;
	}
	ctl.enroll = &enroll;
	status = control_run(&ctl);
out:
	/* Pinned maps and links stay: capture keeps failing closed for
	 * enrolled pods until the next agent fills the listener map. */
	lifecycle_done(&life); /* /quitquitquit answers now */
	admin_set_proxy(sv.admin, NULL);
	admin_stop(sv.admin);
	if (!cfg->capture)
		admin_stop(admin);
	proxy_stop(sv.proxy);
	if (ctl.handover_fd >= 0) { /* ours still: no successor took it */
		close(ctl.handover_fd);
		unlink(sv.handover_path);
	}
	if (ctl.predecessor_fd >= 0)
		close(ctl.predecessor_fd);
	if (have_enroll) {
		if (enroll.listen_fd >= 0) {
			close(enroll.listen_fd);
			unlink(cfg->cni_socket);
		}
		enroll_fini(&enroll);
	}
	capture_close(capture);
	cert_fetcher_stop(fetcher); /* its results go to the cache: first */
	if (have_certs)
		cert_cache_fini(&certs);
	cert_share_fini(&share);
	local_ca_provider_fini(&lp);
	state_store_release(&store);
	if (source)
		source->close(source);
	cni_chain_close(&cni);
	access_log_stop();
	tm_fini();
	lifecycle_fini(&life);
	return status;
}
