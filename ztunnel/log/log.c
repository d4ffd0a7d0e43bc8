#include "ztunnel/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	atomic_int level[LOG_TARGETS];
	enum log_format format;
	int fd;
} log_state = { { LOG_LEVEL_INFO, LOG_LEVEL_INFO }, LOG_FORMAT_TEXT, STDERR_FILENO };

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const target_names[LOG_TARGETS] = { "default", "access" };

const char *log_level_name(enum log_level level)
{
	if (level == LOG_LEVEL_OFF)
		return "off";
	return (unsigned)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level]
									   : "unknown";
}

const char *log_target_name(enum log_target target)
{
	return (unsigned)target < LOG_TARGETS ? target_names[target] : "unknown";
}

void log_setup(enum log_level level, enum log_format format, int fd)
{
	for (int t = 0; t < LOG_TARGETS; t++)
		atomic_store_explicit(&log_state.level[t], level, memory_order_relaxed);
	log_state.format = format;
	log_state.fd = fd;
}

bool log_target_enabled(enum log_target target, enum log_level level)
{
	return (int)level <= atomic_load_explicit(&log_state.level[target], memory_order_relaxed);
}

bool log_enabled(enum log_level level)
{
	return log_target_enabled(LOG_TARGET_DEFAULT, level);
}

void log_set_level(enum log_target target, int level)
{
	if ((unsigned)target < LOG_TARGETS)
		atomic_store_explicit(&log_state.level[target], level, memory_order_relaxed);
}

int log_get_level(enum log_target target)
{
	return atomic_load_explicit(&log_state.level[target], memory_order_relaxed);
}

enum log_format log_get_format(void)
{
	return log_state.format;
}

int log_get_fd(void)
{
	return log_state.fd;
}

int log_level_parse(const char *name)
{
	if (!strcmp(name, "off"))
		return LOG_LEVEL_OFF;
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -EINVAL;
}

/* Appends with truncation; *len never exceeds size-1 so buf stays a string. */
static void append(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + 1 >= size)
		return;
	if (n > size - 1 - *len)
		n = size - 1 - *len;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
}

static void append_str(char *buf, size_t size, size_t *len, const char *s)
{
	append(buf, size, len, s, strlen(s));
}

/* logfmt quoting: bare when safe, else double-quoted with \" \\ \n escapes. */
static void append_value(char *buf, size_t size, size_t *len, const char *v)
{
	bool quote = *v == '\0' || strpbrk(v, " \"=\\\n\t") != NULL;

	if (!quote) {
		append_str(buf, size, len, v);
		return;
	}
	append(buf, size, len, "\"", 1);
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '"': append(buf, size, len, "\\\"", 2); break;
		case '\\': append(buf, size, len, "\\\\", 2); break;
		case '\n': append(buf, size, len, "\\n", 2); break;
		case '\t': append(buf, size, len, "\\t", 2); break;
		default: append(buf, size, len, p, 1);
		}
	}
	append(buf, size, len, "\"", 1);
}

static void format_time(char *out, size_t size, int64_t unix_ms)
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(unix_ms % 1000));
}

/* Renders a field's value as text; strings are returned as is. */
static const char *field_text(const struct log_field *f, char *tmp, size_t size)
{
	switch (f->type) {
	case LOG_FIELD_STR: return f->s ? f->s : "";
	case LOG_FIELD_INT: snprintf(tmp, size, "%" PRId64, f->i); return tmp;
	case LOG_FIELD_UINT: snprintf(tmp, size, "%" PRIu64, f->u); return tmp;
	case LOG_FIELD_BOOL: return f->i ? "true" : "false";
	case LOG_FIELD_ERRNO: return strerror((int)-f->i);
	case LOG_FIELD_END: break;
	}
	return "";
}

static size_t format_text(char *buf, size_t size, const char *ts, enum log_level level,
			  const char *msg, const struct log_field *fields)
{
	char tmp[32];
	size_t len = 0;

	buf[0] = '\0';
	append_str(buf, size, &len, ts);
	append_str(buf, size, &len, " level=");
	append_str(buf, size, &len, log_level_name(level));
	append_str(buf, size, &len, " msg=");
	append_value(buf, size, &len, msg);
	for (const struct log_field *f = fields; f && f->type != LOG_FIELD_END; f++) {
		append_str(buf, size, &len, " ");
		append_str(buf, size, &len, f->key);
		append_str(buf, size, &len, "=");
		append_value(buf, size, &len, field_text(f, tmp, sizeof(tmp)));
	}
	return len;
}

static size_t format_json(char *buf, size_t size, const char *ts, enum log_level level,
			  const char *msg, const struct log_field *fields)
{
	cJSON *o = cJSON_CreateObject();
	char tmp[32];
	size_t len = 0;

	buf[0] = '\0';
	if (!o)
		return 0;
	cJSON_AddStringToObject(o, "time", ts);
	cJSON_AddStringToObject(o, "level", log_level_name(level));
	cJSON_AddStringToObject(o, "msg", msg);
	for (const struct log_field *f = fields; f && f->type != LOG_FIELD_END; f++) {
		switch (f->type) {
		case LOG_FIELD_INT: cJSON_AddNumberToObject(o, f->key, (double)f->i); break;
		case LOG_FIELD_UINT: cJSON_AddNumberToObject(o, f->key, (double)f->u); break;
		case LOG_FIELD_BOOL: cJSON_AddBoolToObject(o, f->key, f->i); break;
		default: cJSON_AddStringToObject(o, f->key, field_text(f, tmp, sizeof(tmp)));
		}
	}
	char *s = cJSON_PrintUnformatted(o);
	if (s) {
		append_str(buf, size, &len, s);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	return len;
}

size_t log_format_line(char *buf, size_t size, enum log_format format, int64_t unix_ms,
		       enum log_level level, const char *msg, const struct log_field *fields)
{
	char ts[64];
	size_t len;

	if (size < 2)
		return 0;
	format_time(ts, sizeof(ts), unix_ms);
	if (format == LOG_FORMAT_JSON)
		len = format_json(buf, size - 1, ts, level, msg, fields);
	else
		len = format_text(buf, size - 1, ts, level, msg, fields);
	buf[len++] = '\n';
	buf[len] = '\0';
	return len;
}

static _Atomic(log_writer_fn) line_writer;

void log_set_writer(log_writer_fn fn)
{
	atomic_store(&line_writer, fn);
}

void log_write_line(const char *line, size_t len)
{
	log_writer_fn w = atomic_load_explicit(&line_writer, memory_order_acquire);

	if (w)
		w(line, len);
	else
		(void)!write(log_state.fd, line, len); /* best effort: never stop the agent */
}

void log_emit(enum log_level level, const char *msg, const struct log_field *fields)
{
	char line[4096];
	struct timespec now;
	int saved = errno;

	clock_gettime(CLOCK_REALTIME, &now);
	size_t len = log_format_line(line, sizeof(line), log_state.format,
				     (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, level,
				     msg, fields);
	log_write_line(line, len);
	errno = saved;
}

bool log_every(atomic_int_fast64_t *last, int64_t now_ms, int64_t period_ms)
{
	int_fast64_t then = atomic_load(last);

	return now_ms - then >= period_ms && atomic_compare_exchange_strong(last, &then, now_ms);
}
