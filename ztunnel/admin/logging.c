/* POST /logging (SPEC.md §7): levels per target at run time. */
#include "admin_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int target_of(const char *name)
{
	for (int t = 0; t < LOG_TARGETS; t++)
		if (!strcmp(name, log_target_name((enum log_target)t)))
			return t;
	return -1;
}

static void current(struct admin_reply *r)
{
	reply_text(r, 200, "current log level is %s,access=%s\n", log_level_name(log_get_level(LOG_TARGET_DEFAULT)),
		   log_level_name(log_get_level(LOG_TARGET_ACCESS)));
}

/* "info", "access:debug", "info,access:off": all parsed before any is
 * applied, so a bad value changes nothing. */
void admin_logging(struct admin *a, const char *level, bool reset, struct admin_reply *r)
{
	int levels[LOG_TARGETS];
	char spec[256];

	if (reset) {
		for (int t = 0; t < LOG_TARGETS; t++)
			log_set_level((enum log_target)t, a->start_level[t]);
		return current(r);
	}
	if (!level)
		return current(r);
	for (int t = 0; t < LOG_TARGETS; t++)
		levels[t] = log_get_level((enum log_target)t);
	snprintf(spec, sizeof(spec), "%s", level);
	char *save = NULL;
	for (char *item = strtok_r(spec, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		int t = LOG_TARGET_DEFAULT, l;
		if (colon) {
			*colon = '\0';
			if ((t = target_of(item)) < 0)
				return reply_text(r, 400, "unknown log target \"%s\" (default, access)\n", item);
			item = colon + 1;
		}
		if ((l = log_level_parse(item)) < LOG_LEVEL_OFF)
			return reply_text(r, 400, "invalid log level \"%s\" (off, error, warn, info, debug)\n", item);
		if (!colon) {
			/* A bare level sets every target, as RUST_LOG's default. */
			for (int k = 0; k < LOG_TARGETS; k++)
				levels[k] = l;
		} else {
			levels[t] = l;
		}
	}
	if (!spec[0])
		return reply_text(r, 400, "empty log level\n");
	for (int t = 0; t < LOG_TARGETS; t++)
		log_set_level((enum log_target)t, levels[t]);
	log_info("log levels changed through the admin API", LF_STR("default", log_level_name(levels[0])),
		 LF_STR("access", log_level_name(levels[1])));
	current(r);
}
