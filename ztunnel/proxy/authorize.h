/* Internal to ztunnel/proxy: authorize.c, inbound authorization at the edge. */
#ifndef ZTUNNEL_PROXY_AUTHORIZE_H
#define ZTUNNEL_PROXY_AUTHORIZE_H

#include "proxy-t.h"

struct authz_decision;

/* authorize.c: TM_R_NONE when allowed, else why not (and why says it). */
enum tm_reason authorize_inbound(const struct zt_model *m, const struct conn_info *ci, struct authz_decision *d,
				 char *why, size_t why_size);

#endif
