/* The agent's control thread: follows the state source, enrolls pods,
 * keeps certificates, handles signals. The data path runs on io_uring
 * workers beside it. */
#ifndef ZTUNNEL_CONTROL_H
#define ZTUNNEL_CONTROL_H

#include "ztunnel/cert_cache.h"
#include "ztunnel/cert_share.h"
#include "ztunnel/config.h"
#include "ztunnel/enroll.h"
#include "ztunnel/state.h"

/* What the control thread drives. enroll is NULL when capture is off (no
 * CNI socket, no pod reconciliation); certs is NULL without an identity
 * provider (and then share is NULL too). */
struct snapshot_source;
struct cert_fetcher;
struct cni_chain;

struct lifecycle;
struct proxy;
struct handover_fds;

struct control {
	const struct zt_config *cfg;
	struct state_store *store;
	struct snapshot_source *source; /* where models come from */
	struct cni_chain *cni;          /* NULL without --cni-conf-dir */
	struct enroll *enroll;
	struct cert_cache *certs;
	struct cert_fetcher *fetcher; /* certs' fetches off this thread; NULL: in the tick */
	struct cert_share *share; /* where workers pick certificates up; NULL with certs */
	struct lifecycle *life;   /* the drain (SIGTERM, SIGINT, /quitquitquit) */
	struct proxy *proxy;      /* NULL with --capture=false, or before serving */
	/* Rolling restart (handover.h). predecessor_fd: connected to the agent
	 * that serves now; serve_begin is called, with its listeners, once this
	 * one is ready (or with none if it goes away). handover_fd: ours, where a
	 * successor connects; hand_over gives it our listeners, then we drain
	 * and wait for SIGTERM (exiting would have kubelet restart the old
	 * version, which would take over again). */
	int predecessor_fd, handover_fd, successor_fd;
	bool superseded, term_received, drained, handing_over;
	int64_t handover_deadline_ms;
	void *serving;
	int (*serve_begin)(void *serving, struct handover_fds *adopt);
	/* Gives the listeners (the successor accepts from them too from now);
	 * then either commit (it serves: we stop accepting) or take_back. */
	int (*hand_over)(void *serving, int conn);
	void (*commit_handover)(void *serving);
	void (*take_back)(void *serving);
};

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread and the threads
 * it creates afterwards: call before starting any, so that only the
 * control thread's signalfd sees them (a worker would otherwise take
 * SIGTERM's default action and kill the process mid-flight). */
int control_block_signals(void);
/* Runs until a stop was asked for (SIGTERM, SIGINT) and the drain is
 * over; returns the process exit status. */
int control_run(struct control *ctl);

#endif
