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
	char dir[PATH_MAX], chain_path[PATH_MAX + 16], key_path[PATH_MAX + 16], roots_path[PATH_MAX + 16];

	(void)lifetime_s; /* the issuer decides */
	memset(out, 0, sizeof(*out));
	snprintf(dir, sizeof(dir), "%s/%s/%s", fp->root, id->ns, id->sa);
	char *chain = read_one(dir, "cert-chain.pem", err, err_size);
	char *key = chain ? read_one(dir, "key.pem", err, err_size) : NULL;
	char *roots = key ? read_one(dir, "root-cert.pem", err, err_size) : NULL;
	if (!roots) {
		free(chain);
		free(key);
		return -ENOENT;
	}
	snprintf(chain_path, sizeof(chain_path), "%s/cert-chain.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
	snprintf(roots_path, sizeof(roots_path), "%s/root-cert.pem", dir);
	struct leaf_names names = { chain_path, key_path, roots_path, " (incomplete write?)" };
	return leaf_cert_adopt(id, chain, key, roots, now, &names, out, err, err_size);
}
