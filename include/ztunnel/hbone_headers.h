/* Headers ztunnel adds to a CONNECT (SPEC.md §2.3), built without I/O. */
#ifndef ZTUNNEL_HBONE_HEADERS_H
#define ZTUNNEL_HBONE_HEADERS_H

#include <stddef.h>
#include <stdint.h>

struct hbone_source_info {
	const char *cluster;          /* k8s.cluster.name */
	const char *namespace;        /* k8s.namespace.name */
	const char *workload_type;    /* deployment | cronjob | pod | job */
	const char *workload_name;    /* k8s.<type>.name */
	const char *canonical_name;   /* service.name */
	const char *canonical_revision; /* service.version */
	const char *region, *zone;    /* cloud.region, cloud.availability_zone */
};

struct hbone_header {
	char name[16];
	char value[512];
};

#define HBONE_MAX_HEADERS 3

/* baggage alone (present fields only); 0 when there is nothing to say.
 * Also the 200 response's description of the destination (SPEC §2.4). */
size_t hbone_baggage(const struct hbone_source_info *src, struct hbone_header *out);

/* baggage (present fields only), forwarded (for="client"[;host=service])
 * and traceparent (random ids from rand_seed). Returns the count. */
size_t hbone_request_headers(const struct hbone_source_info *src, const char *client_addr,
			     const char *service_host, unsigned *rand_seed,
			     struct hbone_header out[HBONE_MAX_HEADERS]);

#endif
