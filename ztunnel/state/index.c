#include "index.h"

#include <errno.h>
#include <string.h>

struct index_slot {
	uint64_t hash; /* 0: empty */
	const void *key;
	uint32_t len;
	void *val;
};

struct zt_index {
	struct index_slot *slots;
	uint32_t mask, count;
};

/* FNV-1a with a final avalanche; keys are short (IPs, names). */
static uint64_t index_hash(const void *key, uint32_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h ? h : 1;
}

struct zt_index *index_new(struct arena *a, uint32_t expected)
{
	struct zt_index *ix = arena_alloc(a, sizeof(*ix));
	uint32_t cap = 16;

	if (!ix)
		return NULL;
	/* Load factor <= 1/2 keeps probe sequences short; the index is sized
	 * once because a model never grows after it is built. */
	while (cap < 2 * (uint64_t)expected + 1 && cap < (1u << 30))
		cap <<= 1;
	ix->slots = arena_calloc(a, cap, sizeof(*ix->slots));
	if (!ix->slots)
		return NULL;
	ix->mask = cap - 1;
	return ix;
}

int index_put(struct zt_index *ix, const void *key, uint32_t len, void *val, void **existing)
{
	uint64_t h = index_hash(key, len);

	if (2 * (uint64_t)(ix->count + 1) > (uint64_t)ix->mask + 1)
		return -ENOMEM; /* sized from a wrong estimate: a bug, not a runtime case */
	for (uint32_t i = (uint32_t)h & ix->mask;; i = (i + 1) & ix->mask) {
		struct index_slot *s = &ix->slots[i];

		if (!s->hash) {
			*s = (struct index_slot){ h, key, len, val };
			ix->count++;
			return 0;
		}
		if (s->hash == h && s->len == len && !memcmp(s->key, key, len)) {
			if (existing)
				*existing = s->val;
			return -EEXIST;
		}
	}
}

void *index_get(const struct zt_index *ix, const void *key, uint32_t len)
{
	if (!ix)
		return NULL;
	uint64_t h = index_hash(key, len);

	for (uint32_t i = (uint32_t)h & ix->mask;; i = (i + 1) & ix->mask) {
		const struct index_slot *s = &ix->slots[i];

		if (!s->hash)
			return NULL;
		if (s->hash == h && s->len == len && !memcmp(s->key, key, len))
			return s->val;
	}
}

uint32_t index_count(const struct zt_index *ix)
{
	return ix ? ix->count : 0;
}

void index_each(const struct zt_index *ix, void (*fn)(void *val, void *ctx), void *ctx)
{
	for (uint32_t i = 0; ix && i <= ix->mask; i++)
		if (ix->slots[i].hash)
			fn(ix->slots[i].val, ctx);
}
