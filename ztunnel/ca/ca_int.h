/* Internal to ztunnel-ca (DESIGN.md §4): the decision, the service and
 * the server. The decision is sans-IO (unit tests drive it with a model
 * and callers); the service does the I/O of one request (TokenReview,
 * signing); the server carries requests over TLS + HTTP/2. */
#ifndef ZTUNNEL_CA_INT_H
#define ZTUNNEL_CA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ztunnel/identity.h"
#include "ztunnel/kube.h"
#include "ztunnel/local_ca_provider.h"
#include "ztunnel/state.h"

/* Why a request was refused: each is a metric label. */
enum ca_outcome {
	CA_ISSUED = 0,
	CA_UNAUTHENTICATED,  /* no token, or the API server does not vouch for it */
	CA_IMPERSONATION,    /* a caller other than a node agent asked for someone else */
	CA_NO_NODE,          /* an agent's token carries no node (not bound to a pod) */
	CA_NOT_ON_NODE,      /* no pod of that identity on the caller's node */
	CA_BAD_REQUEST,      /* unparsable identity, other trust domain, bad CSR */
	CA_UNAVAILABLE,      /* the API server or the CA key failed us: try again */
	CA_OUTCOMES,
};
const char *ca_outcome_name(enum ca_outcome o);

struct ca_rules {
	const char *trust_domain;
	const char *const *agents; /* "namespace/serviceaccount" of node agents */
	size_t n_agents;
};

/* Which identity who may get: impersonated (NULL or "": its own). 0 and
 * *grant, or the refusal and why (for the caller and the log). m: the
 * pods as the API says now (NULL: not known yet -> CA_UNAVAILABLE for an
 * impersonation). */
enum ca_outcome ca_authorize(const struct ca_rules *rules, const struct kube_caller *who,
			     const char *impersonated, const struct zt_model *m, struct spiffe_id *grant, char *why,
			     size_t why_size);

/* The signing side: the CA files (a cacerts-style Secret, re-read when
 * they change) behind a lock (wolfSSL's RNG is not shared between
 * threads). */
struct ca_signer {
	pthread_mutex_t lock;
	struct local_ca_provider files;
	int64_t default_ttl_s, max_ttl_s;
};

/* Everything one request needs. */
struct ca_service {
	struct ca_rules rules;
	struct ca_signer signer;
	struct kube_config api; /* TokenReview */
	const char *audience;
	struct kube_source *pods;
	pthread_mutex_t model_lock;
	struct zt_model *model; /* the newest pods */
	_Atomic uint64_t counts[CA_OUTCOMES];
	_Atomic int live; /* TLS connections open */
};

/* One CreateCertificate: the bearer token, the framed request body; the
 * framed response (free it) or a gRPC status and message. */
struct ca_answer {
	int grpc_status;
	char message[256];
	uint8_t *body;
	size_t body_len;
};
void ca_serve_request(struct ca_service *svc, const char *token, const char *peer, const uint8_t *body, size_t len,
		      struct ca_answer *out);

/* The serving certificate for TLS: a fresh leaf from the signer's CA. */
int ca_signer_server_cert(struct ca_signer *s, const char *const *dns, size_t n, struct leaf_cert *out, char *err,
			  size_t err_size);

struct ca_server_opts {
	const char *listen;         /* host:port */
	const char *const *dns;     /* the serving certificate's names */
	size_t n_dns;
	int max_connections;
};
/* Serves until *stop; 0 or -errno (could not listen). */
int ca_server_run(struct ca_service *svc, const struct ca_server_opts *o, const _Atomic bool *stop);

/* /metrics and /ready on port (every address). NULL: logged. */
struct MHD_Daemon;
struct MHD_Daemon *ca_http_start(struct ca_service *svc, uint16_t port);

#endif
