/* Hands certificates from the control thread (which owns the cert cache)
 * to the data-path workers. The control thread publishes after each cache
 * tick; a worker checks one atomic generation per handshake and copies a
 * certificate out under a short lock only when that generation moved. */
#ifndef ZTUNNEL_CERT_SHARE_H
#define ZTUNNEL_CERT_SHARE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ztunnel/cert_cache.h"

/* Every identity the node needs, with its state for operators; only the
 * usable ones (available, unexpired) carry a certificate. */
struct cert_share_entry {
	char uri[800];
	uint8_t state; /* enum cert_state */
	bool usable;
	char error[256];
	struct leaf_cert cert;
};

struct cert_share {
	pthread_mutex_t lock;
	atomic_uint_fast64_t generation;
	struct cert_share_entry *entries; /* written under lock by the control thread only */
	uint32_t n;
};

void cert_share_init(struct cert_share *s);
void cert_share_fini(struct cert_share *s);
/* Control thread: publishes every identity of c with its state (the
 * usable ones with their certificate); no-op (no lock, same generation)
 * when nothing changed. */
int cert_share_publish(struct cert_share *s, const struct cert_cache *c, int64_t now);
static inline uint64_t cert_share_generation(struct cert_share *s)
{
	return atomic_load_explicit(&s->generation, memory_order_acquire);
}
/* Worker: a copy of the certificate for uri (free with leaf_cert_free);
 * -ENOENT when none is published. */
int cert_share_get(struct cert_share *s, const char *uri, struct leaf_cert *out);
/* Admin: calls fn for each published identity, under the lock (fn must
 * not block; it must copy what it keeps). */
void cert_share_each(struct cert_share *s, void (*fn)(const struct cert_share_entry *e, void *ctx), void *ctx);

#endif
