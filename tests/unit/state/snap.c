#include "snap.h"

#include "ztunnel/file.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *snap_new(void)
{
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "apiVersion", "v1");
	cJSON_AddStringToObject(l, "kind", "List");
	cJSON_AddArrayToObject(l, "items");
	return l;
}

cJSON *snap_add(cJSON *list, const char *object_json)
{
	cJSON *o = cJSON_Parse(object_json);
	assert_non_null(o);
	cJSON_AddItemToArray(cJSON_GetObjectItem(list, "items"), o);
	return o;
}

static cJSON *labels_of(const char *labels)
{
	cJSON *l = labels ? cJSON_Parse(labels) : cJSON_CreateObject();
	assert_non_null(l);
	return l;
}

cJSON *snap_ns(cJSON *list, const char *name, const char *labels)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Namespace");
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddItemToObject(md, "labels", labels_of(labels));
	cJSON_AddItemToArray(cJSON_GetObjectItem(list, "items"), o);
	return o;
}

cJSON *snap_pod(cJSON *list, const char *ns, const char *name, const char *ip, const char *node,
		const char *labels)
{
	char uid[128];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "apiVersion", "v1");
	cJSON_AddStringToObject(o, "kind", "Pod");
	cJSON *md = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", ns);
	snprintf(uid, sizeof(uid), "uid-%s-%s", ns, name);
	cJSON_AddStringToObject(md, "uid", uid);
	cJSON_AddItemToObject(md, "labels", labels_of(labels));
	cJSON *spec = cJSON_AddObjectToObject(o, "spec");
	cJSON_AddStringToObject(spec, "nodeName", node);
	cJSON_AddStringToObject(spec, "serviceAccountName", name);
	cJSON *st = cJSON_AddObjectToObject(o, "status");
	cJSON_AddStringToObject(st, "phase", "Running");
	cJSON *ips = cJSON_AddArrayToObject(st, "podIPs");
	if (ip) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "ip", ip);
		cJSON_AddItemToArray(ips, e);
	}
	cJSON *conds = cJSON_AddArrayToObject(st, "conditions");
	cJSON *ready = cJSON_CreateObject();
	cJSON_AddStringToObject(ready, "type", "Ready");
	cJSON_AddStringToObject(ready, "status", "True");
	cJSON_AddItemToArray(conds, ready);
	cJSON_AddItemToArray(cJSON_GetObjectItem(list, "items"), o);
	return o;
}

int snap_build(cJSON *list, struct zt_model **m, struct zt_diags *d)
{
	char *text = cJSON_PrintUnformatted(list);
	struct snapshot_opts opts = { "cluster.local", "istio-system" };
	assert_non_null(text);
	int r = snapshot_build(text, strlen(text), &opts, m, d);
	free(text);
	return r;
}

struct zt_model *snap_ok(cJSON *list)
{
	struct zt_diags d;
	struct zt_model *m = NULL;
	diags_init(&d);
	int r = snap_build(list, &m, &d);
	if (r != 0 || d.n_errors || d.n_invalid)
		diags_print(&d, stderr);
	assert_int_equal(r, 0);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n_invalid, 0);
	diags_release(&d);
	cJSON_Delete(list);
	return m;
}

struct zt_model *snap_ok_opts(const cJSON *list, const struct snapshot_opts *opts)
{
	struct zt_model *m = NULL;
	struct zt_diags d;

	diags_init(&d);
	int r = snapshot_build_json(list, opts, &m, &d);
	if (r != 0 || d.n_errors || d.n_invalid)
		diags_print(&d, stderr);
	assert_int_equal(r, 0);
	assert_int_equal(d.n_errors, 0);
	diags_release(&d);
	return m;
}

int diags_have(const struct zt_diags *d, enum zt_diag_level level, const char *needle)
{
	for (uint32_t i = 0; i < d->n; i++) {
		const struct zt_diag *g = &d->items[i];
		if (g->level == level && (strstr(g->reason, needle) || strstr(g->field, needle) ||
					  strstr(g->object, needle)))
			return 1;
	}
	diags_print(d, stderr);
	return 0;
}

const struct zt_workload *pod_by_ip(const struct zt_model *m, const char *ip)
{
	struct zt_ip a;
	assert_int_equal(zt_ip_parse(ip, &a), 0);
	return model_workload_by_ip(m, &a);
}

char *read_fixture(const char *name, size_t *len)
{
	char path[1024];
	char *text = NULL;
	const char *dir = getenv("ZT_TEST_SRCDIR");
	snprintf(path, sizeof(path), "%s/state/fixtures/%s", dir ? dir : ".", name);
	assert_int_equal(file_read(path, FILE_MAX_BYTES, &text, len), 0);
	return text;
}
