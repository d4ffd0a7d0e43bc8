/* HBONE HTTP/2 sessions, client and server, driven in memory: CONNECT and
 * its statuses, data both ways beyond the stream window, half-close,
 * backpressure until the application consumes, resets, many streams.
 * Every test runs three times: DATA frames copied out by hbone_output,
 * handed over from the stream's queue (write_data, as the proxy does),
 * and handed over with every other offer refused for lack of room. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/hbone.h"
#include "ztunnel/hbone_headers.h"

#include <nghttp2/nghttp2.h>

#define MAX_STREAMS 256

struct side {
	struct hbone_conn *c;
	bool server;
	bool consume; /* report received bytes as consumed at once */
	int auto_status;
	char authority[MAX_STREAMS][64];
	char baggage[64], forwarded[64], traceparent[64]; /* the last request's */
	int status[MAX_STREAMS];
	size_t received[MAX_STREAMS];
	uint8_t *sink[MAX_STREAMS];
	bool eof[MAX_STREAMS], closed[MAX_STREAMS];
	uint32_t close_code[MAX_STREAMS];
	int requests;
	struct side *peer;
	unsigned offers, refused, handed;
};

enum data_mode { COPIED, HANDED_OVER, HANDED_OVER_LATE };
static enum data_mode mode;

static int idx(int32_t stream)
{
	assert_true(stream > 0 && stream / 2 < MAX_STREAMS);
	return stream / 2;
}

static void on_request(void *ctx, int32_t stream, const char *authority)
{
	struct side *s = ctx;
	snprintf(s->authority[idx(stream)], 64, "%s", authority);
	const char *b = hbone_request_header(s->c, stream, "baggage"), *f = hbone_request_header(s->c, stream, "forwarded");
	const char *t = hbone_request_header(s->c, stream, "traceparent");
	snprintf(s->baggage, sizeof(s->baggage), "%s", b ? b : "");
	snprintf(s->forwarded, sizeof(s->forwarded), "%s", f ? f : "");
	snprintf(s->traceparent, sizeof(s->traceparent), "%s", t ? t : "");
	s->requests++;
	if (s->auto_status)
		assert_int_equal(hbone_respond(s->c, stream, s->auto_status), 0);
}

static void on_response(void *ctx, int32_t stream, int status)
{
	((struct side *)ctx)->status[idx(stream)] = status;
}

static void on_data(void *ctx, int32_t stream, const uint8_t *data, size_t len)
{
	struct side *s = ctx;
	int i = idx(stream);
	if (s->sink[i])
		memcpy(s->sink[i] + s->received[i], data, len);
	s->received[i] += len;
	if (s->consume)
		hbone_consumed(s->c, stream, len);
}

static void on_eof(void *ctx, int32_t stream)
{
	((struct side *)ctx)->eof[idx(stream)] = true;
}

static void on_closed(void *ctx, int32_t stream, uint32_t code)
{
	struct side *s = ctx;
	s->closed[idx(stream)] = true;
	s->close_code[idx(stream)] = code;
}

/* write_data: the frame goes to the peer at once, which keeps it in order
 * with what hbone_output returned before (already delivered). */
static int hand_over(void *ctx, const uint8_t *hd, size_t hlen, const uint8_t *payload, size_t len)
{
	struct side *s = ctx;
	assert_non_null(s->peer);
	if (mode == HANDED_OVER_LATE && s->offers++ % 2 == 0) {
		s->refused++;
		return -EAGAIN;
	}
	assert_int_equal(hlen, 9);
	s->handed++;
	assert_int_equal(hbone_recv(s->peer->c, hd, hlen), 0);
	assert_int_equal(hbone_recv(s->peer->c, payload, len), 0);
	return 0;
}

static void side_init(struct side *s, bool server)
{
	memset(s, 0, sizeof(*s));
	s->server = server;
	s->consume = true;
	s->auto_status = 200;
	struct hbone_events ev = { on_request, on_response, on_data, on_eof, on_closed,
				   mode == COPIED ? NULL : hand_over, s };
	assert_int_equal(hbone_conn_new(&s->c, server, &ev), 0);
}

static void side_free(struct side *s)
{
	hbone_conn_free(s->c);
	for (int i = 0; i < MAX_STREAMS; i++)
		free(s->sink[i]);
}

