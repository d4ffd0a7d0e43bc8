/* Keeps ztunnel-cni chained in the node's primary CNI configuration. The
 * primary CNI (Calico, Cilium, ...) rewrites its file when it restarts or
 * upgrades and drops plugins it does not know; the agent puts itself back
 * within a second, so new pods keep reaching it through the plugin. */
#include "ztunnel/cni_chain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "ztunnel/cni_install.h"
#include "ztunnel/clock.h"
#include "ztunnel/log.h"

/* A runtime or CNI writes a few files in a row: look once they are done. */
#define SETTLE_MS 200


static void ensure(struct cni_chain *c)
{
	char msg[512];
	int r = cni_chained(c->dir);

	if (r == 1)
		return;
	if (r < 0 && r != -ENOENT) {
		log_error("cannot read the CNI configuration", LF_STR("dir", c->dir), LF_ERRNO(r));
		return;
	}
	if (r == -ENOENT)
		return; /* no primary network yet: its first write triggers us */
	if ((r = cni_install(c->dir, c->socket, true, msg, sizeof(msg))) < 0) {
		log_error("cannot chain ztunnel-cni", LF_STR("detail", msg), LF_ERRNO(r));
		return;
	}
	c->rechained++;
	log_warn("ztunnel-cni chained again: the primary CNI configuration had lost it", LF_STR("detail", msg),
		 LF_UINT("times", c->rechained));
}

int cni_chain_open(struct cni_chain *c, const char *dir, const char *socket)
{
	memset(c, 0, sizeof(*c));
	c->dir = dir;
	c->socket = socket;
	c->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	if (inotify_add_watch(c->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM) < 0) {
		int r = -errno;
		close(c->fd);
		c->fd = -1;
		return r;
	}
	ensure(c);
	return 0;
}

void cni_chain_event(struct cni_chain *c)
{
	char buf[4096];

	while (read(c->fd, buf, sizeof(buf)) > 0) {
	}
	c->pending_ms = clock_mono_ms() + SETTLE_MS;
}

int64_t cni_chain_deadline(const struct cni_chain *c)
{
	return c->pending_ms ? c->pending_ms : INT64_MAX;
}

void cni_chain_tick(struct cni_chain *c)
{
	if (c->pending_ms && clock_mono_ms() >= c->pending_ms) {
		c->pending_ms = 0;
		ensure(c);
	}
}

void cni_chain_close(struct cni_chain *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
