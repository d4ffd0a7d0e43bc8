#include "ztunnel/ca_provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/file.h"
#include "ztunnel/grpc.h"

/* The leaf and intermediates (all but the last entry), and the trust
 * bundle (the last). */
static int split_chain(const struct ca_response *resp, char **chain, char **roots)
{
	size_t len = 1;

	*chain = *roots = NULL;
	if (resp->n < 2)
		return -EPROTO; /* a leaf and a bundle at least */
	for (size_t i = 0; i + 1 < resp->n; i++)
		len += strlen(resp->chain[i]) + 1;
	if (!(*chain = calloc(1, len)) || !(*roots = strdup(resp->chain[resp->n - 1]))) {
		free(*chain);
		*chain = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i + 1 < resp->n; i++) {
		strcat(*chain, resp->chain[i]);
		if (resp->chain[i][strlen(resp->chain[i]) - 1] != '\n')
			strcat(*chain, "\n");
	}
	return 0;
}

int ca_provider_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
		      struct leaf_cert *out, char *err, size_t err_size)
{
	const struct ca_provider *p = ctx;
	char uri[800], *csr = NULL, *key = NULL, *token = NULL, *chain = NULL, *roots = NULL;
	struct ca_response resp = { 0 };
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	spiffe_format(id, uri, sizeof(uri));
	if ((r = file_read(p->token_file, 64 * 1024, &token, &len)) < 0) {
		snprintf(err, err_size, "cannot read the token %s: %s", p->token_file, strerror(-r));
		return r;
	}
	while (len && (token[len - 1] == '\n' || token[len - 1] == ' '))
		token[--len] = '\0';
	if ((r = csr_create(id, &csr, &key, err, err_size)) < 0)
		goto out;
	struct grpc_ca_target t = { p->address, p->roots_file, token, p->cluster_id, p->timeout_ms };
	struct ca_request req = { csr, lifetime_s, uri };
	if ((r = grpc_ca_call(&t, &req, &resp, err, err_size)) < 0)
		goto out;
	if ((r = split_chain(&resp, &chain, &roots)) < 0) {
		snprintf(err, err_size, "the CA's chain has %zu entries: a leaf and a trust bundle at least", resp.n);
		goto out;
	}
	static const struct leaf_names names = { "the CA's certificate chain", "the key we sent in the CSR",
						 "the CA's trust bundle", "" };
	r = leaf_cert_adopt(id, chain, key, roots, now, &names, out, err, err_size);
	chain = key = roots = NULL; /* adopted or freed */
out:
	grpc_ca_response_free(&resp);
	free(csr);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	free(chain);
	free(roots);
	if (token)
		memset(token, 0, strlen(token));
	free(token);
	return r;
}
