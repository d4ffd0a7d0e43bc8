/* ztunnel-ca's gRPC endpoint: TLS (wolfSSL, a serving certificate from
 * the CA itself, renewed at half-life and when the CA files change) and
 * HTTP/2 (nghttp2) carrying unary CreateCertificate calls. A thread per
 * connection, bounded: the work of a call is a TokenReview and a
 * signature, both blocking; requests are few (a node's pods' identities,
 * once per half-life). Deadlines keep slow or silent peers from holding
 * a slot. */
#include "ca_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "ztunnel/clock.h"
#include "ztunnel/grpc.h"
#include "ztunnel/log.h"

/* Deadlines are absolute (a peer trickling one byte at a time gains
 * nothing): the handshake, the wait for each request, the connection's
 * life. A request is a CSR and a little metadata: a few KiB. */
#define HANDSHAKE_TIMEOUT_S 10
#define IDLE_TIMEOUT_S 30
#define LIFETIME_S 600
#define MAX_REQUESTS 100
#define MAX_STREAMS 4
#define REQUEST_MAX (64u << 10)
#define GRPC_UNIMPLEMENTED 12

struct stream {
	int32_t id;
	bool ok_path, ok_type;
	char *token;
	struct grpc_body body;
	struct ca_answer answer;
	size_t sent;
	struct stream *next;
};

struct conn {
	struct ca_service *svc;
	WOLFSSL *ssl;
	int fd;
	struct ca_peer peer;
	struct stream *streams;
	int64_t idle_until; /* monotonic ms: the next request must have come by then */
	int64_t io_deadline; /* monotonic ms: no read or write goes past it (recv_cb, send_cb) */
	int requests;
};

