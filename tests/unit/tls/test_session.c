/* Sans-IO TLS sessions driven in memory: mutual TLS 1.3 with HBONE's
 * parameters, SPIFFE checks on both sides, and every refusal of SPEC.md
 * §2.1 (wrong SAN, untrusted CA, foreign trust domain). */
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
#include <time.h>

#include "ztunnel/log.h"
#include "ztunnel/tls.h"

static char *r1_cert, *r1_key, *r2_cert, *r2_key, *r3_cert, *r3_key;
static struct ca *ca1, *ca2, *ca3;

static struct ca *load(const char *cert, const char *key)
{
	struct ca *ca;
	char err[256];
	assert_int_equal(ca_load(&ca, cert, key, (int64_t)time(NULL), err, sizeof(err)), 0);
	return ca;
}

static int setup(void **state)
{
	(void)state;
	wolfSSL_Init();
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	assert_int_equal(ca_create_root("cluster.local", 5, &r1_cert, &r1_key), 0);
	assert_int_equal(ca_create_root("cluster.local", 5, &r2_cert, &r2_key), 0);
	assert_int_equal(ca_create_root("other.local", 5, &r3_cert, &r3_key), 0);
	ca1 = load(r1_cert, r1_key);
	ca2 = load(r2_cert, r2_key);
	ca3 = load(r3_cert, r3_key);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ca_free(ca1);
	ca_free(ca2);
	ca_free(ca3);
	free(r1_cert);
	free(r1_key);
	free(r2_cert);
	free(r2_key);
	free(r3_cert);
	free(r3_key);
	return 0;
}

static struct spiffe_id sid(const char *uri)
{
	struct spiffe_id id;
	assert_int_equal(spiffe_parse(uri, &id), 0);
	return id;
}

static struct leaf_cert mint(struct ca *ca, const char *uri)
{
	struct spiffe_id id = sid(uri);
	struct leaf_cert l;
	char err[256];
	assert_int_equal(ca_mint(ca, &id, (int64_t)time(NULL), 3600, &l, err, sizeof(err)), 0);
	return l;
}

struct end {
	struct tls_ctx *ctx;
	struct tls_session *s;
	struct leaf_cert cert;
};

static void end_init(struct end *e, bool server, struct leaf_cert cert, const char *bundle,
		     const struct spiffe_id *expected, const char *td)
{
	char err[256];
	e->cert = cert;
	assert_int_equal(tls_ctx_new(&e->ctx, server, &e->cert, bundle, err, sizeof(err)), 0);
	assert_int_equal(tls_session_new(&e->s, e->ctx, expected, expected ? 1 : 0, td), 0);
}

static void end_free(struct end *e)
{
	tls_session_free(e->s);
	tls_ctx_free(e->ctx);
	leaf_cert_free(&e->cert);
}

/* Moves pending output of a into b. */
static void move(struct end *a, struct end *b)
{
	const void *data;
	size_t n = tls_output(a->s, &data);
	if (n) {
		assert_int_equal(tls_feed(b->s, data, n), 0);
		tls_output_consumed(a->s, n);
	}
}

/* Everything e can decrypt now, appended at dst + *got. */
static void read_all(struct end *e, uint8_t *dst, size_t total, size_t *got)
{
	ssize_t r;
	while ((r = tls_read(e->s, dst + *got, total - *got)) > 0)
		*got += (size_t)r;
}

/* Every byte came through in order; frees what a data test used. */
static void expect_carried(uint8_t *src, uint8_t *dst, size_t got, size_t total, struct end *c, struct end *s)
{
	assert_int_equal(got, total);
	assert_memory_equal(src, dst, total);
	free(src);
	free(dst);
	end_free(c);
	end_free(s);
}