/* Moves bytes both ways until neither side has anything to say. */
static void pump(struct side *a, struct side *b)
{
	a->peer = b;
	b->peer = a;
	for (int round = 0; round < 10000; round++) {
		const uint8_t *d;
		unsigned refused = a->refused + b->refused;
		ssize_t n1 = hbone_output(a->c, &d);
		assert_true(n1 >= 0);
		if (n1)
			assert_int_equal(hbone_recv(b->c, d, (size_t)n1), 0);
		ssize_t n2 = hbone_output(b->c, &d);
		assert_true(n2 >= 0);
		if (n2)
			assert_int_equal(hbone_recv(a->c, d, (size_t)n2), 0);
		if (!n1 && !n2 && refused == a->refused + b->refused)
			return;
	}
	fail_msg("sessions never went quiet");
}

/* Queues all of data on the stream, pumping as the buffer fills. */
static void send_all(struct side *from, struct side *to, int32_t stream, const uint8_t *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = hbone_send(from->c, stream, data + off, len - off);
		assert_true(n >= 0);
		off += (size_t)n;
		pump(from, to);
	}
}

static void connect_200_carries_data_both_ways_past_the_window_and_half_closes(void **state)
{
	(void)state;
	struct side c, s;
	struct hbone_header hdrs[HBONE_MAX_HEADERS];
	struct hbone_source_info src = { .namespace = "shop", .canonical_name = "web" };
	unsigned seed = 3;
	size_t nh = hbone_request_headers(&src, "10.244.1.2:5555", NULL, &seed, hdrs);
	side_init(&c, false);
	side_init(&s, true);
	int32_t id = hbone_connect(c.c, "10.244.2.2:7000", hdrs, nh);
	assert_true(id > 0);
	pump(&c, &s);
	assert_string_equal(s.authority[idx(id)], "10.244.2.2:7000");
	assert_string_equal(s.baggage, "k8s.namespace.name=shop,service.name=web");
	assert_string_equal(s.forwarded, "for=\"10.244.1.2:5555\"");
	assert_string_equal(s.traceparent, hdrs[2].value);
	/* answered: an open stream holds none of its request's headers */
	assert_null(hbone_request_header(s.c, id, "baggage"));
	assert_int_equal(c.status[idx(id)], 200);

	size_t big = 5u << 20; /* more than the 4 MiB stream window */
	uint8_t *up = malloc(big), *down = malloc(big);
	for (size_t i = 0; i < big; i++) {
		up[i] = (uint8_t)(i * 31);
		down[i] = (uint8_t)(i * 17);
	}
	s.sink[idx(id)] = malloc(big);
	c.sink[idx(id)] = malloc(big);
	send_all(&c, &s, id, up, big);
	assert_int_equal(hbone_close_write(c.c, id), 0); /* client FIN */
	pump(&c, &s);
	assert_true(s.eof[idx(id)]);
	assert_false(s.closed[idx(id)]); /* half-closed: the server may still send */
	send_all(&s, &c, id, down, big);
	assert_int_equal(hbone_close_write(s.c, id), 0);
	pump(&c, &s);
	assert_int_equal(s.received[idx(id)], big);
	assert_int_equal(c.received[idx(id)], big);
	assert_memory_equal(s.sink[idx(id)], up, big);
	assert_memory_equal(c.sink[idx(id)], down, big);
	assert_true(c.eof[idx(id)]);
	assert_true(c.closed[idx(id)] && s.closed[idx(id)]);
	assert_int_equal(c.close_code[idx(id)], 0);
	assert_int_equal(hbone_streams(c.c), 0);
	free(up);
	free(down);
	side_free(&c);
	side_free(&s);
}