static struct stream *find(struct conn *c, int32_t id)
{
	for (struct stream *s = c->streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void stream_free(struct stream *s)
{
	if (s->token)
		memset(s->token, 0, strlen(s->token));
	free(s->token);
	free(s->body.p);
	free(s->answer.body);
	free(s);
}

static ssize_t on_send(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *user)
{
	struct conn *c = user;
	int n = wolfSSL_write(c->ssl, data, (int)len);

	(void)ng;
	(void)flags;
	return n > 0 ? n : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct stream *s;

	(void)ng;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (!(s = calloc(1, sizeof(*s))))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	s->id = f->hd.stream_id;
	s->next = c->streams;
	c->streams = s;
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct stream *s = find(user, f->hd.stream_id);
	static const char bearer[] = "Bearer ";

	(void)ng;
	(void)flags;
	if (!s)
		return 0;
	if (nlen == 5 && !memcmp(name, ":path", 5))
		s->ok_path = vlen == strlen(GRPC_CA_PATH) && !memcmp(value, GRPC_CA_PATH, vlen);
	else if (nlen == 12 && !memcmp(name, "content-type", 12))
		s->ok_type = vlen >= 16 && !memcmp(value, GRPC_CONTENT_TYPE, 16) && (vlen == 16 || value[16] == '+' ||
										      value[16] == ';');
	else if (nlen == 13 && !memcmp(name, "authorization", 13) && vlen > sizeof(bearer) - 1 &&
		 !strncasecmp((const char *)value, bearer, sizeof(bearer) - 1) && !s->token)
		s->token = strndup((const char *)value + sizeof(bearer) - 1, vlen - (sizeof(bearer) - 1));
	return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	struct stream *s = find(user, id);

	(void)ng;
	(void)flags;
	return !s || grpc_body_append(&s->body, data, len, REQUEST_MAX) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* grpc-message is percent-encoded (gRPC over HTTP/2). */
static void percent_encode(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 4 < size; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch < 0x20 || ch > 0x7e || ch == '%')
			o += (size_t)snprintf(out + o, size - o, "%%%02X", ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static ssize_t read_answer(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			   nghttp2_data_source *src, void *user)
{
	struct stream *s = src->ptr;
	size_t n = s->answer.body_len - s->sent < len ? s->answer.body_len - s->sent : len;

	(void)user;
	memcpy(buf, s->answer.body + s->sent, n);
	s->sent += n;
	if (s->sent == s->answer.body_len) {
		static const nghttp2_nv ok[] = { { (uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0 } };
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(ng, id, ok, 1) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return (ssize_t)n;
}

static int respond(nghttp2_session *ng, struct conn *c, struct stream *s)
{
	char status[16], message[800];

	c->idle_until = clock_mono_ms() + IDLE_TIMEOUT_S * 1000;
	c->requests++;
	if (!s->ok_path) {
		ca_refuse(c->svc, CA_BAD_REQUEST, "only " GRPC_CA_PATH " is served here", &c->peer, &s->answer);
		s->answer.grpc_status = GRPC_UNIMPLEMENTED;
	} else if (!s->ok_type) {
		ca_refuse(c->svc, CA_BAD_REQUEST, "content-type must be application/grpc", &c->peer, &s->answer);
	} else if (s->body.too_big) {
		ca_refuse(c->svc, CA_TOO_MANY, "request too large", &c->peer, &s->answer);
	} else {
		ca_serve_request(c->svc, s->token, &c->peer, s->body.p, s->body.len, &s->answer);
	}
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }
	if (s->answer.grpc_status == GRPC_OK) {
		const nghttp2_nv hdrs[] = { NV(":status", "200"), NV("content-type", GRPC_CONTENT_TYPE) };
		nghttp2_data_provider data = { .source.ptr = s, .read_callback = read_answer };
		return nghttp2_submit_response(ng, s->id, hdrs, 2, &data);
	}
	/* Trailers-only: the status in the one HEADERS frame. */
	snprintf(status, sizeof(status), "%d", s->answer.grpc_status);
	percent_encode(s->answer.message, message, sizeof(message));
	const nghttp2_nv hdrs[] = { NV(":status", "200"), NV("content-type", GRPC_CONTENT_TYPE),
				    NV("grpc-status", status), NV("grpc-message", message) };
#undef NV
	return nghttp2_submit_response(ng, s->id, hdrs, 4, NULL);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *user)
{
	struct stream *s;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    !(s = find(user, f->hd.stream_id)))
		return 0;
	return respond(ng, user, s) == 0 ? 0 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
	struct conn *c = user;

	(void)ng;
	(void)code;
	for (struct stream **p = &c->streams; *p; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct stream *s = *p;
			*p = s->next;
			stream_free(s);
			break;
		}
	}
	return 0;
}

static void set_timeouts(int fd)
{
	/* Short reads let the deadlines below be checked; writes are small. */
	struct timeval rtv = { 1, 0 }, wtv = { 10, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rtv, sizeof(rtv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wtv, sizeof(wtv));
}

/* A wolfSSL call that timed out on a read may be retried until deadline. */
static bool retry(struct conn *c, int ret, int64_t deadline)
{
	int e = wolfSSL_get_error(c->ssl, ret);

	return (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE) && clock_mono_ms() < deadline;
}

/* wolfSSL's reads, held to the connection's deadline on every call: a
 * peer trickling a byte a second would otherwise keep one record (and
 * the connection) going forever, each recv returning before the socket
 * timeout. Waits at most a second, so the callers' loops check too. */
static int recv_cb(WOLFSSL *ssl, char *buf, int size, void *ctx)
{
	struct conn *c = ctx;
	int64_t left = c->io_deadline - clock_mono_ms();
	struct pollfd p = { c->fd, POLLIN, 0 };

	(void)ssl;
	if (left <= 0)
		return WOLFSSL_CBIO_ERR_TIMEOUT;
	int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
	if (r == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (r < 0)
		return errno == EINTR ? WOLFSSL_CBIO_ERR_ISR : WOLFSSL_CBIO_ERR_GENERAL;
	ssize_t n = recv(c->fd, buf, (size_t)size, 0);
	if (n > 0)
		return (int)n;
	if (n == 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	if (errno == EAGAIN || errno == EINTR)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

/* Writes held to the same deadline: a peer that reads just enough to keep
 * each send moving would otherwise stretch one answer past it. */
static int send_cb(WOLFSSL *ssl, char *buf, int size, void *ctx)
{
	struct conn *c = ctx;
	struct pollfd p = { c->fd, POLLOUT, 0 };

	(void)ssl;
	for (;;) {
		int64_t left = c->io_deadline - clock_mono_ms();
		if (left <= 0)
			return WOLFSSL_CBIO_ERR_TIMEOUT;
		int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return WOLFSSL_CBIO_ERR_GENERAL;
		if (r <= 0)
			continue;
		ssize_t n = send(c->fd, buf, (size_t)size, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0)
			return (int)n;
		if (errno == EAGAIN || errno == EINTR)
			continue;
		return errno == ECONNRESET || errno == EPIPE ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
	}
}

static void serve_h2(struct conn *c)
{
	nghttp2_session_callbacks *cb;
	nghttp2_session *ng = NULL;
	uint8_t buf[16384];
	int64_t end_of_life = clock_mono_ms() + LIFETIME_S * 1000;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return;
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	nghttp2_settings_entry settings[] = { { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS },
					      { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384 } };
	c->idle_until = clock_mono_ms() + IDLE_TIMEOUT_S * 1000;
	if (nghttp2_session_server_new(&ng, cb, c) == 0 &&
	    nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, settings, 2) == 0) {
		while (nghttp2_session_want_read(ng) || nghttp2_session_want_write(ng)) {
			if (c->requests >= MAX_REQUESTS && !c->streams)
				nghttp2_session_terminate_session(ng, NGHTTP2_NO_ERROR);
			/* Every read and write of this turn (recv_cb, send_cb). */
			c->io_deadline = c->idle_until < end_of_life ? c->idle_until : end_of_life;
			if (nghttp2_session_send(ng) != 0)
				break;
			if (!nghttp2_session_want_read(ng))
				continue;
			int n = wolfSSL_read(c->ssl, buf, sizeof(buf));
			if (n <= 0 && retry(c, n, c->io_deadline))
				continue;
			if (n <= 0 || nghttp2_session_mem_recv(ng, buf, (size_t)n) < 0)
				break;
		}
	}
	nghttp2_session_del(ng);
	nghttp2_session_callbacks_del(cb);
	while (c->streams) {
		struct stream *s = c->streams;
		c->streams = s->next;
		stream_free(s);
	}
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	char *proto = NULL;
	unsigned short plen = 0;
	int64_t deadline = clock_mono_ms() + HANDSHAKE_TIMEOUT_S * 1000;
	int r;

	set_timeouts(c->fd);
	c->io_deadline = deadline;
	wolfSSL_SSLSetIORecv(c->ssl, recv_cb);
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SSLSetIOSend(c->ssl, send_cb);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	while ((r = wolfSSL_accept(c->ssl)) != WOLFSSL_SUCCESS && retry(c, r, deadline))
		;
	if (r == WOLFSSL_SUCCESS && wolfSSL_ALPN_GetProtocol(c->ssl, &proto, &plen) == WOLFSSL_SUCCESS && plen == 2 &&
	    !memcmp(proto, "h2", 2))
		serve_h2(c);
	wolfSSL_shutdown(c->ssl);
	wolfSSL_free(c->ssl);
	close(c->fd);
	ca_limits_conn_put(c->svc->limits, c->peer.addr);
	atomic_fetch_sub(&c->svc->live, 1);
	free(c);
	return NULL;
}

/* Refusals at accept are counted always and logged at most once a second
 * (a flood must not become a log flood). */
static void refused_log(struct ca_service *svc, const char *msg, const struct ca_peer *peer)
{
	if (!log_every(&svc->refused_log_ms, clock_mono_ms(), 1000))
		return;
	log_warn(msg, LF_INT("connections", atomic_load(&svc->live)), LF_STR("latest.peer", peer->name),
		 LF_UINT("refused.total", atomic_load(&svc->refused_total) + atomic_load(&svc->refused_per_addr)));
}

/* A TLS context with a fresh serving certificate; NULL (logged) if the CA
 * cannot mint one. */
static WOLFSSL_CTX *tls_context(struct ca_service *svc, const struct ca_server_opts *o, int64_t *renew_at)
{
	struct leaf_cert leaf;
	char err[256] = "";
	WOLFSSL_CTX *ctx = NULL;
	int r = ca_signer_server_cert(&svc->signer, o->dns, o->n_dns, &leaf, err, sizeof(err));

	if (r < 0) {
		log_error("cannot mint the CA's serving certificate", LF_STR("error", err), LF_ERRNO(r));
		return NULL;
	}
	ctx = wolfSSL_CTX_new(wolfTLS_server_method());
	if (!ctx || wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_certificate_chain_buffer(ctx, (const unsigned char *)leaf.chain_pem,
						     (long)strlen(leaf.chain_pem)) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)leaf.key_pem, (long)strlen(leaf.key_pem),
					      WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		log_error("cannot set up TLS with the serving certificate");
		wolfSSL_CTX_free(ctx);
		ctx = NULL;
	} else {
		*renew_at = leaf.not_before + (leaf.not_after - leaf.not_before) / 2;
		log_info("serving certificate minted", LF_STR("serial", leaf.serial), LF_INT("not_after", leaf.not_after));
	}
	leaf_cert_free(&leaf);
	return ctx;
}

static int listen_on(const char *addr)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	int fd, one = 1;

	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0)
		return -EINVAL;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
			bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0)) {
		int e = -errno;
		close(fd);
		fd = e;
	} else if (fd < 0) {
		fd = -errno;
	}
	freeaddrinfo(res);
	return fd;
}

static void peer_of(const struct sockaddr_storage *sa, struct ca_peer *p)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(p->addr, sizeof(p->addr), "%s", ip);
	snprintf(p->name, sizeof(p->name), "%s:%d", ip, port);
}

