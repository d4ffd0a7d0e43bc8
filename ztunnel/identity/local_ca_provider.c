#include "ztunnel/local_ca_provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ztunnel/file.h"
#include "ztunnel/log.h"
#include "ztunnel/state.h"

static int file_stamp(const char *dir, const char *name, int64_t *mtime, ino_t *ino)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) < 0)
		return -errno;
	*mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	*ino = st.st_ino;
	return 0;
}

int local_ca_provider_load(struct local_ca_provider *p, int64_t now, char *err, size_t err_size)
{
	int64_t cm = 0, km = 0;
	ino_t ci = 0, ki = 0;
	char path[PATH_MAX];
	char *cert = NULL, *key = NULL;
	size_t len;
	int r;

	if (file_stamp(p->dir, "ca-cert.pem", &cm, &ci) < 0 || file_stamp(p->dir, "ca-key.pem", &km, &ki) < 0) {
		snprintf(err, err_size, "CA files missing in %s (ca-cert.pem, ca-key.pem)", p->dir);
		return -ENOENT;
	}
	/* root-cert.pem is optional: absent, it stamps as 0. */
	int64_t rm = 0;
	ino_t ri = 0;
	file_stamp(p->dir, "root-cert.pem", &rm, &ri);
	if (p->ca && cm == p->cert_mtime_ns && km == p->key_mtime_ns && ci == p->cert_ino && ki == p->key_ino &&
	    rm == p->root_mtime_ns && ri == p->root_ino)
		return 0;
	snprintf(path, sizeof(path), "%s/ca-cert.pem", p->dir);
	if ((r = file_read(path, FILE_MAX_BYTES, &cert, &len)) == 0) {
		snprintf(path, sizeof(path), "%s/ca-key.pem", p->dir);
		r = file_read(path, FILE_MAX_BYTES, &key, &len);
	}
	struct ca *ca = NULL;
	if (r < 0)
		snprintf(err, err_size, "cannot read %s: %s", path, strerror(-r));
	else
		r = ca_load(&ca, cert, key, now, err, err_size);
	char *roots = NULL;
	if (r == 0) {
		/* The trust bundle: root-cert.pem (several roots during a
		 * rotation), else the issuing chain itself. */
		snprintf(path, sizeof(path), "%s/root-cert.pem", p->dir);
		if (file_read(path, FILE_MAX_BYTES, &roots, &len) < 0)
			roots = strdup(cert);
		if (!roots)
			r = -ENOMEM;
	}
	free(cert);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	if (r < 0) {
		ca_free(ca);
		return r; /* keep the CA we had, if any, for the caller to decide */
	}
	ca_free(p->ca);
	free(p->roots);
	p->ca = ca;
	p->roots = roots;
	p->cert_mtime_ns = cm;
	p->key_mtime_ns = km;
	p->cert_ino = ci;
	p->key_ino = ki;
	p->root_mtime_ns = rm;
	p->root_ino = ri;
	p->loads++;
	log_info("local CA loaded", LF_STR("dir", p->dir));
	return 0;
}

int local_ca_provider_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
			    struct leaf_cert *out, char *err, size_t err_size)
{
	struct local_ca_provider *p = ctx;
	int r = local_ca_provider_load(p, now, err, err_size);

	/* A changed but bad CA is an error: never sign with a CA the operator
	 * has replaced. */
	if (r < 0)
		return r;
	if ((r = ca_mint(p->ca, id, now, lifetime_s, out, err, err_size)) < 0)
		return r;
	if (!(out->roots_pem = strdup(p->roots))) {
		leaf_cert_free(out);
		return -ENOMEM;
	}
	return 0;
}

void local_ca_provider_fini(struct local_ca_provider *p)
{
	ca_free(p->ca);
	free(p->roots);
	p->ca = NULL;
	p->roots = NULL;
}
