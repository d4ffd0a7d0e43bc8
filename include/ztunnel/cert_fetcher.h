/* Runs a certificate provider's fetches off the caller's thread (SPEC.md
 * §4: a CSR to a cluster CA takes up to its timeout, seconds, and the
 * control thread also serves CNI requests, snapshots and signals). The
 * cache decides what to fetch and when (cert_cache.h, its runner); this
 * runs the fetches and hands results back on the caller's thread. */
#ifndef ZTUNNEL_CERT_FETCHER_H
#define ZTUNNEL_CERT_FETCHER_H

#include <stdint.h>

#include "ztunnel/cert_cache.h"

struct cert_fetcher;

/* Starts the fetch threads. p.fetch is called from them, several at once:
 * it must only read p.ctx and be safe to run concurrently (the ca provider
 * is: each call makes its own key, RNG and TLS context; wolfSSL_Init must
 * have run before). Start after blocking signals: the threads inherit the
 * mask. 0 or -errno. */
int cert_fetcher_start(struct cert_fetcher **out, struct cert_provider p);
/* What to give cert_cache_set_runner. */
struct cert_runner cert_fetcher_runner(struct cert_fetcher *f);
/* Readable (an eventfd) when results wait for cert_fetcher_deliver. */
int cert_fetcher_fd(const struct cert_fetcher *f);
/* Hands every finished result to c (cert_cache_complete); returns how
 * many. Call from the thread that owns c, then cert_cache_tick: a slot
 * has come free. */
int cert_fetcher_deliver(struct cert_fetcher *f, struct cert_cache *c, int64_t now);
/* Waits for the fetches under way (each bounded by the provider's own
 * timeout), drops those not begun and the results not delivered. Call
 * before cert_cache_fini. NULL is fine. */
void cert_fetcher_stop(struct cert_fetcher *f);

#endif
