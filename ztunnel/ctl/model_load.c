/* Models for check and report: from a file, or from the agent's admin API. */
#include "model_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"
#include "ztunnel/file.h"
#include "ztunnel/state.h"

int model_load_build_file(const char *path, const struct snapshot_opts *so, struct zt_model **m,
			  struct zt_diags *diags)
{
	char *text = NULL;
	size_t len = 0;
	int r = file_read(path, FILE_MAX_BYTES, &text, &len);

	*m = NULL;
	diags_init(diags);
	if (r < 0) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(-r));
		return r;
	}
	r = snapshot_build(text, len, so, m, diags);
	free(text);
	return r < 0 ? -EINVAL : 0;
}

/* After a build: the rejection, or the fail-closed objects, on stderr. */
static int report_build(const char *origin, int r, struct zt_diags *diags)
{
	if (r < 0) {
		diags_print(diags, stderr);
		if (r == -EINVAL)
			fprintf(stderr, "error: %s is rejected (the agent would keep its previous snapshot)\n",
				origin);
	} else if (diags->n_invalid) {
		fprintf(stderr, "note: %u invalid objects are applied fail-closed (ztunnel-ctl snapshot lint)\n",
			diags->n_invalid);
	}
	diags_release(diags);
	return r;
}

int model_load_file(const char *path, const struct snapshot_opts *so, struct zt_model **m)
{
	struct zt_diags diags;
	int r = model_load_build_file(path, so, m, &diags);

	return report_build(path, r, &diags);
}

/* .config.<key> of /config_dump, a non-empty string. */
static const char *config_string(const cJSON *dump, const char *admin, const char *key)
{
	const cJSON *config = cJSON_GetObjectItemCaseSensitive(dump, "config");
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, key));

	if (!v || !*v)
		fprintf(stderr, "error: GET %s/config_dump: no config.%s (docs/admin.md)\n", admin, key);
	return v && *v ? v : NULL;
}

int model_load_agent(const char *admin, const cJSON *dump, struct zt_model **m)
{
	struct snapshot_opts so = { config_string(dump, admin, "trustDomain"),
				    config_string(dump, admin, "rootNamespace") };
	struct zt_diags diags;
	char *text, origin[512];
	size_t len;

	*m = NULL;
	if (!so.trust_domain || !so.root_namespace)
		return -EBADMSG;
	int r = admin_request(admin, "GET", "/snapshot", &text, &len);
	if (r < 0)
		return r;
	diags_init(&diags);
	r = snapshot_build(text, len, &so, m, &diags);
	free(text);
	snprintf(origin, sizeof(origin), "the snapshot of %s", admin);
	return report_build(origin, r, &diags);
}
