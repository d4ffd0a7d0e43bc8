/* The Kubernetes API as the state source: the watcher thread (ztunnel/kube)
 * hands over a model per quiet spell, built from its objects; /snapshot
 * prints the objects it holds. */
#include "ztunnel/snapshot_source.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ztunnel/kube.h"
#include "ztunnel/log.h"

struct kube_src {
	struct snapshot_source s;
	struct kube_source *k;
};

static int update(struct snapshot_source *s, struct state_store *store, bool readable, bool force)
{
	struct kube_src *ks = (struct kube_src *)s;
	struct zt_model *m = NULL;
	struct zt_diags diags;
	int r;

	(void)force; /* the watches are the truth: nothing to re-read */
	if (!readable || kube_source_take(ks->k, &m, &diags, &r) < 0)
		return 0;
	state_store_set_printer(store, kube_source_print, ks->k);
	r = state_store_publish(store, r, m, &diags, "kubernetes");
	diags_release(&diags);
	return r < 0 ? r : 1;
}

static int64_t deadline_ms(struct snapshot_source *s)
{
	(void)s;
	return INT64_MAX;
}

static void close_source(struct snapshot_source *s)
{
	struct kube_src *ks = (struct kube_src *)s;

	kube_source_stop(ks->k);
	free(ks);
}

static void captured(struct snapshot_source *s, const char *const *uids, uint32_t n)
{
	int r = kube_source_set_captured(((struct kube_src *)s)->k, uids, n);

	if (r < 0)
		log_error("cannot report the captured pods to the annotation writer", LF_ERRNO(r));
}

int snapshot_source_kube(struct snapshot_source **out, const struct kube_config *cfg)
{
	struct kube_src *ks = calloc(1, sizeof(*ks));
	int r;

	*out = NULL;
	if (!ks)
		return -ENOMEM;
	if ((r = kube_source_start(&ks->k, cfg)) < 0) {
		free(ks);
		return r;
	}
	ks->s = (struct snapshot_source){ "kubernetes", kube_source_fd(ks->k), update, deadline_ms, close_source,
					  captured };
	*out = &ks->s;
	return 0;
}
