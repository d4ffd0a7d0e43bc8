/* Internal to ztunnel/proxy: inbound.c, CONNECT requests on 15008. */
#ifndef ZTUNNEL_PROXY_INBOUND_H
#define ZTUNNEL_PROXY_INBOUND_H

#include "proxy-t.h"

/* inbound.c: a CONNECT arrived on a 15008 connection; it is dialled by
 * inbound_start_awaiting() once the read batch it came in is done, so a
 * stream the peer resets in the same batch never reaches the pod. */
void inbound_request(void *link, int32_t stream, const char *authority);
void inbound_start_awaiting(struct link *l);

#endif
