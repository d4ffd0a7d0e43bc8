/* When the cache's certificates are fetched and how a result lands: in
 * cert_cache_tick through the provider, or started through a runner in
 * SPEC.md §4's priority order and finished by cert_cache_complete. Both
 * paths end in renewal_done, so a result means the same either way. */
#include "ztunnel/cert_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

void cert_cache_set_runner(struct cert_cache *c, struct cert_runner r)
{
	c->runner = r;
}

/* Half-life, moved by up to 5% of the lifetime either way so that many
 * certificates minted together do not renew in one burst. */
static int64_t renewal_time(struct cert_cache *c, const struct leaf_cert *l)
{
	int64_t life = l->not_after - l->not_before;
	int64_t span = life / 10;
	int64_t jitter = span > 0 ? (int64_t)(rand_r(&c->seed) % (span + 1)) - span / 2 : 0;

	return l->not_before + life / 2 + jitter;
}

/* One fetch's result for e: r and err from the provider; *fresh is taken
 * when r is 0 (a failed provider leaves nothing in it). */
static void renewal_done(struct cert_cache *c, struct cert_entry *e, int r, struct leaf_cert *fresh,
			 const char *err, int64_t now)
{
	if (r == 0) {
		leaf_cert_free(&e->cert);
		e->cert = *fresh;
		memset(fresh, 0, sizeof(*fresh));
		e->state = CERT_AVAILABLE;
		e->failures = 0;
		e->backoff_s = CERT_BACKOFF_MIN_S;
		e->last_error[0] = '\0';
		e->refresh_at = renewal_time(c, &e->cert);
		if (e->refresh_at <= now) {
			/* An external issuer (files) has not renewed yet: look
			 * again soon, not in a loop. */
			int64_t left = e->cert.not_after - now;
			e->refresh_at = now + (left / 4 > 60 ? 60 : left / 4 > 1 ? left / 4 : 1);
		}
		tm_count(TM_CERT_ISSUED, 1);
		log_info("certificate issued", LF_STR("identity", e->uri), LF_STR("serial", e->cert.serial),
			 LF_INT("not_after", e->cert.not_after), LF_STR("provider", c->provider.name));
		return;
	}
	/* Keep serving the old certificate while it is valid; retry with
	 * exponential backoff (SPEC.md §4: capped at 150 s). */
	e->failures++;
	tm_count(TM_CERT_FAILURES, 1);
	snprintf(e->last_error, sizeof(e->last_error), "%s", err && err[0] ? err : "certificate fetch failed");
	e->refresh_at = now + e->backoff_s;
	log_warn("certificate renewal failed", LF_STR("identity", e->uri), LF_STR("error", e->last_error),
		 LF_UINT("failures", e->failures), LF_INT("retry_in_s", e->backoff_s));
	e->backoff_s = e->backoff_s * 2 > CERT_BACKOFF_MAX_S ? CERT_BACKOFF_MAX_S : e->backoff_s * 2;
}

/* Without a runner: the provider is fast (local CA, files) and called here. */
static void fetch_now(struct cert_cache *c, struct cert_entry *e, int64_t now)
{
	struct leaf_cert fresh;
	char err[256] = "";
	int r = c->provider.fetch(c->provider.ctx, &e->id, now, c->lifetime_s, &fresh, err, sizeof(err));

	renewal_done(c, e, r, &fresh, err, now);
}

static void fetch_start(struct cert_cache *c, struct cert_entry *e, int64_t now)
{
	uint64_t ticket = ++c->tickets;
	int r = c->runner.start(c->runner.ctx, &e->id, ticket, c->lifetime_s);
	char err[256];

	if (r < 0) {
		snprintf(err, sizeof(err), "cannot start the certificate fetch: %s", strerror(-r));
		renewal_done(c, e, r, NULL, err, now);
		return;
	}
	e->in_flight = true;
	e->ticket = ticket;
	c->in_flight++;
}

/* SPEC.md §4's classes (cert_cache.h): RealTime, Warmup, Background. */
static int priority_class(const struct cert_entry *e)
{
	return e->state == CERT_UNAVAILABLE ? 0 : e->state == CERT_INITIALIZING ? 1 : 2;
}