static void unconsumed_data_stops_at_the_window_then_resumes(void **state)
{
	(void)state;
	struct side c, s;
	side_init(&c, false);
	side_init(&s, true);
	s.consume = false; /* the server's upstream is not draining */
	int32_t id = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	pump(&c, &s);
	size_t big = 8u << 20, off = 0;
	uint8_t *buf = calloc(1, big);
	for (int i = 0; i < 100; i++) {
		ssize_t n = hbone_send(c.c, id, buf + off, big - off);
		off += (size_t)n;
		pump(&c, &s);
	}
	assert_int_equal(s.received[idx(id)], HBONE_STREAM_WINDOW);
	assert_int_equal(off, HBONE_STREAM_WINDOW + HBONE_SEND_BUFFER); /* and no more is taken */
	assert_int_equal(hbone_send(c.c, id, buf, 1), 0);
	hbone_consumed(s.c, id, s.received[idx(id)]); /* upstream drained */
	s.consume = true;
	send_all(&c, &s, id, buf + off, big - off);
	pump(&c, &s);
	assert_int_equal(s.received[idx(id)], big);
	free(buf);
	side_free(&c);
	side_free(&s);
}

/* The send queue is a ring: bytes queued while earlier ones wait for the
 * window wrap around its end, and arrive in order. */
static void queued_bytes_wrap_around_the_send_ring_in_order(void **state)
{
	(void)state;
	struct side c, s;
	side_init(&c, false);
	side_init(&s, true);
	s.consume = false;
	int32_t id = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	pump(&c, &s);
	size_t total = HBONE_STREAM_WINDOW + 2 * HBONE_SEND_BUFFER, off = 0;
	uint8_t *data = malloc(total);
	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 7 + i / 65536);
	s.sink[idx(id)] = malloc(total);
	/* The window full, then a send buffer's worth queued behind it. */
	while (off < HBONE_STREAM_WINDOW + HBONE_SEND_BUFFER) {
		ssize_t n = hbone_send(c.c, id, data + off, HBONE_STREAM_WINDOW + HBONE_SEND_BUFFER - off);
		assert_true(n > 0);
		off += (size_t)n;
		pump(&c, &s);
	}
	assert_int_equal(s.received[idx(id)], HBONE_STREAM_WINDOW);
	/* A third of the window back: a third of the queue leaves from its
	 * front, and what is queued next goes around the ring's end. */
	size_t consumed = 0;
	for (int round = 0; round < 6; round++) {
		size_t back = HBONE_SEND_BUFFER / 3;
		hbone_consumed(s.c, id, back);
		consumed += back;
		pump(&c, &s);
		ssize_t n = hbone_send(c.c, id, data + off, total - off < back ? total - off : back);
		assert_true(n >= 0);
		off += (size_t)n;
		pump(&c, &s);
	}
	s.consume = true;
	hbone_consumed(s.c, id, s.received[idx(id)] - consumed);
	send_all(&c, &s, id, data + off, total - off);
	pump(&c, &s);
	assert_int_equal(s.received[idx(id)], total);
	assert_memory_equal(s.sink[idx(id)], data, total);
	if (mode != COPIED) /* the frames really took the other way */
		assert_true(c.handed > total / HBONE_DATA_CHUNK);
	free(data);
	side_free(&c);
	side_free(&s);
}

static void error_statuses_end_the_stream_and_resets_propagate(void **state)
{
	(void)state;
	struct side c, s;
	side_init(&c, false);
	side_init(&s, true);
	s.auto_status = 0;
	int32_t denied = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	int32_t refused = hbone_connect(c.c, "10.0.0.1:81", NULL, 0);
	int32_t reset = hbone_connect(c.c, "10.0.0.1:82", NULL, 0);
	pump(&c, &s);
	assert_int_equal(s.requests, 3);
	hbone_respond(s.c, denied, 401);
	hbone_respond(s.c, refused, 503);
	hbone_respond(s.c, reset, 200);
	pump(&c, &s);
	assert_int_equal(c.status[idx(denied)], 401);
	assert_int_equal(c.status[idx(refused)], 503);
	assert_true(c.eof[idx(denied)]); /* header-only with END_STREAM */
	assert_int_equal(c.status[idx(reset)], 200);
	assert_int_equal(hbone_reset(c.c, reset), 0);
	pump(&c, &s);
	assert_true(s.closed[idx(reset)]);
	assert_int_equal(s.close_code[idx(reset)], 10); /* CONNECT_ERROR */
	side_free(&c);
	side_free(&s);
}

