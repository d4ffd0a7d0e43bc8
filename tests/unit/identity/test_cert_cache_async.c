/* The certificate cache with a runner (fetches elsewhere, results through
 * cert_cache_complete): SPEC.md §4's priority order, at most 8 in flight,
 * stale results dropped, and failures handled as on the synchronous path.
 * The runner only records what it was asked; certificates are made up
 * (lifetimes under 10 s have no jitter, so renewal times are exact). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/cert_cache.h"
#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

struct fake_runner {
	struct spiffe_id ids[64];
	uint64_t tickets[64];
	int n;
	int fail; /* start's answer when non-zero */
};

static int fake_start(void *ctx, const struct spiffe_id *id, uint64_t ticket, int64_t lifetime_s)
{
	struct fake_runner *f = ctx;

	(void)lifetime_s;
	if (f->fail)
		return f->fail;
	assert_true(f->n < 64);
	f->ids[f->n] = *id;
	f->tickets[f->n++] = ticket;
	return 0;
}

static int unused_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
			struct leaf_cert *out, char *err, size_t err_size)
{
	(void)ctx, (void)id, (void)now, (void)lifetime_s, (void)out, (void)err, (void)err_size;
	fail_msg("a cache with a runner fetched on its own");
	return -EIO;
}

static struct fake_runner runner;
static struct cert_cache cache;

static int setup(void **state)
{
	(void)state;
	tm_init();
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	return 0;
}

static int fresh_cache(void **state)
{
	(void)state;
	memset(&runner, 0, sizeof(runner));
	cert_cache_init(&cache, (struct cert_provider){ "ca", unused_fetch, NULL, NULL }, 3600, 7);
	cert_cache_set_runner(&cache, (struct cert_runner){ fake_start, &runner });
	return 0;
}

static int fini_cache(void **state)
{
	(void)state;
	cert_cache_fini(&cache);
	return 0;
}

static struct spiffe_id sid(const char *sa)
{
	struct spiffe_id id = { "cluster.local", "shop", "" };
	snprintf(id.sa, sizeof(id.sa), "%s", sa);
	return id;
}

static const char *sa_of_start(int i)
{
	assert_true(i < runner.n);
	return runner.ids[i].sa;
}

/* Completes start i with a certificate valid [nb, na] and serial. */
static int complete_ok(int i, int64_t nb, int64_t na, const char *serial, int64_t now)
{
	struct leaf_cert l = { strdup("cert"), strdup("chain"), strdup("key"), strdup("roots"), nb, na, "" };
	snprintf(l.serial, sizeof(l.serial), "%s", serial);
	return cert_cache_complete(&cache, &runner.ids[i], runner.tickets[i], 0, &l, NULL, now);
}

static int complete_fail(int i, const char *err, int64_t now)
{
	struct leaf_cert l = { 0 };
	return cert_cache_complete(&cache, &runner.ids[i], runner.tickets[i], -EIO, &l, err, now);
}

/* Expired certificates first (their connections fail now), then new pods,
 * the longest waiting first, then refreshes by expiry; not array order. */
static void fetches_start_realtime_then_warmup_then_refresh_by_expiry(void **state)
{
	(void)state;
	struct spiffe_id w = sid("w"), a = sid("a"), b = sid("b"), e = sid("e"), d = sid("d"), c = sid("c");

	cert_cache_want(&cache, &w, 0);
	cert_cache_want(&cache, &a, 0);
	cert_cache_want(&cache, &b, 0);
	cert_cache_want(&cache, &e, 0);
	cert_cache_tick(&cache, 0);
	assert_int_equal(runner.n, 4);
	assert_int_equal(complete_ok(0, 0, 9, "w1", 0), 0);
	assert_int_equal(complete_ok(1, 0, 9, "a1", 0), 0); /* renew at 4, expires 9 */
	assert_int_equal(complete_ok(2, 0, 8, "b1", 0), 0); /* renew at 4, expires 8 */
	assert_int_equal(complete_ok(3, 0, 4, "e1", 0), 0); /* renew at 2, expires 4 */
	cert_cache_want(&cache, &d, 1);
	assert_int_equal(cert_cache_tick(&cache, 1), 2); /* e's renewal */
	assert_int_equal(runner.n, 5);
	assert_string_equal(sa_of_start(4), "d");
	assert_int_equal(complete_fail(4, "CA unreachable", 1), 0); /* d retries at 2, still waiting */
	cert_cache_want(&cache, &c, 3);
	cert_cache_release(&cache, &w); /* c moves into w's place: array c a b e d */
	assert_string_equal(cache.entries[0].id.sa, "c");

	int64_t next = cert_cache_tick(&cache, 5);
	assert_int_equal(runner.n, 10);
	const char *want[] = { "e", "d", "c", "b", "a" };
	for (int i = 0; i < 5; i++)
		assert_string_equal(sa_of_start(5 + i), want[i]);
	assert_int_equal(cert_cache_entry(&cache, &e)->state, CERT_UNAVAILABLE);
	assert_int_equal(cache.in_flight, 5);
	assert_int_equal(next, 8); /* all in flight: only b's expiry is a deadline */
}

