/* List + watch of every kind a snapshot holds, on one thread of its own:
 * libcurl's multi interface multiplexes the watches over one HTTP/2
 * connection. A watch resumes from its last resourceVersion (bookmarks
 * keep it fresh), a 410 Gone relists, errors back off. Fail closed: no
 * snapshot is handed over until every kind was listed, and a kind the API
 * refuses (RBAC) is never taken as empty; a missing CRD is (none of its
 * objects can exist). */
#include "ztunnel/kube.h"
#include "kube_int.h"
#include "annotate.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/file.h"
#include "ztunnel/clock.h"
#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

#define DEBOUNCE_MS 50
/* A steady stream of changes (a busy cluster, or a tenant patching its own
 * objects in a loop) must not hold models back: at most this long. */
#define MAX_DELAY_MS 1000
/* A model build costs in proportion to the cluster (tens of ms at 10,000
 * pods): under a steady stream of changes, builds start at least this many
 * times their own cost apart (at most 1/20 of a core; still within
 * MAX_DELAY_MS). A lone change after a quiet spell is never held. */
#define BUILD_SPACING 20
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define CRD_RECHECK_MS 10000
#define WATCH_TIMEOUT_S 300
#define LIST_BODY_MAX (512u << 20)

enum kind_state { K_IDLE, K_LISTING, K_WATCHING, K_WAITING };

struct kind {
	const char *path, *kind, *api_version;
	bool crd; /* a 404 means the CRD is not installed: none exist */
	struct kube_objects objs, next; /* next: a list in progress */
	char rv[64], list_rv[64], cont[1024];
	/* need_list: the objects held are not known to match rv (a list did
	 * not finish, a watch said so): the next attempt lists, never watches. */
	bool synced, relist, logged_absent, need_list;
	bool unused; /* not followed (pods_only): synced and empty for good */
	int64_t watch_started_ms;
	enum kind_state state;
	int64_t retry_at_ms;
	int backoff_ms;
	CURL *easy;
	struct curl_slist *headers;
	struct tm_text body;
	struct kube_stream stream;
	struct kube_source *k;
};

enum { KIND_NS, KIND_POD, KIND_SVC, KIND_SLICE, KIND_AUTHZ, KIND_PEER_AUTHN, KINDS };

struct kube_source {
	struct kubeconfig conn; /* owned copies of the kube_config's connection fields */
	struct kube_config view; /* pointing at them */
	pthread_t thread;
	atomic_bool stop, synced;
	CURLM *multi;
	struct kind kinds[KINDS];
	int efd;
	struct snapshot_opts opts;
	pthread_mutex_t lock;
	/* The newest model (and its build's result and findings), not taken yet. */
	struct zt_model *pending;
	struct zt_diags pending_diags;
	int pending_r;
	bool has_pending;
	/* Held by the watcher while it changes kinds[].objs, and by admin
	 * threads printing them (/snapshot). */
	pthread_mutex_t objs_lock;
	bool dirty;
	int64_t changed_ms, first_change_ms, built_ms, build_cost_ms;
	/* The redirection annotation on this node's pods (the agent: node
	 * named, not pods_only). */
	struct kube_annotator ann;
	bool annotating;
	atomic_int watching; /* kinds watched now (or known absent): the metric */
	_Atomic int64_t all_watched_ms; /* when every kind was last watched (0: never) */
};

const struct kube_kind_def kube_kind_defs[KUBE_KINDS] = {
	[KIND_NS] = { "/api/v1/namespaces", "Namespace", "v1", false },
	[KIND_POD] = { "/api/v1/pods", "Pod", "v1", false },
	[KIND_SVC] = { "/api/v1/services", "Service", "v1", false },
	[KIND_SLICE] = { "/apis/discovery.k8s.io/v1/endpointslices", "EndpointSlice", "discovery.k8s.io/v1", false },
	[KIND_AUTHZ] = { "/apis/security.istio.io/v1/authorizationpolicies", "AuthorizationPolicy",
			 "security.istio.io/v1", true },
	[KIND_PEER_AUTHN] = { "/apis/security.istio.io/v1/peerauthentications", "PeerAuthentication",
			      "security.istio.io/v1", true },
};


