#include "ztunnel/hbone.h"
#include "ztunnel/hbone_headers.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_HEADER 9 /* RFC 9113 §4.1 */

struct hbone_stream {
	int32_t id;
	uint8_t *buf; /* queued outgoing bytes: a ring of HBONE_SEND_BUFFER */
	size_t len, off; /* how many are queued, from where */
	bool eof_queued, deferred;
	/* Server: the request's headers, held until the response is sent (an
	 * open stream keeps none of it). */
	struct hbone_request *req;
	int status;
	void *user;
	struct hbone_stream *next;
};

struct hbone_request {
	char authority[128];
	char baggage[512], forwarded[256], traceparent[64];
};

struct hbone_conn {
	nghttp2_session *ng;
	bool server;
	struct hbone_events ev;
	struct hbone_stream *streams;
	uint32_t n_streams;
	bool ping_outstanding, goaway_received;
	uint32_t goaway_error;   /* the error code of a GOAWAY we sent (0: none) */
	char goaway_debug[128];  /* that GOAWAY's debug data (nghttp2's text) */
};

static struct hbone_stream *stream_find(struct hbone_conn *c, int32_t id)
{
	for (struct hbone_stream *s = c->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static struct hbone_stream *stream_add(struct hbone_conn *c, int32_t id)
{
	struct hbone_stream *s = calloc(1, sizeof(*s));

	if (!s || (c->server && !(s->req = calloc(1, sizeof(*s->req))))) {
		free(s);
		return NULL;
	}
	s->id = id;
	s->next = c->streams;
	c->streams = s;
	c->n_streams++;
	return s;
}

static void stream_del(struct hbone_conn *c, int32_t id)
{
	for (struct hbone_stream **p = &c->streams; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct hbone_stream *s = *p;
			*p = s->next;
			free(s->buf);
			free(s->req);
			free(s);
			c->n_streams--;
			return;
		}
	}
}

/* n queued bytes went out: an idle stream holds no send buffer (a touched
 * page of it each, for every idle connection, otherwise). */
static void stream_sent(struct hbone_stream *s, size_t n)
{
	s->off = (s->off + n) % HBONE_SEND_BUFFER;
	s->len -= n;
	if (!s->len) {
		s->off = 0;
		free(s->buf);
		s->buf = NULL;
	}
}

/* DATA source: the stream's queue; deferred when empty, EOF once the
 * application half-closed and everything went out. With a write_data
 * event the payload is not copied here: nghttp2 hands the frame to
 * send_data, which passes it on straight from the queue. */
static ssize_t read_data(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct hbone_conn *c = user;
	struct hbone_stream *s = stream_find(c, id);

	(void)ng;
	(void)src;
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (!s->len) {
		if (s->eof_queued) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return 0;
		}
		s->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	/* Up to the ring's end: the rest comes in the next frame. */
	size_t run = HBONE_SEND_BUFFER - s->off, n = s->len < run ? s->len : run;
	n = n < len ? n : len;
	if (s->eof_queued && n == s->len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (c->ev.write_data) {
		*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		return (ssize_t)n;
	}
	memcpy(buf, s->buf + s->off, n);
	stream_sent(s, n);
	return (ssize_t)n;
}

/* A DATA frame read_data left in the queue: its header and payload go to
 * the application in order with hbone_output's bytes (nghttp2 calls this
 * from inside nghttp2_session_mem_send). */
static int send_data(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *hd, size_t len,
		     nghttp2_data_source *src, void *user)
{
	struct hbone_conn *c = user;
	struct hbone_stream *s = stream_find(c, f->hd.stream_id);

	(void)ng;
	(void)src;
	if (!s) /* reset while the frame waited for room: the stream goes */
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	/* No padding is ever selected; a frame bigger than the queue cannot be. */
	if (len > s->len || f->data.padlen)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	int r = c->ev.write_data(c->ev.ctx, hd, FRAME_HEADER, s->buf + s->off, len);
	if (r == -EAGAIN)
		return NGHTTP2_ERR_WOULDBLOCK; /* offered again on a later hbone_output */
	if (r < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	stream_sent(s, len);
	return 0;
}

/* DATA frames as large as the windows allow (up to HBONE_DATA_CHUNK)
 * instead of nghttp2's 16 KiB: fewer frames and callbacks per byte, and
 * big writes into TLS make full records. */
static ssize_t read_length(nghttp2_session *ng, uint8_t type, int32_t id, int32_t conn_window,
			   int32_t stream_window, uint32_t max_frame, void *user)
{
	ssize_t n = HBONE_DATA_CHUNK;

	(void)ng;
	(void)type;
	(void)id;
	(void)user;
	if (conn_window < n)
		n = conn_window;
	if (stream_window < n)
		n = stream_window;
	if ((ssize_t)max_frame < n)
		n = (ssize_t)max_frame;
	return n > 0 ? n : 1;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct hbone_conn *c = user;
	struct hbone_stream *s = stream_find(c, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (!s || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	struct hbone_request *q = s->req;
	if (q && nlen == 10 && !memcmp(name, ":authority", 10) && vlen < sizeof(q->authority)) {
		memcpy(q->authority, value, vlen);
		q->authority[vlen] = '\0';
	} else if (c->server && nlen == 7 && !memcmp(name, ":method", 7)) {
		s->status = vlen == 7 && !memcmp(value, "CONNECT", 7) ? 0 : 400;
	} else if (q && nlen == 7 && !memcmp(name, "baggage", 7) && vlen < sizeof(q->baggage)) {
		memcpy(q->baggage, value, vlen);
		q->baggage[vlen] = '\0';
	} else if (q && nlen == 9 && !memcmp(name, "forwarded", 9) && vlen < sizeof(q->forwarded)) {
		memcpy(q->forwarded, value, vlen);
		q->forwarded[vlen] = '\0';
	} else if (q && nlen == 11 && !memcmp(name, "traceparent", 11) && vlen < sizeof(q->traceparent)) {
		memcpy(q->traceparent, value, vlen);
		q->traceparent[vlen] = '\0';
	} else if (!c->server && nlen == 7 && !memcmp(name, ":status", 7) && vlen == 3) {
		s->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
	}
	return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct hbone_conn *c = user;

	(void)ng;
	if (c->server && f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
	    !stream_add(c, f->hd.stream_id))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct hbone_conn *c = user;
	struct hbone_stream *s = stream_find(c, f->hd.stream_id);

	(void)ng;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
		c->ping_outstanding = false;
	if (f->hd.type == NGHTTP2_GOAWAY)
		c->goaway_received = true;
	if (!s)
		return 0;
	/* The request (or response) itself, not trailers after it: a peer's
	 * trailers used to run the request a second time (found by
	 * tests/fuzz: a second upstream connection for the same stream). */
	bool first = f->hd.type == NGHTTP2_HEADERS &&
		     f->headers.cat == (c->server ? NGHTTP2_HCAT_REQUEST : NGHTTP2_HCAT_RESPONSE);
	if (first && (f->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
		if (c->server) {
			/* SPEC §2.4: not CONNECT, or no authority: 400. */
			if (s->status || !s->req || !s->req->authority[0])
				hbone_respond(c, s->id, 400);
			else if (c->ev.request)
				c->ev.request(c->ev.ctx, s->id, s->req->authority);
		} else if (c->ev.response) {
			c->ev.response(c->ev.ctx, s->id, s->status);
		}
	}
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) && c->ev.eof)
		c->ev.eof(c->ev.ctx, s->id);
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *user)
{
	struct hbone_conn *c = user;

	(void)ng;
	(void)flags;
	if (stream_find(c, id) && c->ev.data)
		c->ev.data(c->ev.ctx, id, data, len);
	return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
	struct hbone_conn *c = user;

	(void)ng;
	if (!stream_find(c, id))
		return 0;
	if (c->ev.closed)
		c->ev.closed(c->ev.ctx, id, error_code);
	stream_del(c, id);
	return 0;
}

/* Why nghttp2 ended a connection on its own (a peer's protocol error), for
 * the log: the code and debug data of our GOAWAY. The debug data is
 * nghttp2's own text, never the peer's; no error callback is installed, as
 * it would format a message for every header the peer gets wrong. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct hbone_conn *c = user;

	(void)ng;
	if (f->hd.type != NGHTTP2_GOAWAY || !f->goaway.error_code || c->goaway_error)
		return 0;
	c->goaway_error = f->goaway.error_code;
	if (f->goaway.opaque_data_len)
		snprintf(c->goaway_debug, sizeof(c->goaway_debug), "%.*s", (int)f->goaway.opaque_data_len,
			 (const char *)f->goaway.opaque_data);
	return 0;
}

int hbone_conn_new(struct hbone_conn **out, bool server, const struct hbone_events *ev)
{
	struct hbone_conn *c = calloc(1, sizeof(*c));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	int r = -ENOMEM;

	*out = NULL;
	if (!c || nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
		goto out;
	c->server = server;
	c->ev = *ev;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb, read_length);
	nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	/* Backpressure: a window opens only when the application consumed. */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_send_header_block_length(opt, 64 << 10);
	r = server ? nghttp2_session_server_new2(&c->ng, cb, c, opt) : nghttp2_session_client_new2(&c->ng, cb, c, opt);
	if (r) {
		r = -ENOMEM;
		goto out;
	}
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, HBONE_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, HBONE_MAX_FRAME },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, server ? 64u << 10 : 16u << 10 },
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, HBONE_SERVER_MAX_STREAMS },
	};
	size_t n = server ? 5 : 4;
	if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, n) ||
	    nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, HBONE_CONNECTION_WINDOW)) {
		r = -EPROTO;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	hbone_conn_free(c);
	return r;
}

