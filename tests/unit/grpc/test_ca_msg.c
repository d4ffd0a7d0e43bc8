/* The certificate RPC's messages in gRPC framing: round trips, and every
 * way a peer's bytes can be wrong (truncated, compressed, oversized, not
 * the message, an empty chain). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ztunnel/grpc.h"
#include "istio_ca.pb-c.h"

static const char *csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
static const char *id = "spiffe://cluster.local/ns/shop/sa/web";

static void request_round_trip_carries_the_impersonated_identity(void **state)
{
	(void)state;
	struct ca_request in = { (char *)csr, 86400, (char *)id }, out;
	uint8_t *buf;
	size_t len;

	assert_int_equal(grpc_ca_request_encode(&in, &buf, &len), 0);
	assert_int_equal(buf[0], 0); /* not compressed */
	assert_int_equal(((size_t)buf[1] << 24 | buf[2] << 16 | buf[3] << 8 | buf[4]) + 5, len);
	assert_int_equal(grpc_frame_complete(buf, len, GRPC_MESSAGE_MAX), (long)len);
	assert_int_equal(grpc_frame_complete(buf, len - 1, GRPC_MESSAGE_MAX), 0); /* wants more */
	assert_int_equal(grpc_ca_request_decode(buf, len, &out), 0);
	assert_string_equal(out.csr, csr);
	assert_int_equal(out.validity_s, 86400);
	assert_string_equal(out.impersonated, id);
	grpc_ca_request_free(&out);
	free(buf);

	struct ca_request own = { (char *)csr, 3600, NULL };
	assert_int_equal(grpc_ca_request_encode(&own, &buf, &len), 0);
	assert_int_equal(grpc_ca_request_decode(buf, len, &out), 0);
	assert_null(out.impersonated); /* a pod asking for itself */
	grpc_ca_request_free(&out);
	free(buf);
}

static void response_round_trip_keeps_the_chain_in_order(void **state)
{
	(void)state;
	char *chain[] = { "leaf", "intermediate", "root-a\nroot-b" };
	struct ca_response in = { chain, 3 }, out;
	uint8_t *buf;
	size_t len;

	assert_int_equal(grpc_ca_response_encode(&in, &buf, &len), 0);
	assert_int_equal(grpc_ca_response_decode(buf, len, &out), 0);
	assert_int_equal(out.n, 3);
	assert_string_equal(out.chain[0], "leaf");
	assert_string_equal(out.chain[2], "root-a\nroot-b");
	grpc_ca_response_free(&out);
	free(buf);
}

/* ImpersonatedIdentity that is not a string must not read as "nobody
 * else" (the caller's own identity): the request is refused. */
static void impersonation_that_is_not_a_string_is_refused(void **state)
{
	(void)state;
	Istio__V1__Auth__IstioCertificateRequest r = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Istio__V1__Auth__Struct md = ISTIO__V1__AUTH__STRUCT__INIT;
	Istio__V1__Auth__Struct__FieldsEntry entry = ISTIO__V1__AUTH__STRUCT__FIELDS_ENTRY__INIT;
	Istio__V1__Auth__Struct__FieldsEntry *entries[1] = { &entry };
	Istio__V1__Auth__Value v = ISTIO__V1__AUTH__VALUE__INIT;
	struct ca_request req;
	uint8_t buf[512];

	r.csr = (char *)"-----BEGIN CERTIFICATE REQUEST-----";
	v.kind_case = ISTIO__V1__AUTH__VALUE__KIND_NUMBER_VALUE;
	v.number_value = 1;
	entry.key = (char *)"ImpersonatedIdentity";
	entry.value = &v;
	md.n_fields = 1;
	md.fields = entries;
	r.metadata = &md;
	size_t n = protobuf_c_message_pack(&r.base, buf + 5);
	buf[0] = 0;
	buf[1] = (uint8_t)(n >> 24);
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 8);
	buf[4] = (uint8_t)n;
	assert_int_equal(grpc_ca_request_decode(buf, n + 5, &req), -EPROTO);
	v.kind_case = ISTIO__V1__AUTH__VALUE__KIND_STRING_VALUE;
	v.string_value = (char *)"spiffe://cluster.local/ns/a/sa/b";
	n = protobuf_c_message_pack(&r.base, buf + 5);
	buf[4] = (uint8_t)n;
	assert_int_equal(grpc_ca_request_decode(buf, n + 5, &req), 0);
	assert_string_equal(req.impersonated, "spiffe://cluster.local/ns/a/sa/b");
	grpc_ca_request_free(&req);
}

