/* Internal to ztunnel/proxy: live.c, the worker's live connections. */
#ifndef ZTUNNEL_PROXY_LIVE_H
#define ZTUNNEL_PROXY_LIVE_H

#include "proxy-t.h"

void watch_add(struct worker *w, struct watch *wt);
void watch_del(struct worker *w, struct watch *wt);
void watch_recheck(struct worker *w);
/* Stopping: every live connection is reset, every HBONE connection closed. */
void watch_close_all(struct worker *w, enum tm_reason reason, const char *why);
/* Every tick: parked connections try again. */
void watch_retry(struct worker *w);
/* --stream-idle-timeout: inbound HBONE streams with no bytes either way
 * for that long are closed (at most once a second). */
void watch_idle(struct worker *w);
/* Long-lived connections: bytes into the metrics every 30 s, and an
 * access-log line every --access-log-interval seconds when set. */
void watch_report(struct worker *w);
/* Marks wt as waiting (retry on every tick) or no longer waiting. */
void watch_park(struct worker *w, struct watch *wt, void (*retry)(struct watch *wt));
void watch_unpark(struct worker *w, struct watch *wt);
/* Every tick: answers the admin's request for live connections. */
void live_answer_request(struct worker *w);

#endif
