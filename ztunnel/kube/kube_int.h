/* Internal to ztunnel/kube: the sans-IO parts (object store, watch
 * stream) that unit tests drive without a server. */
#ifndef ZTUNNEL_KUBE_INT_H
#define ZTUNNEL_KUBE_INT_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The objects of one kind, keyed "namespace/name" (or "name"). */
struct kube_objects {
	char **keys;
	cJSON **items;
	uint32_t n, cap; /* cap: a power of two, open addressing */
};

/* Takes item (and strips what a snapshot never needs); replaces an older
 * one with the same key. 0 or -ENOMEM. */
int kube_objects_put(struct kube_objects *o, cJSON *item);
/* Removes the object named like item; 0 or -ENOENT. */
int kube_objects_del(struct kube_objects *o, const cJSON *item);
void kube_objects_clear(struct kube_objects *o);
/* Adds a reference to every object to arr (no copy). */
void kube_objects_refs(const struct kube_objects *o, cJSON *arr);

/* A watch response: newline-separated JSON events, possibly split across
 * reads. fn gets each event's type and object (it may keep the object by
 * detaching it); a negative return stops the feed with that error. */
typedef int (*kube_event_fn)(const char *type, cJSON *event, void *ctx);
struct kube_stream {
	char *buf;
	size_t len, cap;
};
#define KUBE_EVENT_MAX (16u << 20) /* one event's JSON */
/* 0, or -EPROTO (a line that is not an event), -EFBIG, -ENOMEM, or fn's error. */
int kube_stream_feed(struct kube_stream *s, const char *data, size_t len, kube_event_fn fn, void *ctx);
void kube_stream_reset(struct kube_stream *s);

/* The kinds a model is built from: list/watch path, kind, apiVersion;
 * crd: Istio's (absent when its CRD is not installed). */
struct kube_kind_def {
	const char *path, *kind, *api_version;
	bool crd;
};
#define KUBE_KINDS 6
extern const struct kube_kind_def kube_kind_defs[KUBE_KINDS];

/* The redirection annotation on this node's pods (annotate.c). The
 * control thread reports (annotator_report); everything else runs on the
 * watcher thread. */
enum annotate_op { ANNOTATE_KEEP, ANNOTATE_SET, ANNOTATE_CLEAR };
struct kube_reply { /* the start of an answer, for the log */
	char text[512];
	size_t len;
};
struct annotate_write;
struct kube_config;
struct kube_annotator {
	char *node;
	pthread_mutex_t lock;
	char **want; /* uids and addresses of the pods captured now, sorted */
	uint32_t n_want;
	bool active;  /* reported, and not paused: nothing is written before */
	bool changed, pods_changed;
	int64_t retry_ms; /* 0: none due */
	int64_t scanned_ms;
	struct annotate_write **writes; /* in flight, or sent less than a while ago */
	uint32_t n_writes, cap_writes, in_flight;
	int64_t logged_ms;
	uint64_t failed_since_log;
	_Atomic uint64_t written, failed;
	/* Whether the API server refuses this agent everything but its
	 * annotation (the admission policy of daemonset/ztunnel.yaml), found
	 * with a dry-run write at start: -1 not known yet, 0 no, 1 yes. */
	_Atomic int guard;
	CURL *probe;
	struct curl_slist *probe_headers;
	int64_t probe_at_ms;
	uint32_t probe_misses; /* accepted probes in a row */
	struct kube_reply probe_reply;
};
/* What pod (as watched) needs given the captured pods' uids and addresses
 * (sorted): only pods of node are ever touched, and an owner's "disabled"
 * never. Sans-IO. */
enum annotate_op annotate_needed(const cJSON *pod, const char *node, char *const *captured, uint32_t n);
/* The merge patch for op, the uid as precondition (free it); NULL: no memory. */
char *annotate_patch(const char *uid, enum annotate_op op);
int annotator_init(struct kube_annotator *a, const char *node);
/* uids NULL: pause (an agent not serving says nothing). 0 or -ENOMEM. */
int annotator_report(struct kube_annotator *a, const char *const *uids, uint32_t n);
void annotator_pods_changed(struct kube_annotator *a);
/* Starts the writes due (call each turn of the watcher's loop). */
void annotator_step(struct kube_annotator *a, CURLM *multi, const struct kube_objects *pods,
		    const struct kube_config *conn, int64_t now);
/* True when e was one of its writes (then it is released). */
bool annotator_finished(struct kube_annotator *a, CURLM *multi, CURL *e, CURLcode res);
void annotator_fini(struct kube_annotator *a, CURLM *multi);

/* Every request's credentials: the token (re-read from its file each
 * time: kubelet rotates it) and Accept; the CA and client certificate. */
struct curl_slist *kube_auth_headers(const struct kube_config *conn);
void kube_set_tls(CURL *e, const struct kube_config *conn);

#endif
