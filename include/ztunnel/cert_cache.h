/* Certificates of the identities this node's pods need (SPEC.md §4): one
 * per identity (pods sharing a service account share it), held only while
 * some local pod needs it, refreshed at half-life with jitter, retried with
 * backoff, and never offered once expired (fail closed). Sans-IO: the
 * caller drives it with a clock; minting goes through a provider, called
 * in cert_cache_tick, or started through a runner and finished with
 * cert_cache_complete (a provider that blocks, such as a CA over the
 * network, then never holds up the caller's thread). */
#ifndef ZTUNNEL_CERT_CACHE_H
#define ZTUNNEL_CERT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "ztunnel/identity.h"

/* Issues a certificate for id (local CA, files, ...). */
struct cert_provider {
	const char *name;
	int (*fetch)(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
		     struct leaf_cert *out, char *err, size_t err_size);
	/* Optional, for externally written certificates: true when what fetch
	 * would read differs from `serial` (checked at least every
	 * CERT_POLL_S). */
	bool (*changed)(void *ctx, const struct spiffe_id *id, const char *serial);
	void *ctx;
};

#define CERT_POLL_S 10

enum cert_state {
	CERT_INITIALIZING = 0, /* no certificate yet, first fetch pending or failing */
	CERT_AVAILABLE,
	CERT_UNAVAILABLE,      /* had one, it expired, renewal keeps failing */
};

#define CERT_BACKOFF_MIN_S 1
#define CERT_BACKOFF_MAX_S 150

/* SPEC.md §4: up to 8 CSRs in flight at once. */
#define CERT_MAX_IN_FLIGHT 8

/* Runs provider fetches elsewhere (cert_fetcher.h). start queues one for
 * id and returns 0, or -errno (then the fetch counts as failed and backs
 * off); the result comes back, later, through cert_cache_complete with the
 * same ticket. start must not call into the cache. */
struct cert_runner {
	int (*start)(void *ctx, const struct spiffe_id *id, uint64_t ticket, int64_t lifetime_s);
	void *ctx;
};

struct cert_entry {
	struct spiffe_id id;
	char uri[800];
	uint32_t refs;
	uint8_t state;
	struct leaf_cert cert;
	int64_t refresh_at;
	int64_t backoff_s;
	uint32_t failures; /* consecutive */
	char last_error[256];
	int64_t wanted_at; /* first wanted: orders first fetches */
	bool in_flight;    /* a runner fetches it; not due meanwhile */
	uint64_t ticket;   /* of the fetch in flight */
};

struct cert_cache {
	struct cert_provider provider;
	int64_t lifetime_s;
	unsigned seed; /* jitter */
	struct cert_entry *entries;
	uint32_t n, cap;
	struct cert_runner runner; /* start NULL: fetch in cert_cache_tick */
	uint64_t tickets;          /* the last one given */
	/* Fetches started and not completed, including those of entries
	 * forgotten meanwhile: they still hold a CSR slot at the runner. */
	uint32_t in_flight;
};

void cert_cache_init(struct cert_cache *c, struct cert_provider provider, int64_t lifetime_s,
		     unsigned seed);
void cert_cache_fini(struct cert_cache *c);
/* Every identity wanted has a usable certificate now. */
bool cert_cache_all_available(const struct cert_cache *c);
/* A local pod needs id (refcounted); its first fetch happens at next tick. */
int cert_cache_want(struct cert_cache *c, const struct spiffe_id *id, int64_t now);
/* The pod is gone; the last release forgets the certificate (and the
 * result of a fetch in flight for it). */
void cert_cache_release(struct cert_cache *c, const struct spiffe_id *id);
/* Makes the wanted set exactly ids (duplicates count as references):
 * new identities are added, identities no longer listed are forgotten. */
int cert_cache_sync(struct cert_cache *c, const struct spiffe_id *ids, uint32_t n, int64_t now);
/* From now on, fetches run through r instead of inside cert_cache_tick. */
void cert_cache_set_runner(struct cert_cache *c, struct cert_runner r);
/* Fetches what is due; returns when it wants to be called again. With a
 * runner it starts up to CERT_MAX_IN_FLIGHT fetches in this order (SPEC.md
 * §4's priorities; connections never wait for a certificate here, they
 * fail with IDENTITY_ERROR, so "a connection is waiting" means "they fail
 * right now"):
 *   1. RealTime: UNAVAILABLE (its certificate expired: the identity's
 *      connections fail now), the longest due first;
 *   2. Warmup: INITIALIZING (new local pods), the longest wanted first;
 *   3. Background: AVAILABLE refreshes, the earliest expiry first.
 * An entry in flight is not due, and neither is one waiting for a free
 * slot: a completion, not the clock, is the caller's cue then. */
int64_t cert_cache_tick(struct cert_cache *c, int64_t now);
/* The result of the fetch given `ticket` (r: 0 or the provider's -errno,
 * err its message): applied as a fetch in cert_cache_tick would be. *fresh
 * is taken (adopted, or freed when r is 0 and the ticket is stale: the
 * entry was forgotten or re-added meanwhile). Returns 0, or -ESTALE. */
int cert_cache_complete(struct cert_cache *c, const struct spiffe_id *id, uint64_t ticket, int r,
			struct leaf_cert *fresh, const char *err, int64_t now);
/* The certificate to present for id, NULL unless available and unexpired. */
const struct leaf_cert *cert_cache_get(const struct cert_cache *c, const struct spiffe_id *id,
				       int64_t now);
const struct cert_entry *cert_cache_entry(const struct cert_cache *c, const struct spiffe_id *id);
const char *cert_state_name(enum cert_state s);

/* Node-level authorization: only identities of pods scheduled on node. */
struct zt_workload;
int cert_cache_want_workload(struct cert_cache *c, const struct zt_workload *w, const char *node,
			     const char *trust_domain, int64_t now);

#endif
