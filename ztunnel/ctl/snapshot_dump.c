/* ztunnel-ctl snapshot dump: the snapshot the agent's model was built from
 * (GET /snapshot), to stdout or atomically to a file. */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"
#include "live.h"
#include "ztunnel/file.h"
#include "ztunnel/state.h"

static int on_opt(void *ctx, int opt, const char *arg)
{
	if (opt != 'f')
		return -EINVAL;
	*(const char **)ctx = arg;
	return 0;
}

static const struct option opts[] = {
	{ "file", required_argument, NULL, 'f' },
	{ 0 },
};

static const struct live_cmd cmd = {
	.usage = "Usage: ztunnel-ctl snapshot dump [-f|--file FILE] [--admin URL] [-o json|yaml]\n\n"
		 "The snapshot (a Kubernetes v1 List) the agent's current model is built\n"
		 "from: the agent's bytes unchanged, or with -o yaml the same as YAML.\n"
		 "-f FILE writes it through FILE.tmp and a rename, so a reader never sees\n"
		 "half of it; default stdout. Offline tools read it as they read any\n"
		 "snapshot: ztunnel-ctl snapshot lint, ztunnel-ctl check --snapshot.\n"
		 "Exit status: 0, or 2 when the agent cannot be asked or FILE not written.\n\n"
		 "Examples:\n"
		 "  ztunnel-ctl snapshot dump -f /tmp/snapshot.json\n"
		 "  ztunnel-ctl snapshot dump -o yaml | less\n",
	.opts = opts,
	.short_opts = "f:",
	.on_opt = on_opt,
	.formats = 1u << OUTPUT_JSON | 1u << OUTPUT_YAML,
};

/* The snapshot as YAML text (malloc'd), or NULL (printed). */
static char *to_yaml(const char *text, size_t len)
{
	cJSON *doc = cJSON_ParseWithLength(text, len);
	char *yaml = NULL;
	size_t ylen = 0;
	FILE *f = doc ? open_memstream(&yaml, &ylen) : NULL;
	int r = f ? output_yaml(doc, f) : -ENOMEM;

	if (f && fclose(f) != 0 && r == 0)
		r = -errno;
	cJSON_Delete(doc);
	if (!doc)
		fprintf(stderr, "error: the agent's /snapshot is not JSON\n");
	else if (r < 0)
		fprintf(stderr, "error: YAML output: %s\n", strerror(-r));
	if (r < 0 || !doc) {
		free(yaml);
		return NULL;
	}
	return yaml;
}

static int write_out(const char *file, const char *text)
{
	int r = 0;

	if (file)
		r = file_write_atomic(file, text, 0644);
	else if (fputs(text, stdout) < 0 || fflush(stdout) != 0)
		r = -EIO;
	if (r < 0) {
		fprintf(stderr, "error: writing %s: %s\n", file ? file : "stdout", strerror(-r));
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}

int ctl_snapshot_dump(int argc, char **argv)
{
	const char *file = NULL;
	struct live_opts lo;
	char *text, *yaml;
	size_t len;
	int status = live_parse(&cmd, argc, argv, &file, &lo);

	if (status != LIVE_PROCEED)
		return status;
	if (admin_request(lo.admin, "GET", "/snapshot", &text, &len) < 0)
		return CTL_EXIT_USAGE;
	if (lo.format == OUTPUT_YAML) {
		yaml = to_yaml(text, len);
		status = yaml ? write_out(file, yaml) : CTL_EXIT_USAGE;
		free(yaml);
	} else {
		status = write_out(file, text);
	}
	free(text);
	return status;
}
