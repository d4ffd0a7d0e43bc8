/* ztunnel-ca's plain HTTP side (libmicrohttpd): /metrics for Prometheus
 * (requests by outcome, whether the pods are followed, the CA
 * certificate's expiry) and /ready for the kubelet (the pods listed and
 * the CA files loadable). */
#include "ca_int.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

/* The loaded CA certificate's expiry, 0 when none loads. */
static int64_t expiry(struct ca_service *svc)
{
	int64_t na = 0;

	ca_signer_refresh(&svc->signer, &na);
	return na;
}

static void metrics(struct ca_service *svc, struct tm_text *t)
{
	tm_family_header(t, "ztunnel_ca_requests_total", "counter",
			 "CreateCertificate calls by outcome (issued, or the reason for the refusal).");
	for (int o = 0; o < CA_OUTCOMES; o++)
		tm_text_printf(t, "ztunnel_ca_requests_total{outcome=\"%s\"} %llu\n", ca_outcome_name(o),
			       (unsigned long long)atomic_load(&svc->counts[o]));
	tm_family_header(t, "ztunnel_ca_pods_synced", "gauge",
			 "1 while the pods are followed live on the API server (within 30 s); 0: agents get no certificates.");
	tm_text_printf(t, "ztunnel_ca_pods_synced %d\n", ca_service_pods_fresh(svc));
	tm_family_header(t, "ztunnel_ca_connections", "gauge", "TLS connections open now.");
	tm_text_printf(t, "ztunnel_ca_connections %d\n", atomic_load(&svc->live));
	tm_family_header(t, "ztunnel_ca_connections_refused_total", "counter",
			 "Connections closed at accept: limit (--max-connections, or no serving certificate yet) or "
			 "per_address (the address holds its share).");
	tm_text_printf(t, "ztunnel_ca_connections_refused_total{reason=\"limit\"} %llu\n",
		       (unsigned long long)atomic_load(&svc->refused_total));
	tm_text_printf(t, "ztunnel_ca_connections_refused_total{reason=\"per_address\"} %llu\n",
		       (unsigned long long)atomic_load(&svc->refused_per_addr));
	tm_family_header(t, "ztunnel_ca_root_expiry_seconds", "gauge",
			 "Unix time the signing CA certificate expires (0: no CA loaded).");
	tm_text_printf(t, "ztunnel_ca_root_expiry_seconds %lld\n", (long long)expiry(svc));
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, const char *body,
			     size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	MHD_add_response_header(r, "Content-Type", type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct ca_service *svc = cls;
	struct tm_text t = { 0 };
	enum MHD_Result ret;

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, "GET"))
		return reply(conn, 405, "text/plain", "GET only\n", 9);
	if (!strcmp(url, "/metrics")) {
		metrics(svc, &t);
		ret = t.failed ? reply(conn, 500, "text/plain", "out of memory\n", 14)
			       : reply(conn, 200, "text/plain; version=0.0.4", t.p ? t.p : "", t.len);
		tm_text_free(&t);
		return ret;
	}
	if (!strcmp(url, "/ready")) {
		bool pods = ca_service_pods_fresh(svc), key = expiry(svc) > time(NULL);
		if (pods && key)
			return reply(conn, 200, "text/plain", "ready\n", 6);
		tm_text_printf(&t, "not ready, pending:%s%s\n", pods ? "" : " pods", key ? "" : " ca-key");
		ret = reply(conn, 503, "text/plain", t.p ? t.p : "", t.len);
		tm_text_free(&t);
		return ret;
	}
	return reply(conn, 404, "text/plain", "/metrics or /ready\n", 19);
}

struct MHD_Daemon *ca_http_start(struct ca_service *svc, uint16_t port)
{
	struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, port, NULL, NULL, handle,
						svc, MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 4u,
						MHD_OPTION_CONNECTION_TIMEOUT, 10u,
						MHD_OPTION_END);

	if (!d)
		log_error("cannot listen for metrics (port in use?)", LF_UINT("port", port));
	return d;
}