/* Copies the named members of from into a new object (NULL-terminated). */
static cJSON *pick(const cJSON *from, const char *const *keys)
{
	cJSON *to = cJSON_CreateObject();

	for (; *keys; keys++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(from, *keys);
		if (v)
			cJSON_AddItemToObject(to, *keys, cJSON_Duplicate(v, true));
	}
	return to;
}

/* A Pod as the model reads it (state/snapshot_pod.c) and nothing more:
 * env values, args, volumes and most annotations never reach memory, the
 * model's input or the admin's /snapshot. */
static cJSON *trim_pod(cJSON *pod)
{
	static const char *const md_keys[] = { "name", "namespace", "uid", "labels", "ownerReferences",
					       "creationTimestamp", NULL };
	static const char *const spec_keys[] = { "nodeName", "serviceAccountName", "hostNetwork", NULL };
	static const char *const status_keys[] = { "phase", "podIP", "podIPs", "hostIP", "conditions", NULL };
	static const char *const container_keys[] = { "name", "ports", NULL };
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec"), *c, *a;
	cJSON *out = pick(pod, (const char *const[]){ "kind", "apiVersion", NULL });
	cJSON *omd = pick(md, md_keys), *ospec = pick(spec, spec_keys), *containers = cJSON_CreateArray();
	cJSON *annotations = cJSON_CreateObject();

	/* Istio's own annotations only (the sidecar marker among them), and
	 * the mirror-pod marker (ztunnel-ca: a static pod names no
	 * ServiceAccount it could vouch for). */
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(md, "annotations"))
		if (strstr(a->string, "istio.io") || !strcmp(a->string, "kubernetes.io/config.mirror"))
			cJSON_AddItemToObject(annotations, a->string, cJSON_Duplicate(a, true));
	cJSON_AddItemToObject(omd, "annotations", annotations);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
		cJSON_AddItemToArray(containers, pick(c, container_keys));
	cJSON_AddItemToObject(ospec, "containers", containers);
	cJSON_AddItemToObject(out, "metadata", omd);
	cJSON_AddItemToObject(out, "spec", ospec);
	cJSON_AddItemToObject(out, "status", pick(cJSON_GetObjectItemCaseSensitive(pod, "status"), status_keys));
	cJSON_Delete(pod);
	return out;
}

/* Items of a list carry no kind; a snapshot's items must. Pods are
 * trimmed to what the model reads. */
static cJSON *typed(cJSON *item, const struct kind *k)
{
	if (!cJSON_GetObjectItemCaseSensitive(item, "kind"))
		cJSON_AddStringToObject(item, "kind", k->kind);
	if (!cJSON_GetObjectItemCaseSensitive(item, "apiVersion"))
		cJSON_AddStringToObject(item, "apiVersion", k->api_version);
	return strcmp(k->kind, "Pod") ? item : trim_pod(item);
}

static void remember_rv(char *dst, size_t size, const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *rv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "resourceVersion"));

	if (rv)
		snprintf(dst, size, "%s", rv);
}

static void changed(struct kind *k)
{
	struct kube_source *ks = k->k;
	int64_t now = clock_mono_ms();

	if (ks->annotating && k == &ks->kinds[KIND_POD])
		annotator_pods_changed(&ks->ann);

	if (!ks->dirty)
		ks->first_change_ms = now;
	ks->dirty = true;
	ks->changed_ms = now;
}

static size_t on_list_body(char *data, size_t size, size_t n, void *ctx)
{
	struct kind *k = ctx;

	if (k->body.len + size * n > LIST_BODY_MAX)
		return 0; /* aborts the transfer: a list this large is refused */
	tm_text_printf(&k->body, "%.*s", (int)(size * n), data);
	return k->body.failed ? 0 : size * n;
}

