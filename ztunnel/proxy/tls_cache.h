/* Internal to ztunnel/proxy: tls_cache.c, per-worker TLS contexts. */
#ifndef ZTUNNEL_PROXY_TLS_CACHE_H
#define ZTUNNEL_PROXY_TLS_CACHE_H

#include "proxy-t.h"

/* tls_cache.c: NULL (err says why) when no usable certificate. */
struct tls_ctx *tls_cache_get(struct worker *w, const struct zt_identity *id, bool server, char *err,
			      size_t err_size);
void tls_cache_fini(struct tls_cache *tc);

#endif
