/* Sans-IO TLS 1.3 for HBONE (SPEC.md §2.1) on wolfSSL: the session takes
 * network bytes in and hands network bytes out through memory buffers;
 * the io_uring edge owns the sockets. */
#ifndef ZTUNNEL_TLS_H
#define ZTUNNEL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ztunnel/identity.h"

struct tls_ctx;
struct tls_session;

/* Mutual TLS 1.3 only, AES-256-GCM then AES-128-GCM (SPEC: no ChaCha20),
 * X25519 then P-256 and P-384, ALPN h2, no SNI, no session resumption.
 * The certificate is the local workload's; the bundle its trust roots. */
int tls_ctx_new(struct tls_ctx **out, bool server, const struct leaf_cert *cert,
		const char *trust_bundle_pem, char *err, size_t err_size);
void tls_ctx_free(struct tls_ctx *ctx);

/* A client checks the server presents one of `expected` (SPEC §2.1: any
 * SPIFFE SAN equal to any expected identity). A server requires a client
 * certificate of its own trust domain `trust_domain`. */
int tls_session_new(struct tls_session **out, struct tls_ctx *ctx, const struct spiffe_id *expected,
		    uint32_t n_expected, const char *trust_domain);
void tls_session_free(struct tls_session *s);

/* Network bytes received from the peer. */
int tls_feed(struct tls_session *s, const void *data, size_t len);
/* The same without a copy, for asynchronous receivers: room for more bytes
 * at the end of the session's input (*room: how much, at least 1; the
 * buffer grows to want), to receive into and then tls_input_commit. Only
 * tls_feed and tls_input_space move the buffer: call neither while a
 * receive into it is in flight. NULL when out of memory. */
void *tls_input_space(struct tls_session *s, size_t want, size_t *room);
void tls_input_commit(struct tls_session *s, size_t n);
/* Network bytes to send: *data valid until the next call into s. */
size_t tls_output(struct tls_session *s, const void **data);
void tls_output_consumed(struct tls_session *s, size_t n);
/* Zero-copy alternative for asynchronous senders: swaps the session's
 * pending output buffer with *buf (an empty buffer of *cap bytes, or NULL)
 * and returns how many bytes it holds; the caller owns it until the next
 * swap, so later output never moves memory a send is reading. */
size_t tls_output_take(struct tls_session *s, uint8_t **buf, size_t *cap);

/* Advances the handshake: 1 done, 0 needs more input, <0 failed (reason in
 * tls_error()). After success the peer identity is known. */
int tls_handshake(struct tls_session *s);
/* Plaintext: >0 bytes, 0 needs more input, -EPIPE closed by peer, <0 error. */
ssize_t tls_read(struct tls_session *s, void *buf, size_t len);
ssize_t tls_write(struct tls_session *s, const void *buf, size_t len);

const char *tls_error(const struct tls_session *s);
/* The failure's class without details (wolfSSL's error text, or "peer
 * certificate refused"): few distinct values, fit for a metric label. */
const char *tls_error_name(const struct tls_session *s);
const char *tls_alpn(struct tls_session *s);
const struct spiffe_id *tls_peer_identity(const struct tls_session *s);
const char *tls_cipher(struct tls_session *s);
const char *tls_version(struct tls_session *s);

#endif