static void a_hundred_streams_share_one_connection(void **state)
{
	(void)state;
	struct side c, s;
	int32_t ids[100];
	side_init(&c, false);
	side_init(&s, true);
	for (int i = 0; i < 100; i++) {
		char auth[32];
		snprintf(auth, sizeof(auth), "10.0.0.%d:80", i + 1);
		ids[i] = hbone_connect(c.c, auth, NULL, 0);
	}
	pump(&c, &s);
	assert_int_equal(s.requests, 100);
	assert_int_equal(hbone_streams(c.c), 100);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(c.status[idx(ids[i])], 200);
		assert_int_equal(hbone_send(c.c, ids[i], "hello", 5), 5);
		hbone_close_write(c.c, ids[i]);
	}
	pump(&c, &s);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(s.received[idx(ids[i])], 5);
		assert_true(s.eof[idx(ids[i])]);
	}
	side_free(&c);
	side_free(&s);
}

static void ping_is_acknowledged_goaway_drains_and_the_server_limit_is_seen(void **state)
{
	(void)state;
	struct side c, s;
	side_init(&c, false);
	side_init(&s, true);
	int32_t id = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	pump(&c, &s);
	/* SPEC 2.2: the server advertises 200 concurrent streams. */
	assert_int_equal(hbone_peer_max_streams(c.c), HBONE_SERVER_MAX_STREAMS);
	assert_false(hbone_ping_outstanding(c.c));
	assert_int_equal(hbone_ping(c.c), 0);
	assert_true(hbone_ping_outstanding(c.c));
	pump(&c, &s);
	assert_false(hbone_ping_outstanding(c.c));
	/* GOAWAY: the open stream still finishes, then both sides are done. */
	assert_int_equal(hbone_goaway(s.c), 0);
	pump(&c, &s);
	assert_true(hbone_goaway_received(c.c));
	assert_false(hbone_done(c.c));
	assert_int_equal(hbone_send(c.c, id, "x", 1), 1);
	hbone_close_write(c.c, id);
	hbone_close_write(s.c, id);
	pump(&c, &s);
	assert_int_equal(s.received[idx(id)], 1);
	assert_true(c.closed[idx(id)]);
	assert_true(hbone_done(c.c));
	side_free(&c);
	side_free(&s);
}

/* Wire alignment with Istio's ztunnel: its PING payload (h2's opaque ping,
 * not eight zeros), and after a non-200 answer the client cancels the
 * stream (RST_STREAM CANCEL, as h2 does for a dropped stream). */
static void ping_payload_and_cancel_after_401_match_istio(void **state)
{
	(void)state;
	static const uint8_t istio_ping[8] = { 0x3b, 0x7c, 0xdb, 0x7a, 0x0b, 0x87, 0x16, 0xb4 };
	struct side c, s;
	const uint8_t *d;
	side_init(&c, false);
	side_init(&s, true);
	s.auto_status = 401;
	int32_t id = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	pump(&c, &s);
	assert_int_equal(c.status[idx(id)], 401);
	assert_int_equal(hbone_ping(c.c), 0);
	ssize_t n = hbone_output(c.c, &d);
	assert_true(n >= 17);
	assert_non_null(memmem(d, (size_t)n, istio_ping, sizeof(istio_ping)));
	assert_int_equal(hbone_recv(s.c, d, (size_t)n), 0);
	assert_int_equal(hbone_cancel(c.c, id), 0);
	pump(&c, &s);
	assert_false(hbone_ping_outstanding(c.c));
	assert_true(s.closed[idx(id)]);
	assert_int_equal(s.close_code[idx(id)], NGHTTP2_CANCEL);
	side_free(&c);
	side_free(&s);
}

/* Trailers after a CONNECT request are not a second request: the request
 * event fires once per stream. The bytes are the fuzzer's finding
 * (tests/fuzz/corpus/hbone_server/regression-trailers-repeat-request: SETTINGS,
 * CONNECT on stream 1, then an empty HEADERS frame with END_STREAM). */
static void trailers_do_not_repeat_the_request(void **state)
{
	(void)state;
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	char path[4096];
	uint8_t in[4096];
	struct side s;
	snprintf(path, sizeof(path), "%s/../fuzz/corpus/hbone_server/regression-trailers-repeat-request",
		 getenv("ZT_TEST_SRCDIR") ? getenv("ZT_TEST_SRCDIR") : ".");
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(in, 1, sizeof(in), f);
	fclose(f);
	side_init(&s, true);
	s.auto_status = 0;
	/* The harness prefixes the client preface the same way. */
	assert_int_equal(hbone_recv(s.c, preface, sizeof(preface) - 1), 0);
	hbone_recv(s.c, in, n);
	assert_int_equal(s.requests, 1);
	side_free(&s);
}

