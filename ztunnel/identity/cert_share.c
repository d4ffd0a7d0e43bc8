#include "ztunnel/cert_share.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cert_share_init(struct cert_share *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

static void entries_free(struct cert_share_entry *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		leaf_cert_free(&e[i].cert);
	free(e);
}

void cert_share_fini(struct cert_share *s)
{
	entries_free(s->entries, s->n);
	pthread_mutex_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}

static bool usable(const struct cert_entry *e, int64_t now)
{
	return e->state == CERT_AVAILABLE && e->cert.chain_pem && now < e->cert.not_after;
}

/* The state operators see: an available certificate past its expiry is
 * already unavailable for the data path. */
static uint8_t shown_state(const struct cert_entry *e, int64_t now)
{
	if (usable(e, now))
		return CERT_AVAILABLE;
	return e->state == CERT_AVAILABLE ? CERT_UNAVAILABLE : e->state;
}

/* Only the control thread writes entries, so it may read them unlocked. */
static bool unchanged(const struct cert_share *s, const struct cert_cache *c, int64_t now)
{
	if (s->n != c->n)
		return false;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct cert_entry *e = &c->entries[i];
		const struct cert_share_entry *m = &s->entries[i];
		if (strcmp(m->uri, e->uri) || m->state != shown_state(e, now) || strcmp(m->error, e->last_error) ||
		    (m->usable && strcmp(m->cert.serial, e->cert.serial)))
			return false;
	}
	return true;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int leaf_copy(const struct leaf_cert *from, struct leaf_cert *to)
{
	*to = *from;
	to->cert_pem = dup_or_null(from->cert_pem);
	to->chain_pem = dup_or_null(from->chain_pem);
	to->key_pem = dup_or_null(from->key_pem);
	to->roots_pem = dup_or_null(from->roots_pem);
	if (!to->chain_pem || !to->key_pem || !to->roots_pem || (from->cert_pem && !to->cert_pem)) {
		leaf_cert_free(to);
		return -ENOMEM;
	}
	return 0;
}

int cert_share_publish(struct cert_share *s, const struct cert_cache *c, int64_t now)
{
	if (unchanged(s, c, now))
		return 0;
	struct cert_share_entry *ne = calloc(c->n ? c->n : 1, sizeof(*ne));
	uint32_t n = 0;
	if (!ne)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct cert_entry *e = &c->entries[i];
		struct cert_share_entry *m = &ne[n++];
		memcpy(m->uri, e->uri, sizeof(m->uri));
		m->state = shown_state(e, now);
		snprintf(m->error, sizeof(m->error), "%s", e->last_error);
		if (!(m->usable = usable(e, now)))
			continue;
		if (leaf_copy(&e->cert, &m->cert) < 0) {
			entries_free(ne, n);
			return -ENOMEM;
		}
	}
	pthread_mutex_lock(&s->lock);
	struct cert_share_entry *old = s->entries;
	uint32_t old_n = s->n;
	s->entries = ne;
	s->n = n;
	atomic_fetch_add_explicit(&s->generation, 1, memory_order_release);
	pthread_mutex_unlock(&s->lock);
	entries_free(old, old_n);
	return 0;
}

int cert_share_get(struct cert_share *s, const char *uri, struct leaf_cert *out)
{
	int r = -ENOENT;

	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->entries[i].usable && !strcmp(s->entries[i].uri, uri)) {
			r = leaf_copy(&s->entries[i].cert, out);
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void cert_share_each(struct cert_share *s, void (*fn)(const struct cert_share_entry *e, void *ctx), void *ctx)
{
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < s->n; i++)
		fn(&s->entries[i], ctx);
	pthread_mutex_unlock(&s->lock);
}
