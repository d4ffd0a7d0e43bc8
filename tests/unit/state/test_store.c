/* The RCU store: bad input keeps the last good model and is counted;
 * readers racing 1,000 reloads always see one whole model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"
#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

static const struct snapshot_opts opts = { "cluster.local", "istio-system" };

/* Snapshot whose pod at 10.0.0.1 is named after `tag`. */
static char *snapshot_text(const char *tag)
{
	cJSON *l = snap_new();
	snap_ns(l, "a", "{\"istio.io/dataplane-mode\":\"ambient\"}");
	snap_pod(l, "a", tag, "10.0.0.1", "n1", NULL);
	for (int i = 2; i < 50; i++) {
		char name[32], ip[32];
		snprintf(name, sizeof(name), "%s-%d", tag, i);
		snprintf(ip, sizeof(ip), "10.0.0.%d", i);
		snap_pod(l, "a", name, ip, "n1", NULL);
	}
	char *t = cJSON_PrintUnformatted(l);
	cJSON_Delete(l);
	return t;
}

static int quiet(void **state)
{
	(void)state;
	log_setup(LOG_LEVEL_ERROR + 0, LOG_FORMAT_TEXT, 2);
	return tm_init();
}

static void bad_snapshot_keeps_the_previous_model_and_counts(void **state)
{
	(void)state;
	struct state_store s;
	char *good = snapshot_text("even");
	int64_t rejected0 = tm_counter_value(TM_SNAPSHOT_REJECTED), applied0 = tm_counter_value(TM_SNAPSHOT_APPLIED);
	state_store_init(&s, &opts);
	assert_false(state_store_ready(&s));

	assert_int_equal(state_store_apply(&s, good, strlen(good), "test"), 0);
	assert_true(state_store_ready(&s));
	assert_int_equal(state_store_generation(&s), 1);

	const char *bad[] = { "{\"kind\":\"List\",\"items\":[", "not json", "{\"kind\":\"Pod\"}" };
	for (int i = 0; i < 3; i++)
		assert_int_equal(state_store_apply(&s, bad[i], strlen(bad[i]), "test"), -EINVAL);
	assert_int_equal(state_store_load_file(&s, "/nonexistent/snapshot.json"), -ENOENT);
	assert_int_equal(tm_counter_value(TM_SNAPSHOT_REJECTED) - rejected0, 4);
	assert_int_equal(tm_counter_value(TM_SNAPSHOT_APPLIED) - applied0, 1);
	assert_int_equal(state_store_generation(&s), 1);

	state_reader_register();
	const struct zt_model *m = state_read_lock(&s);
	assert_non_null(m);
	assert_int_equal(m->generation, 1);
	assert_string_equal(pod_by_ip(m, "10.0.0.1")->name, "even");
	state_read_unlock();
	state_reader_unregister();
	state_store_release(&s);
	free(good);
}

static void first_bad_snapshot_leaves_the_store_not_ready(void **state)
{
	(void)state;
	struct state_store s;
	state_store_init(&s, &opts);
	assert_int_equal(state_store_apply(&s, "[]", 2, "test"), -EINVAL);
	assert_false(state_store_ready(&s));
	state_reader_register();
	assert_null(state_read_lock(&s));
	state_read_unlock();
	state_reader_unregister();
	state_store_release(&s);
}

static void invalid_objects_are_counted_but_applied(void **state)
{
	(void)state;
	struct state_store s;
	const char *text = "{\"kind\":\"List\",\"items\":[{\"apiVersion\":\"security.istio.io/v1\","
			   "\"kind\":\"AuthorizationPolicy\",\"metadata\":{\"name\":\"p\",\"namespace\":\"a\"},"
			   "\"spec\":{\"action\":\"NOPE\"}}]}";
	int64_t invalid0 = tm_counter_value(TM_SNAPSHOT_INVALID_OBJECTS);
	state_store_init(&s, &opts);
	assert_int_equal(state_store_apply(&s, text, strlen(text), "test"), 0);
	assert_int_equal(tm_counter_value(TM_SNAPSHOT_INVALID_OBJECTS) - invalid0, 1);
	assert_true(state_store_ready(&s));
	state_store_release(&s);
}

struct race {
	struct state_store *s;
	atomic_bool stop;
	atomic_uint_fast64_t lookups, mismatches, empty;
};

/* Generation g was built from tag "even" when odd (1, 3, ...): a reader
 * that saw a half-swapped model would find the other tag. */
static void *reader(void *arg)
{
	struct race *r = arg;
	struct zt_ip ip;

	zt_ip_parse("10.0.0.1", &ip);
	state_reader_register();
	while (!atomic_load(&r->stop)) {
		const struct zt_model *m = state_read_lock(r->s);
		if (!m) {
			atomic_fetch_add(&r->empty, 1);
		} else {
			const struct zt_workload *w = model_workload_by_ip(m, &ip);
			const char *want = m->generation % 2 ? "even" : "odd";
			if (!w || strcmp(w->name, want) || w->n_ips != 1)
				atomic_fetch_add(&r->mismatches, 1);
			atomic_fetch_add(&r->lookups, 1);
		}
		state_read_unlock();
	}
	state_reader_unregister();
	return NULL;
}

static void readers_see_whole_models_during_1000_reloads(void **state)
{
	(void)state;
	struct state_store s;
	struct race r = { .s = &s };
	pthread_t th[3];
	char *even = snapshot_text("even"), *odd = snapshot_text("odd");

	state_store_init(&s, &opts);
	assert_int_equal(state_store_apply(&s, even, strlen(even), "test"), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
	for (int i = 0; i < 1000; i++) {
		const char *t = i % 2 ? even : odd;
		assert_int_equal(state_store_apply(&s, t, strlen(t), "test"), 0);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(state_store_generation(&s), 1001);
	assert_int_equal(atomic_load(&r.mismatches), 0);
	assert_int_equal(atomic_load(&r.empty), 0);
	assert_true(atomic_load(&r.lookups) > 1000);
	fprintf(stderr, "lookups during reloads: %lu\n", (unsigned long)atomic_load(&r.lookups));
	state_store_release(&s);
	free(even);
	free(odd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(bad_snapshot_keeps_the_previous_model_and_counts, quiet),
		cmocka_unit_test_setup(first_bad_snapshot_leaves_the_store_not_ready, quiet),
		cmocka_unit_test_setup(invalid_objects_are_counted_but_applied, quiet),
		cmocka_unit_test_setup(readers_see_whole_models_during_1000_reloads, quiet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
