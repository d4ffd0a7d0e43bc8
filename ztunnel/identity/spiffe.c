#include "ztunnel/identity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SCHEME "spiffe://"

/* Copies one path segment; refuses empty or oversized ones. */
static const char *segment(const char *p, char *out, size_t size)
{
	const char *end = strchr(p, '/');
	size_t n = end ? (size_t)(end - p) : strlen(p);

	if (!n || n >= size)
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	return p + n;
}

int spiffe_parse(const char *uri, struct spiffe_id *out)
{
	char ns_word[8], sa_word[8];
	const char *p;

	memset(out, 0, sizeof(*out));
	/* Case-sensitive on purpose: "SPIFFE://" is not an identity we issue. */
	if (!uri || strncmp(uri, SCHEME, strlen(SCHEME)))
		return -EINVAL;
	p = uri + strlen(SCHEME);
	if (!(p = segment(p, out->td, sizeof(out->td))) || *p++ != '/' ||
	    !(p = segment(p, ns_word, sizeof(ns_word))) || strcmp(ns_word, "ns") || *p++ != '/' ||
	    !(p = segment(p, out->ns, sizeof(out->ns))) || *p++ != '/' ||
	    !(p = segment(p, sa_word, sizeof(sa_word))) || strcmp(sa_word, "sa") || *p++ != '/' ||
	    !(p = segment(p, out->sa, sizeof(out->sa))) || *p) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

int spiffe_format(const struct spiffe_id *id, char *buf, size_t size)
{
	int n = snprintf(buf, size, SCHEME "%s/ns/%s/sa/%s", id->td, id->ns, id->sa);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : n;
}
