/* ztunnel preflight's look at the API server: can the agent list what it
 * follows, as itself (RBAC), and are Istio's CRDs there? One list of one
 * object per kind, synchronous. */
#include "ztunnel/kube.h"
#include "kube_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * n;
}

int kube_check(const struct kube_config *cfg, char *why, size_t size)
{
	int problems = 0;

	/* One token read for every kind (the watcher re-reads it per request
	 * because it runs for days; this runs once). */
	struct curl_slist *h = kube_auth_headers(cfg);

	why[0] = '\0';
	for (int i = 0; i < KUBE_KINDS; i++) {
		const struct kube_kind_def *k = &kube_kind_defs[i];
		char url[1024];
		long status = 0;
		CURL *e = curl_easy_init();

		snprintf(url, sizeof(url), "%s%s?limit=1", cfg->server, k->path);
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
		kube_set_tls(e, cfg);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		CURLcode res = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_cleanup(e);
		size_t n = strlen(why);
		const char *sep = n ? "; " : "";
		if (res != CURLE_OK) {
			snprintf(why + n, size - n, "%s%s: %s", sep, cfg->server, curl_easy_strerror(res));
			curl_slist_free_all(h);
			return -EHOSTUNREACH; /* the rest would say the same */
		}
		if (status == 200)
			continue;
		problems++;
		if (status == 401 || status == 403)
			snprintf(why + n, size - n, "%scannot list %s (HTTP %ld: RBAC)", sep, k->kind, status);
		else if (status == 404 && k->crd)
			snprintf(why + n, size - n, "%s%s CRD not installed (its policies would be ignored)", sep,
				 k->kind);
		else
			snprintf(why + n, size - n, "%slisting %s: HTTP %ld", sep, k->kind, status);
	}
	curl_slist_free_all(h);
	return problems;
}
