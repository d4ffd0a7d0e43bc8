/* FNV-1a: the one string hash of the in-memory tables (interned
 * identities, metric series, Kubernetes objects). Unkeyed: names chosen
 * to collide (tenants name their pods) cost extra probes, bounded by the
 * table's size; nothing here decides security. */
#ifndef ZTUNNEL_HASH_H
#define ZTUNNEL_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_SEED 2166136261u

static inline uint32_t hash_fnv1a(uint32_t h, const void *data, size_t n)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static inline uint32_t hash_str(const char *s)
{
	uint32_t h = HASH_FNV_SEED;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h;
}

#endif
