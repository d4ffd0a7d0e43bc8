/* The metric registry: per-thread shards summed at scrape, labelled
 * series merged across shards, Prometheus escaping, a bounded number of
 * label sets per thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/telemetry.h"

#define PER_THREAD 100000

static void *counting(void *arg)
{
	struct tm_labels l;

	(void)arg;
	assert_int_equal(tm_thread_register(), 0);
	tm_labels_init(&l);
	tm_labels_add(&l, "direction", "inbound", true);
	tm_labels_add(&l, "reason", "reset", true);
	struct tm_series *s = tm_series_get(TM_F_REFUSED, &l);
	for (int i = 0; i < PER_THREAD; i++) {
		tm_count(TM_REVOKED, 1);
		tm_series_add(s, TM_V_OPENED, 1);
	}
	return NULL;
}

static int64_t sample(const char *text, const char *line_start)
{
	const char *p = strstr(text, line_start);

	return p ? strtoll(p + strlen(line_start), NULL, 10) : -1;
}

static void shards_are_summed_and_series_merged(void **state)
{
	pthread_t t[4];
	struct tm_text out = { 0 };

	(void)state;
	int64_t before = tm_counter_value(TM_REVOKED);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, counting, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(tm_counter_value(TM_REVOKED) - before, 4 * PER_THREAD);
	tm_render(&out);
	assert_false(out.failed);
	/* Four shards, one line. */
	assert_int_equal(sample(out.p, "ztunnel_connections_refused_total{direction=\"inbound\",reason=\"reset\"} "),
			 4 * PER_THREAD);
	const char *first = strstr(out.p, "ztunnel_connections_refused_total{direction=\"inbound\",reason=\"reset\"}");
	assert_null(strstr(first + 1, "ztunnel_connections_refused_total{direction=\"inbound\",reason=\"reset\"}"));
	assert_non_null(strstr(out.p, "# TYPE istio_tcp_connections_opened_total counter\n"));
	assert_non_null(strstr(out.p, "istio_build{component=\"ztunnel\""));
	tm_text_free(&out);
}

static void label_values_are_escaped_and_empty_is_unknown(void **state)
{
	struct tm_labels l;

	(void)state;
	tm_labels_init(&l);
	tm_labels_add(&l, "a", "x\"y\\z\nw", true);
	tm_labels_add(&l, "b", "", true);
	tm_labels_add(&l, "c", NULL, false);
	assert_string_equal(l.buf, "a=\"x\\\"y\\\\z\\nw\",b=\"unknown\",c=\"\"");
}

static void a_thread_holds_a_bounded_number_of_label_sets(void **state)
{
	struct tm_labels l;
	char v[32];

	(void)state;
	assert_int_equal(tm_thread_register(), 0);
	int64_t overflow0 = tm_counter_value(TM_SERIES_OVERFLOW);
	struct tm_series *last = NULL;
	for (int i = 0; i < 5000; i++) {
		tm_labels_init(&l);
		snprintf(v, sizeof(v), "w%d", i);
		tm_labels_add(&l, "policy", v, true);
		last = tm_series_get(TM_F_AUTHZ, &l);
		tm_series_add(last, TM_V_OPENED, 1);
	}
	assert_true(tm_counter_value(TM_SERIES_OVERFLOW) - overflow0 >= 5000 - 4096);
	assert_string_equal(last->labels, "overflow=\"true\"");
	/* An existing label set is still found, not folded. */
	tm_labels_init(&l);
	tm_labels_add(&l, "policy", "w7", true);
	assert_string_equal(tm_series_get(TM_F_AUTHZ, &l)->labels, "policy=\"w7\"");
}

static void label_values_too_long_never_break_the_exposition(void **state)
{
	struct tm_labels l;
	char longname[300];
	struct tm_text out = { 0 };

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	tm_labels_init(&l);
	for (int i = 0; i < 8; i++)
		tm_labels_add(&l, "source_workload", longname, true);
	tm_labels_add(&l, "response_flags", "-", true);
	assert_true(l.truncated);
	struct tm_series *s = tm_series_get(TM_F_TRAFFIC, &l);
	assert_string_equal(s->labels, "overflow=\"true\"");
	tm_series_add(s, TM_V_OPENED, 1);
	tm_render(&out);
	/* Every sample line is complete: name{...} value. */
	for (char *line = strtok(out.p, "\n"); line; line = strtok(NULL, "\n"))
		if (line[0] != '#' && strchr(line, '{'))
			assert_non_null(strstr(line, "} "));
	tm_text_free(&out);
}

static void reasons_have_names_and_istio_flags(void **state)
{
	(void)state;
	for (int r = 0; r < TM_REASONS; r++) {
		assert_string_not_equal(tm_reason_name((enum tm_reason)r), "unknown");
		assert_non_null(tm_reason_flag((enum tm_reason)r));
	}
	assert_string_equal(tm_reason_flag(TM_R_NONE), "-");
	assert_string_equal(tm_reason_flag(TM_R_POLICY_DENIED), "DENY");
	assert_string_equal(tm_reason_flag(TM_R_TLS), "TLS_FAILURE");
	assert_string_equal(tm_reason_flag(TM_R_HTTP2), "H2_HANDSHAKE_FAILURE");
}

static int setup(void **state)
{
	(void)state;
	return tm_init();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shards_are_summed_and_series_merged),
		cmocka_unit_test(label_values_are_escaped_and_empty_is_unknown),
		cmocka_unit_test(a_thread_holds_a_bounded_number_of_label_sets),
		cmocka_unit_test(label_values_too_long_never_break_the_exposition),
		cmocka_unit_test(reasons_have_names_and_istio_flags),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
