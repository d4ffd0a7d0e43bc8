/* Fixed-size buffers for bytes in transit, recycled per worker so a busy
 * tunnel does not go through malloc for every record, and receive buffers
 * that only hold one while the connection moves bulk. */
#include "chunk.h"

#include <errno.h>
#include <stdlib.h>

#include "ztunnel/log.h"

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

/* Small buffers per worker ring: 2 MiB, touched only as used; beyond,
 * reads fall back to a connection's own buffer. */
#define RING_BUFFERS 1024
#define RING_GROUP 1

void rxbuf_ring_init(struct worker *w)
{
	int r = loop_bufs_init(&w->loop, &w->rx_ring, RING_GROUP, RING_BUFFERS, RX_SMALL);

	if (r < 0)
		log_warn("no receive buffer ring (kernel < 5.19?): each connection keeps a small buffer",
			 LF_UINT("worker", w->id), LF_ERRNO(r));
}

void rxbuf_ring_fini(struct worker *w)
{
	loop_bufs_fini(&w->loop, &w->rx_ring);
}

static void give_back(struct worker *w, struct rxbuf *b)
{
	if (b->held)
		loop_bufs_give(&w->rx_ring, (int)b->held - 1);
	b->held = 0;
}

int rxbuf_recv(struct worker *w, struct rxbuf *b, struct op *op, int fd)
{
	give_back(w, b);
	if (b->bulk) {
		if (!b->chunk && !(b->chunk = chunk_get(w)))
			return -ENOMEM;
		io_uring_prep_recv(loop_sqe(&w->loop, op), fd, b->chunk->data, RELAY_BUF, 0);
		return 0;
	}
	chunk_put(w, b->chunk);
	b->chunk = NULL;
	if (w->rx_ring.on && !b->starved) {
		free(b->small);
		b->small = NULL;
		loop_prep_recv_select(&w->loop, op, fd, &w->rx_ring);
		return 0;
	}
	b->starved = false;
	if (!b->small && !(b->small = malloc(RX_SMALL)))
		return -ENOMEM;
	io_uring_prep_recv(loop_sqe(&w->loop, op), fd, b->small, RX_SMALL, 0);
	return 0;
}

uint8_t *rxbuf_received(struct worker *w, struct rxbuf *b, int res, uint32_t flags, uint32_t *cap)
{
	int bid;
	uint8_t *p = loop_bufs_take(&w->rx_ring, flags, &bid);

	if (p) {
		b->held = (uint32_t)bid + 1;
		*cap = w->rx_ring.size;
	} else if (b->chunk) {
		p = b->chunk->data;
		*cap = RELAY_BUF;
	} else {
		p = b->small;
		*cap = RX_SMALL;
	}
	b->bulk = (uint32_t)res == *cap;
	return p;
}

void rxbuf_starved(struct rxbuf *b)
{
	b->starved = true;
}

void rxbuf_release(struct worker *w, struct rxbuf *b)
{
	give_back(w, b);
	chunk_put(w, b->chunk);
	b->chunk = NULL;
	free(b->small);
	b->small = NULL;
	b->bulk = b->starved = false;
}
