/* A watch body: the API server writes one JSON event per line, and a read
 * may end anywhere in one. */
#include "kube_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int one_line(const char *line, size_t n, kube_event_fn fn, void *ctx)
{
	while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
		n--;
	if (!n)
		return 0;
	cJSON *ev = cJSON_ParseWithLength(line, n);
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
	if (!ev || !type || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(ev, "object"))) {
		cJSON_Delete(ev);
		return -EPROTO;
	}
	int r = fn(type, ev, ctx);
	cJSON_Delete(ev);
	return r;
}

int kube_stream_feed(struct kube_stream *s, const char *data, size_t len, kube_event_fn fn, void *ctx)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (s->len + take > KUBE_EVENT_MAX)
			return -EFBIG;
		if (!nl || s->len) {
			/* Part of a line: keep it until its end arrives. */
			if (s->len + take + 1 > s->cap) {
				size_t cap = s->cap ? s->cap : 4096;
				while (cap < s->len + take + 1)
					cap *= 2;
				char *b = realloc(s->buf, cap);
				if (!b)
					return -ENOMEM;
				s->buf = b;
				s->cap = cap;
			}
			memcpy(s->buf + s->len, data, take);
			s->len += take;
		}
		if (!nl)
			return 0;
		int r = s->len ? one_line(s->buf, s->len, fn, ctx) : one_line(data, take, fn, ctx);
		s->len = 0;
		if (r < 0)
			return r;
		data += take + 1;
		len -= take + 1;
	}
	return 0;
}

void kube_stream_reset(struct kube_stream *s)
{
	free(s->buf);
	s->buf = NULL;
	s->len = s->cap = 0;
}
