#include "ztunnel/control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/capture.h"
#include "ztunnel/cert_fetcher.h"
#include "ztunnel/clock.h"
#include "ztunnel/log.h"
#include "ztunnel/cni_chain.h"
#include "ztunnel/handover.h"
#include "ztunnel/lifecycle.h"
#include "ztunnel/proxy.h"
#include "ztunnel/snapshot_source.h"
#include "ztunnel/telemetry.h"

/* A successor that has the listeners confirms it serves within this (its
 * HTTP ports may take it a few seconds), or we take the node back. */
#define HANDOVER_CONFIRM_MS 15000

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

/* The identities of the enrolled pods of this node, and only those: a
 * node never asks for another node's identities. */
static void sync_identities(struct control *ctl, const struct zt_model *m)
{
	struct enroll *e = ctl->enroll;
	struct spiffe_id *ids = calloc(e->n ? e->n : 1, sizeof(*ids));
	uint32_t n = 0;

	if (!ids)
		return;
	for (uint32_t i = 0; m && i < e->n; i++) {
		const struct enroll_pod *p = &e->pods[i];
		const struct zt_workload *w = p->uid[0] ? model_workload_by_uid(m, p->uid) : NULL;
		/* Pods restored from pinned state have no uid: their IP says. */
		for (uint32_t k = 0; !w && k < p->n_ips; k++)
			w = model_workload_by_v4(m, p->ips[k]);
		if (!p->enrolled || !w || !w->enrolled || !w->node || strcmp(w->node, ctl->cfg->node_name ? ctl->cfg->node_name : ""))
			continue;
		if (spiffe_parse(w->identity, &ids[n]) == 0)
			n++;
	}
	cert_cache_sync(ctl->certs, ids, n, now_s());
	free(ids);
}

/* Only the agent that serves writes the shared pinned maps, and says
 * which pods are captured: not one still waiting to take over, nor one
 * handed over. */
static bool serving(const struct control *ctl)
{
	return ctl->predecessor_fd < 0 && !ctl->superseded && !ctl->handing_over;
}

/* Tells the source which pods of this node are captured now (SPEC §8.5:
 * only those are HBONE to the other nodes), by uid and by address: a pod
 * restored from pinned state is known by its address until a model names
 * it. Nothing before the first model: the pod table may still be filling
 * in, and a short report would take the annotation off captured pods. */
static void report_captured(struct control *ctl)
{
	struct snapshot_source *src = ctl->source;
	struct enroll *e = ctl->enroll;

	if (!src->captured || !e)
		return;
	bool have_model = state_read_lock(ctl->store) != NULL;
	state_read_unlock();
	if (!serving(ctl) || !have_model)
		return src->captured(src, NULL, 0);
	uint32_t max = 0, n = 0;
	for (uint32_t i = 0; i < e->n; i++)
		max += 1 + e->pods[i].n_ips;
	const char **keys = calloc(max ? max : 1, sizeof(*keys));
	char (*addrs)[INET_ADDRSTRLEN] = calloc(max ? max : 1, INET_ADDRSTRLEN);
	if (!keys || !addrs) {
		log_error("cannot report the captured pods", LF_ERRNO(-ENOMEM));
		free(keys);
		free(addrs);
		return;
	}
	for (uint32_t i = 0; i < e->n; i++) {
		const struct enroll_pod *p = &e->pods[i];
		if (!p->captured)
			continue;
		if (p->uid[0])
			keys[n++] = p->uid;
		for (uint32_t k = 0; k < p->n_ips; k++) {
			inet_ntop(AF_INET, &p->ips[k], addrs[n], INET_ADDRSTRLEN);
			keys[n] = addrs[n];
			n++;
		}
	}
	src->captured(src, keys, n);
	free(keys);
	free(addrs);
}

/* After a CNI request: the handler applied that pod's decision; only the
 * set of identities and captured pods may have changed (no full reconcile
 * of every pod and service map). */
static void after_cni_request(struct control *ctl)
{
	report_captured(ctl);
	if (!ctl->certs)
		return;
	sync_identities(ctl, state_read_lock(ctl->store));
	state_read_unlock();
}

/* Hands the current certificates to the data path; a certificate that
 * expires without renewal is withdrawn here, so the poll deadline below
 * also wakes us at the earliest expiry. */
