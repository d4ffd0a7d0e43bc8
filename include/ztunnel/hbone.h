/* HBONE's HTTP/2 layer (SPEC.md §2.2-2.4) on nghttp2, sans-IO: plaintext
 * HTTP/2 bytes in (after TLS) and out; one CONNECT stream per tunnelled
 * TCP connection. Flow control is end to end: received DATA is only
 * acknowledged (WINDOW_UPDATE) once the application reports it consumed. */
#ifndef ZTUNNEL_HBONE_H
#define ZTUNNEL_HBONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HBONE_STREAM_WINDOW (4u << 20)      /* SPEC §2.2 */
#define HBONE_CONNECTION_WINDOW (16u << 20)
#define HBONE_MAX_FRAME (1u << 20)
#define HBONE_SERVER_MAX_STREAMS 200
#define HBONE_SEND_BUFFER (256u << 10)      /* per stream, before backpressure */
/* Largest DATA frame we send: with its 9-byte header, eight full TLS records. */
#define HBONE_DATA_CHUNK (8 * 16384 - 9)

struct hbone_conn;

struct hbone_events {
	/* Server: a CONNECT for authority arrived; answer with hbone_respond.
	 * Requests that are not CONNECT or lack an authority get 400 here. */
	void (*request)(void *ctx, int32_t stream, const char *authority);
	/* Client: the response status of a stream. */
	void (*response)(void *ctx, int32_t stream, int status);
	void (*data)(void *ctx, int32_t stream, const uint8_t *data, size_t len);
	/* The peer half-closed the stream (END_STREAM). */
	void (*eof)(void *ctx, int32_t stream);
	/* The stream is gone; error_code is 0 after a clean close, else the
	 * RST_STREAM code (HBONE_REFUSED_STREAM: the peer never processed it,
	 * e.g. it was above the last stream of the peer's GOAWAY). */
	void (*closed)(void *ctx, int32_t stream, uint32_t error_code);
	/* Optional: a DATA frame, its header (hlen bytes) then its payload
	 * straight from the stream's queue, both valid only during the call,
	 * in order with hbone_output's bytes (called from inside it). Without
	 * it, hbone_output returns DATA frames copied like the rest. 0;
	 * -EAGAIN: not taken, no room now (hbone_output returns 0 and offers
	 * the same frame on a later call); other -errno: hbone_output fails. */
	int (*write_data)(void *ctx, const uint8_t *hd, size_t hlen, const uint8_t *payload, size_t len);
	void *ctx;
};

#define HBONE_REFUSED_STREAM 0x7 /* RFC 9113 §7 */

int hbone_conn_new(struct hbone_conn **out, bool server, const struct hbone_events *ev);
void hbone_conn_free(struct hbone_conn *c);

struct hbone_header;

/* Client: opens a CONNECT stream to authority ("10.0.0.1:8080",
 * "[fd00::1]:80") with extra headers (baggage, forwarded, traceparent);
 * returns the stream id or -errno. */
int32_t hbone_connect(struct hbone_conn *c, const char *authority, const struct hbone_header *extra,
		      size_t n_extra);
/* Server: the CONNECT target "a.b.c.d:port" (IPv4 only); 0 or -EINVAL. ip in network order. */
int hbone_parse_authority(const char *a, uint32_t *ip, uint16_t *port);
/* Server: a request header (baggage, forwarded, traceparent), or NULL;
 * held from the request event until the response is submitted. */
const char *hbone_request_header(struct hbone_conn *c, int32_t stream, const char *name);
/* Server: the status for a request (200 opens the tunnel; others end it). */
int hbone_respond(struct hbone_conn *c, int32_t stream, int status);
/* The same with extra response headers (the 200's baggage). */
int hbone_respond_headers(struct hbone_conn *c, int32_t stream, int status, const struct hbone_header *extra,
			  size_t n_extra);

/* Queues up to len bytes for the stream; returns how many were taken
 * (0: buffer full, wait), or -errno. */
ssize_t hbone_send(struct hbone_conn *c, int32_t stream, const void *data, size_t len);
/* END_STREAM once the queued bytes are out (our half-close). */
int hbone_close_write(struct hbone_conn *c, int32_t stream);
/* RST_STREAM CONNECT_ERROR: the TCP connection behind the stream broke. */
int hbone_reset(struct hbone_conn *c, int32_t stream);
/* RST_STREAM CANCEL: we no longer want the stream (Istio's client, via the
 * h2 crate, cancels a stream it drops after a non-200 answer). */
int hbone_cancel(struct hbone_conn *c, int32_t stream);
/* The application wrote n received bytes onward: open the window. */
void hbone_consumed(struct hbone_conn *c, int32_t stream, size_t n);

/* Network (plaintext HTTP/2) bytes from the peer. */
int hbone_recv(struct hbone_conn *c, const void *data, size_t len);
/* Bytes to send to the peer; *data valid until the next call. 0: none. */
ssize_t hbone_output(struct hbone_conn *c, const uint8_t **data);
uint32_t hbone_streams(const struct hbone_conn *c);

/* The caller's pointer for a stream (NULL once the stream is gone). */
void hbone_set_user(struct hbone_conn *c, int32_t stream, void *user);
void *hbone_user(struct hbone_conn *c, int32_t stream);

/* Keepalive (SPEC §2.2): a PING; outstanding until its ACK arrives. */
int hbone_ping(struct hbone_conn *c);
bool hbone_ping_outstanding(const struct hbone_conn *c);
/* GOAWAY(NO_ERROR): no new streams, existing ones finish. */
int hbone_goaway(struct hbone_conn *c);
/* GOAWAY ENHANCE_YOUR_CALM: the peer abuses the connection (rapid reset). */
int hbone_goaway_calm(struct hbone_conn *c);
bool hbone_goaway_received(const struct hbone_conn *c);
/* The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited: UINT32_MAX). */
uint32_t hbone_peer_max_streams(struct hbone_conn *c);
/* NULL, or (after we sent a GOAWAY with an error code, e.g. nghttp2's
 * answer to a peer's protocol error) that GOAWAY's debug data ("" if none),
 * with *code the error's name ("PROTOCOL_ERROR"). */
const char *hbone_goaway_sent_error(const struct hbone_conn *c, const char **code);
/* Neither side has anything left to say (after GOAWAY or a fatal error). */
bool hbone_done(struct hbone_conn *c);

/* A client connection can open 2^30 streams in its life: a busy pooled
 * connection that never idles would reach that in hours at high rates.
 * True once fewer than HBONE_ID_RESERVE are left: time to retire it. */
#define HBONE_LAST_STREAM_ID 0x7fffffffu
#define HBONE_ID_RESERVE 4096u
bool hbone_ids_running_out(struct hbone_conn *c);
/* Tests: jump a client's next stream id forward. */
int hbone_skip_stream_ids(struct hbone_conn *c, int32_t next);

#endif