/* Within a class, the smaller goes first. */
static int64_t priority_key(const struct cert_entry *e)
{
	return e->state == CERT_UNAVAILABLE ? e->refresh_at :
	       e->state == CERT_INITIALIZING ? e->wanted_at : e->cert.not_after;
}

static bool before(const struct cert_entry *a, const struct cert_entry *b)
{
	int ca = priority_class(a), cb = priority_class(b);

	return ca != cb ? ca < cb : priority_key(a) < priority_key(b);
}

/* The most urgent entry due and not in flight, or NULL. A scan per slot
 * (at most CERT_MAX_IN_FLIGHT of them) rather than a sort: no allocation,
 * and a node has tens of identities, not thousands. */
static struct cert_entry *most_urgent(struct cert_cache *c, int64_t now)
{
	struct cert_entry *best = NULL;

	for (uint32_t i = 0; i < c->n; i++) {
		struct cert_entry *e = &c->entries[i];
		if (!e->in_flight && e->refresh_at <= now && (!best || before(e, best)))
			best = e;
	}
	return best;
}

static void start_due(struct cert_cache *c, int64_t now)
{
	struct cert_entry *e;

	while (c->in_flight < CERT_MAX_IN_FLIGHT && (e = most_urgent(c, now)))
		fetch_start(c, e, now);
}

static void expire(struct cert_entry *e, int64_t now)
{
	if (e->state != CERT_AVAILABLE || now < e->cert.not_after)
		return;
	/* Expired and not renewed: stop offering it (fail closed). */
	e->state = CERT_UNAVAILABLE;
	tm_count(TM_CERT_EXPIRED, 1);
	log_error("certificate expired and could not be renewed; connections for this identity fail",
		  LF_STR("identity", e->uri), LF_STR("error", e->last_error));
	leaf_cert_free(&e->cert);
}

static int64_t next_tick(const struct cert_cache *c, int64_t now)
{
	bool full = c->in_flight >= CERT_MAX_IN_FLIGHT;
	int64_t next = INT64_MAX;

	for (uint32_t i = 0; i < c->n; i++) {
		const struct cert_entry *e = &c->entries[i];
		/* Due but waiting for a fetch or a free slot: a completion
		 * calls us again; the clock would only spin. */
		bool waiting = e->in_flight || (full && e->refresh_at <= now);
		if (!waiting && e->refresh_at < next)
			next = e->refresh_at;
		if (e->state == CERT_AVAILABLE && e->cert.not_after < next)
			next = e->cert.not_after;
	}
	if (c->n && c->provider.changed && now + CERT_POLL_S < next)
		next = now + CERT_POLL_S;
	return next;
}

int64_t cert_cache_tick(struct cert_cache *c, int64_t now)
{
	for (uint32_t i = 0; i < c->n; i++) {
		struct cert_entry *e = &c->entries[i];
		/* An external issuer renewed early: take it now. */
		if (!e->in_flight && e->state == CERT_AVAILABLE && e->refresh_at > now && c->provider.changed &&
		    c->provider.changed(c->provider.ctx, &e->id, e->cert.serial))
			e->refresh_at = now;
		if (!c->runner.start && e->refresh_at <= now)
			fetch_now(c, e, now);
		expire(e, now);
	}
	if (c->runner.start)
		start_due(c, now);
	return next_tick(c, now);
}

int cert_cache_complete(struct cert_cache *c, const struct spiffe_id *id, uint64_t ticket, int r,
			struct leaf_cert *fresh, const char *err, int64_t now)
{
	struct cert_entry *e = NULL;

	if (c->in_flight)
		c->in_flight--;
	/* Tickets are never reused within a cache: the ticket alone names the
	 * fetch, and an entry forgotten (or forgotten and wanted again) since
	 * has none or a newer one. */
	for (uint32_t i = 0; i < c->n && !e; i++)
		if (c->entries[i].in_flight && c->entries[i].ticket == ticket)
			e = &c->entries[i];
	if (!e) {
		char uri[800];
		spiffe_format(id, uri, sizeof(uri));
		log_debug("certificate no longer needed: result discarded", LF_STR("identity", uri));
		if (r == 0)
			leaf_cert_free(fresh);
		return -ESTALE;
	}
	e->in_flight = false;
	renewal_done(c, e, r, fresh, err, now);
	return 0;
}
