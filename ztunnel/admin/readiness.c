/* Readiness (SPEC.md §7): ready only when the node's traffic is really
 * handled: the program attached to every uplink and the listeners in the
 * SOCKMAP (checked against the kernel on every probe), a good snapshot,
 * a certificate for every local identity, the data path running. */
#include "admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ztunnel/capture.h"
#include "ztunnel/lifecycle.h"
#include "ztunnel/cert_share.h"
#include "ztunnel/state.h"

struct cert_wait {
	char *detail;
	size_t size;
	bool blocked;
};

static void append(char *buf, size_t size, const char *s, const char *sep)
{
	size_t n = strlen(buf);

	snprintf(buf + n, size - n, "%s%s", n ? sep : "", s);
}

static void blocker(char *pending, size_t size, const char *name)
{
	append(pending, size, name, ",");
}

static void explain(char *detail, size_t size, const char *why)
{
	append(detail, size, why, "; ");
}

static void cert_pending(const struct cert_share_entry *e, void *ctx)
{
	struct cert_wait *w = ctx;
	char line[1100];

	if (e->usable)
		return;
	w->blocked = true;
	snprintf(line, sizeof(line), "no certificate yet for %s%s%s", e->uri, e->error[0] ? ": " : "", e->error);
	explain(w->detail, w->size, line);
}

/* Blockers in sorted order, as Istio prints them. */
static int readiness(struct admin *a, char *pending, size_t size, char *detail, size_t dsize)
{
	char why[256] = "";

	pending[0] = detail[0] = '\0';
	if (a->d.capture && capture_health(a->d.capture, a->d.uplinks, a->d.n_uplinks, why, sizeof(why)) < 0) {
		blocker(pending, size, "capture");
		explain(detail, dsize, why);
	}
	if (a->d.certs) {
		struct cert_wait w = { detail, dsize, false };
		cert_share_each(a->d.certs, cert_pending, &w);
		if (w.blocked)
			blocker(pending, size, "certificates");
	}
	if (a->d.life && lifecycle_draining(a->d.life)) {
		blocker(pending, size, "draining");
		explain(detail, dsize, "the agent is stopping: live connections finish, new ones go to its successor");
	}
	if (a->d.life && atomic_load(&a->d.life->handover_pending)) {
		/* hostNetwork: the new pod's probe reaches this port until the new
		 * agent takes it over; it must not look ready before that. */
		blocker(pending, size, "handover");
		explain(detail, dsize, "a new agent is getting ready to take this node over");
	}
	if (a->d.capture && !atomic_load(&a->proxy)) {
		blocker(pending, size, "proxy");
		explain(detail, dsize, "data path not running");
	}
	if (!state_store_ready(a->d.store)) {
		blocker(pending, size, "snapshot");
		explain(detail, dsize, "no valid snapshot applied yet");
	}
	return pending[0] ? -EAGAIN : 0;
}

int admin_readiness(struct admin *a, char *pending, size_t size)
{
	char detail[2048];

	return readiness(a, pending, size, detail, sizeof(detail));
}

void admin_ready_reply(struct admin *a, bool detailed, struct admin_reply *r)
{
	char pending[128], detail[2048];

	if (readiness(a, pending, sizeof(pending), detail, sizeof(detail)) == 0)
		return reply_text(r, 200, "ready\n");
	/* SPEC §7: 500 and the sorted blockers. Why, with identities and
	 * interface names, only on the admin port (loopback), not to anyone
	 * who can reach the node's 15021. */
	r->status = 500;
	r->type = "text/plain; charset=utf-8";
	tm_text_printf(&r->body, "not ready, pending: %s\n", pending);
	if (detailed)
		tm_text_printf(&r->body, "%s\n", detail);
}
