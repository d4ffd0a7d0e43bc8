/* Certificate expiry from /config_dump, for `certificates
 * --expiring-within` and the compliance report. */
#include "cert_expiry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const cJSON *cert_expiry_leaf(const cJSON *cert)
{
	const cJSON *leaf = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cert, "certChain"), 0);

	return cJSON_IsObject(leaf) ? leaf : NULL;
}

int cert_expiry_parse_time(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	long offset = 0;

	if (!p)
		return -EINVAL;
	if (*p == '.') /* fractions of a second do not matter here */
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == '+' || *p == '-') {
		int hh, mm, n = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
			return -EINVAL;
		offset = (*p == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
		p += 6;
	} else if (*p == 'Z' || *p == 'z') {
		p++;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	*out = (int64_t)timegm(&tm) - offset;
	return 0;
}

bool cert_expiry_within(const cJSON *cert, int64_t now, int64_t within)
{
	const cJSON *leaf = cert_expiry_leaf(cert);
	int64_t not_after;

	if (!leaf || cert_expiry_parse_time(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
						    leaf, "expirationTime")),
					    &not_after) < 0)
		return true;
	return not_after <= now + within;
}
