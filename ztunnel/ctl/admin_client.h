/* The agent's admin API (docs/admin.md) over HTTP with libcurl: one
 * request per call, nothing kept between calls. */
#ifndef ZTUNNEL_CTL_ADMIN_CLIENT_H
#define ZTUNNEL_CTL_ADMIN_CLIENT_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Where the admin API is when neither --admin nor $ZTUNNEL_ADMIN says. */
#define ADMIN_DEFAULT_URL "http://127.0.0.1:15000"

/* METHOD ("GET" or "POST", no body) base + path. 0 with *body (malloc'd,
 * NUL-terminated, *len bytes) for a 2xx answer. Otherwise -ECONNREFUSED,
 * -ETIMEDOUT, -EHOSTUNREACH, -EFBIG, -EIO when the agent was not reached or
 * its answer not read, -EPROTO when it answered with an error status; the
 * failure is printed here (URL, curl's or the agent's error), so callers
 * only turn it into their exit status. */
int admin_request(const char *base, const char *method, const char *path, char **body, size_t *len);

/* GET base + path and parse the JSON answer; -EBADMSG (printed) when it is
 * not JSON. */
int admin_get_json(const char *base, const char *path, cJSON **out);

#endif
