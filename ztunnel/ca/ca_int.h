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
	CA_NOT_SA,           /* authenticated, but not as a ServiceAccount */
	CA_IMPERSONATION,    /* a caller other than a node agent asked for someone else */
	CA_UNBOUND_TOKEN,    /* an agent's token is not bound to an agent pod on its node */
	CA_NOT_ON_NODE,      /* no pod of that identity on the caller's node */
	CA_BAD_REQUEST,      /* unparsable identity, other trust domain, bad CSR */
	CA_TOO_MANY,         /* too large, or too many failed authentications from that address */
	CA_UNAVAILABLE,      /* the API server or the CA key failed us: try again */
	CA_OUTCOMES,
};
const char *ca_outcome_name(enum ca_outcome o);

struct ca_rules {
	const char *trust_domain;
	const char *const *agents; /* "namespace/serviceaccount" of node agents */
	size_t n_agents;
};

/* The pods that give node agents rights (pods.c): those that name their
 * ServiceAccount, are not mirror pods and have not finished. */
struct ca_pod {
	char *ns, *name, *sa, *node;
};
struct ca_pods {
	struct ca_pod *v;
	size_t n;
};
/* From a v1 List's JSON (the Kubernetes source's objects). */
int ca_pods_build(const char *list_json, size_t len, struct ca_pods *out);
void ca_pods_free(struct ca_pods *p);
/* A pod of ns/sa on node. */
bool ca_pods_runs_on(const struct ca_pods *p, const char *node, const char *ns, const char *sa);
/* Pod ns/name exists, with ServiceAccount sa, on node. */
bool ca_pods_is(const struct ca_pods *p, const char *ns, const char *name, const char *sa, const char *node);

/* Which identity who may get: impersonated (NULL or "": its own). 0 and
 * *grant, or the refusal and why (for the caller and the log). pods: as
 * the API says now (NULL: not known, or no longer followed ->
 * CA_UNAVAILABLE for an impersonation). */
enum ca_outcome ca_authorize(const struct ca_rules *rules, const struct kube_caller *who,
			     const char *impersonated, const struct ca_pods *pods, struct spiffe_id *grant, char *why,
			     size_t why_size);

/* Per client address: connections held and failed authentications (a
 * budget per window), so that one address can neither hold every slot
 * nor make the CA flood the API server with TokenReviews. */
#define CA_MAX_CONNS_PER_ADDR 32
#define CA_AUTH_FAILURES_PER_WINDOW 10
#define CA_AUTH_WINDOW_S 10
struct ca_limits;
struct ca_limits *ca_limits_new(void);
void ca_limits_free(struct ca_limits *l);
/* Takes a connection slot for addr: false when it holds too many. */
bool ca_limits_conn_take(struct ca_limits *l, const char *addr);
void ca_limits_conn_put(struct ca_limits *l, const char *addr);
/* May addr try to authenticate now (its failures within budget)? now:
 * monotonic seconds (clock_mono_ms() / 1000). */
bool ca_limits_auth_allowed(struct ca_limits *l, const char *addr, int64_t now);
void ca_limits_auth_failed(struct ca_limits *l, const char *addr, int64_t now);

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
	struct kube_source *pods_source;
	pthread_mutex_t pods_lock;
	struct ca_pods pods; /* the newest (ca_service_refresh) */
	bool have_pods;
	struct ca_limits *limits;
	_Atomic uint64_t counts[CA_OUTCOMES];
	_Atomic int live; /* TLS connections open */
	/* Connections closed at accept: over --max-connections (or no serving
	 * certificate yet), or their address holds its share. */
	_Atomic unsigned long long refused_total, refused_per_addr;
	atomic_int_fast64_t refused_log_ms;
};

/* One CreateCertificate: the bearer token, the framed request body; the
 * framed response (free it) or a gRPC status and message. */
struct ca_answer {
	int grpc_status;
	char message[256];
	uint8_t *body;
	size_t body_len;
};
struct ca_peer {
	char addr[48]; /* the client's address: what limits count */
	char name[64]; /* address:port, for logs */
};
void ca_serve_request(struct ca_service *svc, const char *token, const struct ca_peer *peer, const uint8_t *body,
		      size_t len, struct ca_answer *out);
/* A refusal before the request was read (size, path): counted, logged. */
void ca_refuse(struct ca_service *svc, enum ca_outcome o, const char *why, const struct ca_peer *peer,
	       struct ca_answer *out);
/* Takes the newest pods from the Kubernetes source, if it has new ones
 * (off the request path: the server calls it every second). */
void ca_service_refresh(struct ca_service *svc);
/* The pods are followed live (or were within the last 30 s). */
bool ca_service_pods_fresh(struct ca_service *svc);

/* Re-reads the CA files if they changed: how many times a CA was loaded
 * (a change signal; 0: none yet) and, through not_after, when the loaded
 * CA certificate expires (0: none). */
uint64_t ca_signer_refresh(struct ca_signer *s, int64_t *not_after);

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