void hbone_conn_free(struct hbone_conn *c)
{
	if (!c)
		return;
	nghttp2_session_del(c->ng);
	while (c->streams)
		stream_del(c, c->streams->id);
	free(c);
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

int32_t hbone_connect(struct hbone_conn *c, const char *authority, const struct hbone_header *extra,
		      size_t n_extra)
{
	/* RFC 9113 8.5: CONNECT has :method and :authority only. */
	nghttp2_nv nva[2 + HBONE_MAX_HEADERS] = { NV(":method", "CONNECT"), NV(":authority", authority) };
	nghttp2_data_provider prd = { .read_callback = read_data };
	size_t n = 2;

	for (size_t i = 0; i < n_extra && n < sizeof(nva) / sizeof(nva[0]); i++, n++)
		nva[n] = (nghttp2_nv){ (uint8_t *)extra[i].name, (uint8_t *)extra[i].value,
				       strlen(extra[i].name), strlen(extra[i].value), NGHTTP2_NV_FLAG_NONE };
	int32_t id = nghttp2_submit_request(c->ng, NULL, nva, n, &prd, NULL);

	if (id < 0)
		return -EPROTO;
	if (!stream_add(c, id)) {
		nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
		return -ENOMEM;
	}
	return id;
}

int hbone_respond(struct hbone_conn *c, int32_t stream, int status)
{
	return hbone_respond_headers(c, stream, status, NULL, 0);
}

int hbone_respond_headers(struct hbone_conn *c, int32_t stream, int status, const struct hbone_header *extra,
			  size_t n_extra)
{
	char code[4];
	struct hbone_stream *st = stream_find(c, stream);
	if (st) { /* answered: the request's headers are done with */
		free(st->req);
		st->req = NULL;
	}
	snprintf(code, sizeof(code), "%03d", status);
	nghttp2_nv nva[1 + HBONE_MAX_HEADERS] = { NV(":status", code) };
	nghttp2_data_provider prd = { .read_callback = read_data };
	size_t n = 1;

	for (size_t i = 0; i < n_extra && n < sizeof(nva) / sizeof(nva[0]); i++, n++)
		nva[n] = (nghttp2_nv){ (uint8_t *)extra[i].name, (uint8_t *)extra[i].value,
				       strlen(extra[i].name), strlen(extra[i].value), NGHTTP2_NV_FLAG_NONE };
	/* Errors are header-only with END_STREAM (SPEC §2.4). */
	return nghttp2_submit_response(c->ng, stream, nva, n, status == 200 ? &prd : NULL) ? -EPROTO : 0;
}

ssize_t hbone_send(struct hbone_conn *c, int32_t stream, const void *data, size_t len)
{
	struct hbone_stream *s = stream_find(c, stream);

	if (!s || s->eof_queued)
		return -EPIPE;
	size_t room = HBONE_SEND_BUFFER - s->len;
	size_t n = len < room ? len : room;
	if (!n)
		return 0;
	if (!s->buf && !(s->buf = malloc(HBONE_SEND_BUFFER)))
		return -ENOMEM;
	/* Into the ring after what is queued, wrapping at its end: nothing
	 * queued is ever moved. */
	size_t at = (s->off + s->len) % HBONE_SEND_BUFFER, first = HBONE_SEND_BUFFER - at;
	first = n < first ? n : first;
	memcpy(s->buf + at, data, first);
	memcpy(s->buf, (const uint8_t *)data + first, n - first);
	s->len += n;
	if (s->deferred) {
		s->deferred = false;
		nghttp2_session_resume_data(c->ng, stream);
	}
	return (ssize_t)n;
}

int hbone_close_write(struct hbone_conn *c, int32_t stream)
{
	struct hbone_stream *s = stream_find(c, stream);

	if (!s)
		return -ENOENT;
	s->eof_queued = true;
	if (s->deferred) {
		s->deferred = false;
		nghttp2_session_resume_data(c->ng, stream);
	}
	return 0;
}

int hbone_reset(struct hbone_conn *c, int32_t stream)
{
	return nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, stream, NGHTTP2_CONNECT_ERROR) ? -EPROTO : 0;
}

