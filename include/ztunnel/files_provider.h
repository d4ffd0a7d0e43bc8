/* Certificates written by an external issuer, one directory per identity:
 * <root>/<namespace>/<service account>/{cert-chain.pem,key.pem,root-cert.pem}. */
#ifndef ZTUNNEL_FILES_PROVIDER_H
#define ZTUNNEL_FILES_PROVIDER_H

#include <limits.h>
#include <stdbool.h>

#include "ztunnel/identity.h"

struct files_provider {
	char root[PATH_MAX];
};

/* A struct cert_provider fetch: validates the set (identity, key pairing,
 * chain against root-cert.pem, expiry) or refuses it with a reason. */
int files_provider_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
			 struct leaf_cert *out, char *err, size_t err_size);

/* A struct cert_provider changed: the leaf on disk has another serial. */
bool files_provider_changed(void *ctx, const struct spiffe_id *id, const char *serial);

#endif