static void bodies_stop_at_their_cap(void **state)
{
	(void)state;
	struct grpc_body b = { 0 };
	assert_int_equal(grpc_body_append(&b, (const uint8_t *)"abcd", 4, 6), 0);
	assert_int_equal(grpc_body_append(&b, (const uint8_t *)"ef", 2, 6), 0);
	assert_false(b.too_big);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.p, "abcdef", 6);
	assert_int_equal(grpc_body_append(&b, (const uint8_t *)"g", 1, 6), 0);
	assert_true(b.too_big);
	assert_int_equal(b.len, 6); /* nothing kept beyond the cap, even later */
	assert_int_equal(grpc_body_append(&b, (const uint8_t *)"", 0, 6), 0);
	assert_true(b.too_big);
	free(b.p);
}

static void bad_frames_are_refused(void **state)
{
	(void)state;
	struct ca_response out;
	struct ca_request req;
	uint8_t *buf;
	size_t len;
	char *chain[] = { "leaf", "" };
	struct ca_response empty_entry = { chain, 2 }, none = { NULL, 0 };

	/* compressed flag: never negotiated */
	uint8_t compressed[] = { 1, 0, 0, 0, 0 };
	assert_int_equal(grpc_frame_complete(compressed, sizeof(compressed), GRPC_MESSAGE_MAX), -EPROTO);
	assert_int_equal(grpc_ca_response_decode(compressed, sizeof(compressed), &out), -EPROTO);
	/* announces more than we take */
	uint8_t huge[] = { 0, 0x7f, 0xff, 0xff, 0xff };
	assert_int_equal(grpc_frame_complete(huge, sizeof(huge), GRPC_MESSAGE_MAX), -EMSGSIZE);
	assert_int_equal(grpc_ca_request_decode(huge, sizeof(huge), &req), -EMSGSIZE);
	/* truncated, and trailing bytes after the frame */
	assert_int_equal(grpc_ca_response_encode(&(struct ca_response){ chain, 1 }, &buf, &len), 0);
	assert_int_equal(grpc_ca_response_decode(buf, len - 1, &out), -EPROTO);
	uint8_t *longer = calloc(1, len + 1);
	memcpy(longer, buf, len);
	assert_int_equal(grpc_ca_response_decode(longer, len + 1, &out), -EPROTO);
	free(longer);
	free(buf);
	/* not a protobuf message */
	uint8_t junk[] = { 0, 0, 0, 0, 3, 0xff, 0xff, 0xff };
	assert_int_equal(grpc_ca_response_decode(junk, sizeof(junk), &out), -EPROTO);
	/* an empty chain, or an empty entry: no certificate */
	assert_int_equal(grpc_ca_response_encode(&none, &buf, &len), 0);
	assert_int_equal(grpc_ca_response_decode(buf, len, &out), -EPROTO);
	free(buf);
	assert_int_equal(grpc_ca_response_encode(&empty_entry, &buf, &len), 0);
	assert_int_equal(grpc_ca_response_decode(buf, len, &out), -EPROTO);
	free(buf);
	/* a request without a CSR */
	assert_int_equal(grpc_ca_request_encode(&(struct ca_request){ "", 1, NULL }, &buf, &len), 0);
	assert_int_equal(grpc_ca_request_decode(buf, len, &req), -EPROTO);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(request_round_trip_carries_the_impersonated_identity),
		cmocka_unit_test(response_round_trip_keeps_the_chain_in_order),
		cmocka_unit_test(bad_frames_are_refused),
		cmocka_unit_test(bodies_stop_at_their_cap),
		cmocka_unit_test(impersonation_that_is_not_a_string_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
