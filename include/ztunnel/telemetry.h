/* The one metric registry (docs/metrics.md). Every part counts here; only
 * the admin server renders it. Counting is lock-free and touches only the
 * calling thread's shard (a worker's counters never share a cache line
 * with another thread's); a scrape sums the shards. Reasons are enums so
 * they can be label values (HAProxy's CO_ER_*, Cilium's drop reasons). */
#ifndef ZTUNNEL_TELEMETRY_H
#define ZTUNNEL_TELEMETRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a connection was refused, failed or ended badly. Append only: the
 * names are metric label values and access-log fields operators alert on. */
enum tm_reason {
	TM_R_NONE = 0,
	TM_R_POLICY_DENIED,      /* AuthorizationPolicy (DENY matched, or no ALLOW did) */
	TM_R_STRICT_PLAINTEXT,   /* PeerAuthentication STRICT refused plaintext */
	TM_R_DST_UNKNOWN,        /* destination workload not in the snapshot: no policy known */
	TM_R_NOT_ENROLLED,       /* source or destination is not an enrolled pod of this node */
	TM_R_NO_UPSTREAM,        /* service without a ready endpoint */
	TM_R_RESERVED_PORT,      /* 15001/15006/15008 as destination: would loop */
	TM_R_WORKLOAD_PENDING,   /* waited 5 s for a pod the snapshot did not list */
	TM_R_CONNECT_REFUSED,    /* the destination refused the TCP connection */
	TM_R_CONNECT_TIMEOUT,
	TM_R_CONNECT_FAILED,
	TM_R_TLS,                /* TLS handshake or record failure */
	TM_R_HTTP2,              /* HTTP/2 protocol failure */
	TM_R_NO_CERTIFICATE,     /* no certificate for the identity (yet) */
	TM_R_PEER_REFUSED,       /* the peer answered the CONNECT with an error */
	TM_R_BAD_REQUEST,        /* CONNECT not for this pod (ip mismatch) or malformed */
	TM_R_REVOKED,            /* a policy change closed a live connection */
	TM_R_IDLE_TIMEOUT,
	TM_R_RESET,              /* reset by either side after it was set up */
	TM_R_STREAM_GONE,        /* its HBONE connection or stream ended under it */
	TM_R_LIMIT,              /* a per-peer or node-wide limit */
	TM_R_SHUTDOWN,           /* the agent stopped */
	TM_R_NO_MEMORY,
	TM_R_SOCKET,             /* a local socket call failed */
	TM_REASONS,
};

const char *tm_reason_name(enum tm_reason r);
/* Istio's response_flags value for r (SPEC.md §6.1): "-" when OK. */
const char *tm_reason_flag(enum tm_reason r);

/* Label-less (or fixed-label) counters and gauges. Append only. */
enum tm_counter {
	TM_SOCKETS_OPEN_OUTBOUND = 0, /* gauge: +1 open, -1 close */
	TM_SOCKETS_OPEN_INBOUND,
	TM_REVOKED,
	TM_HBONE_OPENED_CLIENT,
	TM_HBONE_OPENED_SERVER,
	TM_HBONE_ACTIVE_CLIENT,       /* gauge */
	TM_HBONE_ACTIVE_SERVER,       /* gauge */
	TM_HBONE_STREAMS_CLIENT,
	TM_HBONE_STREAMS_SERVER,
	TM_HBONE_REFUSED_400,
	TM_HBONE_REFUSED_401,
	TM_HBONE_REFUSED_503,
	TM_LIMIT_PENDING_HANDSHAKES,
	TM_LIMIT_PENDING_HANDSHAKES_PER_SOURCE,
	TM_LIMIT_PENDING_HANDSHAKES_EVICTED,
	TM_LIMIT_STREAMS_PER_PEER,
	TM_LIMIT_CONNECTIONS_PER_PEER,
	TM_LIMIT_PEER_BUFFER,
	TM_LIMIT_RAPID_RESET,
	TM_LIMIT_STREAM_IDLE_TIMEOUT,
	TM_LIMIT_STREAM_RATE,
	TM_CERT_ISSUED,
	TM_CERT_FAILURES,
	TM_CERT_EXPIRED,
	TM_SNAPSHOT_APPLIED,
	TM_SNAPSHOT_REJECTED,
	TM_SNAPSHOT_INVALID_OBJECTS,
	TM_ACCESS_LOG_LINES,
	TM_ACCESS_LOG_DROPPED,
	TM_SERIES_OVERFLOW,
	TM_KUBE_LISTS,
	TM_KUBE_EVENTS,
	TM_KUBE_RELISTS,
	TM_KUBE_ERRORS,
	TM_COUNTERS,
};

