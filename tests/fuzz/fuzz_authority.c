/* Fuzz target: the :authority of an inbound CONNECT (a peer's bytes) through
 * hbone_parse_authority. An accepted target has a port and survives being
 * written back as "a.b.c.d:port" and parsed again. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "ztunnel/hbone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *a = fuzz_cstring(data, size);
	uint32_t ip = 0, ip2 = 0;
	uint16_t port = 0, port2 = 0;

	if (!a)
		return 0;
	if (hbone_parse_authority(a, &ip, &port) == 0) {
		char host[INET_ADDRSTRLEN], again[INET_ADDRSTRLEN + 8];
		FUZZ_CHECK(port != 0);
		FUZZ_CHECK(inet_ntop(AF_INET, &ip, host, sizeof(host)));
		snprintf(again, sizeof(again), "%s:%u", host, port);
		FUZZ_CHECK(hbone_parse_authority(again, &ip2, &port2) == 0);
		FUZZ_CHECK(ip2 == ip && port2 == port);
	}
	free(a);
	return 0;
}