static int on_event(const char *type, cJSON *ev, void *ctx)
{
	struct kind *k = ctx;
	cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");

	tm_count(TM_KUBE_EVENTS, 1);
	if (!strcmp(type, "ERROR")) {
		/* 410 Gone (compacted) or anything else the server says about
		 * this watch: start over from a list, never loop on the same
		 * resourceVersion. */
		k->relist = true;
		log_warn("Kubernetes watch error, relisting", LF_STR("kind", k->kind),
			 LF_STR("message", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, "message"))));
		return -ESTALE;
	}
	if (!strcmp(type, "BOOKMARK")) {
		remember_rv(k->rv, sizeof(k->rv), obj);
		return 0;
	}
	if (!strcmp(type, "DELETED")) {
		pthread_mutex_lock(&k->k->objs_lock);
		int r = kube_objects_del(&k->objs, obj);
		pthread_mutex_unlock(&k->k->objs_lock);
		if (r == 0)
			changed(k);
		remember_rv(k->rv, sizeof(k->rv), obj);
		return 0;
	}
	if (strcmp(type, "ADDED") && strcmp(type, "MODIFIED"))
		return 0;
	char rv[sizeof(k->rv)] = "";
	remember_rv(rv, sizeof(rv), obj);
	cJSON_DetachItemViaPointer(ev, obj);
	obj = typed(obj, k);
	/* Only an applied event moves rv: a failed one is seen again. */
	pthread_mutex_lock(&k->k->objs_lock);
	int r = kube_objects_put(&k->objs, obj);
	pthread_mutex_unlock(&k->k->objs_lock);
	if (r < 0)
		return -ENOMEM;
	if (rv[0])
		memcpy(k->rv, rv, sizeof(rv));
	changed(k);
	return 0;
}

static size_t on_watch_body(char *data, size_t size, size_t n, void *ctx)
{
	struct kind *k = ctx;

	return kube_stream_feed(&k->stream, data, size * n, on_event, k) < 0 ? 0 : size * n;
}

/* The service account token, re-read for every request: kubelet rotates
 * projected tokens. */
struct curl_slist *kube_auth_headers(const struct kube_config *conn)
{
	struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
	char *token = NULL, *line = NULL;
	size_t len = 0;

