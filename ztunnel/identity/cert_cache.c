/* The set of identities wanted and their certificates: references from
 * pods, lookups. When certificates are fetched and how a result lands:
 * cert_renew.c. */
#include "ztunnel/cert_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/log.h"
#include "ztunnel/state-t.h"

static const char *const state_names[] = { "Initializing", "Available", "Unavailable" };

const char *cert_state_name(enum cert_state s)
{
	return (unsigned)s <= CERT_UNAVAILABLE ? state_names[s] : "?";
}

void cert_cache_init(struct cert_cache *c, struct cert_provider provider, int64_t lifetime_s,
		     unsigned seed)
{
	memset(c, 0, sizeof(*c));
	c->provider = provider;
	c->lifetime_s = lifetime_s;
	c->seed = seed;
}

void cert_cache_fini(struct cert_cache *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		leaf_cert_free(&c->entries[i].cert);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

static struct cert_entry *find(const struct cert_cache *c, const struct spiffe_id *id)
{
	for (uint32_t i = 0; i < c->n; i++) {
		const struct spiffe_id *e = &c->entries[i].id;
		if (!strcmp(e->td, id->td) && !strcmp(e->ns, id->ns) && !strcmp(e->sa, id->sa))
			return &c->entries[i];
	}
	return NULL;
}

const struct cert_entry *cert_cache_entry(const struct cert_cache *c, const struct spiffe_id *id)
{
	return find(c, id);
}

bool cert_cache_all_available(const struct cert_cache *c)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->entries[i].state != CERT_AVAILABLE)
			return false;
	return true;
}

int cert_cache_want(struct cert_cache *c, const struct spiffe_id *id, int64_t now)
{
	struct cert_entry *e = find(c, id);

	if (e) {
		e->refs++;
		return 0;
	}
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 16;
		struct cert_entry *ne = realloc(c->entries, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		c->entries = ne;
		c->cap = cap;
	}
	e = &c->entries[c->n++];
	memset(e, 0, sizeof(*e));
	e->id = *id;
	spiffe_format(id, e->uri, sizeof(e->uri));
	e->refs = 1;
	e->wanted_at = now;
	e->refresh_at = now;
	e->backoff_s = CERT_BACKOFF_MIN_S;
	return 0;
}

void cert_cache_release(struct cert_cache *c, const struct spiffe_id *id)
{
	struct cert_entry *e = find(c, id);

	if (!e || --e->refs)
		return;
	leaf_cert_free(&e->cert);
	*e = c->entries[--c->n];
}

static bool same_id(const struct spiffe_id *a, const struct spiffe_id *b)
{
	return !strcmp(a->td, b->td) && !strcmp(a->ns, b->ns) && !strcmp(a->sa, b->sa);
}

static uint32_t count_of(const struct spiffe_id *id, const struct spiffe_id *ids, uint32_t n)
{
	uint32_t count = 0;

	for (uint32_t j = 0; j < n; j++)
		count += same_id(id, &ids[j]);
	return count;
}

int cert_cache_sync(struct cert_cache *c, const struct spiffe_id *ids, uint32_t n, int64_t now)
{
	/* Forget what is no longer wanted (walk backwards: removal swaps in
	 * the last entry), add what is new, then one reference per pod. */
	for (uint32_t i = c->n; i-- > 0;) {
		if (count_of(&c->entries[i].id, ids, n))
			continue;
		log_info("certificate no longer needed", LF_STR("identity", c->entries[i].uri));
		leaf_cert_free(&c->entries[i].cert);
		c->entries[i] = c->entries[--c->n];
	}
	for (uint32_t j = 0; j < n; j++) {
		int r = find(c, &ids[j]) ? 0 : cert_cache_want(c, &ids[j], now);
		if (r < 0)
			return r;
	}
	for (uint32_t i = 0; i < c->n; i++)
		c->entries[i].refs = count_of(&c->entries[i].id, ids, n);
	return 0;
}

int cert_cache_want_workload(struct cert_cache *c, const struct zt_workload *w, const char *node,
			     const char *trust_domain, int64_t now)
{
	struct spiffe_id id = { 0 };

	/* A compromised node must not obtain other nodes' identities. */
	if (!w->node || !node || strcmp(w->node, node))
		return -EPERM;
	snprintf(id.td, sizeof(id.td), "%s", trust_domain);
	snprintf(id.ns, sizeof(id.ns), "%s", w->namespace);
	snprintf(id.sa, sizeof(id.sa), "%s", w->service_account);
	return cert_cache_want(c, &id, now);
}

const struct leaf_cert *cert_cache_get(const struct cert_cache *c, const struct spiffe_id *id,
				       int64_t now)
{
	const struct cert_entry *e = find(c, id);

	if (!e || e->state != CERT_AVAILABLE || now >= e->cert.not_after || now < e->cert.not_before)
		return NULL;
	return &e->cert;
}
