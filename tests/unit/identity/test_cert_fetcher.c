/* The fetch threads with a provider that blocks until the test lets it
 * finish: 10 identities wanted, 8 fetches run at once, the others start
 * only once results are delivered (the cache's cap, not the pool's), and
 * results come back through the eventfd. Also run under ThreadSanitizer
 * (tools/test). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/cert_fetcher.h"
#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

/* Fetches wait for a permit; the test hands them out. */
static struct gate {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int running, max_running, calls, permits;
} gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0 };

static int blocking_fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
			  struct leaf_cert *out, char *err, size_t err_size)
{
	struct gate *g = ctx;

	pthread_mutex_lock(&g->lock);
	g->calls++;
	if (++g->running > g->max_running)
		g->max_running = g->running;
	pthread_cond_broadcast(&g->changed);
	while (!g->permits)
		pthread_cond_wait(&g->changed, &g->lock);
	g->permits--;
	g->running--;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
	if (!strcmp(id->sa, "refused")) {
		snprintf(err, err_size, "the CA refused");
		return -EACCES;
	}
	*out = (struct leaf_cert){ strdup("cert"), strdup("chain"), strdup("key"), strdup("roots"), now - 1,
				   now + lifetime_s, "" };
	snprintf(out->serial, sizeof(out->serial), "%s", id->sa);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	tm_init();
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	return 0;
}

static int reset_gate(void **state)
{
	(void)state;
	pthread_mutex_lock(&gate.lock);
	gate.calls = gate.max_running = gate.permits = 0;
	pthread_mutex_unlock(&gate.lock);
	return 0;
}

static void permit(int n)
{
	pthread_mutex_lock(&gate.lock);
	gate.permits += n;
	pthread_cond_broadcast(&gate.changed);
	pthread_mutex_unlock(&gate.lock);
}

/* Waits (5 s at most) until `running` fetches block in the provider, then
 * returns how many were ever called. */
static int wait_running(int running)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&gate.lock);
	while (gate.running != running && pthread_cond_timedwait(&gate.changed, &gate.lock, &until) == 0)
		;
	int r = gate.running, calls = gate.calls;
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(r, running);
	return calls;
}

static int stat_calls(void)
{
	pthread_mutex_lock(&gate.lock);
	int calls = gate.calls;
	pthread_mutex_unlock(&gate.lock);
	return calls;
}

/* Delivers until n results arrived, each wake-up through the fd. */
/* Results are delivered at the test's own clock: a second boundary crossed
 * between want and delivery must not move the retry time asserted. */
static void deliver(struct cert_fetcher *f, struct cert_cache *c, int n, int64_t now)
{
	struct pollfd p = { cert_fetcher_fd(f), POLLIN, 0 };

	while (n > 0) {
		assert_int_equal(poll(&p, 1, 5000), 1);
		int got = cert_fetcher_deliver(f, c, now);
		assert_true(got >= 0 && got <= n);
		n -= got;
	}
	assert_int_equal(poll(&p, 1, 0), 0); /* all taken: the fd is quiet */
}

static struct spiffe_id sid(int i)
{
	struct spiffe_id id = { "cluster.local", "shop", "" };
	snprintf(id.sa, sizeof(id.sa), i < 0 ? "refused" : "sa%d", i);
	return id;
}

static void ten_identities_fetch_eight_at_a_time_results_through_the_fd(void **state)
{
	(void)state;
	struct cert_provider p = { "ca", blocking_fetch, NULL, &gate };
	struct cert_fetcher *f;
	struct cert_cache c;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(cert_fetcher_start(&f, p), 0);
	cert_cache_init(&c, p, 3600, 1);
	cert_cache_set_runner(&c, cert_fetcher_runner(f));
	for (int i = 0; i < 10; i++) {
		struct spiffe_id id = sid(i);
		assert_int_equal(cert_cache_want(&c, &id, now), 0);
	}
	assert_int_equal(cert_cache_tick(&c, now), INT64_MAX);
	assert_int_equal(wait_running(8), 8);
	permit(1);
	assert_int_equal(wait_running(7), 8);
	/* A thread is free, but the cache has not started a ninth fetch: its
	 * slot comes free only with the delivery. */
	usleep(50 * 1000);
	assert_int_equal(stat_calls(), 8);
	deliver(f, &c, 1, now);
	assert_int_equal(c.in_flight, 7);
	cert_cache_tick(&c, now);
	assert_int_equal(wait_running(8), 9);
	permit(2);
	deliver(f, &c, 2, now);
	cert_cache_tick(&c, now);
	assert_int_equal(wait_running(7), 10); /* the tenth, no more */
	permit(7);
	deliver(f, &c, 7, now);
	assert_true(cert_cache_all_available(&c));
	for (int i = 0; i < 10; i++) {
		struct spiffe_id id = sid(i);
		assert_string_equal(cert_cache_entry(&c, &id)->cert.serial, id.sa);
	}
	pthread_mutex_lock(&gate.lock);
	assert_int_equal(gate.max_running, CERT_MAX_IN_FLIGHT);
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(c.in_flight, 0);
	cert_fetcher_stop(f);
	cert_cache_fini(&c);
}

/* A refusal lands as a failed fetch (error kept, retry later); a result
 * for an identity forgotten meanwhile, and results never delivered at
 * stop, are freed (LeakSanitizer in the test build). */
static void failures_and_undelivered_results_are_handled_at_stop(void **state)
{
	(void)state;
	struct cert_provider p = { "ca", blocking_fetch, NULL, &gate };
	struct cert_fetcher *f;
	struct cert_cache c;
	struct spiffe_id refused = sid(-1), gone = sid(1), late = sid(2);
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(cert_fetcher_start(&f, p), 0);
	cert_cache_init(&c, p, 3600, 1);
	cert_cache_set_runner(&c, cert_fetcher_runner(f));
	cert_cache_want(&c, &refused, now);
	cert_cache_want(&c, &gone, now);
	cert_cache_tick(&c, now);
	wait_running(2);
	cert_cache_release(&c, &gone);
	permit(2);
	deliver(f, &c, 2, now);
	const struct cert_entry *e = cert_cache_entry(&c, &refused);
	assert_int_equal(e->state, CERT_INITIALIZING);
	assert_int_equal(e->failures, 1);
	assert_string_equal(e->last_error, "the CA refused");
	assert_int_equal(e->refresh_at, now + 1);
	assert_null(cert_cache_entry(&c, &gone));
	assert_int_equal(c.in_flight, 0);
	cert_cache_want(&c, &late, now);
	cert_cache_tick(&c, now);
	wait_running(1);
	permit(1);
	struct pollfd pfd = { cert_fetcher_fd(f), POLLIN, 0 };
	assert_int_equal(poll(&pfd, 1, 5000), 1);
	cert_fetcher_stop(f); /* late's certificate never delivered */
	cert_cache_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(ten_identities_fetch_eight_at_a_time_results_through_the_fd, reset_gate),
		cmocka_unit_test_setup(failures_and_undelivered_results_are_handled_at_stop, reset_gate),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