static void never_more_than_eight_in_flight_the_rest_start_as_slots_free(void **state)
{
	(void)state;
	char sa[16];

	for (int i = 0; i < 10; i++) {
		snprintf(sa, sizeof(sa), "sa%d", i);
		struct spiffe_id id = sid(sa);
		assert_int_equal(cert_cache_want(&cache, &id, 0), 0);
	}
	/* Two waiting, but nothing for the clock to do: no busy loop. */
	assert_int_equal(cert_cache_tick(&cache, 0), INT64_MAX);
	assert_int_equal(runner.n, CERT_MAX_IN_FLIGHT);
	assert_int_equal(cert_cache_tick(&cache, 1), INT64_MAX);
	assert_int_equal(runner.n, 8); /* nothing started twice */
	assert_int_equal(complete_ok(0, 0, 8, "s0", 1), 0);
	cert_cache_tick(&cache, 1);
	assert_int_equal(runner.n, 9);
	assert_int_equal(cache.in_flight, 8);
	assert_int_equal(complete_fail(1, "CA unreachable", 1), 0);
	assert_int_equal(cert_cache_tick(&cache, 1), 2); /* sa1's retry; the last one started */
	assert_int_equal(runner.n, 10);
	assert_string_equal(sa_of_start(8), "sa8");
	assert_string_equal(sa_of_start(9), "sa9");
	assert_int_equal(cache.in_flight, 8);
	assert_int_equal(cert_cache_tick(&cache, 2), 4); /* sa1 due, no slot: sa0's renewal next */
	assert_int_equal(runner.n, 10);
}

static void results_of_forgotten_or_superseded_fetches_are_dropped(void **state)
{
	(void)state;
	struct spiffe_id x = sid("x"), y = sid("y"), z = sid("z");
	int64_t issued0 = tm_counter_value(TM_CERT_ISSUED);

	cert_cache_want(&cache, &x, 0);
	cert_cache_want(&cache, &y, 0);
	cert_cache_want(&cache, &z, 0);
	cert_cache_tick(&cache, 0);
	assert_int_equal(runner.n, 3);
	cert_cache_release(&cache, &x);                /* gone */
	cert_cache_release(&cache, &y);                /* gone, then wanted again */
	cert_cache_want(&cache, &y, 0);
	assert_int_equal(cert_cache_sync(&cache, &y, 1, 0), 0); /* z forgotten by sync */
	assert_int_equal(cache.n, 1);
	assert_int_equal(cache.in_flight, 3); /* the dropped ones still hold their slots */
	cert_cache_tick(&cache, 0);
	assert_int_equal(runner.n, 4);        /* y's new fetch */
	assert_true(runner.tickets[3] > runner.tickets[1]);
	/* The old results come back: each dropped (and freed: LeakSanitizer). */
	assert_int_equal(complete_ok(0, 0, 9, "x1", 0), -ESTALE);
	assert_int_equal(complete_ok(1, 0, 9, "y-old", 0), -ESTALE);
	assert_int_equal(complete_fail(2, "late", 0), -ESTALE);
	assert_int_equal(cache.in_flight, 1);
	const struct cert_entry *e = cert_cache_entry(&cache, &y);
	assert_true(e->in_flight);
	assert_int_equal(e->state, CERT_INITIALIZING);
	assert_int_equal(e->failures, 0);
	assert_int_equal(complete_ok(3, 0, 9, "y-new", 0), 0);
	assert_string_equal(cert_cache_get(&cache, &y, 0)->serial, "y-new");
	assert_int_equal(cache.in_flight, 0);
	assert_int_equal(tm_counter_value(TM_CERT_ISSUED) - issued0, 1);
}

