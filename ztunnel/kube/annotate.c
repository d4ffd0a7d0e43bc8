/* The redirection annotation (SPEC §8.5): a pod is HBONE to the other
 * nodes only once its capture is in place. The agent reports which pods of
 * its node are captured; this puts ambient.istio.io/redirection=enabled on
 * them and takes it off its node's other pods, through pods/status (the
 * narrower right, as istio-cni does). It runs on the watcher thread, on its
 * multi handle, and is level-triggered: the wish is compared with the pods
 * as watched, so a lost write, or an annotation someone else removed or
 * added on this node's pods, is put right. */
#include "annotate.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/clock.h"
#include "ztunnel/kube.h"
#include "ztunnel/log.h"
#include "ztunnel/state.h"

/* Writes in flight at once; how long a write that took is trusted before
 * the same one is sent again (the watch shows its effect well before);
 * failed ones are retried after 1 s, doubling to a minute (a node whose
 * writes all fail must not hammer the API server). */
#define MAX_IN_FLIGHT 8
#define RESEND_MS 5000
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
/* The guard probe: again every 10 minutes (someone may remove the
 * policy); an accepted probe is only believed the second time, 5 s later
 * (a policy just created takes a moment to be enforced). */
#define PROBE_EVERY_MS 600000
#define PROBE_CONFIRM_MS 5000
#define LOG_EVERY_MS 30000
#define SCAN_MS 100

struct annotate_write {
	char uid[128];
	enum annotate_op op;
	CURL *easy;
	struct curl_slist *headers;
	int64_t retry_at_ms; /* the same write is not sent again before */
	uint32_t fails;      /* in a row */
	struct kube_reply reply;
};

static int uid_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool annotate_on_node(const cJSON *pod, const char *node)
{
	const char *on = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "nodeName"));

	return on && !strcmp(on, node);
}

static bool listed(const char *key, char *const *captured, uint32_t n)
{
	return key && n && bsearch(&key, captured, n, sizeof(*captured), uid_cmp);
}

enum annotate_op annotate_needed(const cJSON *pod, const char *node, char *const *captured, uint32_t n)
{
	/* Another node's pod is never ours to say; checked first, as nearly
	 * every pod of the cluster is one (each scan looks at all of them). */
	if (!annotate_on_node(pod, node))
		return ANNOTATE_KEEP;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(pod, "status"), *ip;
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid"));
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(md, "annotations"), ZT_ANNOTATION_REDIRECTION));

	if (!uid)
		return ANNOTATE_KEEP; /* no precondition possible */
	/* By uid, or by address (a pod restored from pinned state before a
	 * model named it). */
	bool want = listed(uid, captured, n) ||
		    listed(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(status, "podIP")), captured, n);
	cJSON_ArrayForEach(ip, cJSON_GetObjectItemCaseSensitive(status, "podIPs"))
		want = want || listed(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ip, "ip")), captured, n);
	bool has = v && !strcmp(v, ZT_REDIRECTION_ENABLED);
	if (want == has)
		return ANNOTATE_KEEP;
	/* "disabled" is the pod's owner opting out: never overwritten. */
	if (v && !strcmp(v, ZT_REDIRECTION_DISABLED))
		return ANNOTATE_KEEP;
	return want ? ANNOTATE_SET : ANNOTATE_CLEAR;
}

char *annotate_patch(const char *uid, enum annotate_op op)
{
	cJSON *patch = cJSON_CreateObject();
	cJSON *md = cJSON_AddObjectToObject(patch, "metadata");
	/* The uid makes it a precondition: a pod recreated under the same name
	 * is refused, not annotated. */
	cJSON_AddStringToObject(md, "uid", uid);
	cJSON *a = cJSON_AddObjectToObject(md, "annotations");
	if (op == ANNOTATE_SET)
		cJSON_AddStringToObject(a, ZT_ANNOTATION_REDIRECTION, ZT_REDIRECTION_ENABLED);
	else
		cJSON_AddNullToObject(a, ZT_ANNOTATION_REDIRECTION);
	char *text = cJSON_PrintUnformatted(patch);
	cJSON_Delete(patch);
	return text;
}

int annotator_init(struct kube_annotator *a, const char *node)
{
	memset(a, 0, sizeof(*a));
	a->guard = -1;
	if (!(a->node = strdup(node)))
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	return 0;
}

/* Whether the sorted copy says what the annotator already wants. */
static bool same_wish(const struct kube_annotator *a, char *const *copy, uint32_t n, bool active)
{
	if (a->active != active || a->n_want != n)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(a->want[i], copy[i]))
			return false;
	return true;
}

