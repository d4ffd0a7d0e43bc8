/* POST /logging (SPEC.md §7): per-target levels, all-or-nothing on a bad
 * value, reset to the start-up levels. Driven without a server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../../../ztunnel/admin/admin_int.h"

static struct admin a;

static void answer(const char *level, bool reset, int status, const char *body)
{
	struct admin_reply r = { 0 };

	admin_logging(&a, level, reset, &r);
	assert_int_equal(r.status, status);
	if (body)
		assert_string_equal(r.body.p, body);
	tm_text_free(&r.body);
}

static void levels_per_target_bad_values_change_nothing(void **state)
{
	(void)state;
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, 2);
	a.start_level[LOG_TARGET_DEFAULT] = a.start_level[LOG_TARGET_ACCESS] = LOG_LEVEL_INFO;
	answer(NULL, false, 200, "current log level is info,access=info\n");
	answer("access:debug", false, 200, "current log level is info,access=debug\n");
	answer("warn", false, 200, "current log level is warn,access=warn\n");
	answer("error,access:off", false, 200, "current log level is error,access=off\n");
	assert_false(log_target_enabled(LOG_TARGET_ACCESS, LOG_LEVEL_ERROR));
	answer("debug,nosuch:info", false, 400, NULL);
	answer("loud", false, 400, NULL);
	answer("", false, 400, NULL);
	answer(NULL, false, 200, "current log level is error,access=off\n");
	answer(NULL, true, 200, "current log level is info,access=info\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(levels_per_target_bad_values_change_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
