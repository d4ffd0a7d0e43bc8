/* Internal to ztunnel/state: the context shared by the snapshot parsers. */
#ifndef ZTUNNEL_STATE_BUILD_H
#define ZTUNNEL_STATE_BUILD_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "ztunnel/arena.h"
#include "ztunnel/state.h"

struct build {
	struct zt_model *m;
	struct arena *a;
	struct zt_diags *diags;
	const struct snapshot_opts *opts;
	bool oom;
	/* Mutable views of the model's arrays while they are filled. */
	struct zt_namespace *namespaces;
	struct zt_workload *workloads;
	struct zt_service *services;
	struct zt_authz_policy *policies;
	struct zt_peer_authn *peer_authns;
	/* EndpointSlices, kept as JSON until services exist. */
	const cJSON **slices;
	uint32_t n_slices;
	/* Build-time only data, released when the model is done. */
	struct arena scratch;
	struct zt_index *workloads_by_ns; /* groups of indices into workloads */
};

/* Object label for diagnostics: "Kind ns/name" or "Kind name". */
const char *build_object_name(struct build *b, const cJSON *item);
/* Findings about object (NULL: about the snapshot as a whole). */
void build_error(struct build *b, const cJSON *object, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same about an object named already ("Service ns/name"). */
void build_error_named(struct build *b, const char *object, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void build_warn(struct build *b, const cJSON *object, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void *build_calloc(struct build *b, size_t n, size_t size);
const char *build_strdup(struct build *b, const char *s);

/* JSON accessors: NULL when absent or of another type. */
const char *json_str(const cJSON *o, const char *key);
const cJSON *json_obj(const cJSON *o, const char *key);
const cJSON *json_arr(const cJSON *o, const char *key);
/* A string->string map (labels, selector); reports non-string values at
 * field. Returns false on a type error. */
bool json_labels(struct build *b, const cJSON *map, const cJSON *object, const char *field,
		 struct zt_labels *out);
int64_t json_timestamp(const cJSON *metadata);

/* The indices (ascending) of the objects that share a key. */
struct group {
	uint32_t *v;
	uint32_t n, filled;
};
/* Writes object i's key into buf and returns its length; < 0: no key. */
typedef int (*group_key_fn)(struct build *b, uint32_t i, char *buf, size_t size);
/* Groups objects 0..n-1 by key (NULL and b->oom on failure). */
struct zt_index *group_by(struct build *b, uint32_t n, group_key_fn key_of);
/* The group of key; an empty group when there is none. */
const struct group *group_get(const struct zt_index *groups, const char *key);

int snapshot_parse_namespace(struct build *b, const cJSON *item, struct zt_namespace *out);
int snapshot_parse_pod(struct build *b, const cJSON *item, struct zt_workload *out);
int snapshot_parse_service(struct build *b, const cJSON *item, struct zt_service *out);
int snapshot_link_endpoints(struct build *b);
int policy_parse_authz(struct build *b, const cJSON *item, struct zt_authz_policy *out);
int policy_parse_peer_authn(struct build *b, const cJSON *item, struct zt_peer_authn *out);
int policy_select(struct build *b);
/* The index of a workload's policy list (NULL: out of memory). */
struct zt_authz_index *policy_index_build(struct build *b, const struct zt_authz_policy *const *list,
					  uint32_t n);

#endif
