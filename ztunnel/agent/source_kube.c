/* The Kubernetes API as the state source: the watcher thread (ztunnel/kube)
 * hands over a whole v1 List per quiet spell; it is applied like a file. */
#include "ztunnel/snapshot_source.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "ztunnel/kube.h"

struct kube_src {
	struct snapshot_source s;
	struct kube_source *k;
};

static int update(struct snapshot_source *s, struct state_store *store, bool readable, bool force)
{
	struct kube_src *ks = (struct kube_src *)s;
	char *text;
	size_t len;

	(void)force; /* the watches are the truth: nothing to re-read */
	if (!readable || kube_source_take(ks->k, &text, &len) < 0)
		return 0;
	int r = state_store_apply(store, text, len, "kubernetes");
	free(text);
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
	ks->s = (struct snapshot_source){ "kubernetes", kube_source_fd(ks->k), update, deadline_ms, close_source };
	*out = &ks->s;
	return 0;
}
