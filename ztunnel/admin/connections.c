/* GET /connections: what every worker says it holds (it answers on its
 * next tick; the admin thread waits, the data path does not). */
#include "admin_int.h"

#include <arpa/inet.h>
#include <stdio.h>

#include "ztunnel/proxy.h"

static void addr(cJSON *o, const char *key, const struct sockaddr_in *a)
{
	char ip[INET_ADDRSTRLEN], buf[32];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, sizeof(buf), "%s:%u", ip, ntohs(a->sin_port));
	cJSON_AddStringToObject(o, key, buf);
}

static cJSON *entry(const struct proxy_conn_view *v)
{
	cJSON *o = cJSON_CreateObject();
	bool out = v->dir == PROXY_OUTBOUND;

	cJSON_AddStringToObject(o, "direction", out ? "outbound" : "inbound");
	cJSON_AddStringToObject(o, "protocol", v->hbone ? "HBONE" : "TCP");
	addr(o, "src", &v->src);
	if (v->hbone && out && v->hbone_peer.sin_port) {
		addr(o, "dst", &v->hbone_peer);
		addr(o, "hboneAddr", &v->up);
	} else {
		addr(o, "dst", &v->up);
		if (v->hbone)
			addr(o, "hboneAddr", &v->up);
	}
	cJSON_AddStringToObject(o, "srcWorkload", v->src_name);
	cJSON_AddStringToObject(o, "dstWorkload", v->dst_name);
	cJSON_AddStringToObject(o, "service", v->service);
	cJSON_AddStringToObject(o, "srcIdentity", v->src_identity);
	cJSON_AddStringToObject(o, "dstIdentity", v->dst_identity);
	cJSON_AddStringToObject(o, "policy", v->policy);
	/* From the local pod's side, as the access log (SPEC §6.2). */
	cJSON_AddNumberToObject(o, "bytesSent", (double)(out ? v->bytes_up : v->bytes_down));
	cJSON_AddNumberToObject(o, "bytesRecv", (double)(out ? v->bytes_down : v->bytes_up));
	cJSON_AddNumberToObject(o, "ageMs", (double)v->age_ms);
	return o;
}

void admin_connections(struct admin *a, struct admin_reply *r)
{
	struct proxy *p = atomic_load(&a->proxy);
	struct proxy_conn_list list;

	if (!p)
		return reply_error(r, 503, "the data path is not running");
	if (proxy_connections(p, &list, 1000) < 0)
		return reply_error(r, 500, "out of memory");
	cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "connections");
	cJSON_AddNumberToObject(doc, "workers", list.workers);
	cJSON_AddNumberToObject(doc, "answered", list.answered);
	cJSON_AddBoolToObject(doc, "truncated", list.truncated);
	for (size_t i = 0; i < list.n; i++)
		cJSON_AddItemToArray(arr, entry(&list.v[i]));
	proxy_conn_list_free(&list);
	reply_json(r, 200, doc);
}
