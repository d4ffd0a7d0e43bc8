/* Internal to ztunnel/proxy: access.c, what a connection leaves behind (metrics, access log). */
#ifndef ZTUNNEL_PROXY_ACCESS_H
#define ZTUNNEL_PROXY_ACCESS_H

#include "proxy-t.h"

/* access.c: the destination is resolved (under the model's read lock:
 * the workloads and service point into it): the traffic series, opened. */
void conn_opened(struct worker *w, struct conn_info *ci, const struct zt_workload *src, const struct zt_workload *dst,
		 const struct zt_service *svc);
/* Closed: metrics and the access-log line. */
void conn_log(struct worker *w, struct conn_info *ci);
/* Closed without a line (reset by the peer before it was served: those
 * are logged in aggregate). */
void conn_closed_quietly(struct conn_info *ci);
/* A long-lived connection's bytes so far into the metrics, and a
 * "connection update" line when line is set. */
void conn_report(struct conn_info *ci, bool line);
const char *direction_name(uint8_t dir);
struct authz_decision;
/* Every inbound decision, counted by policy; r is TM_R_NONE when allowed. */
void count_decision(struct conn_info *ci, const struct authz_decision *d, enum tm_reason r);
/* A new connection denied: closed as such, one access-log line. */
void log_denied(struct conn_info *ci, const struct authz_decision *d, enum tm_reason r, const char *why, int status);
/* A live connection a new snapshot denies (it is closed next). */
void log_revoked(const struct conn_info *ci, const struct authz_decision *d, enum tm_reason r, const char *why);
/* Refused before its destination was resolved. */
void count_refused(uint8_t dir, enum tm_reason r);

#endif