static void publish(struct control *ctl)
{
	int r;

	if (ctl->share && (r = cert_share_publish(ctl->share, ctl->certs, now_s())) < 0)
		log_error("cannot hand certificates to the data path", LF_ERRNO(r));
}

static void reconcile(struct control *ctl)
{
	if (!ctl->enroll)
		return;
	const struct zt_model *m = state_read_lock(ctl->store);
	if (serving(ctl))
		enroll_reconcile(ctl->enroll, m);
	if (ctl->certs)
		sync_identities(ctl, m);
	state_read_unlock();
	report_captured(ctl);
}

/* A new model in force: the pods and identities follow it. */
static void update_source(struct control *ctl, struct snapshot_source *src, bool readable, bool force)
{
	if (src->update(src, ctl->store, readable, force) == 1)
		reconcile(ctl);
}

/* The node's IPv4 addresses moved (one added or removed, e.g. a
 * load-balancer address): the capture (node-address exemption, nodePorts
 * and hostPorts in zt_services), the workers and the service map follow,
 * so a nodePort on a new address is no way around the mesh. force: push
 * them even if the capture has them (an agent that starts serving: the
 * capture was set meanwhile, its workers' copy was taken before). */
static void node_addrs_refresh(struct control *ctl, bool force)
{
	if (!ctl->enroll || !serving(ctl))
		return; /* pushed with force when it starts serving */
	struct capture *c = ctl->enroll->capture;
	uint32_t addrs[ZT_MAX_NODE_ADDRS * 4], old[ZT_MAX_NODE_ADDRS], ifs[64], n, n_ifs;
	int r = capture_local_addrs(addrs, ZT_MAX_NODE_ADDRS * 4, &n, ifs, 64, &n_ifs);

	if (r < 0) {
		log_error("cannot list node addresses", LF_ERRNO(r));
		return;
	}
	int n_old = capture_node_addrs_get(c, old, ZT_MAX_NODE_ADDRS);
	uint32_t kept = n < ZT_MAX_NODE_ADDRS ? n : ZT_MAX_NODE_ADDRS;
	if (!force && n_old == (int)kept && !memcmp(old, addrs, kept * sizeof(*addrs)))
		return;
	if ((r = capture_node_addrs_set(c, addrs, n)) < 0) {
		log_error("cannot set node addresses", LF_ERRNO(r));
		return;
	}
	if (ctl->proxy)
		proxy_set_node_addrs(ctl->proxy, addrs, kept);
	if (force)
		return; /* the caller reconciles */
	log_info("node addresses changed", LF_INT("before", n_old), LF_UINT("now", kept));
	reconcile(ctl);
}

static void control_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