int ca_server_run(struct ca_service *svc, const struct ca_server_opts *o, const _Atomic bool *stop)
{
	int lfd = listen_on(o->listen);
	int64_t renew_at = 0;
	uint64_t loaded = 0;
	WOLFSSL_CTX *ctx = NULL;

	if (lfd < 0)
		return lfd;
	log_info("serving CreateCertificate", LF_STR("address", o->listen));
	while (!atomic_load(stop)) {
		int64_t now = (int64_t)time(NULL);
		/* A new serving certificate at half-life, or as soon as the CA
		 * files changed (a new root: clients trust the new one). */
		uint64_t loads = ca_signer_refresh(&svc->signer, NULL);
		if (!ctx || now >= renew_at || loads != loaded) {
			WOLFSSL_CTX *fresh = tls_context(svc, o, &renew_at);
			loaded = loads;
			if (fresh) {
				wolfSSL_CTX_free(ctx); /* live connections hold their own reference */
				ctx = fresh;
			} else {
				renew_at = now + 5; /* logged; tried again, not in a loop */
			}
		}
		ca_service_refresh(svc);
		struct pollfd p = { lfd, POLLIN, 0 };
		if (poll(&p, 1, 1000) <= 0)
			continue;
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(lfd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		struct ca_peer peer;
		peer_of(&sa, &peer);
		if (!ctx || atomic_load(&svc->live) >= o->max_connections) {
			atomic_fetch_add(&svc->refused_total, 1);
			refused_log(svc, "connection refused: at the connection limit or no serving certificate", &peer);
			close(fd);
			continue;
		}
		if (!ca_limits_conn_take(svc->limits, peer.addr)) {
			atomic_fetch_add(&svc->refused_per_addr, 1);
			refused_log(svc, "connection refused: its address holds its share of connections", &peer);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		pthread_t t;
		pthread_attr_t attr;
		static char h2[] = "h2";
		if (!c || !(c->ssl = wolfSSL_new(ctx)) || wolfSSL_set_fd(c->ssl, fd) != WOLFSSL_SUCCESS ||
		    wolfSSL_UseALPN(c->ssl, h2, 2, WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
			if (c && c->ssl)
				wolfSSL_free(c->ssl);
			free(c);
			close(fd);
			ca_limits_conn_put(svc->limits, peer.addr);
			continue;
		}
		c->svc = svc;
		c->fd = fd;
		c->peer = peer;
		atomic_fetch_add(&svc->live, 1);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, conn_main, c) != 0) {
			atomic_fetch_sub(&svc->live, 1);
			ca_limits_conn_put(svc->limits, peer.addr);
			wolfSSL_free(c->ssl);
			close(fd);
			free(c);
		}
		pthread_attr_destroy(&attr);
	}
	close(lfd);
	/* Calls in progress finish (a TokenReview takes at most 5 s); idle
	 * connections are not waited for: the caller then exits without
	 * freeing what they may still use. */
	for (int i = 0; atomic_load(&svc->live) > 0 && i < 60; i++)
		usleep(100000);
	if (atomic_load(&svc->live) == 0)
		wolfSSL_CTX_free(ctx);
	return 0;
}
