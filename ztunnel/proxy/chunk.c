/* Fixed-size buffers for bytes in transit, recycled per worker so a busy
 * tunnel does not go through malloc for every record, and receive buffers
 * that only hold one while the connection moves bulk. */
#include "chunk.h"

#include <stdlib.h>

#define MAX_FREE_CHUNKS 256

struct chunk *chunk_get(struct worker *w)
{
	struct chunk *c = w->free_chunks;

	if (c) {
		w->free_chunks = c->next;
		w->n_free_chunks--;
	} else if (!(c = malloc(sizeof(*c)))) {
		return NULL;
	}
	c->next = NULL;
	c->len = c->off = 0;
	return c;
}

void chunk_put(struct worker *w, struct chunk *c)
{
	if (!c)
		return;
	if (w->n_free_chunks < MAX_FREE_CHUNKS) {
		c->next = w->free_chunks;
		w->free_chunks = c;
		w->n_free_chunks++;
	} else {
		free(c);
	}
}

uint8_t *rxbuf_get(struct worker *w, struct rxbuf *b, uint32_t *cap)
{
	if (!b->bulk) {
		rxbuf_release(w, b);
		*cap = RX_SMALL;
		return b->small;
	}
	if (!b->chunk && !(b->chunk = chunk_get(w)))
		return NULL;
	*cap = RELAY_BUF;
	return b->chunk->data;
}

void rxbuf_filled(struct rxbuf *b, uint32_t n, uint32_t cap)
{
	b->bulk = n == cap;
}

void rxbuf_release(struct worker *w, struct rxbuf *b)
{
	chunk_put(w, b->chunk);
	b->chunk = NULL;
}
