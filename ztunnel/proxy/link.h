/* Internal to ztunnel/proxy: link.c and link_server.c, HBONE connections. */
#ifndef ZTUNNEL_PROXY_LINK_H
#define ZTUNNEL_PROXY_LINK_H

#include "proxy-t.h"

/* link.c */
struct link *link_dial(struct worker *w, const struct hbone_pool_key *key, struct tls_ctx *ctx,
		       const struct spiffe_id *expected);
void link_accept(struct worker *w, int fd);
/* It leaves the pre-handshake budget (handshake done, or gone); no-op when
 * it holds no slot. */
void link_unadmit(struct link *l);
void link_accept_pair(struct worker *w, int fd, const struct sockaddr_in *peer,
		      const struct sockaddr_in *local);
void link_flush(struct link *l);
void link_attach(struct link *l, struct tunnel *t);
void link_detach(struct link *l, struct tunnel *t);
/* A stream the peer reset before it was served: spends the link's budget
 * for those; an exhausted budget ends the connection (rapid reset). */
void link_reset_unserved(struct link *l);
/* Server: whether l may open one more stream now (--max-stream-rate). */
bool link_stream_allowed(struct link *l);
struct link *link_dialing(struct worker *w, const struct hbone_pool_key *key);
/* Keeps l allocated across calls that may tear it down. */
void link_hold(struct link *l);
void link_put(struct link *l);
/* link.c, for link_server.c: a new connection, start its I/O, tear it
 * down (why NULL: orderly), its peer for logs. */
struct link *link_new(struct worker *w, bool server, int fd);
void link_start(struct link *l);
void link_fail(struct link *l, enum tm_reason reason, const char *why);
void link_describe(const struct link *l, char *buf, size_t size);
/* Nonzero when ip is an enrolled pod of this node (the capture's table). */
int link_pod_enrolled(struct worker *w, uint32_t ip);
/* link_server.c: (re)try serving a 15008 connection with its pod's
 * certificate; the aggregated line for streams reset before served. */
void link_serve(struct link *l);
void link_log_resets(struct link *l);
void links_tick(struct worker *w);
void links_close_all(struct worker *w);
/* Drain (SPEC §10): GOAWAY on every established connection, pooled ones
 * leave the pool. */
void links_drain(struct worker *w);
uint32_t links_live(const struct worker *w);

#endif
