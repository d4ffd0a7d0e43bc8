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
#include <stdint.h>

#include "ztunnel/state.h"

/* How to reach the API server: copied by kube_source_start. */
struct kube_config {
	const char *server;     /* https://host:port */
	const char *token_file; /* re-read before every request (kubelet rotates it) */
	const char *token;      /* or a fixed token */
	const char *ca_file;    /* the API server's CA, a file */
	const char *ca_pem;     /* or PEM text */
	const char *cert_file, *key_file; /* a client certificate, files */
	const char *cert_pem, *key_pem;   /* or PEM text */
	struct snapshot_opts opts; /* how models are built */
	bool pods_only;            /* follow Pods alone (ztunnel-ca: where each identity runs) */
	/* The agent's node: its pods get the redirection annotation as
	 * kube_source_set_captured says; NULL: nothing is written. */
	const char *node_name;
};

/* What --kubeconfig gives: the current context's server, CA and
 * credentials (paths made relative to the file's folder, -data decoded). */
struct kubeconfig {
	char *server, *token, *token_file, *ca_file, *ca_pem, *cert_file, *cert_pem, *key_file, *key_pem;
};

/* Reads path; on error err says what is wrong and where (no plugin, no
 * basic auth, no insecure-skip-tls-verify: all refused). */
int kubeconfig_load(const char *path, struct kubeconfig *kc, char *err, size_t err_size);
/* Points cfg's connection fields at kc's (kc must outlive the call that
 * uses cfg). */
void kubeconfig_apply(const struct kubeconfig *kc, struct kube_config *cfg);
void kubeconfig_free(struct kubeconfig *kc);

/* One list per kind as cfg's credentials allow: the number of kinds the
 * agent could not read (why says which and why), or -EHOSTUNREACH. */
int kube_check(const struct kube_config *cfg, char *why, size_t size);

/* Who a token belongs to (TokenReview). */
struct kube_caller {
	char username[512];
	char ns[254], sa[254]; /* system:serviceaccount:<ns>:<sa>; empty: not a ServiceAccount */
	char node[254];        /* the node of the pod the token is bound to; "": none */
	char pod[254];         /* that pod's name; "": not bound to a pod */
	bool service_account;  /* the API server put it in group system:serviceaccounts */
};
/* Asks the API server (as api's credentials) who token is, for audience:
 * 0 and out, -EACCES (not authenticated, or not for that audience: err
 * says why), -EHOSTUNREACH / -EIO / -EPROTO (the API server failed us). */
int kube_token_review(const struct kube_config *api, const char *token, const char *audience,
		      struct kube_caller *out, char *err, size_t err_size);
/* The answer's part, sans-IO. */
int kube_token_review_parse(const char *body, size_t len, const char *audience, struct kube_caller *out, char *err,
			    size_t err_size);

struct kube_source;

/* Starts the watcher thread. */
int kube_source_start(struct kube_source **out, const struct kube_config *cfg);
/* Readable (eventfd) when a new model is ready. */
int kube_source_fd(const struct kube_source *k);
/* The newest model build: its result r, the model (when r == 0) and the
 * findings (release them); -EAGAIN when none is new. Models are built on
 * the watcher thread from the objects themselves. */
int kube_source_take(struct kube_source *k, struct zt_model **m, struct zt_diags *diags, int *r);
/* The pods of this node whose capture is in place (their uids and
 * addresses, as text): from now on ambient.istio.io/redirection=enabled
 * is kept on exactly those among the node's pods (SPEC §8.5), never
 * touching an owner's "disabled". keys NULL: stop writing (an agent that
 * does not serve, or has no model yet). 0 or -ENOMEM. */
int kube_source_set_captured(struct kube_source *k, const char *const *keys, uint32_t n);
/* The objects held now as a v1 List (free it): a state_printer_fn. */
int kube_source_print(void *ctx, char **text, size_t *len);
/* True once every kind was listed and the watches run (or a kind whose
 * CRD is not installed was found absent). */
bool kube_source_synced(struct kube_source *k);
/* How long the objects have not been followed live (0-ish while every
 * watch runs; INT64_MAX before the first time): how stale they may be. */
int64_t kube_source_unwatched_ms(struct kube_source *k);
void kube_source_stop(struct kube_source *k);

#endif
