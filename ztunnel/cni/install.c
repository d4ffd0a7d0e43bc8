/* ztunnel-cni install / uninstall: chain the plugin last in the node's
 * primary CNI network configuration (the first file the runtime reads),
 * atomically, idempotently. Used by the DaemonSet (issue 10/13). */
#include "install.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!nb)
				break;
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (!got)
			break;
	}
	fclose(f);
	if (!buf)
		return NULL;
	buf[len] = '\0';
	cJSON *o = cJSON_Parse(buf);
	free(buf);
	return o;
}

/* Write to a temporary file in the same directory, then rename: the runtime
 * never sees a half-written configuration. */
static int write_atomic(const char *path, const cJSON *o)
{
	char tmp[PATH_MAX];
	char *text = cJSON_Print(o);
	int r = 0;

	if (!text)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.ztunnel-tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fputc('\n', f) < 0 || fflush(f) || fsync(fileno(f))) {
		r = -errno;
	}
	if (f && fclose(f) && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
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
	r = write_atomic(out, list);
	if (r == 0 && strcmp(out, path))
		unlink(path);
	if (r < 0)
		snprintf(msg, size, "cannot write %s: %s", out, strerror(-r));
	else
		snprintf(msg, size, "%s: %s", out, install ? "ztunnel-cni chained last" : "ztunnel-cni removed");
	cJSON_Delete(list);
	return r;
}
