/* Internal to ztunnel/proxy: conn.c, a plain relayed connection, and the socket helpers every part uses. */
#ifndef ZTUNNEL_PROXY_CONN_H
#define ZTUNNEL_PROXY_CONN_H

#include "proxy-t.h"

/* conn.c: takes an accepted client socket through routing, then a plain
 * relay or an outbound tunnel. */
void conn_start(struct worker *w, uint8_t dir, int cfd);
void reset_socket(int fd);
/* A socket error as the access log says it, and its reason. */
const char *errno_reason(int res);
enum tm_reason errno_tm_reason(int res);
/* A failed upstream connect (-ECANCELED: our timeout), both ways. */
enum tm_reason connect_reason(int res);
const char *connect_error(int res);
void fmt_addr(const struct sockaddr_in *a, char *buf, size_t size);
/* The log fields' names, "namespace/name" of each end ("" when unknown)
 * and the service's hostname, replacing any: 0 or -ENOMEM (then empty). */
int conn_info_set_names(struct conn_info *ci, const struct zt_workload *src, const struct zt_workload *dst,
			const char *service);
const char *conn_info_src_name(const struct conn_info *ci); /* "" when none */
const char *conn_info_dst_name(const struct conn_info *ci);
const char *conn_info_service(const struct conn_info *ci);
void conn_info_set_policy(struct conn_info *ci, const char *policy);
const char *conn_info_policy(const struct conn_info *ci);
/* Frees what it owns; moving ci elsewhere (a struct copy) is followed by
 * conn_info_disown on the source. */
void conn_info_release(struct conn_info *ci);
void conn_info_disown(struct conn_info *ci);
/* log_every, once a second on the worker's clock. */
bool log_turn(atomic_int_fast64_t *last);
void refuse_socket(struct worker *w, uint8_t dir, int fd, const struct sockaddr_in *src,
		   const struct sockaddr_in *dst, enum tm_reason reason, const char *why);

#endif