int control_block_signals(void)
{
	sigset_t set;

	control_signals(&set);
	return -pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int signals_fd(void)
{
	sigset_t set;
	int r = control_block_signals();

	if (r < 0)
		return r;
	control_signals(&set);
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* SIGTERM, SIGINT or POST /quitquitquit (SPEC §10): readiness fails, HBONE
 * peers get GOAWAY, live connections run until they end or the deadline. */
static void start_drain(struct control *ctl, const char *why)
{
	int secs = lifecycle_deadline_s(ctl->cfg->termination_deadline);

	if (!lifecycle_drain(ctl->life, clock_mono_ms() + (int64_t)secs * 1000))
		return;
	proxy_drain(ctl->proxy);
	log_info("draining: live connections may finish, then the agent stops", LF_STR("signal", why),
		 LF_INT("deadline_seconds", secs));
}

/* During a drain: true when the agent may exit. Over when nothing is
 * left or at the deadline; but a successor that is getting ready is
 * waited for (until the deadline: our listeners must not go before it has
 * them), and once superseded the agent waits for SIGTERM. */
static bool drain_over(struct control *ctl)
{
	int64_t live = ctl->proxy ? proxy_live(ctl->proxy) : 0;
	bool late = clock_mono_ms() >= ctl->life->deadline_ms;

	if (ctl->drained || (live != 0 && !late) || (ctl->successor_fd >= 0 && !late))
		return ctl->drained && ctl->term_received;
	if (live == 0)
		log_info("drained: every connection ended");
	else
		log_warn("drain deadline passed: closing the connections left",
			 LF_INT("connections", live < 0 ? 0 : live));
	ctl->drained = true;
	if (ctl->superseded && !ctl->term_received) {
		log_info("superseded by a new agent: waiting for SIGTERM");
		return false;
	}
	return true;
}

/* This agent has what it needs to serve: a model, and a certificate for
 * every local identity (handover.h: only then is the running one asked
 * for its listeners). The cache, not what was published to the workers:
 * right after a model the share does not list the new identities yet. */
static bool ready_to_serve(struct control *ctl)
{
	return state_store_ready(ctl->store) && (!ctl->certs || cert_cache_all_available(ctl->certs));
}

/* The new agent's side: take the running one's listeners once ready, or
 * start on new ones if it went away; tell it once serving (until then it
 * can take the node back). */
static int take_over(struct control *ctl, bool gone)
{
	struct handover_fds fds;
	int r = gone ? -EPIPE : handover_take(ctl->predecessor_fd, &fds);

	if (r < 0)
		log_warn("no listeners from the previous agent: starting on new ones", LF_ERRNO(r));
	int s = ctl->serve_begin(ctl->serving, r < 0 ? NULL : &fds);
	if (s < 0)
		log_error("cannot start serving", LF_ERRNO(s));
	else if (r == 0)
		handover_serving(ctl->predecessor_fd);
	close(ctl->predecessor_fd);
	ctl->predecessor_fd = -1;
	if (s == 0 && ctl->enroll) {
		enroll_reload(ctl->enroll); /* what the predecessor did meanwhile */
		node_addrs_refresh(ctl, true);
		reconcile(ctl);
	}
	return s;
}

/* The running agent's side: a successor connects, asks, gets the
 * listeners, then says it serves (we drain) or goes away (we serve on). */
static void successor_event(struct control *ctl, bool listen_ready, short conn_events)
{
	if (listen_ready) {
		int fd = handover_accept(ctl->handover_fd);
		if (fd >= 0 && ctl->successor_fd < 0) {
			ctl->successor_fd = fd;
			atomic_store(&ctl->life->handover_pending, true);
			log_info("a new agent is starting beside this one: it takes over once ready");
		} else if (fd >= 0) {
			close(fd); /* one at a time */
		}
	}
	if (ctl->successor_fd < 0 || !conn_events)
		return;
	bool done = true;
	if (!ctl->handing_over) {
		if (ctl->hand_over(ctl->serving, ctl->successor_fd) == 0) {
			ctl->handing_over = true;
			ctl->handover_deadline_ms = clock_mono_ms() + HANDOVER_CONFIRM_MS;
			done = false;
		} else {
			log_warn("the new agent went away before taking over");
		}
	} else if (handover_wait_serving(ctl->successor_fd) == 0) {
		close(ctl->handover_fd); /* the successor binds the path anew */
		ctl->handover_fd = -1;
		ctl->handing_over = false;
		ctl->superseded = true;
		ctl->commit_handover(ctl->serving);
		start_drain(ctl, "handed over to a new agent");
	} else {
		ctl->handing_over = false;
		ctl->take_back(ctl->serving);
		node_addrs_refresh(ctl, true); /* changes while handing over were not followed */
		reconcile(ctl);
	}
	if (done) {
		close(ctl->successor_fd);
		ctl->successor_fd = -1;
		atomic_store(&ctl->life->handover_pending, false);
	}
	report_captured(ctl); /* paused while handing over, for good once handed over */
}

/* A successor that got the listeners but never said it serves: take back. */
static void handover_timeout(struct control *ctl)
{
	if (!ctl->handing_over || clock_mono_ms() < ctl->handover_deadline_ms)
		return;
	log_warn("the new agent did not confirm it serves within the handover time");
	ctl->handing_over = false;
	ctl->take_back(ctl->serving);
	node_addrs_refresh(ctl, true);
	reconcile(ctl);
	close(ctl->successor_fd);
	ctl->successor_fd = -1;
	atomic_store(&ctl->life->handover_pending, false);
	report_captured(ctl);
}

int control_run(struct control *ctl)
{
	struct state_store *store = ctl->store;
	struct enroll *enroll = ctl->enroll;
	struct snapshot_source *src = ctl->source;
	int sfd = signals_fd();

	if (sfd < 0) {
		log_error("cannot set up signal handling", LF_ERRNO(sfd));
		return 1;
	}
	state_reader_register();
	/* Opened before the first model: a change from now on is seen. */
	struct capture_addr_monitor *addr_mon = NULL;
	int r = enroll ? capture_addr_monitor_open(&addr_mon) : 0;
	if (r < 0)
		log_error("cannot follow the node's address changes (nodePorts on a new address are not captured)",
			  LF_ERRNO(r));
	update_source(ctl, src, false, true);
	if (enroll)
		node_addrs_refresh(ctl, false); /* any change since the agent read them at start */
	if (!state_store_ready(store))
		log_warn("not ready: no valid snapshot yet, waiting for one", LF_STR("source", src->name));

	int64_t next_cert = ctl->certs ? cert_cache_tick(ctl->certs, now_s()) : INT64_MAX;
	publish(ctl);
	int status = 0;
	for (;;) {
		struct pollfd fds[9] = { { src->fd, POLLIN, 0 }, { sfd, POLLIN, 0 },
					 { enroll ? enroll->listen_fd : -1, POLLIN, 0 },
					 { ctl->cni ? ctl->cni->fd : -1, POLLIN, 0 },
					 { ctl->handover_fd, POLLIN, 0 }, { ctl->successor_fd, POLLIN, 0 },
					 { ctl->predecessor_fd, POLLIN, 0 },
					 { ctl->fetcher ? cert_fetcher_fd(ctl->fetcher) : -1, POLLIN, 0 },
					 { addr_mon ? capture_addr_monitor_fd(addr_mon) : -1, POLLIN, 0 } };
		int64_t deadline = src->deadline_ms(src);
		if (ctl->cni && cni_chain_deadline(ctl->cni) < deadline)
			deadline = cni_chain_deadline(ctl->cni);
		if (next_cert != INT64_MAX) {
			/* certificate times are wall-clock seconds, ours monotonic ms */
			int64_t cert_deadline = clock_mono_ms() + (next_cert - now_s()) * 1000;
			if (cert_deadline < deadline)
				deadline = cert_deadline;
		}
		if (((lifecycle_draining(ctl->life) && !ctl->drained) || ctl->predecessor_fd >= 0 || ctl->handing_over) &&
		    deadline > clock_mono_ms() + 100)
			deadline = clock_mono_ms() + 100; /* counts come from the workers' ticks */
		int64_t wait = deadline == INT64_MAX ? 60000 : deadline - clock_mono_ms();
		if (poll(fds, 9, wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait) < 0 && errno != EINTR) {
			log_error("poll failed", LF_ERRNO(-errno));
			status = 1;
			break;
		}
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					log_info("SIGHUP: reloading snapshot");
					update_source(ctl, src, false, true);
				} else if (si.ssi_signo == SIGINT && ctl->term_received) {
					log_warn("second SIGINT: stopping now, without waiting for the drain");
					break;
				} else {
					ctl->term_received = true;
					start_drain(ctl, strsignal((int)si.ssi_signo));
				}
			}
		}
		if (fds[4].revents || fds[5].revents)
			successor_event(ctl, fds[4].revents & POLLIN, fds[5].revents);
		handover_timeout(ctl);
		if (ctl->predecessor_fd >= 0 && !ctl->term_received &&
		    (fds[6].revents || ready_to_serve(ctl)) && take_over(ctl, fds[6].revents) < 0) {
			status = 1;
			break;
		}
		if (fds[2].revents & POLLIN) {
			enroll_serve_one(enroll, store);
			after_cni_request(ctl);
		}
		update_source(ctl, src, fds[0].revents & POLLIN, false);
		if ((fds[8].revents & POLLIN) && capture_addr_monitor_drain(addr_mon) > 0)
			node_addrs_refresh(ctl, false);
		if (ctl->cni) {
			if (fds[3].revents & POLLIN)
				cni_chain_event(ctl->cni);
			cni_chain_tick(ctl->cni);
		}
		if (ctl->certs) {
			/* Results first: each frees a slot the tick fills. */
			if (fds[7].revents & POLLIN)
				cert_fetcher_deliver(ctl->fetcher, ctl->certs, now_s());
			next_cert = cert_cache_tick(ctl->certs, now_s());
			publish(ctl);
		}
		if (lifecycle_draining(ctl->life) && (ctl->drained ? ctl->term_received : drain_over(ctl)))
			break;
	}
	log_info("shutting down", LF_INT("status", status));
	capture_addr_monitor_close(addr_mon);
	state_reader_unregister();
	close(sfd);
	return status;
}
