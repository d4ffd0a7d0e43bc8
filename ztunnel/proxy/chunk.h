/* Internal to ztunnel/proxy: chunk.c, pooled receive buffers. */
#ifndef ZTUNNEL_PROXY_CHUNK_H
#define ZTUNNEL_PROXY_CHUNK_H

#include "proxy-t.h"

/* chunk.c */
struct chunk *chunk_get(struct worker *w);
void chunk_put(struct worker *w, struct chunk *c);
/* The buffer for the next read (NULL: out of memory) and its size. */
uint8_t *rxbuf_get(struct worker *w, struct rxbuf *b, uint32_t *cap);
/* A read of n bytes into a buffer of cap: bulk when it filled it. */
void rxbuf_filled(struct rxbuf *b, uint32_t n, uint32_t cap);
void rxbuf_release(struct worker *w, struct rxbuf *b);

#endif
