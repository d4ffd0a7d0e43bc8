/* The Prometheus text exposition of the registry (docs/metrics.md). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

struct counter_desc {
	const char *family, *labels, *type, *help;
};

/* Consecutive entries of one family share its header. */
static const struct counter_desc counters[TM_COUNTERS] = {
	[TM_SOCKETS_OPEN_OUTBOUND] = { "istio_tcp_sockets_open", "reporter=\"source\"", "gauge", "Open TCP connections." },
	[TM_SOCKETS_OPEN_INBOUND] = { "istio_tcp_sockets_open", "reporter=\"destination\"", "gauge", NULL },
	[TM_REVOKED] = { "ztunnel_connections_revoked_total", "", "counter", "Live connections closed because a policy change denies them." },
	[TM_HBONE_OPENED_CLIENT] = { "ztunnel_hbone_connections_opened_total", "side=\"client\"", "counter", "HBONE connections whose TLS and HTTP/2 set-up finished." },
	[TM_HBONE_OPENED_SERVER] = { "ztunnel_hbone_connections_opened_total", "side=\"server\"", "counter", NULL },
	[TM_HBONE_ACTIVE_CLIENT] = { "ztunnel_hbone_connections_active", "side=\"client\"", "gauge", "HBONE connections open now (client side: the pool)." },
	[TM_HBONE_ACTIVE_SERVER] = { "ztunnel_hbone_connections_active", "side=\"server\"", "gauge", NULL },
	[TM_HBONE_STREAMS_CLIENT] = { "ztunnel_hbone_streams_total", "side=\"client\"", "counter", "HBONE CONNECT streams." },
	[TM_HBONE_STREAMS_SERVER] = { "ztunnel_hbone_streams_total", "side=\"server\"", "counter", NULL },
	[TM_HBONE_REFUSED_400] = { "ztunnel_hbone_requests_refused_total", "status=\"400\"", "counter", "CONNECT requests answered with an error." },
	[TM_HBONE_REFUSED_401] = { "ztunnel_hbone_requests_refused_total", "status=\"401\"", "counter", NULL },
	[TM_HBONE_REFUSED_503] = { "ztunnel_hbone_requests_refused_total", "status=\"503\"", "counter", NULL },
	[TM_LIMIT_PENDING_HANDSHAKES] = { "ztunnel_limit_hits_total", "limit=\"pending_handshakes\"", "counter", "Connections or streams refused or closed by a limit." },
	[TM_LIMIT_PENDING_HANDSHAKES_PER_SOURCE] = { "ztunnel_limit_hits_total", "limit=\"pending_handshakes_per_source\"", "counter", NULL },
	[TM_LIMIT_PENDING_HANDSHAKES_EVICTED] = { "ztunnel_limit_hits_total", "limit=\"pending_handshakes_evicted\"", "counter", NULL },
	[TM_LIMIT_STREAMS_PER_PEER] = { "ztunnel_limit_hits_total", "limit=\"streams_per_peer\"", "counter", NULL },
	[TM_LIMIT_CONNECTIONS_PER_PEER] = { "ztunnel_limit_hits_total", "limit=\"connections_per_peer\"", "counter", NULL },
	[TM_LIMIT_PEER_BUFFER] = { "ztunnel_limit_hits_total", "limit=\"peer_buffer\"", "counter", NULL },
	[TM_LIMIT_RAPID_RESET] = { "ztunnel_limit_hits_total", "limit=\"rapid_reset\"", "counter", NULL },
	[TM_LIMIT_STREAM_IDLE_TIMEOUT] = { "ztunnel_limit_hits_total", "limit=\"stream_idle_timeout\"", "counter", NULL },
	[TM_LIMIT_STREAM_RATE] = { "ztunnel_limit_hits_total", "limit=\"stream_rate\"", "counter", NULL },
	[TM_CERT_ISSUED] = { "ztunnel_certificate_issued_total", "", "counter", "Workload certificates issued or rotated." },
	[TM_CERT_FAILURES] = { "ztunnel_certificate_failures_total", "", "counter", "Failed certificate issuances (retried with backoff)." },
	[TM_CERT_EXPIRED] = { "ztunnel_certificate_expired_total", "", "counter", "Certificates that expired without a successor." },
	[TM_SNAPSHOT_APPLIED] = { "ztunnel_snapshot_loads_total", "result=\"applied\"", "counter", "Snapshot loads by result." },
	[TM_SNAPSHOT_REJECTED] = { "ztunnel_snapshot_loads_total", "result=\"rejected\"", "counter", NULL },
	[TM_SNAPSHOT_INVALID_OBJECTS] = { "ztunnel_snapshot_invalid_objects_total", "", "counter", "Snapshot objects applied fail-closed." },
	[TM_ACCESS_LOG_LINES] = { "ztunnel_access_log_lines_total", "", "counter", "Access-log lines produced (written or dropped)." },
	[TM_ACCESS_LOG_DROPPED] = { "ztunnel_access_log_dropped_total", "", "counter", "Log lines of data-path threads (access log included) dropped because the log reader fell behind." },
	[TM_SERIES_OVERFLOW] = { "ztunnel_telemetry_series_overflow_total", "", "counter", "Label sets folded into an overflow series (table full)." },
	[TM_KUBE_LISTS] = { "ztunnel_kube_lists_total", "", "counter", "Complete lists of a kind from the Kubernetes API." },
	[TM_KUBE_EVENTS] = { "ztunnel_kube_watch_events_total", "", "counter", "Watch events from the Kubernetes API (bookmarks included)." },
	[TM_KUBE_RELISTS] = { "ztunnel_kube_relists_total", "", "counter", "Relists after a watch's resourceVersion expired (410 Gone)." },
	[TM_KUBE_ERRORS] = { "ztunnel_kube_errors_total", "", "counter", "Failed lists and broken watches (retried with backoff)." },
};

