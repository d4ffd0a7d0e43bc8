/* gRPC for the certificate RPC (SPEC.md §4), sans-IO: the messages
 * (protobuf-c, ztunnel/grpc/istio_ca.proto) in gRPC's length-prefixed
 * framing. HTTP/2 (nghttp2) and TLS carry the frames elsewhere; these
 * functions only turn requests into bytes and bytes into answers. */
#ifndef ZTUNNEL_GRPC_H
#define ZTUNNEL_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_CA_PATH "/istio.v1.auth.IstioCertificateService/CreateCertificate"
#define GRPC_CONTENT_TYPE "application/grpc"
/* A CreateCertificate message larger than this is refused (a chain of a
 * few certificates is a few KiB; a trust bundle of many roots more). */
#define GRPC_MESSAGE_MAX (1u << 20)

/* gRPC status codes we produce or act on (grpc/doc/statuscodes.md). */
enum grpc_status {
	GRPC_OK = 0,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

struct ca_request {
	char *csr;                  /* PEM */
	int64_t validity_s;
	char *impersonated;         /* metadata.ImpersonatedIdentity, or NULL */
};

struct ca_response {
	char **chain; /* leaf, intermediates, last: the trust bundle (PEM) */
	size_t n;
};

/* One framed request (5-byte prefix + message) into *out (free it). */
int grpc_ca_request_encode(const struct ca_request *req, uint8_t **out, size_t *len);
/* A whole framed request (what a server received): 0, -EMSGSIZE, -EPROTO
 * (bad frame, compressed, not the message). Free with grpc_ca_request_free. */
int grpc_ca_request_decode(const uint8_t *buf, size_t len, struct ca_request *req);
void grpc_ca_request_free(struct ca_request *req);

int grpc_ca_response_encode(const struct ca_response *resp, uint8_t **out, size_t *len);
/* At least one chain entry, each non-empty, or -EPROTO. */
int grpc_ca_response_decode(const uint8_t *buf, size_t len, struct ca_response *resp);
void grpc_ca_response_free(struct ca_response *resp);

/* Where and how a certificate request goes (SPEC §4). */
struct grpc_ca_target {
	const char *address;    /* https://host:port: TLS to host, its name checked */
	const char *roots_file; /* PEM roots the CA's certificate must chain to */
	const char *token;      /* authorization: Bearer (a ServiceAccount token) */
	const char *cluster_id; /* the clusterid header (default Kubernetes) */
	int timeout_ms;         /* the whole call */
};

/* One CreateCertificate call, blocking up to t->timeout_ms: 0 and resp
 * (free it), or -errno with err saying what failed (-EACCES: the CA
 * refused who we are or what we asked; -EREMOTEIO: another gRPC error). */
int grpc_ca_call(const struct grpc_ca_target *t, const struct ca_request *req, struct ca_response *resp, char *err,
		 size_t err_size);

/* A message arriving in DATA chunks: kept up to max bytes; beyond, too_big
 * is set and the rest dropped (the caller refuses it). */
struct grpc_body {
	uint8_t *p;
	size_t len;
	bool too_big;
};
/* 0, or -ENOMEM. */
int grpc_body_append(struct grpc_body *b, const uint8_t *data, size_t len, size_t max);

/* How many bytes of buf make one whole frame: its length, 0 when more is
 * needed, -EMSGSIZE over max, -EPROTO for a compressed frame (we never
 * negotiate compression). */
long grpc_frame_complete(const uint8_t *buf, size_t len, size_t max);

#endif
