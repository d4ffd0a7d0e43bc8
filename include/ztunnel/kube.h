/* The Kubernetes API as the state source (DESIGN.md §3): list + watch of
 * the objects the model is built from (Namespaces, Pods, Services,
 * EndpointSlices, AuthorizationPolicies, PeerAuthentications), kept in memory and handed to the control
 * thread as the same v1 List a snapshot file gives, so one builder serves
 * both. libcurl (HTTP/2, one connection for every watch) and cJSON. */
#ifndef ZTUNNEL_KUBE_H
#define ZTUNNEL_KUBE_H

#include <stdbool.h>
#include <stddef.h>

struct kube_config {
	const char *server;     /* https://host:port */
	const char *token_file; /* re-read before every request (kubelet rotates it) */
	const char *ca_file;    /* the API server's CA */
};

struct kube_source;

/* Starts the watcher thread. */
int kube_source_start(struct kube_source **out, const struct kube_config *cfg);
/* Readable (eventfd) when a new snapshot is ready. */
int kube_source_fd(const struct kube_source *k);
/* The newest snapshot text (free it), or -EAGAIN when none is new. */
int kube_source_take(struct kube_source *k, char **text, size_t *len);
/* True once every kind was listed and the watches run (or a kind whose
 * CRD is not installed was found absent). */
bool kube_source_synced(struct kube_source *k);
void kube_source_stop(struct kube_source *k);

#endif
