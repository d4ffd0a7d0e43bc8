/* Workload identity (DESIGN.md §4, SPEC.md §4): SPIFFE ids and the local CA
 * that mints ECDSA P-256 leaf certificates for the pods of this node. */
#ifndef ZTUNNEL_IDENTITY_H
#define ZTUNNEL_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* spiffe://<td>/ns/<ns>/sa/<sa> */
struct spiffe_id {
	char td[254], ns[254], sa[254];
};

/* Exactly 5 path segments with the literal ns and sa, lower-case scheme,
 * no empty parts (SPEC.md §4). Returns 0 or -EINVAL. */
int spiffe_parse(const char *uri, struct spiffe_id *out);
int spiffe_format(const struct spiffe_id *id, char *buf, size_t size);

/* An identity as the data path holds it: one immutable object per
 * identity for the process's life (intern.c), parsed and formatted once,
 * compared by pointer. */
struct zt_identity {
	struct spiffe_id id;
	uint32_t hash;
	char uri[]; /* spiffe://<td>/ns/<ns>/sa/<sa> */
};

/* The object for uri (NULL if it is not a SPIFFE id, or out of memory). */
const struct zt_identity *identity_intern(const char *uri);
const struct zt_identity *identity_intern_id(const struct spiffe_id *id);
/* Its URI, "" for NULL (no identity: plaintext). */
const char *identity_uri(const struct zt_identity *z);

struct ca;

/* A new self-signed root (ECDSA P-256, CA:TRUE, keyCertSign|cRLSign,
 * O=<trust domain>), PEM; caller frees both. */
int ca_create_root(const char *trust_domain, int days, char **cert_pem, char **key_pem);

/* A new intermediate CA signed by parent, PEM: cert_pem is the chain
 * (intermediate first, then parent's chain), ready for --ca-dir. */
int ca_create_intermediate(struct ca *parent, const char *trust_domain, int days, char **cert_pem,
			   char **key_pem);

/* Loads an issuing CA (root or intermediate: cert_pem may hold the chain,
 * issuer first). Refuses a garbled key, a key that does not match, a
 * non-CA or expired certificate at `now`; err says which. */
int ca_load(struct ca **out, const char *cert_pem, const char *key_pem, int64_t now, char *err,
	    size_t err_size);
void ca_free(struct ca *ca);

struct leaf_cert {
	char *cert_pem;  /* the leaf */
	char *chain_pem; /* leaf + issuing chain */
	char *key_pem;   /* PKCS#8 */
	char *roots_pem; /* trust bundle peers are verified against; set by providers */
	int64_t not_before, not_after;
	char serial[40]; /* hex */
};

/* Mints a leaf for id valid [now, now + lifetime_s]: URI SAN only, empty
 * subject, digitalSignature+keyEncipherment, serverAuth+clientAuth. */
int ca_mint(struct ca *ca, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
	    struct leaf_cert *out, char *err, size_t err_size);
void leaf_cert_free(struct leaf_cert *l);

/* ztunnel-ca: a leaf for the key of csr_pem (its signature must verify,
 * P-256; any SPIFFE SAN it names must be id) with id as its only SAN,
 * valid [now - up to 60 s, now + lifetime_s]. *chain_pem: leaf + the CA's chain;
 * serial: hex. -EINVAL (a bad CSR), -EPERM (it names someone else), -EIO. */
int ca_sign_csr(struct ca *ca, const char *csr_pem, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
		char **chain_pem, char *serial, size_t serial_size, char *err, size_t err_size);
/* A TLS server leaf (DNS SANs, EKU serverAuth) and its new key. */
int ca_mint_server(struct ca *ca, const char *const *dns, size_t n, int64_t now, int64_t lifetime_s,
		   struct leaf_cert *out, char *err, size_t err_size);
/* The issuing CA's certificate and its parents (PEM). */
const char *ca_chain(const struct ca *ca);
/* When the issuing CA's certificate expires (Unix seconds). */
int64_t ca_not_after(const struct ca *ca);

/* A new P-256 key (PKCS#8 PEM) and a CSR for id signed with it (PEM,
 * SHA-256, empty subject, the SPIFFE id as its only SAN): what the agent
 * sends to a cluster CA. err says what failed. */
int csr_create(const struct spiffe_id *id, char **csr_pem, char **key_pem, char *err, size_t err_size);

/* What a certificate set's parts are called in errors (file paths, or
 * "the CA's chain"...), and a hint for a part that does not fit. */
struct leaf_names {
	const char *chain, *key, *roots, *hint;
};
/* Takes chain, key and roots (PEM, all three owned from here on) into out
 * only if the chain is for id, matches the key, chains to roots and has
 * not expired at now; else -errno and err naming the part. */
int leaf_cert_adopt(const struct spiffe_id *id, char *chain, char *key, char *roots, int64_t now,
		    const struct leaf_names *names, struct leaf_cert *out, char *err, size_t err_size);

#endif
