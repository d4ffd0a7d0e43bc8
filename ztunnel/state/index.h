/* Open-addressing hash index from byte keys to pointers, allocated in a
 * model's arena and immutable once built. Lookups are O(1). */
#ifndef ZTUNNEL_STATE_INDEX_H
#define ZTUNNEL_STATE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "ztunnel/arena.h"

struct zt_index;

struct zt_index *index_new(struct arena *a, uint32_t expected);
/* Adds key -> val; the key bytes must outlive the index (arena memory).
 * Returns 0, -EEXIST with *existing set when the key is present, -ENOMEM. */
int index_put(struct zt_index *ix, const void *key, uint32_t len, void *val, void **existing);
void *index_get(const struct zt_index *ix, const void *key, uint32_t len);
uint32_t index_count(const struct zt_index *ix);
/* Visits every value (order unspecified). */
void index_each(const struct zt_index *ix, void (*fn)(void *val, void *ctx), void *ctx);

#endif