static void stream_user_pointers_follow_their_streams(void **state)
{
	(void)state;
	struct side c, s;
	int mark = 1;
	side_init(&c, false);
	side_init(&s, true);
	int32_t id = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	hbone_set_user(c.c, id, &mark);
	assert_ptr_equal(hbone_user(c.c, id), &mark);
	assert_null(hbone_user(c.c, id + 2));
	pump(&c, &s);
	assert_int_equal(hbone_reset(c.c, id), 0);
	pump(&c, &s);
	assert_null(hbone_user(c.c, id));
	side_free(&c);
	side_free(&s);
}

/* A client connection near the end of its stream ids says so (the pool
 * retires it) and can still open the streams it has left. */
static void stream_ids_running_out_is_reported(void **state)
{
	(void)state;
	struct side c, s;
	side_init(&c, false);
	side_init(&s, true);
	assert_false(hbone_ids_running_out(c.c));
	assert_int_equal(hbone_skip_stream_ids(c.c, (int32_t)(HBONE_LAST_STREAM_ID - HBONE_ID_RESERVE + 2)), 0);
	assert_true(hbone_ids_running_out(c.c));
	/* (not pumped: the harness indexes streams by small ids) */
	int32_t id = hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	assert_int_equal(id, (int32_t)(HBONE_LAST_STREAM_ID - HBONE_ID_RESERVE + 2));
	side_free(&c);
	side_free(&s);
}

/* A peer's connection error (DATA on stream 0): nghttp2 answers GOAWAY
 * PROTOCOL_ERROR on its own, and says why, for the log. */
static void a_peer_protocol_error_is_reported_with_the_goaway(void **state)
{
	(void)state;
	struct side c, s;
	const char *code = "unset";
	side_init(&c, false);
	side_init(&s, true);
	hbone_connect(c.c, "10.0.0.1:80", NULL, 0);
	pump(&c, &s);
	assert_null(hbone_goaway_sent_error(s.c, &code));
	assert_null(code);
	static const uint8_t data_on_0[] = { 0, 0, 1, 0, 0, 0, 0, 0, 0, 'x' };
	assert_int_equal(hbone_recv(s.c, data_on_0, sizeof(data_on_0)), 0);
	const uint8_t *d;
	while (hbone_output(s.c, &d) > 0)
		;
	const char *why = hbone_goaway_sent_error(s.c, &code);
	assert_non_null(why);
	assert_string_equal(code, "PROTOCOL_ERROR");
	assert_non_null(strstr(why, "stream_id == 0"));
	assert_true(hbone_done(s.c));
	side_free(&c);
	side_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connect_200_carries_data_both_ways_past_the_window_and_half_closes),
		cmocka_unit_test(unconsumed_data_stops_at_the_window_then_resumes),
		cmocka_unit_test(queued_bytes_wrap_around_the_send_ring_in_order),
		cmocka_unit_test(error_statuses_end_the_stream_and_resets_propagate),
		cmocka_unit_test(a_hundred_streams_share_one_connection),
		cmocka_unit_test(ping_is_acknowledged_goaway_drains_and_the_server_limit_is_seen),
		cmocka_unit_test(ping_payload_and_cancel_after_401_match_istio),
		cmocka_unit_test(trailers_do_not_repeat_the_request),
		cmocka_unit_test(stream_user_pointers_follow_their_streams),
		cmocka_unit_test(stream_ids_running_out_is_reported),
		cmocka_unit_test(a_peer_protocol_error_is_reported_with_the_goaway),
	};
	static const char *names[] = { "DATA copied", "DATA handed over", "DATA handed over, every other offer refused" };
	int failed = 0;
	for (mode = COPIED; mode <= HANDED_OVER_LATE; mode++)
		failed += _cmocka_run_group_tests(names[mode], tests, sizeof(tests) / sizeof(tests[0]), NULL, NULL);
	return failed;
}