	if (conn->token_file && file_read(conn->token_file, 64 * 1024, &token, &len) == 0) {
		while (len && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
			token[--len] = '\0';
	} else if (conn->token) {
		token = strdup(conn->token);
	}
	if (token && asprintf(&line, "Authorization: Bearer %s", token) >= 0)
		h = curl_slist_append(h, line);
	free(line);
	free(token);
	return h;
}

/* PEM text (copied by libcurl) or else a file, for one TLS setting. */
static void set_pem(CURL *e, CURLoption blob_opt, CURLoption file_opt, const char *pem, const char *file)
{
	if (pem) {
		struct curl_blob b = { (void *)(uintptr_t)pem, strlen(pem), CURL_BLOB_COPY };
		curl_easy_setopt(e, blob_opt, &b);
	} else if (file) {
		curl_easy_setopt(e, file_opt, file);
	}
}

/* The API server's CA and our client certificate, from files or PEM. */
void kube_set_tls(CURL *e, const struct kube_config *c)
{
	set_pem(e, CURLOPT_CAINFO_BLOB, CURLOPT_CAINFO, c->ca_pem, c->ca_file);
	set_pem(e, CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERT, c->cert_pem, c->cert_file);
	set_pem(e, CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEY, c->key_pem, c->key_file);
}

/* One GET to the API server as every request makes it: the token, the
 * CA, the body into k (a list's text or a watch's events), bounded time. */
static CURL *easy_get(struct kind *k, const char *url, struct curl_slist *headers, bool watch, long timeout_s)
{
	CURL *e = curl_easy_init();

	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	/* HTTP/2 when the server offers it (then every watch shares one
	 * connection); no PIPEWAIT: behind an HTTP/1.1 proxy a wait for
	 * multiplexing would queue every request behind the first watch. */
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	kube_set_tls(e, &k->k->view);
	curl_easy_setopt(e, CURLOPT_PRIVATE, k);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, watch ? on_watch_body : on_list_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
	return e;
}

static int request(struct kind *k, const char *url, bool watch)
{
	struct kube_source *ks = k->k;

	k->headers = kube_auth_headers(&ks->view);
	/* A watch is long by design; a dead connection is found by TCP keepalive. */
	CURL *e = easy_get(k, url, k->headers, watch, watch ? (long)WATCH_TIMEOUT_S + 30 : 60L);
	if (!e) {
		curl_slist_free_all(k->headers);
		k->headers = NULL;
		return -ENOMEM;
	}
	k->easy = e;
	if (curl_multi_add_handle(ks->multi, e) == CURLM_OK)
		return 0;
	curl_easy_cleanup(e);
	curl_slist_free_all(k->headers);
	k->headers = NULL;
	k->easy = NULL;
	return -EIO;
}

static void start_list(struct kind *k)
{
	char url[2048];

	tm_text_free(&k->body);
	snprintf(url, sizeof(url), "%s%s?limit=500%s%s", k->k->conn.server, k->path, k->cont[0] ? "&continue=" : "",
		 k->cont);
	k->state = request(k, url, false) == 0 ? K_LISTING : K_WAITING;
}

static void start_watch(struct kind *k)
{
	char url[2048];

	kube_stream_reset(&k->stream);
	k->relist = false;
	k->watch_started_ms = clock_mono_ms();
	snprintf(url, sizeof(url), "%s%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%d",
		 k->k->conn.server, k->path, k->rv, WATCH_TIMEOUT_S);
	k->state = request(k, url, true) == 0 ? K_WATCHING : K_WAITING;
}

static void back_off(struct kind *k, int64_t ms)
{
	k->state = K_WAITING;
	k->retry_at_ms = clock_mono_ms() + ms;
	if (k->cont[0] || k->next.n)
		k->need_list = true; /* a list stopped half-way */
	k->cont[0] = '\0';
	kube_objects_clear(&k->next);
}

static void failed(struct kind *k)
{
	tm_count(TM_KUBE_ERRORS, 1);
	k->backoff_ms = k->backoff_ms ? k->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (k->backoff_ms > BACKOFF_MAX_MS)
		k->backoff_ms = BACKOFF_MAX_MS;
	back_off(k, k->backoff_ms);
}

/* One page of a list: items into next; the last page replaces the kind's
 * objects at once (a relist never shows a half-listed kind). */
static void list_page(struct kind *k)
{
	cJSON *doc = cJSON_ParseWithLength(k->body.p ? k->body.p : "", k->body.len);
	cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
	const char *cont = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "continue"));

	if (!cJSON_IsArray(items)) {
		log_error("Kubernetes API sent a list that is not one", LF_STR("kind", k->kind));
		cJSON_Delete(doc);
		return failed(k);
	}
	while (cJSON_GetArraySize(items)) {
		cJSON *it = typed(cJSON_DetachItemFromArray(items, 0), k);
		if (kube_objects_put(&k->next, it) < 0) {
			cJSON_Delete(doc);
			return failed(k);
		}
	}
	remember_rv(k->list_rv, sizeof(k->list_rv), doc);
	snprintf(k->cont, sizeof(k->cont), "%s", cont ? cont : "");
	cJSON_Delete(doc);
	if (k->cont[0])
		return start_list(k);
	/* The whole list is in: its objects and its resourceVersion together. */
	pthread_mutex_lock(&k->k->objs_lock);
	kube_objects_clear(&k->objs);
	k->objs = k->next;
	pthread_mutex_unlock(&k->k->objs_lock);
	memset(&k->next, 0, sizeof(k->next));
	memcpy(k->rv, k->list_rv, sizeof(k->rv));
	k->need_list = false;
	k->synced = true;
	k->logged_absent = false;
	k->backoff_ms = 0;
	tm_count(TM_KUBE_LISTS, 1);
	log_info("Kubernetes objects listed", LF_STR("kind", k->kind), LF_UINT("objects", k->objs.n),
		 LF_STR("resource_version", k->rv));
	changed(k);
	start_watch(k);
}

