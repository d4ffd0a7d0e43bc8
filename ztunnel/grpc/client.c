/* One CreateCertificate call (SPEC.md §4): TLS 1.2+/ALPN h2 with wolfSSL to
 * the CA (its certificate checked against the configured roots and the
 * host name of the address), one HTTP/2 stream with nghttp2 carrying the
 * framed request, the response message and the grpc-status trailer.
 * Blocking, with a deadline: it runs on the identity side's own thread,
 * never on the data path. */
#include "ztunnel/grpc.h"

#include <errno.h>
#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "ztunnel/clock.h"

struct call {
	WOLFSSL *ssl;
	const uint8_t *body;
	size_t body_len, body_off;
	struct grpc_body resp;
	int http_status, grpc_status;
	char grpc_message[256];
	bool done;
	uint32_t reset;
};

static int fail(char *err, size_t size, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t size, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return r;
}

/* "https://host:port" -> host, port. */
static int parse_address(const char *addr, char *host, size_t hsize, char *port, size_t psize)
{
	const char *p = strncmp(addr, "https://", 8) ? NULL : addr + 8;
	const char *colon = p ? strrchr(p, ':') : NULL;

	if (!p || !colon || colon == p || (size_t)(colon - p) >= hsize || strlen(colon + 1) >= psize ||
	    !colon[1])
		return -EINVAL;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = '\0';
	snprintf(port, psize, "%s", colon + 1);
	return 0;
}

static int dial(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *a;
	int fd = -ECONNREFUSED;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	for (a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() too */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -errno;
	}
	freeaddrinfo(res);
	return fd;
}

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	struct call *c = user;
	int n = wolfSSL_write(c->ssl, data, (int)len);

	(void)s;
	(void)flags;
	return n > 0 ? n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct call *c = user;
	size_t n = c->body_len - c->body_off < len ? c->body_len - c->body_off : len;

	(void)s;
	(void)id;
	(void)src;
	memcpy(buf, c->body + c->body_off, n);
	c->body_off += n;
	if (c->body_off == c->body_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct call *c = user;

	(void)s;
	(void)f;
	(void)flags;
	if (nlen == 7 && !memcmp(name, ":status", 7))
		c->http_status = atoi((const char *)value);
	else if (nlen == 11 && !memcmp(name, "grpc-status", 11))
		c->grpc_status = atoi((const char *)value);
	else if (nlen == 12 && !memcmp(name, "grpc-message", 12))
		snprintf(c->grpc_message, sizeof(c->grpc_message), "%.*s", (int)vlen, value);
	return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	struct call *c = user;

	(void)s;
	(void)flags;
	(void)id;
	return grpc_body_append(&c->resp, data, len, GRPC_MESSAGE_MAX + 5) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct call *c = user;

	(void)s;
	(void)id;
	c->reset = code;
	c->done = true;
	return 0;
}

