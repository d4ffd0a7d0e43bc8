/* libcurl client for the agent's admin API. Failures are printed here, the
 * one place that knows both the URL and curl's reason. */
#include "admin_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/file.h"
#include "ztunnel/version.h"

/* /snapshot is the whole cluster; the agent itself refuses snapshot files
 * larger than this (file_read), so nothing valid is bigger. */
#define ADMIN_MAX_BODY (256u << 20)

struct body_buf {
	char *data;
	size_t len, cap;
	bool too_big;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *user)
{
	struct body_buf *b = user;
	size_t add = size * n;

	if (b->len + add + 1 > ADMIN_MAX_BODY) {
		b->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + add + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, add);
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

static int transport_errno(CURLcode rc, const struct body_buf *b)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL: return -EINVAL;
	case CURLE_WRITE_ERROR: return b->too_big ? -EFBIG : -ENOMEM;
	default: return -EIO;
	}
}

/* The agent's errors are {"error": "..."} (docs/admin.md); /logging and
 * the readiness probe answer text. */
static void print_http_error(const char *method, const char *url, long status, const struct body_buf *b)
{
	cJSON *j = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const char *text = cJSON_IsString(e) ? e->valuestring : b->data ? b->data : "";
	int n = (int)strcspn(text, "\n");

	fprintf(stderr, "error: %s %s: the agent answered %ld%s%.*s\n", method, url, status, *text ? ": " : "",
		n > 300 ? 300 : n, text);
	cJSON_Delete(j);
}

static CURL *new_handle(const char *method, const char *url, struct body_buf *b, char *errbuf)
{
	CURL *h = curl_easy_init();

	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* The admin API listens on the node's loopback: a proxy taken from
	 * $http_proxy could only get in the way. */
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	/* /connections waits for every worker's tick (200 ms); a whole-cluster
	 * /snapshot may take a while on a busy node. */
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "ztunnel-ctl/" ZTUNNEL_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	if (!strcmp(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	return h;
}

int admin_request(const char *base, const char *method, const char *path, char **body, size_t *len)
{
	char errbuf[CURL_ERROR_SIZE] = "", *url;
	size_t blen = strlen(base);
	struct body_buf b = { 0 };
	long status = 0;
	int r = 0;

	*body = NULL;
	*len = 0;
	/* "--admin http://host:15000/" and "...:15000" name the same API. */
	while (blen && base[blen - 1] == '/')
		blen--;
	if (asprintf(&url, "%.*s%s", (int)blen, base, path) < 0)
		return -ENOMEM;
	CURL *h = new_handle(method, url, &b, errbuf);
	if (!h) {
		free(url);
		return -ENOMEM;
	}
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		r = transport_errno(rc, &b);
		if (r == -EFBIG)
			fprintf(stderr, "error: %s %s: the answer is larger than %u MiB\n", method, url,
				ADMIN_MAX_BODY >> 20);
		else /* curl's own buffer says more (address, port, errno) than its code */
			fprintf(stderr,
				"error: cannot reach the agent's admin API at %.*s (%s %s): %s\n"
				"hint: is the agent running, and is --admin (or $ZTUNNEL_ADMIN) its --admin-addr? "
				"Run this on the agent's node.\n",
				(int)blen, base, method, path, *errbuf ? errbuf : curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status < 200 || status > 299) {
			print_http_error(method, url, status, &b);
			r = -EPROTO;
		}
	}
	curl_easy_cleanup(h);
	free(url);
	if (r < 0) {
		free(b.data);
		return r;
	}
	/* An empty answer still gives the caller a string. */
	*body = b.data ? b.data : strdup("");
	*len = b.len;
	return *body ? 0 : -ENOMEM;
}

int admin_get_json(const char *base, const char *path, cJSON **out)
{
	char *body;
	size_t len;
	int r = admin_request(base, "GET", path, &body, &len);

	*out = NULL;
	if (r < 0)
		return r;
	*out = cJSON_ParseWithLength(body, len);
	free(body);
	if (!*out) {
		fprintf(stderr, "error: GET %s%s: the agent's answer is not JSON (is this a ztunnel admin port?)\n",
			base, path);
		return -EBADMSG;
	}
	return 0;
}
