/* Fuzz target: the HTTP/2 bytes a peer sends an inbound HBONE connection
 * after TLS, into a server hbone_conn driven like the proxy drives it:
 * every CONNECT answered 200 with a few bytes and a half-close once the
 * peer half-closes, received data consumed, output drained between
 * chunks. The input follows the client preface (prepended here): it
 * starts with the client's SETTINGS. Checks the events contract: one
 * request per stream, no event for a stream after it closed. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ztunnel/hbone.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CHUNK 512
#define MAX_TRACKED 256

struct server {
	struct hbone_conn *c;
	/* Streams seen, so the contract can be checked. */
	int32_t ids[MAX_TRACKED];
	bool closed[MAX_TRACKED];
	uint32_t n;
};

static int tracked(struct server *s, int32_t id)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->ids[i] == id)
			return (int)i;
	return -1;
}

static void on_request(void *ctx, int32_t stream, const char *authority)
{
	struct server *s = ctx;
	static const char hello[] = "hello";

	FUZZ_CHECK(authority && *authority);
	/* hbone.h: the request event comes once per stream. */
	FUZZ_CHECK(tracked(s, stream) < 0);
	if (s->n < MAX_TRACKED) {
		s->ids[s->n] = stream;
		s->closed[s->n++] = false;
	}
	hbone_request_header(s->c, stream, "baggage");
	hbone_request_header(s->c, stream, "forwarded");
	hbone_request_header(s->c, stream, "traceparent");
	if (hbone_respond(s->c, stream, 200) == 0)
		hbone_send(s->c, stream, hello, sizeof(hello) - 1);
}

static void live(struct server *s, int32_t stream)
{
	int i = tracked(s, stream);
	FUZZ_CHECK(i < 0 || !s->closed[i]);
}

static void on_data(void *ctx, int32_t stream, const uint8_t *data, size_t len)
{
	struct server *s = ctx;

	(void)data;
	live(s, stream);
	hbone_consumed(s->c, stream, len);
}

static void on_eof(void *ctx, int32_t stream)
{
	struct server *s = ctx;

	live(s, stream);
	hbone_close_write(s->c, stream);
}

static void on_closed(void *ctx, int32_t stream, uint32_t error_code)
{
	struct server *s = ctx;
	int i = tracked(s, stream);

	(void)error_code;
	live(s, stream);
	if (i >= 0)
		s->closed[i] = true;
}

static void drain(struct hbone_conn *c)
{
	const uint8_t *out;

	while (hbone_output(c, &out) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct server s;
	const struct hbone_events ev = {
		.request = on_request, .data = on_data, .eof = on_eof, .closed = on_closed, .ctx = &s,
	};

	memset(&s, 0, sizeof(s));
	if (hbone_conn_new(&s.c, true, &ev) < 0)
		return 0;
	drain(s.c);
	int r = hbone_recv(s.c, PREFACE, sizeof(PREFACE) - 1);
	for (size_t off = 0; r == 0 && off < size; off += CHUNK) {
		r = hbone_recv(s.c, data + off, size - off < CHUNK ? size - off : CHUNK);
		drain(s.c);
	}
	hbone_streams(s.c);
	hbone_goaway(s.c);
	drain(s.c);
	hbone_done(s.c);
	hbone_conn_free(s.c);
	return 0;
}
