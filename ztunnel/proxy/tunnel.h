/* Internal to ztunnel/proxy: tunnel.c, TCP connections carried in HBONE streams. */
#ifndef ZTUNNEL_PROXY_TUNNEL_H
#define ZTUNNEL_PROXY_TUNNEL_H

#include "proxy-t.h"

/* tunnel.c */
void tunnel_outbound(struct worker *w, int cfd, struct conn_info *ci, const struct route *rt,
		     const struct hbone_header *hdrs, size_t n_hdrs);
struct tunnel *tunnel_new(struct worker *w, int fd, struct conn_info *ci);
void tunnel_abort(struct tunnel *t, enum tm_reason reason, const char *why, bool rst_stream);
void tunnel_opened(struct tunnel *t);
/* Registers a tunnel among the worker's live connections. */
void tunnel_watch(struct tunnel *t);
void tunnel_hold(struct tunnel *t);
void tunnel_put(struct tunnel *t);
void tunnel_link_ready(struct tunnel *t);
void tunnel_link_failed(struct tunnel *t, enum tm_reason reason, const char *why);
void tunnel_unblock(struct tunnel *t);
extern const struct hbone_events tunnel_events;

#endif