static void free_wish(char **want, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(want[i]);
	free(want);
}

int annotator_report(struct kube_annotator *a, const char *const *uids, uint32_t n)
{
	char **copy = NULL;
	uint32_t kept = 0;

	if (uids) {
		if (!(copy = calloc(n ? n : 1, sizeof(*copy))))
			return -ENOMEM;
		for (; kept < n; kept++)
			if (!(copy[kept] = strdup(uids[kept])))
				break;
		if (kept < n) {
			free_wish(copy, kept);
			return -ENOMEM;
		}
		qsort(copy, n, sizeof(*copy), uid_cmp);
	}
	if (!uids)
		n = 0;
	pthread_mutex_lock(&a->lock);
	/* Reported after every model and CNI request: only a new wish is worth
	 * a look at the pods. */
	if (same_wish(a, copy, n, uids != NULL)) {
		pthread_mutex_unlock(&a->lock);
		free_wish(copy, n);
		return 0;
	}
	char **old = a->want;
	uint32_t n_old = a->n_want;
	a->want = copy;
	a->n_want = n;
	a->active = uids != NULL;
	a->changed = true;
	pthread_mutex_unlock(&a->lock);
	free_wish(old, n_old);
	return 0;
}

void annotator_pods_changed(struct kube_annotator *a)
{
	a->pods_changed = true;
}

static struct annotate_write *write_of(struct kube_annotator *a, const char *uid)
{
	for (uint32_t i = 0; i < a->n_writes; i++)
		if (!strcmp(a->writes[i]->uid, uid))
			return a->writes[i];
	return NULL;
}

static size_t on_reply(char *data, size_t size, size_t n, void *ctx)
{
	struct kube_reply *r = ctx;
	size_t len = size * n, room = sizeof(r->text) - 1 - r->len;

	memcpy(r->text + r->len, data, len < room ? len : room);
	r->len += len < room ? len : room;
	r->text[r->len] = 0;
	return len;
}

/* A merge patch of pod's status subresource (query "" or "?dryRun=All"),
 * ready for the multi handle: its headers in *headers and what it answers
 * in *reply (both must live as long as it does). NULL: no memory. */
static CURL *status_patch(const struct kube_config *conn, const cJSON *pod, const char *query, const char *body,
			  struct curl_slist **headers, struct kube_reply *reply)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const char *ns = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "namespace"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
	CURL *e = ns && name && body ? curl_easy_init() : NULL; /* NULL: no memory, or a pod without a name */
	char *ens = e ? curl_easy_escape(e, ns, 0) : NULL, *ename = e ? curl_easy_escape(e, name, 0) : NULL;
	char url[1024];

	if (!ens || !ename) {
		curl_free(ens);
		curl_free(ename);
		if (e)
			curl_easy_cleanup(e);
		return NULL;
	}
	snprintf(url, sizeof(url), "%s/api/v1/namespaces/%s/pods/%s/status%s", conn->server, ens, ename, query);
	curl_free(ens);
	curl_free(ename);
	*headers = curl_slist_append(kube_auth_headers(conn), "Content-Type: application/merge-patch+json");
	reply->len = 0;
	reply->text[0] = 0;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *headers);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	kube_set_tls(e, conn);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_reply);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	return e;
}

/* One merge patch of the pod's status subresource. */
static int send_write(struct kube_annotator *a, CURLM *multi, const struct kube_config *conn, const cJSON *pod,
		      enum annotate_op op, int64_t now)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid"));
	struct annotate_write *w = write_of(a, uid);

	if (!uid || strlen(uid) >= sizeof(w->uid))
		return -EINVAL;
	if (!w) {
		/* Records are allocated one by one: curl holds a pointer to its
		 * record (the reply) while the array grows and shrinks. */
		if (a->n_writes == a->cap_writes) {
			uint32_t cap = a->cap_writes ? a->cap_writes * 2 : 16;
			struct annotate_write **nw = realloc(a->writes, cap * sizeof(*nw));
			if (!nw)
				return -ENOMEM;
			a->writes = nw;
			a->cap_writes = cap;
		}
		if (!(w = calloc(1, sizeof(*w))))
			return -ENOMEM;
		a->writes[a->n_writes++] = w;
		snprintf(w->uid, sizeof(w->uid), "%s", uid);
	}
	char *body = annotate_patch(uid, op);
	CURL *e = status_patch(conn, pod, "", body, &w->headers, &w->reply);

	free(body);
	w->op = op;
	w->retry_at_ms = now + RESEND_MS;
	if (e && curl_multi_add_handle(multi, e) == CURLM_OK) {
		w->easy = e;
		a->in_flight++;
		return 0;
	}
	if (e)
		curl_easy_cleanup(e);
	curl_slist_free_all(w->headers);
	w->headers = NULL;
	return e ? -EIO : -ENOMEM;
}