/* A blocking GET for the rare discovery question below (the watcher
 * thread pauses its other transfers for at most 5 s). NULL on failure. */
static cJSON *get_json(struct kube_source *ks, const char *path, long *status)
{
	struct kind tmp = { .k = ks };
	char url[1024];
	cJSON *doc = NULL;

	*status = 0;
	snprintf(url, sizeof(url), "%s%s", ks->conn.server, path);
	struct curl_slist *h = kube_auth_headers(&ks->view);
	CURL *e = easy_get(&tmp, url, h, false, 5L);
	if (e && curl_easy_perform(e) == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
		doc = cJSON_ParseWithLength(tmp.body.p ? tmp.body.p : "", tmp.body.len);
	}
	curl_easy_cleanup(e);
	curl_slist_free_all(h);
	tm_text_free(&tmp.body);
	return doc;
}

/* After a 404 on an Istio kind: 1 when discovery confirms that none of its
 * objects can exist (the group, or this kind in its v1, is not served), 0
 * when it is served or the API serves the group only in versions we do not
 * read (fail closed: policies would be ignored), -1 when discovery failed. */
static int confirmed_absent(struct kind *k)
{
	long status;
	const char *plural = strrchr(k->path, '/') + 1;
	cJSON *v1 = get_json(k->k, "/apis/security.istio.io/v1", &status);
	int r = -1;

	if (status == 200) {
		const cJSON *res;
		r = 1;
		cJSON_ArrayForEach(res, cJSON_GetObjectItemCaseSensitive(v1, "resources"))
			if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "name")) ?: "", plural))
				r = 0; /* served: the 404 was transient */
	} else if (status == 404) {
		long gstatus;
		cJSON *g = get_json(k->k, "/apis/security.istio.io", &gstatus);
		r = gstatus == 404 ? 1 : 0;
		if (gstatus == 200)
			log_error("Istio's security.istio.io is served, but not in v1: upgrade Istio's CRDs "
				  "(policies are not read until then; the agent stays not ready)",
				  LF_STR("kind", k->kind));
		cJSON_Delete(g);
	}
	cJSON_Delete(v1);
	return r;
}

static void list_done(struct kind *k, CURLcode res, long status)
{
	if (res == CURLE_OK && status == 200)
		return list_page(k);
	if (res == CURLE_OK && status == 404 && k->crd && confirmed_absent(k) == 1) {
		/* Not installed: no object of it can exist (checked again later). */
		if (!k->logged_absent)
			log_warn("Istio CRD not installed: none of its objects apply", LF_STR("kind", k->kind));
		k->logged_absent = true;
		if (!k->synced || k->objs.n)
			changed(k);
		pthread_mutex_lock(&k->k->objs_lock);
		kube_objects_clear(&k->objs);
		pthread_mutex_unlock(&k->k->objs_lock);
		k->synced = true;
		return back_off(k, CRD_RECHECK_MS);
	}
	if (res == CURLE_OK && (status == 401 || status == 403))
		log_error("Kubernetes API refused the list: check the agent's RBAC (ClusterRole list/watch)",
			  LF_STR("kind", k->kind), LF_INT("status", status));
	else if (res == CURLE_OK && status == 410)
		k->cont[0] = '\0'; /* the continue token expired: start over */
	else
		log_warn("Kubernetes list failed", LF_STR("kind", k->kind), LF_INT("status", status),
			 LF_STR("error", res == CURLE_OK ? "" : curl_easy_strerror(res)));
	failed(k);
}

#define WATCH_HEALTHY_MS 60000

