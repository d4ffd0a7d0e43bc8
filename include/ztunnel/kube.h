/* The Kubernetes API as the state source (DESIGN.md §3): list + watch of
 * the objects the model is built from (Namespaces, Pods, Services,
 * EndpointSlices, AuthorizationPolicies, PeerAuthentications), kept in
 * memory; the model is built from them by the same builder as a snapshot
 * file's and handed to the control thread. libcurl (HTTP/2, one connection
 * for every watch) and cJSON. */
#ifndef ZTUNNEL_KUBE_H
#define ZTUNNEL_KUBE_H

#include <stdbool.h>
#include <stddef.h>

#include "ztunnel/state.h"

struct kube_config {
	const char *server;     /* https://host:port */
	const char *token_file; /* re-read before every request (kubelet rotates it) */
	const char *ca_file;    /* the API server's CA */
	struct snapshot_opts opts; /* how models are built */
};

struct kube_source;

/* Starts the watcher thread. */
int kube_source_start(struct kube_source **out, const struct kube_config *cfg);
/* Readable (eventfd) when a new model is ready. */
int kube_source_fd(const struct kube_source *k);
/* The newest model build: its result r, the model (when r == 0) and the
 * findings (release them); -EAGAIN when none is new. Models are built on
 * the watcher thread from the objects themselves. */
int kube_source_take(struct kube_source *k, struct zt_model **m, struct zt_diags *diags, int *r);
/* The objects held now as a v1 List (free it): a state_printer_fn. */
int kube_source_print(void *ctx, char **text, size_t *len);
/* True once every kind was listed and the watches run (or a kind whose
 * CRD is not installed was found absent). */
bool kube_source_synced(struct kube_source *k);
void kube_source_stop(struct kube_source *k);

#endif
