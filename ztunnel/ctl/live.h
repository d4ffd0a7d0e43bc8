/* What every command that talks to a running agent shares: --admin URL
 * ($ZTUNNEL_ADMIN, default ADMIN_DEFAULT_URL), -o table|json|yaml, --help
 * and the exit statuses. */
#ifndef ZTUNNEL_CTL_LIVE_H
#define ZTUNNEL_CTL_LIVE_H

#include <getopt.h>
#include <stdio.h>

#include "output.h"
#include "table.h"

/* Exit statuses of every ztunnel-ctl command. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_NO = 1,    /* the answer is "no": denied, a requirement missed */
	CTL_EXIT_USAGE = 2, /* bad usage, or the agent could not be asked */
};

/* live_parse: the command runs (any other value is the exit status). */
#define LIVE_PROCEED (-1)

struct live_opts {
	const char *admin;
	enum output_format format;
};

/* A command's own options. on_opt takes one of them (getopt's value and
 * optarg): 0, or -EINVAL after printing what is wrong. */
struct live_cmd {
	const char *usage; /* synopsis, description and examples, without the
			    * common options (live_parse adds those) */
	const struct option *opts; /* {0}-terminated, or NULL */
	const char *short_opts;    /* getopt letters of opts, or NULL */
	int (*on_opt)(void *ctx, int opt, const char *arg);
	/* What -o accepts, a bit per enum output_format; 0: all three. */
	unsigned formats;
	/* Operands after the options, at most (log's LEVEL); more is a usage
	 * error. */
	int max_operands;
};

/* $ZTUNNEL_ADMIN, else ADMIN_DEFAULT_URL. */
const char *live_admin_default(void);

/* Parses argv (argv[0] is the command word): LIVE_PROCEED with optind at
 * the first operand (at most max_operands), or the exit status (0 after
 * --help). */
int live_parse(const struct live_cmd *cmd, int argc, char **argv, void *ctx, struct live_opts *lo);

/* Prints "error: <msg>" and the command's synopsis to stderr; returns
 * CTL_EXIT_USAGE. */
int live_usage_error(const struct live_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An option's whole-number value, at most max: 0, or -EINVAL after printing
 * "error: OPT VALUE: ..." (for on_opt). */
int live_parse_number(const char *opt, const char *arg, unsigned long max, unsigned long *out);

/* GET path and find its array member: 0 with *doc (the caller frees it)
 * and *list inside it, or -errno (printed). */
int live_get_list(const char *admin, const char *path, const char *member, cJSON **doc, const cJSON **list);

/* rows (the document for -o json|yaml) on stdout: the exit status. */
int live_print(const cJSON *rows, const struct live_opts *lo, const struct table_column *cols, size_t n_cols);

#endif
