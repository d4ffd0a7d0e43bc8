/* The CONNECT target of an inbound HBONE stream (SPEC.md §2.4). */
#include "ztunnel/hbone.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* "10.1.2.3:8080" only: IPv6 capture is not proven yet (DESIGN.md §1).
 * The port is 1-5 decimal digits, nothing else: strtoul would also take a
 * sign, blanks and wrap a negative number around to a valid port (found
 * by tests/fuzz). */
int hbone_parse_authority(const char *a, uint32_t *ip, uint16_t *port)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(a, ':');
	unsigned long p = 0;

	if (!colon || colon == a || (size_t)(colon - a) >= sizeof(host))
		return -EINVAL;
	memcpy(host, a, (size_t)(colon - a));
	host[colon - a] = '\0';
	const char *d = colon + 1;
	size_t n = strlen(d);
	if (n < 1 || n > 5 || strspn(d, "0123456789") != n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		p = p * 10 + (unsigned long)(d[i] - '0');
	if (p == 0 || p > 65535 || inet_pton(AF_INET, host, ip) != 1)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}
