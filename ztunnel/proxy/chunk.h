/* Internal to ztunnel/proxy: chunk.c, pooled receive buffers. */
#ifndef ZTUNNEL_PROXY_CHUNK_H
#define ZTUNNEL_PROXY_CHUNK_H

#include "proxy-t.h"

/* chunk.c */
struct chunk *chunk_get(struct worker *w);
void chunk_put(struct worker *w, struct chunk *c);
/* Arms op: a recv of fd into b (what b held is consumed by now and goes
 * back). -ENOMEM. */
int rxbuf_recv(struct worker *w, struct rxbuf *b, struct op *op, int fd);
/* Its completion with res > 0 bytes: where they are (*cap: the buffer's
 * size). Also takes a ring buffer the kernel filled while the connection
 * was being closed, so that rxbuf_release gives it back. */
uint8_t *rxbuf_received(struct worker *w, struct rxbuf *b, int res, uint32_t flags, uint32_t *cap);
/* Its completion with -ENOBUFS: the ring was empty; the next read uses a
 * buffer of b's own. */
void rxbuf_starved(struct rxbuf *b);
void rxbuf_release(struct worker *w, struct rxbuf *b);
/* The worker's ring of small receive buffers (off on older kernels). */
void rxbuf_ring_init(struct worker *w);
void rxbuf_ring_fini(struct worker *w);

#endif