int hbone_cancel(struct hbone_conn *c, int32_t stream)
{
	return nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, stream, NGHTTP2_CANCEL) ? -EPROTO : 0;
}

void hbone_consumed(struct hbone_conn *c, int32_t stream, size_t n)
{
	nghttp2_session_consume(c->ng, stream, n);
}

int hbone_recv(struct hbone_conn *c, const void *data, size_t len)
{
	ssize_t r = nghttp2_session_mem_recv(c->ng, data, len);
	return r < 0 || (size_t)r != len ? -EPROTO : 0;
}

ssize_t hbone_output(struct hbone_conn *c, const uint8_t **data)
{
	ssize_t n = nghttp2_session_mem_send(c->ng, data);
	return n < 0 ? -EPROTO : n;
}

const char *hbone_request_header(struct hbone_conn *c, int32_t stream, const char *name)
{
	struct hbone_stream *s = stream_find(c, stream);
	const char *v = NULL;

	if (!s || !s->req)
		return NULL;
	if (!strcmp(name, "baggage"))
		v = s->req->baggage;
	else if (!strcmp(name, "forwarded"))
		v = s->req->forwarded;
	else if (!strcmp(name, "traceparent"))
		v = s->req->traceparent;
	return v && *v ? v : NULL;
}

uint32_t hbone_streams(const struct hbone_conn *c)
{
	return c->n_streams;
}

