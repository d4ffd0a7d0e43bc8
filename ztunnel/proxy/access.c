/* What a connection leaves behind: its traffic series (Istio's labels,
 * SPEC.md §6.1), the authorization decision counters, and its access-log
 * line (SPEC.md §6.2), queued to the writer thread. */
#include "access.h"
#include "conn.h"

#include <stdio.h>
#include <string.h>

#include "ztunnel/access_log.h"
#include "ztunnel/authz.h"
#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

static const char *const direction_names[] = { "outbound", "inbound", "inbound" };

const char *direction_name(uint8_t dir)
{
	return direction_names[dir < PROXY_DIRECTIONS ? dir : 0];
}

static void access_line(const struct conn_info *ci, enum log_level level, const char *msg, enum tm_reason r,
			const char *error, int rule, int status);

/* source_* or destination_* labels of one end, in Istio's order (keys
 * spelled out: formatting them was a visible share of a connection). */
static void end_labels(struct tm_labels *l, bool source, const struct zt_workload *w, const char *principal,
		       const char *cluster)
{
	static const char *const keys[2][8] = { /* [source][i]: the key of values[i] */
		{ "destination_workload", "destination_canonical_service", "destination_canonical_revision",
		  "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
		  "destination_cluster" },
		{ "source_workload", "source_canonical_service", "source_canonical_revision", "source_workload_namespace",
		  "source_principal", "source_app", "source_version", "source_cluster" },
	};
	const char *values[] = { w ? w->workload_name : NULL, w ? w->canonical_name : NULL,
				 w ? w->canonical_revision : NULL, w ? w->namespace : NULL, principal,
				 w ? w->canonical_name : NULL, w ? w->canonical_revision : NULL, w ? cluster : NULL };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		tm_labels_add(l, keys[source][i], values[i], true);
}

void conn_opened(struct worker *w, struct conn_info *ci, const struct zt_workload *src, const struct zt_workload *dst,
		 const struct zt_service *svc)
{
	const char *cluster = w->p->cfg->cluster_id;
	struct tm_labels l;

	tm_labels_init(&l);
	tm_labels_add(&l, "reporter", ci->dir == PROXY_OUTBOUND ? "source" : "destination", true);
	end_labels(&l, true, src, identity_uri(ci->src_id), cluster);
	tm_labels_add(&l, "destination_service", svc ? svc->hostname : NULL, true);
	tm_labels_add(&l, "destination_service_namespace", svc ? svc->namespace : NULL, true);
	tm_labels_add(&l, "destination_service_name", svc ? svc->name : NULL, true);
	end_labels(&l, false, dst, identity_uri(ci->dst_id), cluster);
	tm_labels_add(&l, "request_protocol", "tcp", true);
	tm_labels_add(&l, "response_flags", "-", true);
	tm_labels_add(&l, "connection_security_policy", ci->hbone ? "mutual_tls" : "unknown", true);
	ci->series = tm_series_get(TM_F_TRAFFIC, &l);
	ci->reported_ms = loop_now_ms();
	tm_series_add(ci->series, TM_V_OPENED, 1);
	tm_count(ci->dir == PROXY_OUTBOUND ? TM_SOCKETS_OPEN_OUTBOUND : TM_SOCKETS_OPEN_INBOUND, 1);
	/* SPEC §6.2: at DEBUG when the connection is set up. */
	if (log_target_enabled(LOG_TARGET_ACCESS, LOG_LEVEL_DEBUG))
		access_line(ci, LOG_LEVEL_DEBUG, "connection opened", TM_R_NONE, NULL, -1, 0);
}

/* The same labels with another response flag: the opened series holds
 * them, so a connection keeps one pointer, not its labels. */
static struct tm_series *with_flag(const struct tm_series *s, const char *flag)
{
	static const char marker[] = "response_flags=\"-\"";
	const char *at = strstr(s->labels, marker);
	struct tm_labels l;

	if (!at)
		return (struct tm_series *)s;
	tm_labels_init(&l);
	l.len = (size_t)snprintf(l.buf, sizeof(l.buf), "%.*sresponse_flags=\"%s\"%s", (int)(at - s->labels), s->labels,
				 flag, at + sizeof(marker) - 1);
	if (l.len >= sizeof(l.buf))
		return (struct tm_series *)s;
	return tm_series_get((enum tm_family)s->family, &l);
}

