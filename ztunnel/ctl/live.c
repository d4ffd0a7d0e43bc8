/* Option parsing shared by the live commands, so --admin, -o and --help
 * mean the same everywhere and are documented in one place. */
#include "live.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"

#define LIVE_MAX_OPTS 16

enum { OPT_ADMIN = 0x100 };

static const char *const format_names[] = { [OUTPUT_TABLE] = "table", [OUTPUT_JSON] = "json",
					    [OUTPUT_YAML] = "yaml" };

static unsigned formats_of(const struct live_cmd *cmd)
{
	return cmd->formats ? cmd->formats : 1u << OUTPUT_TABLE | 1u << OUTPUT_JSON | 1u << OUTPUT_YAML;
}

static void print_formats(unsigned mask, FILE *out)
{
	const char *sep = "";

	for (unsigned f = 0; f < sizeof(format_names) / sizeof(format_names[0]); f++) {
		if (mask & 1u << f) {
			fprintf(out, "%s%s", sep, format_names[f]);
			sep = "|";
		}
	}
}

static void print_usage(const struct live_cmd *cmd, FILE *out)
{
	fputs(cmd->usage, out);
	fprintf(out,
		"\nCommon options:\n"
		"  --admin URL          the agent's admin API (default: $ZTUNNEL_ADMIN, else\n"
		"                       %s); it listens on the node's loopback,\n"
		"                       so run ztunnel-ctl on the agent's node\n"
		"  -o, --output FORMAT  ",
		ADMIN_DEFAULT_URL);
	print_formats(formats_of(cmd), out);
	fprintf(out, " (default %s)\n  -h, --help           this help\n",
		formats_of(cmd) & 1u << OUTPUT_TABLE ? "table" : "json");
}

/* The synopsis: the usage up to its first empty line. */
static void print_synopsis(const struct live_cmd *cmd, FILE *out)
{
	const char *end = strstr(cmd->usage, "\n\n");
	int n = end ? (int)(end - cmd->usage) : (int)strlen(cmd->usage);

	fprintf(out, "%.*s\n(--help for more)\n", n, cmd->usage);
}

int live_usage_error(const struct live_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_synopsis(cmd, stderr);
	return CTL_EXIT_USAGE;
}

int live_parse_number(const char *opt, const char *arg, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	unsigned long v = strtoul(arg, &end, 10);
	if (!*arg || *end || *arg == '-' || errno || v > max) {
		fprintf(stderr, "error: %s \"%s\": want a whole number from 0 to %lu\n", opt, arg, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

const char *live_admin_default(void)
{
	const char *env = getenv("ZTUNNEL_ADMIN");

	return env && *env ? env : ADMIN_DEFAULT_URL;
}

static int take_format(const struct live_cmd *cmd, const char *arg, struct live_opts *lo)
{
	enum output_format f;

	if (output_format_parse(arg, &f) < 0 || !(formats_of(cmd) & 1u << f)) {
		fprintf(stderr, "error: -o \"%s\": this command writes ", arg);
		print_formats(formats_of(cmd), stderr);
		fputc('\n', stderr);
		return -EINVAL;
	}
	lo->format = f;
	return 0;
}

int live_parse(const struct live_cmd *cmd, int argc, char **argv, void *ctx, struct live_opts *lo)
{
	static const struct option common[] = {
		{ "admin", required_argument, NULL, OPT_ADMIN },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct option all[LIVE_MAX_OPTS + sizeof(common) / sizeof(common[0])];
	char shorts[32];
	size_t n = 0;
	int c, r;

	for (; cmd->opts && cmd->opts[n].name && n < LIVE_MAX_OPTS; n++)
		all[n] = cmd->opts[n];
	memcpy(all + n, common, sizeof(common));
	snprintf(shorts, sizeof(shorts), "ho:%s", cmd->short_opts ? cmd->short_opts : "");
	lo->admin = live_admin_default();
	lo->format = OUTPUT_TABLE;
	optind = 0;
	while ((c = getopt_long(argc, argv, shorts, all, NULL)) != -1) {
		r = 0;
		switch (c) {
		case 'h': print_usage(cmd, stdout); return CTL_EXIT_OK;
		case OPT_ADMIN: lo->admin = optarg; break;
		case 'o': r = take_format(cmd, optarg, lo); break;
		case '?': r = -EINVAL; break; /* getopt said what */
		default: r = cmd->on_opt ? cmd->on_opt(ctx, c, optarg) : -EINVAL; break;
		}
		if (r < 0) {
			print_synopsis(cmd, stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (!*lo->admin)
		return live_usage_error(cmd, "--admin: empty URL");
	if (argc - optind > cmd->max_operands)
		return live_usage_error(cmd, "unexpected argument \"%s\"", argv[optind + cmd->max_operands]);
	return LIVE_PROCEED;
}

int live_get_list(const char *admin, const char *path, const char *member, cJSON **doc, const cJSON **list)
{
	int r = admin_get_json(admin, path, doc);

	if (r < 0)
		return r;
	*list = cJSON_GetObjectItemCaseSensitive(*doc, member);
	if (!cJSON_IsArray(*list)) {
		fprintf(stderr, "error: GET %s%s: no \"%s\" list in the answer (docs/admin.md)\n", admin, path,
			member);
		cJSON_Delete(*doc);
		*doc = NULL;
		return -EBADMSG;
	}
	return 0;
}

int live_print(const cJSON *rows, const struct live_opts *lo, const struct table_column *cols, size_t n_cols)
{
	int r = lo->format == OUTPUT_TABLE ? table_print(rows, cols, n_cols, 0, stdout)
					   : output_document(rows, lo->format, stdout);

	if (r == 0 && fflush(stdout) != 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "error: writing the output: %s\n", strerror(-r));
		return CTL_EXIT_USAGE;
	}
	return CTL_EXIT_OK;
}
