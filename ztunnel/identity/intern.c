/* One object per identity for the process's life: parsed once, formatted
 * once, compared by pointer. Connections, the HBONE pool and the TLS
 * contexts hold a pointer (8 bytes) instead of copies of the URI. Lookups
 * go through a small per-thread cache first, so a worker takes the
 * table's lock only the first time it meets an identity. */
#include "ztunnel/identity.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/hash.h"
#define TABLE_MIN 256
#define THREAD_CACHE 256 /* a power of two */

static struct {
	pthread_mutex_t lock;
	struct zt_identity **slots;
	uint32_t n, cap;
} table = { .lock = PTHREAD_MUTEX_INITIALIZER };

static __thread const struct zt_identity *cache[THREAD_CACHE];

static uint32_t slot_of(struct zt_identity **slots, uint32_t cap, const char *uri, uint32_t h)
{
	uint32_t i = h & (cap - 1);

	while (slots[i] && (slots[i]->hash != h || strcmp(slots[i]->uri, uri)))
		i = (i + 1) & (cap - 1);
	return i;
}

static int grow(void)
{
	uint32_t cap = table.cap ? table.cap * 2 : TABLE_MIN;
	struct zt_identity **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (uint32_t i = 0; i < table.cap; i++)
		if (table.slots[i])
			slots[slot_of(slots, cap, table.slots[i]->uri, table.slots[i]->hash)] = table.slots[i];
	free(table.slots);
	table.slots = slots;
	table.cap = cap;
	return 0;
}

/* Under the lock: the table's object for uri, made if new. */
static const struct zt_identity *lookup_or_add(const char *uri, uint32_t h)
{
	struct spiffe_id id;

	if (spiffe_parse(uri, &id) < 0)
		return NULL;
	if ((table.n + 1) * 2 > table.cap && grow() < 0)
		return NULL;
	uint32_t s = slot_of(table.slots, table.cap, uri, h);
	if (table.slots[s])
		return table.slots[s];
	size_t len = strlen(uri);
	struct zt_identity *z = malloc(sizeof(*z) + len + 1);
	if (!z)
		return NULL;
	z->id = id;
	z->hash = h;
	memcpy(z->uri, uri, len + 1);
	table.slots[s] = z;
	table.n++;
	return z;
}

const struct zt_identity *identity_intern(const char *uri)
{
	if (!uri || !*uri)
		return NULL;
	uint32_t h = hash_str(uri);
	const struct zt_identity *c = cache[h & (THREAD_CACHE - 1)];
	if (c && c->hash == h && !strcmp(c->uri, uri))
		return c;
	pthread_mutex_lock(&table.lock);
	const struct zt_identity *z = lookup_or_add(uri, h);
	pthread_mutex_unlock(&table.lock);
	if (z)
		cache[h & (THREAD_CACHE - 1)] = z;
	return z;
}

const struct zt_identity *identity_intern_id(const struct spiffe_id *id)
{
	char uri[sizeof(struct spiffe_id) + 32];

	if (spiffe_format(id, uri, sizeof(uri)) < 0)
		return NULL;
	return identity_intern(uri);
}

const char *identity_uri(const struct zt_identity *z)
{
	return z ? z->uri : "";
}
