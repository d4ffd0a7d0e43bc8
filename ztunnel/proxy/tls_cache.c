/* A worker's TLS contexts per local identity. Building one parses the key
 * and chain (milliseconds), so it is done once per certificate serial and
 * role; the published generation says when to look again. */
#include "tls_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/cert_share.h"
#include "ztunnel/tls.h"

static struct tls_cache_entry *find(struct tls_cache *tc, const struct zt_identity *id)
{
	for (uint32_t i = 0; i < tc->n; i++)
		if (tc->e[i].id == id)
			return &tc->e[i];
	return NULL;
}

static void entry_clear(struct tls_cache_entry *e)
{
	tls_ctx_free(e->ctx[0]);
	tls_ctx_free(e->ctx[1]);
	e->ctx[0] = e->ctx[1] = NULL;
}

static void drop(struct tls_cache *tc, struct tls_cache_entry *e)
{
	entry_clear(e);
	*e = tc->e[--tc->n];
}

static struct tls_cache_entry *add(struct tls_cache *tc, const struct zt_identity *id)
{
	if (tc->n == tc->cap) {
		uint32_t cap = tc->cap ? tc->cap * 2 : 8;
		struct tls_cache_entry *ne = realloc(tc->e, cap * sizeof(*ne));
		if (!ne)
			return NULL;
		tc->e = ne;
		tc->cap = cap;
	}
	struct tls_cache_entry *e = &tc->e[tc->n++];
	memset(e, 0, sizeof(*e));
	e->id = id;
	return e;
}

struct tls_ctx *tls_cache_get(struct worker *w, const struct zt_identity *id, bool server, char *err,
			      size_t err_size)
{
	struct tls_cache *tc = &w->tls;
	struct cert_share *share = w->p->certs;
	struct tls_cache_entry *e = id ? find(tc, id) : NULL;
	int64_t now = (int64_t)time(NULL);

	if (!id) {
		snprintf(err, err_size, "no SPIFFE identity");
		return NULL;
	}
	if (!share) {
		snprintf(err, err_size, "no identity provider configured");
		return NULL;
	}
	uint64_t gen = cert_share_generation(share);
	if (e && e->generation == gen && now < e->not_after && e->ctx[server])
		return e->ctx[server];

	struct leaf_cert cert;
	if (cert_share_get(share, id->uri, &cert) < 0) {
		if (e)
			drop(tc, e);
		snprintf(err, err_size, "no certificate for %s (not issued yet, or expired)", id->uri);
		return NULL;
	}
	if (!e && !(e = add(tc, id))) {
		leaf_cert_free(&cert);
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	if (strcmp(e->serial, cert.serial)) {
		/* Rotated: new handshakes use the new certificate; sessions
		 * hold their own reference to the old context. */
		entry_clear(e);
		snprintf(e->serial, sizeof(e->serial), "%s", cert.serial);
		e->not_after = cert.not_after;
	}
	e->generation = gen;
	if (!e->ctx[server] && tls_ctx_new(&e->ctx[server], server, &cert, cert.roots_pem, err, err_size) < 0)
		e->ctx[server] = NULL;
	leaf_cert_free(&cert);
	return e->ctx[server];
}

void tls_cache_fini(struct tls_cache *tc)
{
	for (uint32_t i = 0; i < tc->n; i++)
		entry_clear(&tc->e[i]);
	free(tc->e);
	memset(tc, 0, sizeof(*tc));
}