static void watch_done(struct kind *k, CURLcode res, long status)
{
	int64_t lived = clock_mono_ms() - k->watch_started_ms;

	if (k->relist || status == 410) {
		tm_count(TM_KUBE_RELISTS, 1);
		k->rv[0] = '\0';
		k->need_list = true;
		return start_list(k);
	}
	if (lived >= WATCH_HEALTHY_MS)
		k->backoff_ms = 0; /* it worked for a while: a new problem starts small */
	/* The server ends a watch after timeoutSeconds: resume from the last
	 * resourceVersion seen (events or bookmarks). One that ends at once
	 * (a proxy cutting it) waits like an error, or every node would hammer
	 * the API server. */
	if (res == CURLE_OK && status == 200 && lived >= BACKOFF_MIN_MS)
		return start_watch(k);
	log_warn("Kubernetes watch broken, resuming", LF_STR("kind", k->kind), LF_INT("status", status),
		 LF_STR("error", res == CURLE_OK ? "" : curl_easy_strerror(res)));
	failed(k);
	/* Resume the watch, not a list, after the pause (relist on 410). */
	k->state = K_WAITING;
}

static void finished(struct kube_source *ks, CURL *e, CURLcode res)
{
	struct kind *k = NULL;
	long status = 0;

	if (ks->annotating && annotator_finished(&ks->ann, ks->multi, e, res))
		return;
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&k);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(ks->multi, e);
	curl_easy_cleanup(e);
	curl_slist_free_all(k->headers);
	k->headers = NULL;
	k->easy = NULL;
	if (k->state == K_LISTING)
		list_done(k, res, status);
	else
		watch_done(k, res, status);
}

/* A List referring to every kind's objects (free with cJSON_Delete: the
 * objects stay). The watcher's own reads need no lock: it is the writer. */
static cJSON *list_of_objects(struct kube_source *ks)
{
	cJSON *list = cJSON_CreateObject(), *items;

	cJSON_AddStringToObject(list, "apiVersion", "v1");
	cJSON_AddStringToObject(list, "kind", "List");
	items = cJSON_AddArrayToObject(list, "items");
	for (int i = 0; i < KINDS; i++)
		kube_objects_refs(&ks->kinds[i].objs, items);
	return list;
}

/* Builds the model here, straight from the objects (no text printed and
 * parsed again), and hands it to the control thread. */
static void publish(struct kube_source *ks)
{
	struct zt_model *m = NULL;
	struct zt_diags diags;
	int64_t t0 = clock_mono_ms();
	cJSON *list = list_of_objects(ks);

	diags_init(&diags);
	int r = list ? snapshot_build_json(list, &ks->opts, &m, &diags) : -ENOMEM;
	cJSON_Delete(list);
	if (r == -ENOMEM) {
		diags_release(&diags);
		return; /* stays dirty: tried again */
	}
	ks->built_ms = clock_mono_ms();
	ks->build_cost_ms = ks->built_ms - t0;
	pthread_mutex_lock(&ks->lock);
	if (ks->has_pending) { /* not taken yet: the newer one replaces it */
		model_free(ks->pending);
		diags_release(&ks->pending_diags);
	}
	ks->pending = m;
	ks->pending_r = r;
	ks->pending_diags = diags;
	ks->has_pending = true;
	pthread_mutex_unlock(&ks->lock);
	ks->dirty = false;
	uint64_t one = 1;
	(void)!write(ks->efd, &one, sizeof(one));
}

/* Whether a model is due: changes settled (or held for too long), and,
 * under a steady stream, builds spaced by their cost. */
static bool build_due(const struct kube_source *ks, int64_t now)
{
	int64_t spacing = ks->build_cost_ms * BUILD_SPACING;

	if (spacing > MAX_DELAY_MS)
		spacing = MAX_DELAY_MS;
	return (now - ks->changed_ms >= DEBOUNCE_MS || now - ks->first_change_ms >= MAX_DELAY_MS) &&
	       now - ks->built_ms >= spacing;
}

static bool all_synced(const struct kube_source *ks)
{
	for (int i = 0; i < KINDS; i++)
		if (!ks->kinds[i].synced)
			return false;
	return true;
}

/* Kinds followed live right now; fewer than all means the model may be
 * stale (it stays in force). */
