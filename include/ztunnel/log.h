/* One logging API for every binary: leveled, structured key=value text or
 * JSON lines, one write(2) per line so concurrent threads never interleave.
 *
 *   log_info("snapshot loaded", LF_STR("path", p), LF_INT("workloads", n));
 *   log_error("cannot attach", LF_STR("veth", name), LF_ERRNO(r));
 */
#ifndef ZTUNNEL_LOG_H
#define ZTUNNEL_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_OFF = -1, /* a target's level: nothing logged */
};

/* Levels are set per target at run time (admin /logging): the access log
 * can be turned up or down without touching the rest. */
enum log_target {
	LOG_TARGET_DEFAULT = 0,
	LOG_TARGET_ACCESS,
	LOG_TARGETS,
};

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

enum log_field_type {
	LOG_FIELD_END = 0,
	LOG_FIELD_STR,
	LOG_FIELD_INT,
	LOG_FIELD_UINT,
	LOG_FIELD_BOOL,
	LOG_FIELD_ERRNO,
};

struct log_field {
	const char *key;
	enum log_field_type type;
	union {
		const char *s;
		int64_t i;
		uint64_t u;
	};
};

#define LF_STR(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .s = (v) })
#define LF_INT(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .i = (int64_t)(v) })
#define LF_UINT(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_UINT, .u = (uint64_t)(v) })
#define LF_BOOL(k, v) ((struct log_field){ .key = (k), .type = LOG_FIELD_BOOL, .i = !!(v) })
/* A negative errno as returned by our functions; logged as error="<text>". */
#define LF_ERRNO(e) ((struct log_field){ .key = "error", .type = LOG_FIELD_ERRNO, .i = (int64_t)(e) })
#define LF_END_ ((struct log_field){ .type = LOG_FIELD_END })

void log_setup(enum log_level level, enum log_format format, int fd);
bool log_enabled(enum log_level level);
bool log_target_enabled(enum log_target target, enum log_level level);
/* Where formatted lines go: by default write(2) to the log fd; the access
 * log's writer thread installs its queue so that data-path threads never
 * wait for a slow log reader. */
typedef void (*log_writer_fn)(const char *line, size_t len);
void log_set_writer(log_writer_fn fn);
void log_write_line(const char *line, size_t len);
/* LOG_LEVEL_OFF silences a target. Safe from any thread. */
void log_set_level(enum log_target target, int level);
int log_get_level(enum log_target target);
enum log_format log_get_format(void);
int log_get_fd(void);
/* "error".."debug", "off": the level, or -EINVAL. */
int log_level_parse(const char *name);
const char *log_target_name(enum log_target target);
void log_emit(enum log_level level, const char *msg, const struct log_field *fields);

/* Formats one line (with trailing newline) into buf; sans-IO so tests can
 * check the exact output. Returns the length, truncating at size-1. */
size_t log_format_line(char *buf, size_t size, enum log_format format, int64_t unix_ms,
		       enum log_level level, const char *msg, const struct log_field *fields);

const char *log_level_name(enum log_level level);
/* Repeated events (a flood, a dependency that keeps failing) are counted
 * every time but logged at most once per period, whichever thread sees
 * them: true when it is this call's turn to log (last: the shared time of
 * the last line, monotonic ms; now: the caller's clock). */
bool log_every(atomic_int_fast64_t *last, int64_t now_ms, int64_t period_ms);

#define log_at(lvl, msg, ...)                                                             \
	do {                                                                              \
		if (log_enabled(lvl))                                                     \
			log_emit(lvl, msg,                                                \
				 (const struct log_field[]){ __VA_ARGS__ __VA_OPT__(, ) LF_END_ }); \
	} while (0)

#define log_error(msg, ...) log_at(LOG_LEVEL_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_at(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) log_at(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...) log_at(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)

#endif
