/* The objects of one kind, in an open-addressing hash keyed by
 * "namespace/name": a 10,000-pod list is inserted in linear time. */
#include "kube_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/hash.h"
static char *key_of(const cJSON *item)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(item, "metadata");
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
	char *key = NULL;

	if (!name)
		return NULL;
	if (asprintf(&key, "%s%s%s", ns ? ns : "", ns ? "/" : "", name) < 0)
		return NULL;
	return key;
}

/* The slot of key, or the free slot where it would go. */
static uint32_t slot_of(const struct kube_objects *o, const char *key)
{
	uint32_t i = hash_str(key) & (o->cap - 1);

	while (o->keys[i] && strcmp(o->keys[i], key))
		i = (i + 1) & (o->cap - 1);
	return i;
}

static int grow(struct kube_objects *o)
{
	struct kube_objects bigger = { 0 };

	bigger.cap = o->cap ? o->cap * 2 : 64;
	bigger.keys = calloc(bigger.cap, sizeof(*bigger.keys));
	bigger.items = calloc(bigger.cap, sizeof(*bigger.items));
	if (!bigger.keys || !bigger.items) {
		free(bigger.keys);
		free(bigger.items);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < o->cap; i++) {
		if (!o->keys[i])
			continue;
		uint32_t s = slot_of(&bigger, o->keys[i]);
		bigger.keys[s] = o->keys[i];
		bigger.items[s] = o->items[i];
	}
	bigger.n = o->n;
	free(o->keys);
	free(o->items);
	*o = bigger;
	return 0;
}

/* A snapshot never needs the server's bookkeeping: managedFields alone can
 * be most of an object. */
static void strip(cJSON *item)
{
	cJSON *md = cJSON_GetObjectItemCaseSensitive(item, "metadata");

	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
}

int kube_objects_put(struct kube_objects *o, cJSON *item)
{
	char *key = key_of(item);

	if (!key) {
		cJSON_Delete(item);
		return -EINVAL;
	}
	if ((o->n + 1) * 2 > o->cap && grow(o) < 0) {
		free(key);
		cJSON_Delete(item);
		return -ENOMEM;
	}
	strip(item);
	uint32_t s = slot_of(o, key);
	if (o->keys[s]) {
		free(key);
		cJSON_Delete(o->items[s]);
	} else {
		o->keys[s] = key;
		o->n++;
	}
	o->items[s] = item;
	return 0;
}

int kube_objects_del(struct kube_objects *o, const cJSON *item)
{
	char *key = key_of(item);

	if (!key || !o->cap) {
		free(key);
		return -ENOENT;
	}
	uint32_t s = slot_of(o, key);
	free(key);
	if (!o->keys[s])
		return -ENOENT;
	free(o->keys[s]);
	cJSON_Delete(o->items[s]);
	o->keys[s] = NULL;
	o->items[s] = NULL;
	o->n--;
	/* Re-seat the run after the hole (linear probing has no tombstones). */
	for (uint32_t i = (s + 1) & (o->cap - 1); o->keys[i]; i = (i + 1) & (o->cap - 1)) {
		char *k = o->keys[i];
		cJSON *it = o->items[i];
		o->keys[i] = NULL;
		o->items[i] = NULL;
		uint32_t t = slot_of(o, k);
		o->keys[t] = k;
		o->items[t] = it;
	}
	return 0;
}

void kube_objects_clear(struct kube_objects *o)
{
	for (uint32_t i = 0; i < o->cap; i++) {
		free(o->keys[i]);
		cJSON_Delete(o->items[i]);
	}
	free(o->keys);
	free(o->items);
	memset(o, 0, sizeof(*o));
}

void kube_objects_refs(const struct kube_objects *o, cJSON *arr)
{
	for (uint32_t i = 0; i < o->cap; i++)
		if (o->items[i])
			cJSON_AddItemReferenceToArray(arr, o->items[i]);
}