/* A dry-run relabel of one of this node's pods through pods/status: what
 * a compromised node would do. The admission policy must refuse it;
 * nothing is changed either way (dryRun=All). */
static void probe_guard(struct kube_annotator *a, CURLM *multi, const struct kube_config *conn, const cJSON *pod)
{
	CURL *e = status_patch(conn, pod, "?dryRun=All", "{\"metadata\":{\"labels\":{\"ztunnel.io/write-guard-probe\":\"x\"}}}",
			       &a->probe_headers, &a->probe_reply);

	a->probe_at_ms = INT64_MAX; /* until it answers */
	if (e && curl_multi_add_handle(multi, e) == CURLM_OK) {
		a->probe = e;
		return;
	}
	if (e)
		curl_easy_cleanup(e);
	curl_slist_free_all(a->probe_headers);
	a->probe_headers = NULL;
	a->probe_at_ms = clock_mono_ms() + RETRY_MAX_MS;
}

static void probe_done(struct kube_annotator *a, long status, CURLcode res)
{
	int64_t now = clock_mono_ms();
	int was = atomic_load(&a->guard);

	if (res == CURLE_OK && status / 100 == 2) {
		a->probe_at_ms = now + (++a->probe_misses < 2 ? PROBE_CONFIRM_MS : PROBE_EVERY_MS);
		if (a->probe_misses < 2)
			return;
		atomic_store(&a->guard, 0);
		if (was != 0)
			log_error("the API server lets this agent relabel pods: the admission policy of "
				  "daemonset/ztunnel.yaml is not enforced, so a compromised node could change any "
				  "pod's labels, annotations and status (needs Kubernetes >= 1.30 and the "
				  "ValidatingAdmissionPolicy applied)");
	} else if (res == CURLE_OK && (status == 403 || status == 422) && strstr(a->probe_reply.text, "ztunnel agent")) {
		a->probe_misses = 0;
		a->probe_at_ms = now + PROBE_EVERY_MS;
		atomic_store(&a->guard, 1);
		if (was != 1)
			log_info("the API server refuses this agent every write but its annotation (admission policy in force)");
	} else {
		a->probe_at_ms = now + RETRY_MAX_MS;
		log_warn("cannot tell whether the admission policy guards this agent's writes: asked again in a minute",
			 LF_INT("status", status), LF_STR("error", res == CURLE_OK ? a->probe_reply.text : curl_easy_strerror(res)));
	}
}

void annotator_step(struct kube_annotator *a, CURLM *multi, const struct kube_objects *pods,
		    const struct kube_config *conn, int64_t now)
{
	pthread_mutex_lock(&a->lock);
	/* Pod changes come in streams on a busy cluster: one look at the
	 * node's pods per SCAN_MS for those. */
	bool due = a->active && (a->changed || (a->pods_changed && now - a->scanned_ms >= SCAN_MS) ||
				 (a->retry_ms && now >= a->retry_ms) || (!a->probe && now >= a->probe_at_ms));
	if (!due) {
		pthread_mutex_unlock(&a->lock);
		return;
	}
	a->changed = a->pods_changed = false;
	a->retry_ms = 0;
	a->scanned_ms = now;
	/* Records outlive their retry time a while (a failing pod keeps its
	 * count of failures), then go. */
	for (uint32_t i = 0; i < a->n_writes;) {
		if (!a->writes[i]->easy && now >= a->writes[i]->retry_at_ms + RETRY_MAX_MS) {
			free(a->writes[i]);
			a->writes[i] = a->writes[--a->n_writes];
		} else {
			i++;
		}
	}
	bool probe = !a->probe && now >= a->probe_at_ms;
	for (uint32_t i = 0; i < pods->cap; i++) {
		if (!pods->keys[i])
			continue;
		if (probe && annotate_on_node(pods->items[i], a->node)) {
			probe_guard(a, multi, conn, pods->items[i]);
			probe = false;
		}
		enum annotate_op op = annotate_needed(pods->items[i], a->node, a->want, a->n_want);
		if (op == ANNOTATE_KEEP)
			continue;
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(pods->items[i], "metadata");
		const struct annotate_write *w =
			write_of(a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "uid")));
		/* In flight, sent (or failed) too recently, or room for no more
		 * now: look again later. */
		bool wait = w && (w->easy || (w->op == op && now < w->retry_at_ms));
		if (wait || a->in_flight >= MAX_IN_FLIGHT || send_write(a, multi, conn, pods->items[i], op, now) < 0) {
			int64_t at = w && !w->easy && w->retry_at_ms > now ? w->retry_at_ms : now + 200;
			if (!a->retry_ms || at < a->retry_ms)
				a->retry_ms = at;
		}
	}
	if (probe) /* no pod on this node yet to probe with */
		a->probe_at_ms = now + RETRY_MIN_MS;
	pthread_mutex_unlock(&a->lock);
}

