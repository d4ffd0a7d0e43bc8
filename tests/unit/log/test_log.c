#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/log.h"

/* 2026-12-02T06:48:45.123Z */
#define T0 1796194125123LL

static void text_line_has_time_level_msg_and_fields(void **state)
{
	(void)state;
	char buf[256];
	const struct log_field f[] = { LF_STR("path", "/etc/x"), LF_INT("n", -3), LF_UINT("u", 7),
				       LF_BOOL("ok", 1), LF_END_ };
	size_t n = log_format_line(buf, sizeof(buf), LOG_FORMAT_TEXT, T0, LOG_LEVEL_INFO,
				   "snapshot loaded", f);
	assert_string_equal(buf, "2026-12-02T06:48:45.123Z level=info msg=\"snapshot loaded\" "
				 "path=/etc/x n=-3 u=7 ok=true\n");
	assert_int_equal(n, strlen(buf));
}

static void text_values_with_spaces_quotes_and_newlines_are_escaped(void **state)
{
	(void)state;
	char buf[256];
	const struct log_field f[] = { LF_STR("a", "x y"), LF_STR("b", "say \"hi\"\n"),
				       LF_STR("c", ""), LF_STR("d", "k=v"), LF_END_ };
	log_format_line(buf, sizeof(buf), LOG_FORMAT_TEXT, T0, LOG_LEVEL_WARN, "m", f);
	assert_non_null(strstr(buf, " level=warn msg=m a=\"x y\" b=\"say \\\"hi\\\"\\n\" c=\"\" d=\"k=v\"\n"));
}

static void errno_field_renders_the_error_text(void **state)
{
	(void)state;
	char buf[256];
	const struct log_field f[] = { LF_ERRNO(-ENOENT), LF_END_ };
	log_format_line(buf, sizeof(buf), LOG_FORMAT_TEXT, T0, LOG_LEVEL_ERROR, "open", f);
	assert_non_null(strstr(buf, "error=\"No such file or directory\"\n"));
}

static void json_line_is_valid_json_with_typed_fields(void **state)
{
	(void)state;
	char buf[512];
	const struct log_field f[] = { LF_STR("q", "a \"b\""), LF_INT("n", 42), LF_BOOL("ok", 0),
				       LF_END_ };
	size_t n = log_format_line(buf, sizeof(buf), LOG_FORMAT_JSON, T0, LOG_LEVEL_DEBUG,
				   "hello", f);
	assert_int_equal(buf[n - 1], '\n');
	cJSON *o = cJSON_Parse(buf);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "time")->valuestring, "2026-12-02T06:48:45.123Z");
	assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "debug");
	assert_string_equal(cJSON_GetObjectItem(o, "msg")->valuestring, "hello");
	assert_string_equal(cJSON_GetObjectItem(o, "q")->valuestring, "a \"b\"");
	assert_int_equal((int)cJSON_GetObjectItem(o, "n")->valuedouble, 42);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "ok")));
	cJSON_Delete(o);
}

static void long_lines_are_truncated_but_stay_terminated(void **state)
{
	(void)state;
	char big[300], buf[64];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const struct log_field f[] = { LF_STR("v", big), LF_END_ };
	size_t n = log_format_line(buf, sizeof(buf), LOG_FORMAT_TEXT, T0, LOG_LEVEL_INFO, "m", f);
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(buf[n], '\0');
}

static void emit_writes_one_line_and_filters_by_level(void **state)
{
	(void)state;
	int p[2];
	char buf[512];
	assert_int_equal(pipe(p), 0);
	log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT, p[1]);
	log_info("hidden", LF_STR("k", "v"));
	log_debug("hidden too");
	log_warn("shown", LF_STR("k", "v"));
	close(p[1]);
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "level=warn msg=shown k=v\n"));
	assert_int_equal(strchr(buf, '\n') - buf, n - 1);
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, STDERR_FILENO);
}

/* Once per period whichever caller asks: the first call logs, calls within
 * the period do not, the next one after it does. */
static void log_every_lets_one_line_per_period(void **state)
{
	(void)state;
	atomic_int_fast64_t last = 0;

	assert_true(log_every(&last, 5000, 1000));
	assert_false(log_every(&last, 5999, 1000));
	assert_true(log_every(&last, 6000, 1000));
	assert_false(log_every(&last, 6000, 1000));
	assert_true(log_every(&last, 36000, 30000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(text_line_has_time_level_msg_and_fields),
		cmocka_unit_test(text_values_with_spaces_quotes_and_newlines_are_escaped),
		cmocka_unit_test(errno_field_renders_the_error_text),
		cmocka_unit_test(json_line_is_valid_json_with_typed_fields),
		cmocka_unit_test(long_lines_are_truncated_but_stay_terminated),
		cmocka_unit_test(emit_writes_one_line_and_filters_by_level),
		cmocka_unit_test(log_every_lets_one_line_per_period),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
