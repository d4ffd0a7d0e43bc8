/* Internal to ztunnel/kube: the sans-IO parts (object store, watch
 * stream) that unit tests drive without a server. */
#ifndef ZTUNNEL_KUBE_INT_H
#define ZTUNNEL_KUBE_INT_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
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

struct kube_config;
/* Every request's credentials: the token (re-read from its file each
 * time: kubelet rotates it) and Accept; the CA and client certificate. */
struct curl_slist *kube_auth_headers(const struct kube_config *conn);
void kube_set_tls(CURL *e, const struct kube_config *conn);

#endif
