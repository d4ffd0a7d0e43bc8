/* Where the cluster model comes from (DESIGN.md §3): one interface, two
 * implementations (a snapshot file or ConfigMap directory; the Kubernetes
 * API), both feeding the store through the same builder. The control
 * thread polls fd and calls update when it is readable or the deadline
 * has passed. */
#ifndef ZTUNNEL_SNAPSHOT_SOURCE_H
#define ZTUNNEL_SNAPSHOT_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "ztunnel/state.h"

struct kube_config;

struct snapshot_source {
	const char *name; /* for logs: the path, or "kubernetes" */
	int fd;
	/* Applies what changed (force: reload even if it looks unchanged, as on
	 * SIGHUP); 1 when a new model was applied, 0 when none, <0 on error
	 * (logged and counted; the store keeps its model). */
	int (*update)(struct snapshot_source *s, struct state_store *store, bool readable, bool force);
	/* Monotonic ms of the next update wanted without fd activity. */
	int64_t (*deadline_ms)(struct snapshot_source *s);
	void (*close)(struct snapshot_source *s);
	/* The pods of this node whose capture is in place (their uids and
	 * addresses; NULL: say nothing now), for the source to publish to the
	 * other nodes (SPEC §8.5). NULL where the source has no way to (a
	 * snapshot file). */
	void (*captured)(struct snapshot_source *s, const char *const *keys, uint32_t n);
};

int snapshot_source_file(struct snapshot_source **out, const char *path);
int snapshot_source_kube(struct snapshot_source **out, const struct kube_config *cfg);

#endif
