/* Certificates of a files-provider directory (DIR/<namespace>/<service
 * account>/), offline: `ztunnel-ctl certificates --cert-dir DIR`. */
#include "certificates_files.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/file.h"
#include "ztunnel/files_provider.h"
#include "ztunnel/state.h"
#include "ztunnel/trust.h"

static void fmt_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static int show(const char *root, const char *ns, const char *sa, const char *td, int64_t now)
{
	struct files_provider fp;
	struct spiffe_id id = { 0 };
	struct leaf_cert l;
	char err[512] = "", issuer[256] = "?", nb[32] = "-", na[32] = "-", serial[40] = "-";
	char path[PATH_MAX], *chain = NULL;
	size_t len;
	int64_t b, a;

	snprintf(fp.root, sizeof(fp.root), "%s", root);
	snprintf(id.td, sizeof(id.td), "%s", td);
	snprintf(id.ns, sizeof(id.ns), "%s", ns);
	snprintf(id.sa, sizeof(id.sa), "%s", sa);
	int r = files_provider_fetch(&fp, &id, now, 0, &l, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/%s/%s/cert-chain.pem", root, ns, sa);
	if (file_read(path, FILE_MAX_BYTES, &chain, &len) == 0) {
		if (cert_validity(chain, &b, &a, serial, sizeof(serial)) == 0) {
			fmt_time(b, nb, sizeof(nb));
			fmt_time(a, na, sizeof(na));
		}
		cert_issuer(chain, issuer, sizeof(issuer));
	}
	printf("spiffe://%s/ns/%s/sa/%s  serial %s  %s .. %s  issuer %s  %s%s\n", td, ns, sa, serial, nb, na,
	       issuer, r == 0 ? "Available" : "Unavailable: ", r == 0 ? "" : err);
	if (r == 0)
		leaf_cert_free(&l);
	free(chain);
	return r == 0 ? 0 : 1;
}

int certificates_files_list(const char *dir, const char *td)
{
	struct dirent **nss;
	int bad = 0, count = 0;

	int n = scandir(dir, &nss, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "error: %s: cannot list the directory\n", dir);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char sub[PATH_MAX];
		struct dirent **sas;
		int m;
		if (nss[i]->d_name[0] != '.') {
			snprintf(sub, sizeof(sub), "%s/%s", dir, nss[i]->d_name);
			if ((m = scandir(sub, &sas, NULL, alphasort)) > 0) {
				for (int j = 0; j < m; j++) {
					if (sas[j]->d_name[0] != '.' && sas[j]->d_type == DT_DIR) {
						bad |= show(dir, nss[i]->d_name, sas[j]->d_name, td, (int64_t)time(NULL));
						count++;
					}
					free(sas[j]);
				}
				free(sas);
			}
		}
		free(nss[i]);
	}
	free(nss);
	if (!count)
		printf("no certificates in %s\n", dir);
	return bad;
}
