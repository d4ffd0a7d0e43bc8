/* Where each identity runs, as ztunnel-ca needs it: from the Pods the API
 * server lists, object by object (one malformed or conflicting pod never
 * hides the others, unlike a model build that refuses the whole set).
 * A pod counts only if it names its ServiceAccount itself and is not a
 * mirror pod: a node's kubelet can create mirror pods of static pods in
 * any namespace, and those name no ServiceAccount (which would read as
 * "default"). Finished pods run nowhere. */
#include "ca_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *str(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static bool counts(const cJSON *pod, const char **ns, const char **name, const char **sa, const char **node)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const char *kind = str(pod, "kind"), *phase = str(cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase");

	*ns = str(md, "namespace");
	*name = str(md, "name");
	*sa = str(spec, "serviceAccountName");
	*node = str(spec, "nodeName");
	if (!kind || strcmp(kind, "Pod") || !*ns || !**ns || !*name || !*sa || !**sa || !*node || !**node)
		return false;
	if (cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(md, "annotations"),
					     "kubernetes.io/config.mirror"))
		return false;
	return !phase || (strcmp(phase, "Succeeded") && strcmp(phase, "Failed"));
}

int ca_pods_build(const char *list_json, size_t len, struct ca_pods *out)
{
	cJSON *list = cJSON_ParseWithLength(list_json, len), *item;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsArray(items)) {
		cJSON_Delete(list);
		return -EPROTO;
	}
	out->v = calloc((size_t)cJSON_GetArraySize(items) + 1, sizeof(*out->v));
	if (!out->v) {
		cJSON_Delete(list);
		return -ENOMEM;
	}
	cJSON_ArrayForEach(item, items)
	{
		const char *ns, *name, *sa, *node;
		if (!counts(item, &ns, &name, &sa, &node))
			continue;
		struct ca_pod *p = &out->v[n];
		if (!(p->ns = strdup(ns)) || !(p->name = strdup(name)) || !(p->sa = strdup(sa)) ||
		    !(p->node = strdup(node))) {
			out->n = n + 1;
			ca_pods_free(out);
			cJSON_Delete(list);
			return -ENOMEM;
		}
		n++;
	}
	out->n = n;
	cJSON_Delete(list);
	return 0;
}

void ca_pods_free(struct ca_pods *p)
{
	for (size_t i = 0; p->v && i < p->n; i++) {
		free(p->v[i].ns);
		free(p->v[i].name);
		free(p->v[i].sa);
		free(p->v[i].node);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

bool ca_pods_runs_on(const struct ca_pods *p, const char *node, const char *ns, const char *sa)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].node, node) && !strcmp(p->v[i].ns, ns) && !strcmp(p->v[i].sa, sa))
			return true;
	return false;
}

bool ca_pods_is(const struct ca_pods *p, const char *ns, const char *name, const char *sa, const char *node)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->v[i].ns, ns) && !strcmp(p->v[i].name, name))
			return !strcmp(p->v[i].sa, sa) && !strcmp(p->v[i].node, node);
	return false;
}
