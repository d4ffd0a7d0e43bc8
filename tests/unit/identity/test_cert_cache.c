/* The certificate cache with an injected clock and the real local CA as the
 * provider: sharing, half-life rotation, backoff, expiry (fail closed),
 * node authorization, and TLS 1.3 handshakes across rotations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/cert_cache.h"
#include "ztunnel/telemetry.h"
#include "ztunnel/cert_share.h"
#include "ztunnel/log.h"
#include "ztunnel/state-t.h"

static char *root_cert, *root_key;

/* The local CA, with a switch to simulate an outage. */
struct switchable_ca {
	struct ca *ca;
	bool down;
	int calls;
};

static int fetch(void *ctx, const struct spiffe_id *id, int64_t now, int64_t lifetime_s,
		 struct leaf_cert *out, char *err, size_t err_size)
{
	struct switchable_ca *s = ctx;
	s->calls++;
	if (s->down) {
		snprintf(err, err_size, "CA unreachable");
		return -EIO;
	}
	int r = ca_mint(s->ca, id, now, lifetime_s, out, err, err_size);
	if (r == 0 && !(out->roots_pem = strdup(root_cert)))
		r = -ENOMEM;
	return r;
}

static struct switchable_ca sca;

static int setup(void **state)
{
	(void)state;
	char err[256];
	tm_init();
	wolfSSL_Init();
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	assert_int_equal(ca_create_root("cluster.local", 10, &root_cert, &root_key), 0);
	assert_int_equal(ca_load(&sca.ca, root_cert, root_key, (int64_t)time(NULL), err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ca_free(sca.ca);
	free(root_cert);
	free(root_key);
	return 0;
}

static int reset(void **state)
{
	(void)state;
	sca.down = false;
	sca.calls = 0;
	return 0;
}

static struct cert_cache cache_new(int64_t lifetime)
{
	struct cert_cache c;
	cert_cache_init(&c, (struct cert_provider){ "local-ca", fetch, NULL, &sca }, lifetime, 42);
	return c;
}

static struct spiffe_id sid(const char *uri)
{
	struct spiffe_id id;
	assert_int_equal(spiffe_parse(uri, &id), 0);
	return id;
}

static void pods_sharing_an_identity_share_one_certificate(void **state)
{
	(void)state;
	int64_t t = (int64_t)time(NULL);
	struct cert_cache c = cache_new(3600);
	struct spiffe_id web = sid("spiffe://cluster.local/ns/shop/sa/web");
	assert_int_equal(cert_cache_want(&c, &web, t), 0);
	assert_int_equal(cert_cache_want(&c, &web, t), 0);
	assert_null(cert_cache_get(&c, &web, t)); /* not fetched before the tick */
	cert_cache_tick(&c, t);
	assert_int_equal(sca.calls, 1);
	assert_int_equal(c.n, 1);
	assert_non_null(cert_cache_get(&c, &web, t));
	cert_cache_release(&c, &web);
	assert_non_null(cert_cache_get(&c, &web, t)); /* one pod still needs it */
	cert_cache_release(&c, &web);
	assert_null(cert_cache_get(&c, &web, t));     /* forgotten with the last pod */
	assert_int_equal(c.n, 0);
	cert_cache_fini(&c);
}

static void certificates_rotate_at_half_life_with_jitter(void **state)
{
	(void)state;
	int64_t issued0 = tm_counter_value(TM_CERT_ISSUED);
	int64_t t0 = (int64_t)time(NULL);
	struct cert_cache c = cache_new(20);
	struct spiffe_id web = sid("spiffe://cluster.local/ns/shop/sa/web");
	char serials[3][40];

	cert_cache_want(&c, &web, t0);
	int64_t next = cert_cache_tick(&c, t0);
	snprintf(serials[0], sizeof(serials[0]), "%s", cert_cache_get(&c, &web, t0)->serial);
	assert_true(next >= t0 + 9 && next <= t0 + 11); /* 10 s +- 5% of 20 s */
	assert_int_equal(cert_cache_tick(&c, t0 + 5), next);
	assert_string_equal(cert_cache_get(&c, &web, t0 + 5)->serial, serials[0]);
	int64_t t1 = next;
	next = cert_cache_tick(&c, t1);
	snprintf(serials[1], sizeof(serials[1]), "%s", cert_cache_get(&c, &web, t1)->serial);
	assert_string_not_equal(serials[1], serials[0]);
	assert_true(next >= t1 + 9 && next <= t1 + 11);
	cert_cache_tick(&c, next);
	snprintf(serials[2], sizeof(serials[2]), "%s", cert_cache_get(&c, &web, next)->serial);
	assert_string_not_equal(serials[2], serials[1]);
	assert_int_equal(sca.calls, 3);
	assert_int_equal(tm_counter_value(TM_CERT_ISSUED) - issued0, 3);
	cert_cache_fini(&c);
}

static void failed_renewal_backs_off_keeps_the_old_cert_then_fails_closed(void **state)
{
	(void)state;
	int64_t expired0 = tm_counter_value(TM_CERT_EXPIRED), failures0 = tm_counter_value(TM_CERT_FAILURES);
	int64_t t0 = (int64_t)time(NULL);
	struct cert_cache c = cache_new(20);
	struct spiffe_id web = sid("spiffe://cluster.local/ns/shop/sa/web");

	cert_cache_want(&c, &web, t0);
	int64_t next = cert_cache_tick(&c, t0);
	const char *serial = cert_cache_get(&c, &web, t0)->serial;
	char first[40];
	snprintf(first, sizeof(first), "%s", serial);
	sca.down = true;
	next = cert_cache_tick(&c, next); /* renewal fails: retry in 1 s */
	const struct cert_entry *e = cert_cache_entry(&c, &web);
	assert_int_equal(e->failures, 1);
	assert_string_equal(e->last_error, "CA unreachable");
	assert_string_equal(cert_cache_get(&c, &web, next)->serial, first); /* still valid */
	int64_t prev = next;
	next = cert_cache_tick(&c, next);
	assert_int_equal(next - prev, 2); /* backoff doubles */
	while (next < t0 + 20)
		next = cert_cache_tick(&c, next);
	cert_cache_tick(&c, t0 + 20);
	assert_int_equal(e->state, CERT_UNAVAILABLE);
	assert_null(cert_cache_get(&c, &web, t0 + 20));
	assert_int_equal(tm_counter_value(TM_CERT_EXPIRED) - expired0, 1);
	assert_true(tm_counter_value(TM_CERT_FAILURES) - failures0 >= 3);
	sca.down = false;
	next = cert_cache_tick(&c, e->refresh_at);
	assert_int_equal(e->state, CERT_AVAILABLE);
	assert_non_null(cert_cache_get(&c, &web, e->cert.not_before));
	cert_cache_fini(&c);
}

static void backoff_is_capped(void **state)
{
	(void)state;
	int64_t t = (int64_t)time(NULL);
	struct cert_cache c = cache_new(20);
	struct spiffe_id web = sid("spiffe://cluster.local/ns/shop/sa/web");
	sca.down = true;
	cert_cache_want(&c, &web, t);
	for (int i = 0; i < 12; i++)
		t = cert_cache_tick(&c, t);
	const struct cert_entry *e = cert_cache_entry(&c, &web);
	assert_int_equal(e->state, CERT_INITIALIZING);
	assert_int_equal(e->backoff_s, CERT_BACKOFF_MAX_S);
	assert_null(cert_cache_get(&c, &web, t));
	cert_cache_fini(&c);
}

static void sync_keeps_exactly_the_wanted_identities(void **state)
{
	(void)state;
	int64_t t = (int64_t)time(NULL);
	struct cert_cache c = cache_new(3600);
	struct spiffe_id ids[3] = { sid("spiffe://cluster.local/ns/a/sa/x"), sid("spiffe://cluster.local/ns/a/sa/x"),
				    sid("spiffe://cluster.local/ns/a/sa/y") };
	assert_int_equal(cert_cache_sync(&c, ids, 3, t), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(cert_cache_entry(&c, &ids[0])->refs, 2);
	assert_int_equal(cert_cache_entry(&c, &ids[2])->refs, 1);
	cert_cache_tick(&c, t);
	assert_int_equal(cert_cache_sync(&c, ids + 2, 1, t), 0); /* x's pods are gone */
	assert_int_equal(c.n, 1);
	assert_null(cert_cache_get(&c, &ids[0], t));
	assert_non_null(cert_cache_get(&c, &ids[2], t)); /* y kept, not re-issued */
	assert_int_equal(sca.calls, 2);
	assert_int_equal(cert_cache_sync(&c, NULL, 0, t), 0);
	assert_int_equal(c.n, 0);
	cert_cache_fini(&c);
}

static void only_pods_of_this_node_get_identities(void **state)
{
	(void)state;
	struct cert_cache c = cache_new(60);
	struct zt_workload here = { .name = "a", .namespace = "shop", .node = "n1", .service_account = "web" };
	struct zt_workload there = { .name = "b", .namespace = "shop", .node = "n2", .service_account = "db" };
	struct zt_workload unscheduled = { .name = "c", .namespace = "shop", .service_account = "x" };
	assert_int_equal(cert_cache_want_workload(&c, &there, "n1", "cluster.local", 0), -EPERM);
	assert_int_equal(cert_cache_want_workload(&c, &unscheduled, "n1", "cluster.local", 0), -EPERM);
	assert_int_equal(cert_cache_want_workload(&c, &here, "n1", "cluster.local", 0), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.entries[0].uri, "spiffe://cluster.local/ns/shop/sa/web");
	cert_cache_fini(&c);
}

#include "tls_pair.h"

/* Real clock: 4 s certificates rotate every 2 s; for over two rotations
 * every new handshake (mutual, verified) succeeds and a session made
 * before the first rotation keeps working. */
static void handshakes_succeed_across_rotations_and_old_sessions_survive(void **state)
{
	(void)state;
	int64_t issued0 = tm_counter_value(TM_CERT_ISSUED);
	struct cert_cache c = cache_new(4);
	struct spiffe_id a = sid("spiffe://cluster.local/ns/shop/sa/web");
	struct spiffe_id b = sid("spiffe://cluster.local/ns/shop/sa/db");
	struct tls_pair first, p;
	int handshakes = 0;
	int64_t start = (int64_t)time(NULL);

	cert_cache_want(&c, &a, start);
	cert_cache_want(&c, &b, start);
	cert_cache_tick(&c, start);
	assert_int_equal(tls_pair_handshake(&first, root_cert, cert_cache_get(&c, &a, start), root_cert,
					    cert_cache_get(&c, &b, start)), 0);
	while (tm_counter_value(TM_CERT_ISSUED) - issued0 < 6 && time(NULL) < start + 10) {
		int64_t now = (int64_t)time(NULL);
		cert_cache_tick(&c, now);
		const struct leaf_cert *ca_ = cert_cache_get(&c, &a, now), *cb = cert_cache_get(&c, &b, now);
		assert_non_null(ca_);
		assert_non_null(cb);
		assert_int_equal(tls_pair_handshake(&p, root_cert, ca_, root_cert, cb), 0);
		tls_pair_roundtrip(&p);
		tls_pair_free(&p);
		handshakes++;
		usleep(200 * 1000);
	}
	assert_true(tm_counter_value(TM_CERT_ISSUED) - issued0 >= 6); /* two rotations of both identities */
	assert_true(handshakes > 10);
	tls_pair_roundtrip(&first);
	tls_pair_free(&first);
	cert_cache_fini(&c);
}

/* Workers see a new generation only when the set of usable certificates
 * changed, get copies with the trust bundle, and lose an expired one. */
static void the_data_path_sees_certificates_change_and_expire(void **state)
{
	(void)state;
	struct cert_cache c;
	struct cert_share sh;
	struct spiffe_id id;
	struct leaf_cert got;
	const char *uri = "spiffe://cluster.local/ns/a/sa/b";
	int64_t now = (int64_t)time(NULL);

	sca.down = false;
	cert_cache_init(&c, (struct cert_provider){ "test", fetch, NULL, &sca }, 100, 1);
	cert_share_init(&sh);
	assert_int_equal(spiffe_parse(uri, &id), 0);
	assert_int_equal(cert_cache_want(&c, &id, now), 0);
	assert_int_equal(cert_share_publish(&sh, &c, now), 0);
	uint64_t g0 = cert_share_generation(&sh);
	assert_int_equal(cert_share_get(&sh, uri, &got), -ENOENT);
	cert_cache_tick(&c, now);
	assert_int_equal(cert_share_publish(&sh, &c, now), 0);
	assert_int_equal(cert_share_generation(&sh), g0 + 1);
	assert_int_equal(cert_share_get(&sh, uri, &got), 0);
	assert_string_equal(got.serial, cert_cache_entry(&c, &id)->cert.serial);
	assert_non_null(strstr(got.roots_pem, "BEGIN CERTIFICATE"));
	assert_non_null(got.key_pem);
	leaf_cert_free(&got);
	assert_int_equal(cert_share_publish(&sh, &c, now + 1), 0);
	assert_int_equal(cert_share_generation(&sh), g0 + 1); /* nothing changed */
	sca.down = true; /* no renewal: the certificate runs out */
	cert_cache_tick(&c, now + 101);
	assert_int_equal(cert_share_publish(&sh, &c, now + 101), 0);
	assert_int_equal(cert_share_generation(&sh), g0 + 2);
	assert_int_equal(cert_share_get(&sh, uri, &got), -ENOENT);
	sca.down = false;
	cert_share_fini(&sh);
	cert_cache_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_data_path_sees_certificates_change_and_expire),
		cmocka_unit_test_setup(pods_sharing_an_identity_share_one_certificate, reset),
		cmocka_unit_test_setup(certificates_rotate_at_half_life_with_jitter, reset),
		cmocka_unit_test_setup(failed_renewal_backs_off_keeps_the_old_cert_then_fails_closed, reset),
		cmocka_unit_test_setup(backoff_is_capped, reset),
		cmocka_unit_test_setup(sync_keeps_exactly_the_wanted_identities, reset),
		cmocka_unit_test_setup(only_pods_of_this_node_get_identities, reset),
		cmocka_unit_test_setup(handshakes_succeed_across_rotations_and_old_sessions_survive, reset),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