/* Bytes moved since the last report, on the opened series (the outcome
 * is not known yet). */
static void add_bytes(struct conn_info *ci)
{
	tm_series_add(ci->series, TM_V_RECEIVED, ci->bytes_up - ci->bytes_counted_up);
	tm_series_add(ci->series, TM_V_SENT, ci->bytes_down - ci->bytes_counted_down);
	ci->bytes_counted_up = ci->bytes_up;
	ci->bytes_counted_down = ci->bytes_down;
}

/* closed (and failed) on the series of its outcome. */
void conn_closed_quietly(struct conn_info *ci)
{
	const char *flag = tm_reason_flag((enum tm_reason)ci->reason);

	if (!ci->series)
		return;
	add_bytes(ci);
	struct tm_series *s = strcmp(flag, "-") ? with_flag(ci->series, flag) : ci->series;
	tm_series_add(s, TM_V_CLOSED, 1);
	if (s != ci->series)
		tm_series_add(s, TM_V_FAILED, 1);
	tm_count(ci->dir == PROXY_OUTBOUND ? TM_SOCKETS_OPEN_OUTBOUND : TM_SOCKETS_OPEN_INBOUND, -1);
	ci->series = NULL;
}

/* "ns/name" -> its parts for the log (SPEC §6.2 has them apart). */
static void split_name(const char *full, char *ns, size_t ns_size, const char **name)
{
	const char *slash = strchr(full, '/');

	*name = slash ? slash + 1 : full;
	snprintf(ns, ns_size, "%.*s", slash ? (int)(slash - full) : 0, full);
}

static bool denied(enum tm_reason r)
{
	return r == TM_R_POLICY_DENIED || r == TM_R_STRICT_PLAINTEXT || r == TM_R_DST_UNKNOWN || r == TM_R_REVOKED;
}

/* Only the destination side decides. */
static const char *decision(const struct conn_info *ci, enum tm_reason r)
{
	if (ci->dir == PROXY_OUTBOUND)
		return "";
	return denied(r) ? "deny" : "allow";
}

static void access_line(const struct conn_info *ci, enum log_level level, const char *msg, enum tm_reason r,
			const char *error, int rule, int status)
{
	/* Nothing is formatted for a line nobody reads (access lines are info:
	 * at the default level, a connection costs no formatting). */
	if (!log_target_enabled(LOG_TARGET_ACCESS, level))
		return;
	uint64_t duration_ms = (uint64_t)(loop_now_ms() - ci->start_ms);
	char src[32], dst[32], hbone_addr[32] = "", duration[32], src_ns[64], dst_ns[64];
	const char *src_wl, *dst_wl;
	/* Bytes from the local pod's point of view (SPEC.md §6.2). */
	uint64_t sent = ci->dir == PROXY_OUTBOUND ? ci->bytes_up : ci->bytes_down;
	uint64_t recv = ci->dir == PROXY_OUTBOUND ? ci->bytes_down : ci->bytes_up;

	fmt_addr(&ci->src, src, sizeof(src));
	if (ci->hbone && ci->dir == PROXY_OUTBOUND && ci->hbone_peer.sin_port) {
		fmt_addr(&ci->hbone_peer, dst, sizeof(dst));
		fmt_addr(&ci->up, hbone_addr, sizeof(hbone_addr));
	} else {
		fmt_addr(&ci->up, dst, sizeof(dst));
		if (ci->hbone)
			fmt_addr(&ci->up, hbone_addr, sizeof(hbone_addr));
	}
	split_name(conn_info_src_name(ci), src_ns, sizeof(src_ns), &src_wl);
	split_name(conn_info_dst_name(ci), dst_ns, sizeof(dst_ns), &dst_wl);
	snprintf(duration, sizeof(duration), "%llums", (unsigned long long)duration_ms);
	access_log(level, msg, LF_STR("src.addr", src), LF_STR("src.workload", src_wl),
		   LF_STR("src.namespace", src_ns), LF_STR("src.identity", identity_uri(ci->src_id)),
		   LF_STR("dst.addr", dst), LF_STR("dst.hbone_addr", hbone_addr), LF_STR("dst.service", conn_info_service(ci)),
		   LF_STR("dst.workload", dst_wl), LF_STR("dst.namespace", dst_ns),
		   LF_STR("dst.identity", identity_uri(ci->dst_id)), LF_STR("direction", direction_name(ci->dir)),
		   LF_STR("tls.version", ci->tls_version ? ci->tls_version : ""),
		   LF_STR("tls.cipher", ci->tls_cipher ? ci->tls_cipher : ""), LF_UINT("bytes_sent", sent),
		   LF_UINT("bytes_recv", recv), LF_STR("duration", duration), LF_STR("decision", decision(ci, r)),
		   LF_STR("reason", tm_reason_name(r)), LF_STR("response_flags", tm_reason_flag(r)),
		   LF_STR("protocol", ci->hbone ? "HBONE" : "TCP"), LF_STR("policy", conn_info_policy(ci)), LF_INT("rule", rule),
		   LF_INT("status", status), LF_STR("error", error ? error : ""));
}

