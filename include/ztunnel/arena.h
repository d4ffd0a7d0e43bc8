/* Bump allocator: everything of one immutable model lives in one arena and
 * is freed at once when the model is retired. */
#ifndef ZTUNNEL_ARENA_H
#define ZTUNNEL_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used_bytes; /* bytes handed out, for memory reports */
	size_t reserved_bytes;
};

void arena_init(struct arena *a);
void arena_release(struct arena *a);
/* Zeroed, 16-byte aligned memory; NULL only when malloc fails. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_calloc(struct arena *a, size_t n, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
