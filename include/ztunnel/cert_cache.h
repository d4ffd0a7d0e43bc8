/* Certificates of the identities this node's pods need (SPEC.md §4): one
 * per identity (pods sharing a service account share it), held only while
 * some local pod needs it, refreshed at half-life with jitter, retried with
 * backoff, and never offered once expired (fail closed). Sans-IO: the
 * caller drives it with a clock; minting goes through a provider. */
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
};

struct cert_cache {
	struct cert_provider provider;
	int64_t lifetime_s;
	unsigned seed; /* jitter */
	struct cert_entry *entries;
	uint32_t n, cap;
};

void cert_cache_init(struct cert_cache *c, struct cert_provider provider, int64_t lifetime_s,
		     unsigned seed);
void cert_cache_fini(struct cert_cache *c);
/* Every identity wanted has a usable certificate now. */
bool cert_cache_all_available(const struct cert_cache *c);
/* A local pod needs id (refcounted); its first fetch happens at next tick. */
int cert_cache_want(struct cert_cache *c, const struct spiffe_id *id, int64_t now);
/* The pod is gone; the last release forgets the certificate. */
void cert_cache_release(struct cert_cache *c, const struct spiffe_id *id);
/* Makes the wanted set exactly ids (duplicates count as references):
 * new identities are added, identities no longer listed are forgotten. */
int cert_cache_sync(struct cert_cache *c, const struct spiffe_id *ids, uint32_t n, int64_t now);
/* Fetches what is due; returns when it wants to be called again. */
int64_t cert_cache_tick(struct cert_cache *c, int64_t now);
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