static WOLFSSL_CTX *tls_context(const char *roots_file, char *err, size_t size)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLS_client_method());

	if (!ctx)
		return NULL;
	wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2);
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
	if (wolfSSL_CTX_load_verify_locations(ctx, roots_file, NULL) != WOLFSSL_SUCCESS) {
		fail(err, size, 0, "cannot read the CA's root certificates from %s", roots_file);
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int grpc_ca_call(const struct grpc_ca_target *t, const struct ca_request *req, struct ca_response *resp, char *err,
		 size_t err_size)
{
	char host[256], port[16], bearer[8192], status_err[80];
	struct call c = { .grpc_status = -1 };
	nghttp2_session *s = NULL;
	nghttp2_session_callbacks *cb = NULL;
	WOLFSSL_CTX *ctx = NULL;
	uint8_t *body = NULL, buf[16384];
	size_t body_len;
	int fd = -1, r = 0;
	int64_t deadline = clock_mono_ms() + t->timeout_ms;

	memset(resp, 0, sizeof(*resp));
	if (parse_address(t->address, host, sizeof(host), port, sizeof(port)) < 0)
		return fail(err, err_size, -EINVAL, "CA address %s is not https://HOST:PORT", t->address);
	if ((r = grpc_ca_request_encode(req, &body, &body_len)) < 0)
		return fail(err, err_size, r, "cannot encode the request");
	c.body = body;
	c.body_len = body_len;
	if ((fd = dial(host, port, t->timeout_ms)) < 0) {
		r = fail(err, err_size, fd, "cannot connect to the CA at %s: %s", t->address, strerror(-fd));
		goto out;
	}
	if (!(ctx = tls_context(t->roots_file, err, err_size))) {
		r = -EINVAL;
		goto out;
	}
	c.ssl = wolfSSL_new(ctx);
	static const char alpn[] = "h2";
	if (!c.ssl || wolfSSL_set_fd(c.ssl, fd) != WOLFSSL_SUCCESS ||
	    wolfSSL_UseSNI(c.ssl, WOLFSSL_SNI_HOST_NAME, host, (unsigned short)strlen(host)) != WOLFSSL_SUCCESS ||
	    wolfSSL_check_domain_name(c.ssl, host) != WOLFSSL_SUCCESS ||
	    wolfSSL_UseALPN(c.ssl, (char *)alpn, sizeof(alpn) - 1, WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
		r = fail(err, err_size, -ENOMEM, "cannot set up TLS");
		goto out;
	}
	if (wolfSSL_connect(c.ssl) != WOLFSSL_SUCCESS) {
		char why[80];
		wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(c.ssl, 0), why, sizeof(why));
		r = fail(err, err_size, -EPROTO, "TLS with the CA at %s failed: %s", t->address, why);
		goto out;
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", t->token ? t->token : "");
	const nghttp2_nv hdrs[] = {
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }
		NV(":method", "POST"),
		NV(":scheme", "https"),
		NV(":authority", host),
		NV(":path", GRPC_CA_PATH),
		NV("content-type", GRPC_CONTENT_TYPE),
		NV("te", "trailers"),
		NV("authorization", bearer),
		NV("clusterid", t->cluster_id ? t->cluster_id : "Kubernetes"),
#undef NV
	};
	nghttp2_data_provider data = { .read_callback = read_body };
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		r = fail(err, err_size, -ENOMEM, "out of memory");
		goto out;
	}
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	if (nghttp2_session_client_new(&s, cb, &c) != 0 ||
	    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0) != 0 ||
	    nghttp2_submit_request(s, NULL, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &data, NULL) < 0) {
		r = fail(err, err_size, -ENOMEM, "cannot start the HTTP/2 request");
		goto out;
	}
	while (!c.done) {
		if (nghttp2_session_send(s) != 0) {
			r = fail(err, err_size, -EIO, "sending to the CA failed");
			goto out;
		}
		if (clock_mono_ms() > deadline) {
			r = fail(err, err_size, -ETIMEDOUT, "the CA did not answer within %d ms", t->timeout_ms);
			goto out;
		}
		int n = wolfSSL_read(c.ssl, buf, sizeof(buf));
		if (n <= 0) {
			r = fail(err, err_size, -ECONNRESET, "the CA closed the connection before answering");
			goto out;
		}
		if (nghttp2_session_mem_recv(s, buf, (size_t)n) < 0) {
			r = fail(err, err_size, -EPROTO, "the CA sent invalid HTTP/2");
			goto out;
		}
	}
	snprintf(status_err, sizeof(status_err), "grpc-status %d", c.grpc_status);
	if (c.http_status != 200)
		r = fail(err, err_size, -EPROTO, "the CA answered HTTP %d", c.http_status);
	else if (c.grpc_status != 0)
		r = fail(err, err_size, c.grpc_status == GRPC_PERMISSION_DENIED || c.grpc_status == GRPC_UNAUTHENTICATED
						 ? -EACCES
						 : -EREMOTEIO,
			 "the CA refused: %s%s%s", status_err, c.grpc_message[0] ? ": " : "", c.grpc_message);
	else if (c.resp.too_big)
		r = fail(err, err_size, -EMSGSIZE, "the CA's answer is over %u bytes", GRPC_MESSAGE_MAX);
	else if ((r = grpc_ca_response_decode(c.resp.p, c.resp.len, resp)) < 0)
		fail(err, err_size, r, "the CA's answer is not a certificate chain");
out:
	if (s)
		nghttp2_session_del(s);
	if (cb)
		nghttp2_session_callbacks_del(cb);
	if (c.ssl) {
		wolfSSL_shutdown(c.ssl);
		wolfSSL_free(c.ssl);
	}
	if (ctx)
		wolfSSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	free(body);
	free(c.resp.p);
	return r;
}
