/* A certificate set from outside (an issuer's files, a CA's answer) taken
 * only if it holds together: the identity asked for, the key it was made
 * for, a chain to the roots that come with it, not expired. */
#include "ztunnel/identity.h"
#include "ztunnel/trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int leaf_cert_adopt(const struct spiffe_id *id, char *chain, char *key, char *roots, int64_t now,
		    const struct leaf_names *names, struct leaf_cert *out, char *err, size_t err_size)
{
	struct trust_bundle tb = { 0 };
	struct spiffe_id got;
	char uri[800];
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	spiffe_format(id, uri, sizeof(uri));
	if (trust_bundle_load(&tb, roots) <= 0) {
		snprintf(err, err_size, "%s holds no usable CA certificate", names->roots);
		goto out;
	}
	if (cert_spiffe_id(chain, &got) < 0) {
		snprintf(err, err_size, "%s has no SPIFFE identity%s", names->chain, names->hint);
		goto out;
	}
	if (strcmp(got.td, id->td) || strcmp(got.ns, id->ns) || strcmp(got.sa, id->sa)) {
		snprintf(err, err_size, "%s is for spiffe://%s/ns/%s/sa/%s, expected %s", names->chain, got.td, got.ns,
			 got.sa, uri);
		goto out;
	}
	if (!cert_key_matches(chain, key)) {
		snprintf(err, err_size, "%s does not match the certificate%s", names->key, names->hint);
		goto out;
	}
	if ((r = trust_verify_chain(&tb, chain, err, err_size)) < 0)
		goto out;
	if (cert_validity(chain, &out->not_before, &out->not_after, out->serial, sizeof(out->serial)) < 0 ||
	    now >= out->not_after) {
		snprintf(err, err_size, "%s has expired", names->chain);
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
