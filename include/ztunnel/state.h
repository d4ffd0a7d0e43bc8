/* Building the cluster model from a snapshot, lookups for the data path,
 * and the RCU store that swaps models on reload. */
#ifndef ZTUNNEL_STATE_H
#define ZTUNNEL_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>
#include <stdio.h>

#include "ztunnel/arena.h"
#include "ztunnel/policy-t.h"
#include "ztunnel/state-t.h"

struct zt_index;

struct zt_diags {
	struct zt_diag *items;
	uint32_t n, cap;
	uint32_t n_errors, n_invalid, n_warnings;
	struct arena arena;
};

void diags_init(struct zt_diags *d);
void diags_release(struct zt_diags *d);
void diags_add(struct zt_diags *d, enum zt_diag_level level, const char *object,
	       const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* One line per finding: "error: <object>: <field>: <reason>". */
void diags_print(const struct zt_diags *d, FILE *out);
const char *diag_level_name(enum zt_diag_level level);

/* Istio's per-pod annotation: "enabled" once the pod's capture is in
 * place (written by its node's agent), "disabled" to opt the pod out. */
#define ZT_ANNOTATION_REDIRECTION "ambient.istio.io/redirection"
#define ZT_REDIRECTION_ENABLED "enabled"
#define ZT_REDIRECTION_DISABLED "disabled"

struct snapshot_opts {
	const char *trust_domain;   /* default cluster.local */
	const char *root_namespace; /* default istio-system */
	/* Pods carry whether their capture is in place (the Kubernetes API:
	 * the redirection annotation their node's agent writes, SPEC §8.5);
	 * false for a snapshot file, which states enrollment by labels alone. */
	bool capture_annotated;
};

struct zt_node_workloads {
	const char *node;
	const struct zt_workload *const *items;
	uint32_t n;
};

struct zt_model {
	uint64_t generation; /* set by the store when applied */
	const char *trust_domain, *root_namespace;
	const struct zt_namespace *namespaces;
	const struct zt_workload *workloads;
	const struct zt_service *services;
	const struct zt_authz_policy *policies;
	const struct zt_peer_authn *peer_authns;
	uint32_t n_namespaces, n_workloads, n_services, n_policies, n_peer_authns;
	uint32_t n_enrolled;
	uint32_t build_ms; /* what building it took (parsing included) */
	struct zt_index *by_ip, *by_uid, *svc_by_vip, *svc_by_name, *ns_by_name, *by_node;
	struct arena arena;
};

/* What a connection offers the policy index (state/policy_index.c). */
struct policy_probe {
	const char *principal, *ns; /* of the peer; "" in plaintext */
	size_t principal_len, ns_len;
	const struct zt_ip *src;
	uint16_t port;
};

/* The rules of an index that probe could match, in evaluation order. */
struct policy_cursor {
	const struct zt_authz_index *ix;
	struct zt_rule_ids lists[6]; /* rules filed anywhere, and by each of five keys */
	uint32_t n_lists;
};

void policy_index_probe(const struct zt_authz_index *ix, const struct policy_probe *probe,
			struct policy_cursor *c);
/* The next candidate: its position in the workload's list and its rule
 * index; false when none is left. */
bool policy_cursor_next(struct policy_cursor *c, uint32_t *policy, uint32_t *rule);
/* How many enforced ALLOW policies the list holds. */
uint32_t policy_index_allows(const struct zt_authz_index *ix);

/* Parses a Kubernetes v1 List (kubectl get ... -o json) into a model. On
 * success returns 0 and *out; findings (warnings, invalid objects applied
 * fail-closed) are in diags. Returns -EINVAL (no model) when diags holds an
 * error, -ENOMEM on allocation failure. */
int snapshot_build(const char *json, size_t len, const struct snapshot_opts *opts,
		   struct zt_model **out, struct zt_diags *diags);
/* The same from a List already in memory (the Kubernetes source's objects:
 * no text to print and parse again). The model copies what it keeps. */
struct cJSON;
int snapshot_build_json(const struct cJSON *list, const struct snapshot_opts *opts,
			struct zt_model **out, struct zt_diags *diags);
void model_free(struct zt_model *m);

const struct zt_workload *model_workload_by_ip(const struct zt_model *m, const struct zt_ip *ip);
/* The same for an IPv4 address in network order; NULL with no model. */
const struct zt_workload *model_workload_by_v4(const struct zt_model *m, uint32_t ip);
const struct zt_workload *model_workload_by_uid(const struct zt_model *m, const char *uid);
/* Service owning VIP with a port `port`; NULL if the VIP is unknown or the
 * service has no such port. */
const struct zt_service *model_service_by_vip(const struct zt_model *m, const struct zt_ip *vip,
					      uint16_t port, const struct zt_service_port **sport);
/* Frontends the nodes forward (SPEC: kube-proxy DNATs them after tc): a
 * service with an external IP or load-balancer address `ip` and port
 * `port`; a service with a nodePort `port`; a pod of `node` publishing
 * hostPort `port` (*target: its container port). NULL when none. */
const struct zt_service *model_service_by_external(const struct zt_model *m, const struct zt_ip *ip,
						   uint16_t port, const struct zt_service_port **sport);
const struct zt_service *model_service_by_node_port(const struct zt_model *m, uint16_t port,
						    const struct zt_service_port **sport);
const struct zt_workload *model_host_port(const struct zt_model *m, const char *node, uint16_t port,
					  uint16_t *target);
const struct zt_service *model_service_by_name(const struct zt_model *m, const char *ns,
					       const char *name);
const struct zt_namespace *model_namespace(const struct zt_model *m, const char *name);
const struct zt_node_workloads *model_node_workloads(const struct zt_model *m, const char *node);

int zt_ip_parse(const char *s, struct zt_ip *out);
/* Writes the textual address; buf needs 46 bytes. */
const char *zt_ip_format(const struct zt_ip *ip, char *buf, size_t size);
const char *zt_enrollment_reason(enum zt_enrollment e);
/* Kubernetes protocol name ("TCP", "UDP", "SCTP", absent: TCP). */
uint8_t zt_proto_parse(const char *p);
const char *zt_label_get(const struct zt_labels *labels, const char *key);
/* Every selector label is present with the same value (empty selector: true). */
bool zt_labels_match(const struct zt_labels *selector, const struct zt_labels *labels);

/* The store: one current model, swapped with RCU. Readers never block.
 * Loads, rejections and invalid objects are counted in telemetry. */
/* For models published without text: prints the objects the source holds
 * now (free it). Called from admin threads. */
typedef int (*state_printer_fn)(void *ctx, char **text, size_t *len);

struct state_store {
	/* RCU-protected; C11 acquire/release on the pointer so the publication
	 * is visible to ThreadSanitizer too (free on x86). */
	_Atomic(struct zt_model *) current;
	struct snapshot_opts opts;
	atomic_uint_fast64_t generation;       /* of the current model, 0 before the first */
	atomic_int_fast64_t applied_unix;      /* when it was applied */
	uint64_t next_generation;
	/* The text the current model was built from (admin /snapshot), or
	 * the printer of the source's objects. */
	pthread_mutex_t source_lock;
	char *source;
	size_t source_len;
	char origin[256];
	state_printer_fn printer;
	void *printer_ctx;
};

void state_store_init(struct state_store *s, const struct snapshot_opts *opts);
/* Retires the current model; no reader may be active. */
void state_store_release(struct state_store *s);
/* Builds a model from text and publishes it; on any error logs what and
 * where, counts it and keeps the current model. */
int state_store_apply(struct state_store *s, const char *json, size_t len, const char *origin);
int state_store_load_file(struct state_store *s, const char *path);
/* True once a first snapshot was applied (readiness). */
bool state_store_ready(struct state_store *s);
/* Generation of the current model (a change signal for readers), 0
 * before the first; and when it was applied (Unix seconds). */
uint64_t state_store_generation(struct state_store *s);
int64_t state_store_applied_at(struct state_store *s);
/* Publishes what snapshot_build(_json) returned (r, m, diags: m is taken,
 * diags only read): logs the findings, counts, and swaps the model in, or
 * keeps the current one when r < 0. With no text the source's printer (if
 * any) answers state_store_source from then on. */
int state_store_publish(struct state_store *s, int r, struct zt_model *m, const struct zt_diags *diags,
			const char *origin);
void state_store_set_printer(struct state_store *s, state_printer_fn print, void *ctx);
/* A copy of the current model's source text (free it) and where it came
 * from; -ENOENT before the first snapshot. */
int state_store_source(struct state_store *s, char **text, size_t *len, char *origin, size_t origin_size);
/* Where the current model came from ("" before the first). */
void state_store_origin(struct state_store *s, char *origin, size_t size);

/* Reader side. Each reading thread registers once; between lock and unlock
 * the returned model (may be NULL before the first snapshot) stays valid. */
void state_reader_register(void);
void state_reader_unregister(void);
const struct zt_model *state_read_lock(struct state_store *s);
void state_read_unlock(void);


#endif
