/* Internal to ztunnel/kube: the redirection annotation on this node's
 * pods (annotate.c), run on the watcher thread by client.c. */
#ifndef ZTUNNEL_KUBE_ANNOTATE_H
#define ZTUNNEL_KUBE_ANNOTATE_H

#include <pthread.h>
#include <stdatomic.h>

#include "kube_int.h"

/* The control thread reports (annotator_report); everything else runs on
 * the watcher thread. */
enum annotate_op { ANNOTATE_KEEP, ANNOTATE_SET, ANNOTATE_CLEAR };
struct kube_reply { /* the start of an answer, for the log */
	char text[512];
	size_t len;
};
struct annotate_write;
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
	atomic_int_fast64_t logged_ms;
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

#endif