static const struct {
	const char *name, *help;
} traffic[TM_VALUES] = {
	[TM_V_OPENED] = { "istio_tcp_connections_opened_total", "TCP connections opened (destination resolved)." },
	[TM_V_CLOSED] = { "istio_tcp_connections_closed_total", "TCP connections closed, failures included." },
	[TM_V_FAILED] = { "istio_tcp_connections_failed_total", "TCP connections closed with a response flag other than -." },
	[TM_V_RECEIVED] = { "istio_tcp_received_bytes_total", "Bytes from client to server." },
	[TM_V_SENT] = { "istio_tcp_sent_bytes_total", "Bytes from server to client." },
};

static const struct {
	const char *name, *help;
} families[TM_FAMILIES] = {
	[TM_F_REFUSED] = { "ztunnel_connections_refused_total", "Connections refused before a destination was resolved." },
	[TM_F_AUTHZ] = { "ztunnel_authorization_decisions_total", "Inbound authorization decisions." },
	[TM_F_HBONE_FAILED] = { "ztunnel_hbone_connections_failed_total", "HBONE connections that failed to set up." },
	[TM_F_TLS_FAILED] = { "ztunnel_tls_handshake_failures_total", "Failed TLS handshakes by the TLS library's error." },
};

void tm_text_printf(struct tm_text *t, const char *fmt, ...)
{
	va_list ap;

	if (t->failed)
		return;
	for (;;) {
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < room) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap : 4096;
		while (cap - t->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

void tm_text_free(struct tm_text *t)
{
	free(t->p);
	memset(t, 0, sizeof(*t));
}

void tm_labels_init(struct tm_labels *l)
{
	l->buf[0] = '\0';
	l->len = 0;
	l->truncated = false;
}

static void put(struct tm_labels *l, const char *s, size_t n)
{
	if (l->len + n >= sizeof(l->buf)) {
		l->truncated = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = '\0';
}

/* Exposition format: label values escape \, " and newline. */
void tm_labels_add(struct tm_labels *l, const char *key, const char *value, bool unknown_if_empty)
{
	if (!value || !*value)
		value = unknown_if_empty ? "unknown" : "";
	if (l->len)
		put(l, ",", 1);
	put(l, key, strlen(key));
	put(l, "=\"", 2);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			put(l, "\\", 1);
		if (*p == '\n')
			put(l, "\\n", 2);
		else
			put(l, p, 1);
	}
	put(l, "\"", 1);
}

void tm_family_header(struct tm_text *out, const char *name, const char *type, const char *help)
{
	tm_text_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(struct tm_text *out, const char *name, const char *labels, int64_t v)
{
	if (*labels)
		tm_text_printf(out, "%s{%s} %lld\n", name, labels, (long long)v);
	else
		tm_text_printf(out, "%s %lld\n", name, (long long)v);
}

static void render_counters(struct tm_text *out)
{
	const char *family = "";

	for (int i = 0; i < TM_COUNTERS; i++) {
		const struct counter_desc *d = &counters[i];
		if (strcmp(d->family, family)) {
			family = d->family;
			tm_family_header(out, d->family, d->type, d->help);
		}
		sample(out, d->family, d->labels, tm_counter_value((enum tm_counter)i));
	}
}

static int by_family_labels(const void *a, const void *b)
{
	const struct tm_series *x = *(struct tm_series *const *)a, *y = *(struct tm_series *const *)b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return strcmp(x->labels, y->labels);
}

/* Series of one label set from different shards are added up. */
static void render_series(struct tm_text *out)
{
	struct tm_series **v;
	size_t n;

	if (tm_series_collect(&v, &n) < 0) {
		out->failed = true;
		return;
	}
	qsort(v, n, sizeof(*v), by_family_labels);
	for (int f = 0; f < TM_FAMILIES; f++) {
		int values = f == TM_F_TRAFFIC ? TM_VALUES : 1;
		for (int k = 0; k < values; k++) {
			const char *name = f == TM_F_TRAFFIC ? traffic[k].name : families[f].name;
			tm_family_header(out, name, "counter", f == TM_F_TRAFFIC ? traffic[k].help : families[f].help);
			for (size_t i = 0; i < n;) {
				if (v[i]->family != f) {
					i++;
					continue;
				}
				uint64_t sum = 0;
				size_t j = i;
				for (; j < n && !by_family_labels(&v[i], &v[j]); j++)
					sum += atomic_load_explicit(&v[j]->v[k], memory_order_relaxed);
				sample(out, name, v[i]->labels, (int64_t)sum);
				i = j;
			}
		}
	}
	free(v);
}

void tm_render(struct tm_text *out)
{
	render_counters(out);
	render_series(out);
	tm_run_collectors(out);
	tm_render_process(out);
}
