/* Objects grouped by a key (their namespace; a slice's namespace/service):
 * a selector is matched against the objects that can match it, not against
 * every object in the cluster. 10,000 pods x 2,000 selectors was the bulk of
 * a model build. Build-time only: lives in the build's scratch arena. */
#include "build.h"
#include "index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct zt_index *group_by(struct build *b, uint32_t n, group_key_fn key_of)
{
	struct zt_index *ix = index_new(&b->scratch, n);
	struct group **of = calloc(n ? n : 1, sizeof(*of));
	char key[512];

	if (!ix || !of)
		goto oom;
	for (uint32_t i = 0; i < n; i++) {
		int len = key_of(b, i, key, sizeof(key));
		if (len < 0 || (size_t)len >= sizeof(key))
			continue; /* no key: in no group */
		struct group *g = index_get(ix, key, (uint32_t)len);
		if (!g) {
			char *k = arena_alloc(&b->scratch, (size_t)len + 1);
			if (!k || !(g = arena_calloc(&b->scratch, 1, sizeof(*g))))
				goto oom;
			memcpy(k, key, (size_t)len + 1);
			if (index_put(ix, k, (uint32_t)len, g, NULL) < 0)
				goto oom;
		}
		g->n++;
		of[i] = g;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct group *g = of[i];
		if (!g)
			continue;
		if (!g->v && !(g->v = arena_calloc(&b->scratch, g->n, sizeof(*g->v))))
			goto oom;
		g->v[g->filled++] = i; /* ascending: the groups keep the model's order */
	}
	free(of);
	return ix;
oom:
	free(of);
	b->oom = true;
	return NULL;
}

const struct group *group_get(const struct zt_index *groups, const char *key)
{
	static const struct group none;
	const struct group *g = key ? index_get(groups, key, (uint32_t)strlen(key)) : NULL;

	return g ? g : &none;
}
