/* Test helper: compose kubectl-shaped snapshots with cJSON in a few lines. */
#ifndef TEST_SNAP_H
#define TEST_SNAP_H

#include <cjson/cJSON.h>

#include "ztunnel/state.h"

cJSON *snap_new(void);
/* labels: JSON object text or NULL, e.g. "{\"istio.io/dataplane-mode\":\"ambient\"}" */
cJSON *snap_ns(cJSON *list, const char *name, const char *labels);
cJSON *snap_pod(cJSON *list, const char *ns, const char *name, const char *ip, const char *node,
		const char *labels);
cJSON *snap_add(cJSON *list, const char *object_json);
/* Builds; returns the result of snapshot_build. */
int snap_build(cJSON *list, struct zt_model **m, struct zt_diags *d);
/* Builds and expects success with no errors/invalids; frees list. */
struct zt_model *snap_ok(cJSON *list);
/* The same with opts (e.g. capture_annotated), straight from list, which
 * stays the caller's. */
struct zt_model *snap_ok_opts(const cJSON *list, const struct snapshot_opts *opts);
/* Prints d and returns whether some finding's reason contains needle. */
int diags_have(const struct zt_diags *d, enum zt_diag_level level, const char *needle);
const struct zt_workload *pod_by_ip(const struct zt_model *m, const char *ip);
char *read_fixture(const char *name, size_t *len);

#endif