void hbone_set_user(struct hbone_conn *c, int32_t stream, void *user)
{
	struct hbone_stream *s = stream_find(c, stream);

	if (s)
		s->user = user;
}

void *hbone_user(struct hbone_conn *c, int32_t stream)
{
	struct hbone_stream *s = stream_find(c, stream);

	return s ? s->user : NULL;
}

/* The payload Istio's ztunnel sends (h2's Ping::opaque()), so our PINGs
 * look like its own on the wire; nghttp2 would send eight zero bytes. */
static const uint8_t ping_payload[8] = { 0x3b, 0x7c, 0xdb, 0x7a, 0x0b, 0x87, 0x16, 0xb4 };

int hbone_ping(struct hbone_conn *c)
{
	if (nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, ping_payload))
		return -EPROTO;
	c->ping_outstanding = true;
	return 0;
}

bool hbone_ping_outstanding(const struct hbone_conn *c)
{
	return c->ping_outstanding;
}

int hbone_goaway(struct hbone_conn *c)
{
	int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
	return nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0) ? -EPROTO : 0;
}

int hbone_goaway_calm(struct hbone_conn *c)
{
	int32_t last = nghttp2_session_get_last_proc_stream_id(c->ng);
	return nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_ENHANCE_YOUR_CALM, NULL, 0) ? -EPROTO
													    : 0;
}

bool hbone_goaway_received(const struct hbone_conn *c)
{
	return c->goaway_received;
}

uint32_t hbone_peer_max_streams(struct hbone_conn *c)
{
	return nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

const char *hbone_goaway_sent_error(const struct hbone_conn *c, const char **code)
{
	*code = c->goaway_error ? nghttp2_http2_strerror(c->goaway_error) : NULL;
	return c->goaway_error ? c->goaway_debug : NULL;
}

bool hbone_done(struct hbone_conn *c)
{
	return !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng);
}

bool hbone_ids_running_out(struct hbone_conn *c)
{
	return nghttp2_session_get_next_stream_id(c->ng) > HBONE_LAST_STREAM_ID - HBONE_ID_RESERVE;
}

int hbone_skip_stream_ids(struct hbone_conn *c, int32_t next)
{
	return nghttp2_session_set_next_stream_id(c->ng, next) ? -EINVAL : 0;
}
