/* The agent's HTTP endpoints (docs/admin.md): admin API on loopback,
 * Prometheus metrics, readiness. libmicrohttpd, on threads of their own:
 * nothing here runs on, or waits for, a data-path worker. */
#ifndef ZTUNNEL_ADMIN_H
#define ZTUNNEL_ADMIN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztunnel/config.h"

struct state_store;
struct cert_share;
struct capture;
struct proxy;

/* What the endpoints read; the agent wires it. */
struct admin_deps {
	const struct zt_config *cfg;
	struct state_store *store;
	struct cert_share *certs; /* NULL without workload identities */
	struct capture *capture;  /* NULL with --capture=false */
	const uint32_t *uplinks;  /* interfaces the capture must be attached to */
	uint32_t n_uplinks;
	/* POST /quitquitquit: the same shutdown as SIGTERM. */
	void (*quit)(void *ctx);
	void *quit_ctx;
	struct lifecycle *life; /* readiness fails while draining */
};

struct admin;

/* Starts the servers the configuration does not turn off; their bound
 * ports are logged. */
int admin_start(struct admin **out, const struct admin_deps *deps);
/* The data path, once it runs (readiness waits for it). */
void admin_set_proxy(struct admin *a, struct proxy *p);
void admin_stop(struct admin *a);

/* Readiness: 0 when nothing blocks, else -EAGAIN and the blockers
 * (sorted, comma-separated) in pending. */
int admin_readiness(struct admin *a, char *pending, size_t size);

#endif