static void report_failure(struct kube_annotator *a, const struct annotate_write *w, long status, CURLcode res)
{
	atomic_fetch_add(&a->failed, 1);
	a->failed_since_log++;
	if (!log_every(&a->logged_ms, clock_mono_ms(), LOG_EVERY_MS))
		return;
	const char *hint = status == 403 ? "refused: the agent's ClusterRole needs patch on pods/status, and the "
					   "admission policy (daemonset/ztunnel.yaml) a pod-bound token naming this node"
					 : "retried with backoff; until then other nodes send this pod plaintext (STRICT: nothing)";
	log_error("cannot write the redirection annotation", LF_STR("uid", w->uid), LF_INT("status", status),
		  LF_STR("error", res == CURLE_OK ? w->reply.text : curl_easy_strerror(res)), LF_STR("hint", hint),
		  LF_UINT("failures_since_last_log", a->failed_since_log));
	a->failed_since_log = 0;
}

/* A request's status (0 if none); its handle (if any) and headers are
 * released. */
static long release(CURLM *multi, CURL **e, struct curl_slist **headers)
{
	long status = 0;

	if (*e) {
		curl_easy_getinfo(*e, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(multi, *e);
		curl_easy_cleanup(*e);
	}
	curl_slist_free_all(*headers);
	*e = NULL;
	*headers = NULL;
	return status;
}

bool annotator_finished(struct kube_annotator *a, CURLM *multi, CURL *e, CURLcode res)
{
	struct annotate_write *w = NULL;

	if (e == a->probe) {
		long status = release(multi, &a->probe, &a->probe_headers);
		probe_done(a, status, res);
		return true;
	}
	for (uint32_t i = 0; !w && i < a->n_writes; i++)
		if (a->writes[i]->easy == e)
			w = a->writes[i];
	if (!w)
		return false;
	long status = release(multi, &w->easy, &w->headers);
	pthread_mutex_lock(&a->lock);
	a->in_flight--;
	a->pods_changed = true; /* room for the next ones (one look per SCAN_MS) */
	pthread_mutex_unlock(&a->lock);
	int64_t now = clock_mono_ms();
	w->retry_at_ms = now + RESEND_MS;
	if (res == CURLE_OK && status / 100 == 2) {
		w->fails = 0;
		atomic_fetch_add(&a->written, 1);
		log_debug("redirection annotation written", LF_STR("uid", w->uid),
			  LF_BOOL("enabled", w->op == ANNOTATE_SET));
		return true;
	}
	/* Gone, or recreated under the same name: nothing to put right. */
	if (status == 404 || status == 409 || status == 422) {
		log_debug("redirection annotation not written: the pod is gone", LF_STR("uid", w->uid),
			  LF_INT("status", status));
		return true;
	}
	report_failure(a, w, status, res);
	w->fails++;
	int64_t backoff = (int64_t)RETRY_MIN_MS << (w->fails - 1 < 6 ? w->fails - 1 : 6);
	w->retry_at_ms = now + (backoff < RETRY_MAX_MS ? backoff : RETRY_MAX_MS);
	return true;
}

void annotator_fini(struct kube_annotator *a, CURLM *multi)
{
	for (uint32_t i = 0; i < a->n_writes; i++) {
		release(multi, &a->writes[i]->easy, &a->writes[i]->headers);
		free(a->writes[i]);
	}
	free(a->writes);
	release(multi, &a->probe, &a->probe_headers);
	free_wish(a->want, a->n_want);
	if (a->node)
		pthread_mutex_destroy(&a->lock);
	free(a->node);
	memset(a, 0, sizeof(*a));
}
