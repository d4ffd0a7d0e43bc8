/* The node-local enrollment cache: what the CNI plugin needs to decide on
 * its own whether a new pod may start while the agent is down or not
 * ready. The plugin sees only the pod's namespace and name, so the cache
 * says, for every namespace of the snapshot, whether a new pod there would
 * join the mesh: "ambient" (namespace label), "mixed" (not labelled, but
 * some pods opt in with their own label, so a new one might) or "none".
 * Only "none" may start; a namespace the cache does not know (newer than
 * it) fails closed too. Written atomically (temporary file + rename) each
 * time a new snapshot is reconciled. */
#include "enroll_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/file.h"
#include "ztunnel/log.h"

static cJSON *namespaces_json(const struct zt_model *m)
{
	cJSON *o = cJSON_CreateObject();

	for (uint32_t i = 0; o && i < m->n_workloads; i++) {
		const struct zt_workload *w = &m->workloads[i];
		if (w->enrollment == ZT_ENROLLED_POD_LABEL && !cJSON_GetObjectItemCaseSensitive(o, w->namespace))
			cJSON_AddStringToObject(o, w->namespace, "mixed");
	}
	for (uint32_t i = 0; o && i < m->n_namespaces; i++) {
		const struct zt_namespace *ns = &m->namespaces[i];
		bool ambient = ns->mode == ZT_MODE_AMBIENT && strcmp(ns->name, "kube-system");
		cJSON *have = cJSON_GetObjectItemCaseSensitive(o, ns->name);
		if (ambient && have)
			cJSON_SetValuestring(have, "ambient");
		else if (!have)
			cJSON_AddStringToObject(o, ns->name, ambient ? "ambient" : "none");
	}
	return o;
}

int enroll_cache_write(const struct zt_model *m, const char *path)
{
	cJSON *root = cJSON_CreateObject();
	int r = -ENOMEM;

	if (!root)
		return r;
	cJSON_AddNumberToObject(root, "generation", (double)m->generation);
	cJSON_AddNumberToObject(root, "written", (double)time(NULL));
	cJSON_AddItemToObject(root, "namespaces", namespaces_json(m));
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text)
		return r;
	r = file_write_atomic(path, text, 0644);
	free(text);
	return r;
}