/* As on the synchronous path: the old certificate serves while valid,
 * retries back off 1, 2, 4 s, expiry fails closed, a success resets. */
static void failures_back_off_and_keep_the_old_certificate_while_valid(void **state)
{
	(void)state;
	struct spiffe_id x = sid("x");
	int64_t failures0 = tm_counter_value(TM_CERT_FAILURES), expired0 = tm_counter_value(TM_CERT_EXPIRED);

	cert_cache_want(&cache, &x, 0);
	cert_cache_tick(&cache, 0);
	assert_int_equal(complete_ok(0, 0, 8, "x1", 0), 0);
	const struct cert_entry *e = cert_cache_entry(&cache, &x);
	assert_int_equal(e->refresh_at, 4);
	assert_int_equal(cert_cache_tick(&cache, 4), 8); /* in flight: woken by expiry, not 4 */
	assert_int_equal(complete_fail(1, "CA unreachable", 4), 0);
	assert_int_equal(e->failures, 1);
	assert_string_equal(e->last_error, "CA unreachable");
	assert_int_equal(e->refresh_at, 5);
	assert_string_equal(cert_cache_get(&cache, &x, 4)->serial, "x1");
	assert_int_equal(cert_cache_tick(&cache, 5), 8);
	assert_int_equal(complete_fail(2, NULL, 5), 0);
	assert_string_equal(e->last_error, "certificate fetch failed");
	assert_int_equal(e->refresh_at, 7);
	assert_int_equal(cert_cache_tick(&cache, 7), 8);
	assert_int_equal(complete_fail(3, "CA unreachable", 7), 0);
	assert_int_equal(e->refresh_at, 11);
	assert_string_equal(cert_cache_get(&cache, &x, 7)->serial, "x1");
	assert_int_equal(cert_cache_tick(&cache, 8), 11);
	assert_int_equal(e->state, CERT_UNAVAILABLE);
	assert_null(cert_cache_get(&cache, &x, 8));
	assert_int_equal(tm_counter_value(TM_CERT_EXPIRED) - expired0, 1);
	assert_int_equal(tm_counter_value(TM_CERT_FAILURES) - failures0, 3);
	assert_int_equal(runner.n, 4);
	cert_cache_tick(&cache, 11);
	assert_int_equal(complete_ok(4, 11, 19, "x2", 11), 0);
	assert_int_equal(e->state, CERT_AVAILABLE);
	assert_int_equal(e->failures, 0);
	assert_int_equal(e->backoff_s, CERT_BACKOFF_MIN_S);
	assert_int_equal(e->refresh_at, 15);
	for (int i = 0; i < 12; i++) {
		cert_cache_tick(&cache, e->refresh_at);
		assert_int_equal(complete_fail(runner.n - 1, "CA unreachable", e->refresh_at), 0);
	}
	assert_int_equal(e->backoff_s, CERT_BACKOFF_MAX_S);
}

static void a_fetch_that_cannot_start_counts_as_failed(void **state)
{
	(void)state;
	struct spiffe_id x = sid("x");

	runner.fail = -EAGAIN;
	cert_cache_want(&cache, &x, 0);
	assert_int_equal(cert_cache_tick(&cache, 0), 1);
	const struct cert_entry *e = cert_cache_entry(&cache, &x);
	assert_false(e->in_flight);
	assert_int_equal(e->failures, 1);
	assert_string_equal(e->last_error, "cannot start the certificate fetch: Resource temporarily unavailable");
	assert_int_equal(cache.in_flight, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, fresh_cache, fini_cache)
	const struct CMUnitTest tests[] = {
		T(fetches_start_realtime_then_warmup_then_refresh_by_expiry),
		T(never_more_than_eight_in_flight_the_rest_start_as_slots_free),
		T(results_of_forgotten_or_superseded_fetches_are_dropped),
		T(failures_back_off_and_keep_the_old_certificate_while_valid),
		T(a_fetch_that_cannot_start_counts_as_failed),
	};
#undef T
	return cmocka_run_group_tests(tests, setup, NULL);
}
