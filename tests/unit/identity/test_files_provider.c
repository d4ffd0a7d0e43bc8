/* The files provider: a complete set is served; a half-written, foreign,
 * mismatched or expired one is refused with a reason, and the cache keeps
 * serving the previous certificate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/cert_cache.h"
#include "ztunnel/files_provider.h"
#include "ztunnel/log.h"

static char *root_cert, *root_key, *other_cert, *other_key;
static struct ca *ca;
static struct files_provider fp;

static void put(const char *sa, const char *name, const char *text, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/shop/%s", fp.root, sa);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/shop/%s/%s", fp.root, sa, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* Writes a complete set for sa issued for `who`, valid [now, now + life]. */
static void issue(const char *sa, const char *who, int64_t now, int64_t life, const char *roots)
{
	struct spiffe_id id;
	struct leaf_cert l;
	char err[256];
	assert_int_equal(spiffe_parse(who, &id), 0);
	assert_int_equal(ca_mint(ca, &id, now, life, &l, err, sizeof(err)), 0);
	put(sa, "cert-chain.pem", l.chain_pem, strlen(l.chain_pem));
	put(sa, "key.pem", l.key_pem, strlen(l.key_pem));
	put(sa, "root-cert.pem", roots, strlen(roots));
	leaf_cert_free(&l);
}

static int setup(void **state)
{
	(void)state;
	char err[256];
	wolfSSL_Init();
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	assert_int_equal(ca_create_root("cluster.local", 10, &root_cert, &root_key), 0);
	assert_int_equal(ca_create_root("cluster.local", 10, &other_cert, &other_key), 0);
	assert_int_equal(ca_load(&ca, root_cert, root_key, (int64_t)time(NULL), err, sizeof(err)), 0);
	snprintf(fp.root, sizeof(fp.root), "/tmp/zt-files-XXXXXX");
	assert_non_null(mkdtemp(fp.root));
	char shop[PATH_MAX];
	snprintf(shop, sizeof(shop), "%s/shop", fp.root);
	mkdir(shop, 0700);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fp.root);
	assert_int_equal(system(cmd), 0);
	ca_free(ca);
	free(root_cert);
	free(root_key);
	free(other_cert);
	free(other_key);
	return 0;
}

static int fetch(const char *uri, int64_t now, char *err, size_t size)
{
	struct spiffe_id id;
	struct leaf_cert l;
	assert_int_equal(spiffe_parse(uri, &id), 0);
	int r = files_provider_fetch(&fp, &id, now, 0, &l, err, size);
	leaf_cert_free(&l);
	return r;
}

static void a_complete_set_is_served_and_bad_ones_refused(void **state)
{
	(void)state;
	int64_t now = (int64_t)time(NULL);
	char err[512];

	issue("web", "spiffe://cluster.local/ns/shop/sa/web", now, 3600, root_cert);
	assert_int_equal(fetch("spiffe://cluster.local/ns/shop/sa/web", now, err, sizeof(err)), 0);

	issue("db", "spiffe://cluster.local/ns/shop/sa/web", now, 3600, root_cert);
	assert_int_equal(fetch("spiffe://cluster.local/ns/shop/sa/db", now, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expected spiffe://cluster.local/ns/shop/sa/db"));

	issue("api", "spiffe://cluster.local/ns/shop/sa/api", now, 3600, other_cert);
	assert_int_equal(fetch("spiffe://cluster.local/ns/shop/sa/api", now, err, sizeof(err)), -EKEYREJECTED);

	issue("old", "spiffe://cluster.local/ns/shop/sa/old", now - 7200, 3600, root_cert);
	assert_int_equal(fetch("spiffe://cluster.local/ns/shop/sa/old", now, err, sizeof(err)), -EKEYREJECTED);

	assert_int_equal(fetch("spiffe://cluster.local/ns/shop/sa/none", now, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot read"));
}

static void a_half_written_update_keeps_the_previous_certificate(void **state)
{
	(void)state;
	int64_t now = (int64_t)time(NULL);
	struct cert_cache c;
	struct spiffe_id id;
	cert_cache_init(&c, (struct cert_provider){ "files", files_provider_fetch, files_provider_changed, &fp }, 0, 1);
	assert_int_equal(spiffe_parse("spiffe://cluster.local/ns/shop/sa/rot", &id), 0);
	issue("rot", "spiffe://cluster.local/ns/shop/sa/rot", now, 3600, root_cert);
	cert_cache_want(&c, &id, now);
	int64_t next = cert_cache_tick(&c, now);
	char serial[40];
	snprintf(serial, sizeof(serial), "%s", cert_cache_get(&c, &id, now)->serial);

	/* The issuer rewrites the set; we look while only half of key.pem is there. */
	issue("rot", "spiffe://cluster.local/ns/shop/sa/rot", now, 3600, root_cert);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/shop/rot/key.pem", fp.root);
	assert_int_equal(truncate(path, 100), 0);
	cert_cache_tick(&c, next);
	const struct cert_entry *e = cert_cache_entry(&c, &id);
	assert_int_equal(e->failures, 1);
	assert_non_null(cert_cache_get(&c, &id, next));
	assert_string_equal(cert_cache_get(&c, &id, next)->serial, serial); /* old one kept */

	issue("rot", "spiffe://cluster.local/ns/shop/sa/rot", now, 3600, root_cert); /* complete */
	int64_t t = e->refresh_at;
	next = cert_cache_tick(&c, t);
	assert_string_not_equal(cert_cache_get(&c, &id, t)->serial, serial);

	/* The issuer renews early: noticed at the next poll, long before
	 * half-life. */
	char renewed[40];
	snprintf(renewed, sizeof(renewed), "%s", cert_cache_get(&c, &id, t)->serial);
	assert_true(next <= t + CERT_POLL_S);
	issue("rot", "spiffe://cluster.local/ns/shop/sa/rot", now, 3600, root_cert);
	cert_cache_tick(&c, t + 5);
	assert_string_not_equal(cert_cache_get(&c, &id, t + 5)->serial, renewed);

	/* Past half-life with the issuer not renewing yet: the same files are
	 * re-read now and then, never in a tight loop. */
	int64_t late = now + 2400;
	next = cert_cache_tick(&c, late);
	assert_true(next > late);
	assert_true(next <= late + 60);
	cert_cache_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_complete_set_is_served_and_bad_ones_refused),
		cmocka_unit_test(a_half_written_update_keeps_the_previous_certificate),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
