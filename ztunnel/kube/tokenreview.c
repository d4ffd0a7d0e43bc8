/* Who a bearer token belongs to, as the API server says (TokenReview,
 * authentication.k8s.io/v1): the ServiceAccount, and for a token bound to
 * a pod the node that pod runs on (the "node claim" kube-apiserver puts
 * in the review's extra). ztunnel-ca asks for every certificate request;
 * the answer is only as good as the audience check, so the audience is
 * always sent and checked in the answer too. */
#include "ztunnel/kube.h"
#include "kube_int.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/telemetry.h"

#define REVIEW_BODY_MAX (1u << 20)
#define SA_PREFIX "system:serviceaccount:"
#define EXTRA_NODE "authentication.kubernetes.io/node-name"
#define EXTRA_POD "authentication.kubernetes.io/pod-name"

static const char *extra_first(const cJSON *extra, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(extra, key);

	return cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1 ? cJSON_GetStringValue(cJSON_GetArrayItem(v, 0)) : NULL;
}

static bool has_string(const cJSON *arr, const char *s)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, arr)
		if (cJSON_IsString(v) && !strcmp(v->valuestring, s))
			return true;
	return false;
}

int kube_token_review_parse(const char *body, size_t len, const char *audience, struct kube_caller *out, char *err,
			    size_t err_size)
{
	cJSON *doc = cJSON_ParseWithLength(body, len);
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
	const cJSON *user = cJSON_GetObjectItemCaseSensitive(status, "user");
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(user, "username"));
	const char *api_err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "error"));
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(status)) {
		snprintf(err, err_size, "the API server's TokenReview answer has no status");
		r = -EPROTO;
	} else if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "authenticated")) || !name) {
		snprintf(err, err_size, "token not authenticated: %s", api_err ? api_err : "(no reason given)");
		r = -EACCES;
	} else if (!has_string(cJSON_GetObjectItemCaseSensitive(status, "audiences"), audience)) {
		/* The server checked it; a token for another audience must
		 * never pass here even if an API server did not. */
		snprintf(err, err_size, "token not issued for audience %s", audience);
		r = -EACCES;
	} else {
		snprintf(out->username, sizeof(out->username), "%s", name);
		const char *colon = !strncmp(name, SA_PREFIX, strlen(SA_PREFIX)) ? strchr(name + strlen(SA_PREFIX), ':')
										   : NULL;
		if (colon && colon[1] && !strchr(colon + 1, ':') && (size_t)(colon - name) - strlen(SA_PREFIX) > 0 &&
		    (size_t)(colon - name) - strlen(SA_PREFIX) < sizeof(out->ns)) {
			snprintf(out->ns, sizeof(out->ns), "%.*s", (int)((size_t)(colon - name) - strlen(SA_PREFIX)),
				 name + strlen(SA_PREFIX));
			snprintf(out->sa, sizeof(out->sa), "%s", colon + 1);
		}
		const cJSON *extra = cJSON_GetObjectItemCaseSensitive(user, "extra");
		const char *node = extra_first(extra, EXTRA_NODE), *pod = extra_first(extra, EXTRA_POD);
		snprintf(out->node, sizeof(out->node), "%s", node ? node : "");
		snprintf(out->pod, sizeof(out->pod), "%s", pod ? pod : "");
		/* A username spelled like a ServiceAccount's from another
		 * authenticator (webhook, OIDC without prefix) is not one. */
		out->service_account = has_string(cJSON_GetObjectItemCaseSensitive(user, "groups"), "system:serviceaccounts");
	}
	cJSON_Delete(doc);
	return r;
}

static size_t collect(char *data, size_t size, size_t n, void *ctx)
{
	struct tm_text *t = ctx;

	if (t->len + size * n > REVIEW_BODY_MAX)
		return 0;
	tm_text_printf(t, "%.*s", (int)(size * n), data);
	return t->failed ? 0 : size * n;
}

int kube_token_review(const struct kube_config *api, const char *token, const char *audience,
		      struct kube_caller *out, char *err, size_t err_size)
{
	char url[1024];
	struct tm_text body = { 0 };
	long status = 0;
	int r;
	cJSON *req = cJSON_CreateObject(), *spec = cJSON_AddObjectToObject(req, "spec");

	memset(out, 0, sizeof(*out));
	cJSON_AddStringToObject(req, "apiVersion", "authentication.k8s.io/v1");
	cJSON_AddStringToObject(req, "kind", "TokenReview");
	cJSON_AddStringToObject(spec, "token", token);
	cJSON_AddItemToObject(spec, "audiences", cJSON_CreateStringArray(&audience, 1));
	char *json = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!json)
		return -ENOMEM;
	struct curl_slist *h = kube_auth_headers(api);
	h = curl_slist_append(h, "Content-Type: application/json");
	CURL *e = curl_easy_init();
	snprintf(url, sizeof(url), "%s/apis/authentication.k8s.io/v1/tokenreviews", api->server);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	kube_set_tls(e, api);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	CURLcode res = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	memset(json, 0, strlen(json)); /* it held the caller's token */
	free(json);
	if (res != CURLE_OK) {
		snprintf(err, err_size, "TokenReview: %s: %s", api->server, curl_easy_strerror(res));
		r = -EHOSTUNREACH;
	} else if (status != 201 && status != 200) {
		snprintf(err, err_size, "TokenReview: the API server answered HTTP %ld%s", status,
			 status == 403 ? " (RBAC: create tokenreviews)" : "");
		r = -EIO;
	} else {
		r = kube_token_review_parse(body.p ? body.p : "", body.len, audience, out, err, err_size);
	}
	tm_text_free(&body);
	return r;
}
