/* Internal to ztunnel/admin: the server's state and the handlers, which
 * fill a reply and never see libmicrohttpd (so they stay testable). */
#ifndef ZTUNNEL_ADMIN_INT_H
#define ZTUNNEL_ADMIN_INT_H

#include <cjson/cJSON.h>

#include "ztunnel/admin.h"
#include "ztunnel/log.h"
#include "ztunnel/telemetry.h"

struct MHD_Daemon;

struct admin {
	struct admin_deps d;
	_Atomic(struct proxy *) proxy;
	atomic_bool quit_answering; /* "shutdown now" not sent yet */
	struct MHD_Daemon *daemons[3]; /* admin, metrics, readiness */
	int start_level[LOG_TARGETS];   /* what ?reset restores */
};

struct admin_reply {
	int status;
	const char *type;
	struct tm_text body;
};

void reply_text(struct admin_reply *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Pretty-printed; takes doc. */
void reply_json(struct admin_reply *r, int status, cJSON *doc);
/* {"error": msg} */
void reply_error(struct admin_reply *r, int status, const char *msg);

/* config_dump.c */
void admin_config_dump(struct admin *a, struct admin_reply *r);
void admin_snapshot(struct admin *a, struct admin_reply *r);
/* connections.c */
void admin_connections(struct admin *a, struct admin_reply *r);
/* logging.c: level is the ?level value (NULL: none given). */
void admin_logging(struct admin *a, const char *level, bool reset, struct admin_reply *r);
/* readiness.c */
/* detailed: say why (admin port only). */
void admin_ready_reply(struct admin *a, bool detailed, struct admin_reply *r);
/* collectors.c: the metrics that live outside the registry. */
void admin_collectors_register(struct admin *a);
void admin_collectors_unregister(struct admin *a);
/* An RFC 3339 UTC time. */
void admin_time(int64_t unix_s, char *buf, size_t size);

#endif
