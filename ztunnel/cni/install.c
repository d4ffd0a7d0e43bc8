/* ztunnel-cni install / uninstall: chain the plugin last in the node's
 * primary CNI network configuration (the first file the runtime reads),
 * atomically, idempotently. Used by the DaemonSet (issue 10/13). */
#include "ztunnel/cni_install.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ztunnel/file.h"

#define PLUGIN_TYPE "ztunnel-cni"

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* The runtime (containerd, CRI-O) uses the lexically first .conflist, .conf
 * or .json file of the directory. */
static int primary_conf(const char *dir, char *path, size_t size)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), r = -ENOENT;

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *f = names[i]->d_name;
		if (r == -ENOENT && f[0] != '.' &&
		    (has_suffix(f, ".conflist") || has_suffix(f, ".conf") || has_suffix(f, ".json"))) {
			snprintf(path, size, "%s/%s", dir, f);
			r = 0;
		}
		free(names[i]);
	}
	free(names);
	return r;
}

static cJSON *read_json(const char *path)
{
	char *text = NULL;
	size_t len = 0;

	if (file_read(path, 1 << 20, &text, &len) < 0)
		return NULL;
	cJSON *o = cJSON_ParseWithLength(text, len);
	free(text);
	return o;
}

/* The runtime never sees a half-written configuration; the file keeps the
 * mode the primary CNI gave it. */
static int write_atomic(const char *path, const char *was, const cJSON *o)
{
	char *text = cJSON_Print(o), *line = NULL;
	struct stat st;
	mode_t mode = stat(was, &st) == 0 ? (st.st_mode & 07777) : 0644;
	int r;

	if (!text)
		return -ENOMEM;
	r = asprintf(&line, "%s\n", text) < 0 ? -ENOMEM : file_write_atomic(path, line, mode);
	free(line);
	cJSON_free(text);
	return r;
}

/* A single-plugin .conf becomes the first entry of a conflist. */
static cJSON *as_conflist(cJSON *conf)
{
	if (cJSON_IsArray(cJSON_GetObjectItem(conf, "plugins")))
		return conf;
	cJSON *list = cJSON_CreateObject();
	cJSON_AddItemToObject(list, "cniVersion", cJSON_DetachItemFromObject(conf, "cniVersion"));
	cJSON_AddItemToObject(list, "name", cJSON_DetachItemFromObject(conf, "name"));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(list, "plugins"), conf);
	return list;
}

static int remove_ours(cJSON *plugins)
{
	int removed = 0;

	for (int i = cJSON_GetArraySize(plugins) - 1; i >= 0; i--) {
		const cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(plugins, i), "type");
		if (cJSON_IsString(t) && !strcmp(t->valuestring, PLUGIN_TYPE)) {
			cJSON_DeleteItemFromArray(plugins, i);
			removed++;
		}
	}
	return removed;
}

int cni_chained(const char *dir)
{
	char path[PATH_MAX];
	int r = primary_conf(dir, path, sizeof(path));

	if (r < 0)
		return r;
	cJSON *conf = read_json(path);
	const cJSON *plugins = cJSON_GetObjectItem(conf, "plugins");
	const cJSON *last = cJSON_GetArrayItem(plugins, cJSON_GetArraySize(plugins) - 1);
	const cJSON *t = cJSON_GetObjectItem(last, "type");
	r = cJSON_IsString(t) && !strcmp(t->valuestring, PLUGIN_TYPE);
	cJSON_Delete(conf);
	return r;
}

int cni_install(const char *dir, const char *agent_socket, bool install, char *msg, size_t size)
{
	char path[PATH_MAX], out[PATH_MAX];
	int r = primary_conf(dir, path, sizeof(path));

	if (r < 0) {
		snprintf(msg, size, "no CNI network configuration in %s: %s", dir, strerror(-r));
		return r;
	}
	cJSON *conf = read_json(path);
	if (!cJSON_IsObject(conf)) {
		snprintf(msg, size, "%s is not a JSON object", path);
		cJSON_Delete(conf);
		return -EINVAL;
	}
	bool was_conf = !cJSON_IsArray(cJSON_GetObjectItem(conf, "plugins"));
	cJSON *list = as_conflist(conf);
	cJSON *plugins = cJSON_GetObjectItem(list, "plugins");
	int removed = remove_ours(plugins);
	if (install) {
		cJSON *ours = cJSON_CreateObject();
		cJSON_AddStringToObject(ours, "type", PLUGIN_TYPE);
		cJSON_AddStringToObject(ours, "agentSocket", agent_socket);
		cJSON_AddItemToArray(plugins, ours); /* last: it needs prevResult */
	} else if (!removed) {
		snprintf(msg, size, "%s: not installed, nothing to do", path);
		cJSON_Delete(list);
		return 0;
	}
	snprintf(out, sizeof(out), "%s", path);
	if (was_conf) { /* x.conf or x.json -> x.conflist */
		char *dot = strrchr(out, '.');
		snprintf(dot, sizeof(out) - (size_t)(dot - out), ".conflist");
	}
	r = write_atomic(out, path, list);
	if (r == 0 && strcmp(out, path))
		unlink(path);
	if (r < 0)
		snprintf(msg, size, "cannot write %s: %s", out, strerror(-r));
	else
		snprintf(msg, size, "%s: %s", out, install ? "ztunnel-cni chained last" : "ztunnel-cni removed");
	cJSON_Delete(list);
	return r;
}