static int watching(const struct kube_source *ks)
{
	int n = 0;

	for (int i = 0; i < KINDS; i++)
		n += ks->kinds[i].state == K_WATCHING || ks->kinds[i].unused ||
		     (ks->kinds[i].synced && ks->kinds[i].logged_absent);
	return n;
}

static void kube_metrics(struct tm_text *out, void *ctx)
{
	struct kube_source *ks = ctx;

	tm_family_header(out, "ztunnel_kube_connected", "gauge",
			 "1 while every kind is watched on the API server; 0: the last model stays in force.");
	tm_text_printf(out, "ztunnel_kube_connected %d\n", atomic_load(&ks->watching) == KINDS);
	if (!ks->annotating)
		return;
	tm_family_header(out, "ztunnel_kube_annotation_writes_total", "counter",
			 "Writes of the redirection annotation on this node's pods (SPEC 8.5), by result.");
	tm_text_printf(out, "ztunnel_kube_annotation_writes_total{result=\"ok\"} %llu\n",
		       (unsigned long long)atomic_load(&ks->ann.written));
	tm_text_printf(out, "ztunnel_kube_annotation_writes_total{result=\"failed\"} %llu\n",
		       (unsigned long long)atomic_load(&ks->ann.failed));
	tm_family_header(out, "ztunnel_kube_write_guard", "gauge",
			 "1: the API server refuses this agent every write but its annotation (the admission policy of "
			 "daemonset/ztunnel.yaml); 0: it does not; -1: not known yet.");
	tm_text_printf(out, "ztunnel_kube_write_guard %d\n", atomic_load(&ks->ann.guard));
}

static void *watcher_main(void *arg)
{
	struct kube_source *ks = arg;

	for (int i = 0; i < KINDS; i++)
		if (!ks->kinds[i].unused)
			start_list(&ks->kinds[i]);
	while (!atomic_load(&ks->stop)) {
		int running = 0;
		curl_multi_perform(ks->multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(ks->multi, &left)))
			if (m->msg == CURLMSG_DONE)
				finished(ks, m->easy_handle, m->data.result);
		int64_t now = clock_mono_ms();
		if (ks->annotating)
			annotator_step(&ks->ann, ks->multi, &ks->kinds[KIND_POD].objs, &ks->view, now);
		for (int i = 0; i < KINDS; i++) {
			struct kind *k = &ks->kinds[i];
			if (k->state == K_WAITING && now >= k->retry_at_ms) {
				if (k->synced && k->rv[0] && !k->need_list && !k->logged_absent)
					start_watch(k);
				else
					start_list(k);
			}
		}
		atomic_store(&ks->watching, watching(ks));
		if (atomic_load(&ks->watching) == KINDS)
			atomic_store(&ks->all_watched_ms, now);
		/* Changes come in bursts (a rollout): one model per quiet spell. */
		if (ks->dirty && all_synced(ks) && build_due(ks, now)) {
			atomic_store(&ks->synced, true);
			publish(ks);
		}
		curl_multi_poll(ks->multi, NULL, 0, DEBOUNCE_MS / 2, NULL);
	}
	return NULL;
}