/* Drives both handshakes; returns client and server results. */
static void handshake(struct end *c, struct end *s, int *rc, int *rs)
{
	*rc = *rs = 0;
	for (int i = 0; i < 20 && (*rc == 0 || *rs == 0); i++) {
		if (*rc == 0)
			*rc = tls_handshake(c->s);
		move(c, s);
		if (*rs == 0)
			*rs = tls_handshake(s->s);
		move(s, c);
		if (*rc < 0 || *rs < 0)
			break;
	}
}

static void mutual_tls13_with_h2_aes256_and_both_identities(void **state)
{
	(void)state;
	struct spiffe_id want = sid("spiffe://cluster.local/ns/shop/sa/web");
	struct end c, s;
	int rc, rs;
	end_init(&c, false, mint(ca1, "spiffe://cluster.local/ns/shop/sa/client"), r1_cert, &want, NULL);
	end_init(&s, true, mint(ca1, "spiffe://cluster.local/ns/shop/sa/web"), r1_cert, NULL, "cluster.local");
	handshake(&c, &s, &rc, &rs);
	assert_int_equal(rc, 1);
	assert_int_equal(rs, 1);
	assert_string_equal(tls_version(c.s), "TLSv1.3");
	assert_string_equal(tls_cipher(c.s), "TLS13-AES256-GCM-SHA384");
	assert_string_equal(tls_alpn(c.s), "h2");
	assert_string_equal(tls_alpn(s.s), "h2");
	assert_string_equal(tls_peer_identity(c.s)->sa, "web");
	assert_string_equal(tls_peer_identity(s.s)->sa, "client");

	/* 1 MiB each way through records, in and out of memory. */
	size_t total = 1 << 20, got = 0;
	uint8_t *src = malloc(total), *dst = malloc(total);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(i * 7);
	for (size_t off = 0; off < total;) {
		ssize_t w = tls_write(c.s, src + off, total - off > 65536 ? 65536 : total - off);
		assert_true(w > 0);
		off += (size_t)w;
		move(&c, &s);
		read_all(&s, dst, total, &got);
	}
	expect_carried(src, dst, got, total, &c, &s);
}

/* As move, received in place (tls_input_space) in pieces of at most want
 * bytes, as an asynchronous receive would. */
static void move_in_place(struct end *a, struct end *b, size_t want)
{
	const void *data;
	size_t n = tls_output(a->s, &data), room;

	for (size_t off = 0; off < n;) {
		uint8_t *at = tls_input_space(b->s, want, &room);
		assert_non_null(at);
		assert_true(room > 0);
		size_t k = n - off < room ? n - off : room;
		k = k < want ? k : want;
		memcpy(at, (const uint8_t *)data + off, k);
		tls_input_commit(b->s, k);
		off += k;
	}
	tls_output_consumed(a->s, n);
}

/* Receives straight into the session: a handshake through 2 KiB pieces
 * (the server's pre-handshake size), then 512 KiB through 64 KiB pieces
 * read as they come, so the space is reused with records left over. */
static void input_received_in_place_reassembles_records(void **state)
{
	(void)state;
	struct spiffe_id want = sid("spiffe://cluster.local/ns/shop/sa/web");
	struct end c, s;
	int rc = 0, rs = 0;
	end_init(&c, false, mint(ca1, "spiffe://cluster.local/ns/shop/sa/client"), r1_cert, &want, NULL);
	end_init(&s, true, mint(ca1, "spiffe://cluster.local/ns/shop/sa/web"), r1_cert, NULL, "cluster.local");
	for (int i = 0; i < 20 && (rc == 0 || rs == 0); i++) {
		if (rc == 0)
			rc = tls_handshake(c.s);
		move_in_place(&c, &s, 2048);
		if (rs == 0)
			rs = tls_handshake(s.s);
		move_in_place(&s, &c, 2048);
	}
	assert_int_equal(rc, 1);
	assert_int_equal(rs, 1);
	size_t total = 512 << 10, got = 0;
	uint8_t *src = malloc(total), *dst = malloc(total);
	for (size_t i = 0; i < total; i++)
		src[i] = (uint8_t)(i * 13);
	for (size_t off = 0; off < total;) {
		ssize_t w = tls_write(c.s, src + off, total - off > 40000 ? 40000 : total - off);
		assert_true(w > 0);
		off += (size_t)w;
		const void *data;
		size_t n = tls_output(c.s, &data), room;
		/* Half now, read what decrypts, the rest later: a record split
		 * across two receives. */
		uint8_t *at = tls_input_space(s.s, 65536, &room);
		size_t k = n / 2 < room ? n / 2 : room;
		memcpy(at, data, k);
		tls_input_commit(s.s, k);
		tls_output_consumed(c.s, k);
		read_all(&s, dst, total, &got);
		move_in_place(&c, &s, 65536);
		read_all(&s, dst, total, &got);
	}
	expect_carried(src, dst, got, total, &c, &s);
}

