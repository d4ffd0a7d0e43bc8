/* Expiry of the agent's certificates as /config_dump lists them
 * (certificates[]: identity, state, certChain[0] the leaf with RFC 3339
 * validFrom/expirationTime). */
#ifndef ZTUNNEL_CTL_CERT_EXPIRY_H
#define ZTUNNEL_CTL_CERT_EXPIRY_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* The leaf of a certificates[] entry, NULL while it has none. */
const cJSON *cert_expiry_leaf(const cJSON *cert);

/* "2026-12-07T10:00:00Z" (fractional seconds and offsets accepted) to unix
 * seconds: 0, or -EINVAL. */
int cert_expiry_parse_time(const char *s, int64_t *out);

/* The identity has no certificate valid past now + within seconds: none at
 * all (Initializing, Unavailable), an unreadable expiry, or one ending
 * before then. An identity without a certificate cannot do mTLS, so it
 * fails an expiry requirement as an expired one does. */
bool cert_expiry_within(const cJSON *cert, int64_t now, int64_t within);

#endif
