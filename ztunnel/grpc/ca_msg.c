/* CreateCertificate request and response in gRPC framing: a compressed
 * flag (always 0), a 4-byte big-endian length, the protobuf message. */
#include "ztunnel/grpc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "istio_ca.pb-c.h"

#define PREFIX 5

long grpc_frame_complete(const uint8_t *buf, size_t len, size_t max)
{
	if (len < PREFIX)
		return 0;
	if (buf[0] != 0)
		return -EPROTO;
	size_t n = (size_t)buf[1] << 24 | (size_t)buf[2] << 16 | (size_t)buf[3] << 8 | buf[4];
	if (n > max)
		return -EMSGSIZE;
	return len < PREFIX + n ? 0 : (long)(PREFIX + n);
}

/* The message of one whole frame (and nothing after it). */
static int unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *n)
{
	long whole = grpc_frame_complete(buf, len, GRPC_MESSAGE_MAX);

	if (whole < 0)
		return (int)whole;
	if (whole == 0 || (size_t)whole != len)
		return -EPROTO;
	*msg = buf + PREFIX;
	*n = len - PREFIX;
	return 0;
}

static int frame(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(PREFIX + n);

	if (!b)
		return -ENOMEM;
	if (n > GRPC_MESSAGE_MAX) {
		free(b);
		return -EMSGSIZE;
	}
	b[0] = 0;
	b[1] = (uint8_t)(n >> 24);
	b[2] = (uint8_t)(n >> 16);
	b[3] = (uint8_t)(n >> 8);
	b[4] = (uint8_t)n;
	protobuf_c_message_pack(m, b + PREFIX);
	*out = b;
	*len = PREFIX + n;
	return 0;
}

int grpc_ca_request_encode(const struct ca_request *req, uint8_t **out, size_t *len)
{
	Istio__V1__Auth__IstioCertificateRequest r = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_REQUEST__INIT;
	Istio__V1__Auth__Struct md = ISTIO__V1__AUTH__STRUCT__INIT;
	Istio__V1__Auth__Struct__FieldsEntry entry = ISTIO__V1__AUTH__STRUCT__FIELDS_ENTRY__INIT;
	Istio__V1__Auth__Struct__FieldsEntry *entries[1] = { &entry };
	Istio__V1__Auth__Value v = ISTIO__V1__AUTH__VALUE__INIT;

	r.csr = req->csr;
	r.validity_duration = req->validity_s;
	if (req->impersonated) {
		v.kind_case = ISTIO__V1__AUTH__VALUE__KIND_STRING_VALUE;
		v.string_value = req->impersonated;
		entry.key = (char *)"ImpersonatedIdentity";
		entry.value = &v;
		md.n_fields = 1;
		md.fields = entries;
		r.metadata = &md;
	}
	return frame(&r.base, out, len);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* The message of one whole frame, as descriptor d (free with
 * protobuf_c_message_free_unpacked); NULL and *r on a bad frame. */
static ProtobufCMessage *unpack(const uint8_t *buf, size_t len, const ProtobufCMessageDescriptor *d, int *r)
{
	const uint8_t *msg = NULL;
	size_t n = 0;
	ProtobufCMessage *m = NULL;

	if ((*r = unframe(buf, len, &msg, &n)) == 0 && !(m = protobuf_c_message_unpack(d, NULL, n, msg)))
		*r = -EPROTO;
	return m;
}

int grpc_ca_request_decode(const uint8_t *buf, size_t len, struct ca_request *req)
{
	int r;

	memset(req, 0, sizeof(*req));
	Istio__V1__Auth__IstioCertificateRequest *m = (Istio__V1__Auth__IstioCertificateRequest *)unpack(
		buf, len, &istio__v1__auth__istio_certificate_request__descriptor, &r);
	if (!m)
		return r;
	req->csr = dup_or_null(m->csr && *m->csr ? m->csr : NULL);
	req->validity_s = m->validity_duration;
	bool bad = false;
	for (size_t i = 0; m->metadata && i < m->metadata->n_fields; i++) {
		const Istio__V1__Auth__Struct__FieldsEntry *e = m->metadata->fields[i];
		if (!e->key || strcmp(e->key, "ImpersonatedIdentity"))
			continue;
		/* Anything but a string would otherwise read as "no one else":
		 * the caller's own identity. */
		if (!e->value || e->value->kind_case != ISTIO__V1__AUTH__VALUE__KIND_STRING_VALUE) {
			bad = true;
			continue;
		}
		free(req->impersonated); /* the last one, as a map reads */
		req->impersonated = dup_or_null(e->value->string_value);
	}
	istio__v1__auth__istio_certificate_request__free_unpacked(m, NULL);
	if (!req->csr || bad) {
		grpc_ca_request_free(req);
		return -EPROTO;
	}
	return 0;
}

void grpc_ca_request_free(struct ca_request *req)
{
	free(req->csr);
	free(req->impersonated);
	memset(req, 0, sizeof(*req));
}

int grpc_ca_response_encode(const struct ca_response *resp, uint8_t **out, size_t *len)
{
	Istio__V1__Auth__IstioCertificateResponse r = ISTIO__V1__AUTH__ISTIO_CERTIFICATE_RESPONSE__INIT;

	r.n_cert_chain = resp->n;
	r.cert_chain = resp->chain;
	return frame(&r.base, out, len);
}

int grpc_ca_response_decode(const uint8_t *buf, size_t len, struct ca_response *resp)
{
	int r;

	memset(resp, 0, sizeof(*resp));
	Istio__V1__Auth__IstioCertificateResponse *m = (Istio__V1__Auth__IstioCertificateResponse *)unpack(
		buf, len, &istio__v1__auth__istio_certificate_response__descriptor, &r);
	if (!m)
		return r;
	r = m->n_cert_chain ? 0 : -EPROTO;
	if (r == 0 && !(resp->chain = calloc(m->n_cert_chain, sizeof(*resp->chain))))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < m->n_cert_chain; i++) {
		if (!m->cert_chain[i] || !*m->cert_chain[i])
			r = -EPROTO;
		else if (!(resp->chain[resp->n++] = strdup(m->cert_chain[i])))
			r = -ENOMEM;
	}
	istio__v1__auth__istio_certificate_response__free_unpacked(m, NULL);
	if (r < 0)
		grpc_ca_response_free(resp);
	return r;
}

void grpc_ca_response_free(struct ca_response *resp)
{
	for (size_t i = 0; i < resp->n; i++)
		free(resp->chain[i]);
	free(resp->chain);
	memset(resp, 0, sizeof(*resp));
}

int grpc_body_append(struct grpc_body *b, const uint8_t *data, size_t len, size_t max)
{
	if (b->too_big || b->len + len > max) {
		b->too_big = true;
		return 0;
	}
	uint8_t *more = realloc(b->p, b->len + len);
	if (!more)
		return -ENOMEM;
	memcpy(more + b->len, data, len);
	b->p = more;
	b->len += len;
	return 0;
}