/* Families whose label values are only known at run time. */
enum tm_family {
	TM_F_TRAFFIC = 0,   /* istio_tcp_*: values TM_V_* below */
	TM_F_REFUSED,       /* ztunnel_connections_refused_total{direction,reason} */
	TM_F_AUTHZ,         /* ztunnel_authorization_decisions_total{direction,action,policy,reason} */
	TM_F_HBONE_FAILED,  /* ztunnel_hbone_connections_failed_total{side,reason} */
	TM_F_TLS_FAILED,    /* ztunnel_tls_handshake_failures_total{side,error} */
	TM_FAMILIES,
};

enum tm_traffic_value {
	TM_V_OPENED = 0,
	TM_V_CLOSED,
	TM_V_FAILED,
	TM_V_RECEIVED, /* client -> server */
	TM_V_SENT,     /* server -> client */
	TM_VALUES,
};

/* One label set of a family; counts belong to it for the process's life. */
struct tm_series {
	atomic_uint_fast64_t v[TM_VALUES];
	uint32_t hash;
	uint16_t len;
	uint8_t family;
	char labels[]; /* rendered: key="value",... */
};

/* Rendered Prometheus labels, built with tm_labels_add. */
struct tm_labels {
	char buf[1536];
	size_t len;
	bool truncated;
};

void tm_labels_init(struct tm_labels *l);
/* Appends key="value" with Prometheus escaping; NULL or "" value is
 * written as `unknown` when unknown_if_empty (Istio's convention). */
void tm_labels_add(struct tm_labels *l, const char *key, const char *value, bool unknown_if_empty);

/* Process-wide registry: tm_init before any thread counts, tm_fini after
 * they all stopped. */
int tm_init(void);
void tm_fini(void);
/* Gives the calling thread a shard of its own (workers, control thread);
 * other threads count into a shared shard with atomic adds. */
int tm_thread_register(void);

void tm_count(enum tm_counter c, int64_t n);
/* The series of (family, labels), created on first use; never NULL (a full
 * table folds new label sets into one `unknown` series and counts it). */
struct tm_series *tm_series_get(enum tm_family f, const struct tm_labels *labels);
static inline void tm_series_add(struct tm_series *s, enum tm_traffic_value v, uint64_t n)
{
	atomic_fetch_add_explicit(&s->v[v], n, memory_order_relaxed);
}

/* Growing text for the exposition (and the admin's answers). */
struct tm_text {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory: the answer is incomplete */
};
void tm_text_printf(struct tm_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tm_text_free(struct tm_text *t);

/* Values that live elsewhere (capture's BPF map, the certificates, the
 * snapshot): rendered by their owner at scrape time, from the scraping
 * thread. */
typedef void (*tm_collector_fn)(struct tm_text *out, void *ctx);
int tm_collector_add(tm_collector_fn fn, void *ctx);
/* Before ctx goes away. */
void tm_collector_del(tm_collector_fn fn, void *ctx);
/* A family header (# HELP / # TYPE) for collectors. */
void tm_family_header(struct tm_text *out, const char *name, const char *type, const char *help);

/* The whole exposition, Prometheus text format 0.0.4. */
void tm_render(struct tm_text *out);
/* Summed value of a counter, for tests and readiness. */
int64_t tm_counter_value(enum tm_counter c);

#endif
