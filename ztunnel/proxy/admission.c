#include "admission.h"

#include <string.h>

static uint32_t bucket(uint32_t src, uint32_t seed)
{
	/* murmur3's finalizer over the seeded address: well mixed and cheap. */
	uint32_t h = src ^ seed;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h % ADMISSION_BUCKETS;
}

void admission_init(struct admission *a, uint32_t max_total, uint32_t max_per_source, uint32_t seed)
{
	memset(a, 0, sizeof(*a));
	a->max_total = max_total;
	a->max_per_source = max_per_source;
	a->seed[0] = seed * 2654435761u;
	a->seed[1] = (seed ^ 0x9e3779b9u) * 40503u + 0x7f4a7c15u;
}

enum admission_verdict admission_enter(struct admission *a, uint32_t src)
{
	uint32_t b0 = bucket(src, a->seed[0]), b1 = bucket(src, a->seed[1]);

	if (atomic_fetch_add(&a->total, 1) >= a->max_total) {
		atomic_fetch_sub(&a->total, 1);
		return ADMIT_OVER_TOTAL;
	}
	uint32_t n0 = atomic_fetch_add(&a->buckets[0][b0], 1);
	uint32_t n1 = atomic_fetch_add(&a->buckets[1][b1], 1);
	if (n0 >= a->max_per_source && n1 >= a->max_per_source) {
		admission_leave(a, src);
		return ADMIT_OVER_PER_SOURCE;
	}
	return ADMIT_OK;
}

void admission_leave(struct admission *a, uint32_t src)
{
	atomic_fetch_sub(&a->buckets[0][bucket(src, a->seed[0])], 1);
	atomic_fetch_sub(&a->buckets[1][bucket(src, a->seed[1])], 1);
	atomic_fetch_sub(&a->total, 1);
}

void admission_move(struct admission *a, uint32_t from, uint32_t to)
{
	atomic_fetch_add(&a->buckets[0][bucket(to, a->seed[0])], 1);
	atomic_fetch_add(&a->buckets[1][bucket(to, a->seed[1])], 1);
	atomic_fetch_sub(&a->buckets[0][bucket(from, a->seed[0])], 1);
	atomic_fetch_sub(&a->buckets[1][bucket(from, a->seed[1])], 1);
}

void admission_add(struct admission *a, uint32_t src, uint32_t n)
{
	atomic_fetch_add(&a->buckets[0][bucket(src, a->seed[0])], n);
	atomic_fetch_add(&a->buckets[1][bucket(src, a->seed[1])], n);
	atomic_fetch_add(&a->total, n);
}

void admission_sub(struct admission *a, uint32_t src, uint32_t n)
{
	atomic_fetch_sub(&a->buckets[0][bucket(src, a->seed[0])], n);
	atomic_fetch_sub(&a->buckets[1][bucket(src, a->seed[1])], n);
	atomic_fetch_sub(&a->total, n);
}

uint32_t admission_usage(struct admission *a, uint32_t src)
{
	uint32_t n0 = atomic_load(&a->buckets[0][bucket(src, a->seed[0])]);
	uint32_t n1 = atomic_load(&a->buckets[1][bucket(src, a->seed[1])]);
	return n0 < n1 ? n0 : n1;
}

uint32_t admission_pending(struct admission *a)
{
	return atomic_load(&a->total);
}
