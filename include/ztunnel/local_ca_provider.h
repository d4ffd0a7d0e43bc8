/* The local CA as a certificate provider: the CA files (a mounted Secret:
 * ca-cert.pem, ca-key.pem, optional root-cert.pem) are re-read whenever they change, so switching
 * the signing CA needs no restart, and a bad CA only fails the fetches
 * (the cache keeps what it has) until a good one appears. */
#ifndef ZTUNNEL_LOCAL_CA_PROVIDER_H
#define ZTUNNEL_LOCAL_CA_PROVIDER_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "ztunnel/identity.h"

struct local_ca_provider {
	char dir[PATH_MAX];
	struct ca *ca;
	char *roots; /* root-cert.pem, else the CA chain: what peers are checked against */
	/* identity of the files the loaded CA came from */
	int64_t cert_mtime_ns, key_mtime_ns, root_mtime_ns;
	ino_t cert_ino, key_ino, root_ino;
	uint64_t loads; /* successful (re)loads: a change signal for users of ca */
};

/* (Re)loads the CA when its files changed since the last load: 0 (p->ca
 * and p->roots current) or -errno with err; a bad new CA is an error
 * even if an older good one is held (never sign with a replaced CA). */
int local_ca_provider_load(struct local_ca_provider *p, int64_t now, char *err, size_t err_size);
int local_ca_provider_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
			    struct leaf_cert *out, char *err, size_t err_size);
void local_ca_provider_fini(struct local_ca_provider *p);

#endif