static void wrong_san_is_refused_by_the_client(void **state)
{
	(void)state;
	struct spiffe_id want = sid("spiffe://cluster.local/ns/shop/sa/web");
	struct end c, s;
	int rc, rs;
	end_init(&c, false, mint(ca1, "spiffe://cluster.local/ns/shop/sa/client"), r1_cert, &want, NULL);
	end_init(&s, true, mint(ca1, "spiffe://cluster.local/ns/shop/sa/impostor"), r1_cert, NULL, "cluster.local");
	handshake(&c, &s, &rc, &rs);
	assert_int_equal(rc, -EACCES);
	assert_non_null(strstr(tls_error(c.s), "peer did not present the expected SAN"));
	assert_non_null(strstr(tls_error(c.s), "sa/impostor"));
	assert_null(tls_peer_identity(c.s));
	end_free(&c);
	end_free(&s);
}

static void untrusted_ca_fails_the_handshake(void **state)
{
	(void)state;
	struct spiffe_id want = sid("spiffe://cluster.local/ns/shop/sa/web");
	struct end c, s;
	int rc, rs;
	end_init(&c, false, mint(ca1, "spiffe://cluster.local/ns/shop/sa/client"), r1_cert, &want, NULL);
	end_init(&s, true, mint(ca2, "spiffe://cluster.local/ns/shop/sa/web"), r1_cert, NULL, "cluster.local");
	handshake(&c, &s, &rc, &rs);
	assert_true(rc < 0);
	/* The operator sees the side, the phase and wolfSSL's own number and
	 * text: ASN_NO_SIGNER_E (-188). */
	assert_non_null(strstr(tls_error(c.s), "handshake failed (client side): wolfSSL error -188: "));
	assert_non_null(strstr(tls_error(c.s), "certificate verify failed"));
	end_free(&c);
	end_free(&s);
}

static void client_of_another_trust_domain_is_refused_by_the_server(void **state)
{
	(void)state;
	struct spiffe_id want = sid("spiffe://cluster.local/ns/shop/sa/web");
	char *both;
	assert_true(asprintf(&both, "%s%s", r1_cert, r3_cert) > 0);
	struct end c, s;
	int rc, rs;
	end_init(&c, false, mint(ca3, "spiffe://other.local/ns/shop/sa/client"), both, &want, NULL);
	end_init(&s, true, mint(ca1, "spiffe://cluster.local/ns/shop/sa/web"), both, NULL, "cluster.local");
	handshake(&c, &s, &rc, &rs);
	assert_int_equal(rs, -EACCES);
	assert_non_null(strstr(tls_error(s.s), "not in this trust domain"));
	end_free(&c);
	end_free(&s);
	free(both);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mutual_tls13_with_h2_aes256_and_both_identities),
		cmocka_unit_test(input_received_in_place_reassembles_records),
		cmocka_unit_test(wrong_san_is_refused_by_the_client),
		cmocka_unit_test(untrusted_ca_fails_the_handshake),
		cmocka_unit_test(client_of_another_trust_domain_is_refused_by_the_server),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
