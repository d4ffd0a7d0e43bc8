/* --identity-provider ca (DESIGN.md §4, SPEC.md §4): keys made on the
 * node, CSRs to a cluster CA over Istio's certificate RPC (our ztunnel-ca,
 * or istiod unchanged), on behalf of the node's pods
 * (ImpersonatedIdentity), authenticated with the agent's ServiceAccount
 * token (re-read for every request: kubelet rotates it). */
#ifndef ZTUNNEL_CA_PROVIDER_H
#define ZTUNNEL_CA_PROVIDER_H

#include <limits.h>

#include "ztunnel/identity.h"

struct ca_provider {
	char address[512];          /* https://host:port */
	char roots_file[PATH_MAX];  /* the CA's TLS certificate chains to these */
	char token_file[PATH_MAX];
	char cluster_id[128];
	int timeout_ms;
};

/* A struct cert_provider fetch: one CreateCertificate for id (lifetime_s
 * asked for; the CA may give less), the answer taken only if it is for
 * id, for our key, chains to the roots it brings (its last entry: every
 * root in it is trusted) and is valid. */
int ca_provider_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
		      struct leaf_cert *out, char *err, size_t err_size);

#endif
