/* The files provider: an external issuer (cert-manager, SPIRE) writes one
 * directory per identity, <root>/<namespace>/<service account>/ with
 * cert-chain.pem, key.pem and root-cert.pem. Each fetch validates the set
 * as a whole, so a half-written update is refused and the cache keeps
 * the certificate it has. */
#include "ztunnel/files_provider.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/file.h"
#include "ztunnel/state.h"
#include "ztunnel/trust.h"

static char *read_one(const char *dir, const char *name, char *err, size_t err_size)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len;
	int r = snprintf(path, sizeof(path), "%s/%s", dir, name) < 0 ? -EINVAL
								      : file_read(path, FILE_MAX_BYTES, &text, &len);

	if (r < 0) {
		snprintf(err, err_size, "cannot read %s: %s", path, strerror(-r));
		return NULL;
	}
	return text;
}

bool files_provider_changed(void *ctx, const struct spiffe_id *id, const char *serial)
{
	const struct files_provider *fp = ctx;
	char path[PATH_MAX], now_serial[40] = "";
	char *chain = NULL;
	size_t len;
	int64_t nb, na;

	snprintf(path, sizeof(path), "%s/%s/%s/cert-chain.pem", fp->root, id->ns, id->sa);
	if (file_read(path, FILE_MAX_BYTES, &chain, &len) < 0)
		return false; /* gone or unreadable: keep what we have */
	bool changed = cert_validity(chain, &nb, &na, now_serial, sizeof(now_serial)) == 0 &&
		       strcmp(now_serial, serial);
	free(chain);
	return changed;
}

int files_provider_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
			 struct leaf_cert *out, char *err, size_t err_size)
{
	const struct files_provider *fp = ctx;
	char dir[PATH_MAX], uri[800];
	struct trust_bundle tb = { 0 };
	struct spiffe_id got;
	int r = -EINVAL;

	(void)lifetime_s; /* the issuer decides */
	memset(out, 0, sizeof(*out));
	snprintf(dir, sizeof(dir), "%s/%s/%s", fp->root, id->ns, id->sa);
	spiffe_format(id, uri, sizeof(uri));
	char *chain = read_one(dir, "cert-chain.pem", err, err_size);
	char *key = chain ? read_one(dir, "key.pem", err, err_size) : NULL;
	char *roots = key ? read_one(dir, "root-cert.pem", err, err_size) : NULL;
	if (!roots) {
		r = -ENOENT;
		goto out;
	}
	if (trust_bundle_load(&tb, roots) <= 0) {
		snprintf(err, err_size, "%s/root-cert.pem holds no usable CA certificate", dir);
		goto out;
	}
	if (cert_spiffe_id(chain, &got) < 0) {
		snprintf(err, err_size, "%s/cert-chain.pem has no SPIFFE identity (incomplete write?)", dir);
		goto out;
	}
	if (strcmp(got.td, id->td) || strcmp(got.ns, id->ns) || strcmp(got.sa, id->sa)) {
		snprintf(err, err_size, "%s/cert-chain.pem is for spiffe://%s/ns/%s/sa/%s, expected %s", dir,
			 got.td, got.ns, got.sa, uri);
		goto out;
	}
	if (!cert_key_matches(chain, key)) {
		snprintf(err, err_size, "%s/key.pem does not match the certificate (incomplete write?)", dir);
		goto out;
	}
	if ((r = trust_verify_chain(&tb, chain, err, err_size)) < 0)
		goto out;
	if (cert_validity(chain, &out->not_before, &out->not_after, out->serial, sizeof(out->serial)) < 0 ||
	    now >= out->not_after) {
		snprintf(err, err_size, "%s/cert-chain.pem has expired", dir);
		r = -EKEYEXPIRED;
		goto out;
	}
	out->cert_pem = cert_leaf_pem(chain);
	out->chain_pem = chain;
	out->key_pem = key;
	out->roots_pem = roots;
	chain = key = roots = NULL;
	r = out->cert_pem ? 0 : -EBADMSG;
out:
	trust_bundle_free(&tb);
	free(chain);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	free(roots);
	if (r < 0)
		leaf_cert_free(out);
	return r;
}