void conn_report(struct conn_info *ci, bool line)
{
	if (!ci->series)
		return;
	add_bytes(ci);
	ci->reported_ms = loop_now_ms();
	if (line)
		access_line(ci, LOG_LEVEL_INFO, "connection update", TM_R_NONE, NULL, -1, 0);
}

void conn_log(struct worker *w, struct conn_info *ci)
{
	(void)w;
	if (ci->error && ci->reason == TM_R_NONE)
		ci->reason = TM_R_RESET;
	conn_closed_quietly(ci);
	access_line(ci, ci->error ? LOG_LEVEL_WARN : LOG_LEVEL_INFO, "connection complete",
		    (enum tm_reason)ci->reason, ci->error, -1, 0);
}

/* The deciding policy, "" for the default decision. */
static const char *decider(const struct authz_decision *d)
{
	return d->policy ? d->policy->key : d->peer_authn ? d->peer_authn->key : "";
}

static const char *decision_reason(const struct authz_decision *d, enum tm_reason r)
{
	if (r == TM_R_DST_UNKNOWN)
		return tm_reason_name(r);
	switch (d->reason) {
	case AUTHZ_NO_ALLOW_POLICIES: return "no_allow_policies";
	case AUTHZ_ALLOWED_BY: return "allowed_by_policy";
	case AUTHZ_DENIED_BY: return "denied_by_policy";
	case AUTHZ_NOT_ALLOWED: return "no_allow_matched";
	case AUTHZ_STRICT_MTLS: return "strict_plaintext";
	default: return "unknown";
	}
}

void count_decision(struct conn_info *ci, const struct authz_decision *d, enum tm_reason r)
{
	struct tm_labels l;

	tm_labels_init(&l);
	tm_labels_add(&l, "direction", direction_name(ci->dir), true);
	tm_labels_add(&l, "action", r == TM_R_NONE ? "allow" : "deny", true);
	tm_labels_add(&l, "policy", *decider(d) ? decider(d) : "-", true);
	tm_labels_add(&l, "reason", decision_reason(d, r), true);
	tm_series_add(tm_series_get(TM_F_AUTHZ, &l), TM_V_OPENED, 1);
	conn_info_set_policy(ci, decider(d));
}

void log_denied(struct conn_info *ci, const struct authz_decision *d, enum tm_reason r, const char *why, int status)
{
	ci->reason = (uint8_t)r;
	conn_closed_quietly(ci);
	access_line(ci, LOG_LEVEL_WARN, "connection denied", r, why, d->rule, status);
}

void log_revoked(const struct conn_info *ci, const struct authz_decision *d, enum tm_reason r, const char *why)
{
	tm_count(TM_REVOKED, 1);
	access_line(ci, LOG_LEVEL_WARN, "connection denied", r, why, d->rule, 0);
}

void count_refused(uint8_t dir, enum tm_reason r)
{
	struct tm_labels l;

	tm_labels_init(&l);
	tm_labels_add(&l, "direction", direction_name(dir), true);
	tm_labels_add(&l, "reason", tm_reason_name(r), true);
	tm_series_add(tm_series_get(TM_F_REFUSED, &l), TM_V_OPENED, 1);
}