int kube_source_start(struct kube_source **out, const struct kube_config *cfg)
{
	struct kube_source *ks = calloc(1, sizeof(*ks));

	*out = NULL;
	if (!ks)
		return -ENOMEM;
	ks->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	bool oom = false;
#define COPY(f) (ks->conn.f = cfg->f ? strdup(cfg->f) : NULL, oom |= cfg->f && !ks->conn.f)
	COPY(server);
	COPY(token);
	COPY(token_file);
	COPY(ca_file);
	COPY(ca_pem);
	COPY(cert_file);
	COPY(cert_pem);
	COPY(key_file);
	COPY(key_pem);
#undef COPY
	kubeconfig_apply(&ks->conn, &ks->view);
	ks->opts = cfg->opts;
	pthread_mutex_init(&ks->lock, NULL);
	pthread_mutex_init(&ks->objs_lock, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(ks->multi = curl_multi_init()) || ks->efd < 0 ||
	    !ks->conn.server || oom) {
		kube_source_stop(ks);
		return -ENOMEM;
	}
	curl_multi_setopt(ks->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	if (cfg->node_name && *cfg->node_name && !cfg->pods_only) {
		if (annotator_init(&ks->ann, cfg->node_name) < 0) {
			kube_source_stop(ks);
			return -ENOMEM;
		}
		ks->annotating = true;
	}
	for (int i = 0; i < KINDS; i++)
		ks->kinds[i] = (struct kind){ .path = kube_kind_defs[i].path, .kind = kube_kind_defs[i].kind,
					      .api_version = kube_kind_defs[i].api_version, .crd = kube_kind_defs[i].crd, .k = ks,
					      .unused = cfg->pods_only && i != KIND_POD, .synced = cfg->pods_only && i != KIND_POD };
	tm_collector_add(kube_metrics, ks);
	int r = -pthread_create(&ks->thread, NULL, watcher_main, ks);
	if (r < 0) {
		kube_source_stop(ks);
		return r;
	}
	log_info("following the Kubernetes API", LF_STR("server", ks->conn.server));
	*out = ks;
	return 0;
}

int64_t kube_source_unwatched_ms(struct kube_source *k)
{
	int64_t t = atomic_load(&k->all_watched_ms);

	return t ? clock_mono_ms() - t : INT64_MAX;
}

int kube_source_fd(const struct kube_source *k)
{
	return k->efd;
}

bool kube_source_synced(struct kube_source *k)
{
	return atomic_load(&k->synced);
}

int kube_source_take(struct kube_source *k, struct zt_model **m, struct zt_diags *diags, int *r)
{
	uint64_t v;
	bool had;

	(void)!read(k->efd, &v, sizeof(v));
	pthread_mutex_lock(&k->lock);
	had = k->has_pending;
	if (had) {
		*m = k->pending;
		*r = k->pending_r;
		*diags = k->pending_diags;
		k->pending = NULL;
		k->has_pending = false;
	}
	pthread_mutex_unlock(&k->lock);
	return had ? 0 : -EAGAIN;
}

int kube_source_set_captured(struct kube_source *k, const char *const *uids, uint32_t n)
{
	if (!k->annotating)
		return 0;
	int r = annotator_report(&k->ann, uids, n);
	curl_multi_wakeup(k->multi);
	return r;
}

int kube_source_print(void *ctx, char **text, size_t *len)
{
	struct kube_source *k = ctx;

	pthread_mutex_lock(&k->objs_lock);
	cJSON *list = list_of_objects(k);
	*text = list ? cJSON_PrintUnformatted(list) : NULL;
	pthread_mutex_unlock(&k->objs_lock);
	cJSON_Delete(list);
	if (!*text)
		return -ENOMEM;
	*len = strlen(*text);
	return 0;
}

void kube_source_stop(struct kube_source *ks)
{
	if (!ks)
		return;
	tm_collector_del(kube_metrics, ks);
	if (ks->thread) {
		atomic_store(&ks->stop, true);
		curl_multi_wakeup(ks->multi);
		pthread_join(ks->thread, NULL);
	}
	if (ks->annotating)
		annotator_fini(&ks->ann, ks->multi);
	for (int i = 0; i < KINDS; i++) {
		struct kind *k = &ks->kinds[i];
		if (k->easy) {
			curl_multi_remove_handle(ks->multi, k->easy);
			curl_easy_cleanup(k->easy);
		}
		curl_slist_free_all(k->headers);
		kube_objects_clear(&k->objs);
		kube_objects_clear(&k->next);
		tm_text_free(&k->body);
		kube_stream_reset(&k->stream);
	}
	if (ks->multi)
		curl_multi_cleanup(ks->multi);
	if (ks->efd >= 0)
		close(ks->efd);
	pthread_mutex_destroy(&ks->lock);
	pthread_mutex_destroy(&ks->objs_lock);
	if (ks->has_pending) {
		model_free(ks->pending);
		diags_release(&ks->pending_diags);
	}
	kubeconfig_free(&ks->conn);
	free(ks);
}
