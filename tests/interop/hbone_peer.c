/* Interop driver: ztunnel's sans-IO TLS and HBONE cores over a plain
 * blocking TCP socket, as an HBONE client or an echoing HBONE server, so an
 * independent peer (Python ssl + h2) can be tested against them.
 *
 *   hbone-peer client HOST PORT CERT_DIR ROOT_PEM EXPECTED_ID STREAMS BYTES
 *   hbone-peer server PORT CERT_DIR ROOT_PEM TRUST_DOMAIN [STATUS]
 *       (prints "port N"; answers every CONNECT with STATUS, default 200:
 *       an echo, else header-only as a policy denial is)
 *
 * CERT_DIR holds cert-chain.pem and key.pem (ztunnel-ctl ca mint). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "ztunnel/file.h"
#include "ztunnel/hbone.h"
#include "ztunnel/state.h"
#include "ztunnel/tls.h"

#define MAX_STREAMS 512

static int fd = -1;
static struct tls_session *tls;
static struct hbone_conn *h2;
static size_t stream_bytes;
static int answer_status = 200;

struct stream_state {
	int32_t id;
	size_t sent, received;
	int status;
	bool eof, closed, echo_closed;
	uint32_t code;
	uint8_t *echo; /* server: received, not yet queued back */
	size_t echo_len, echo_off, echo_cap;
} streams[MAX_STREAMS];
static int n_streams;

static void die(const char *what)
{
	fprintf(stderr, "hbone-peer: %s\n", what);
	exit(1);
}

static struct stream_state *st(int32_t id)
{
	for (int i = 0; i < n_streams; i++)
		if (streams[i].id == id)
			return &streams[i];
	if (n_streams == MAX_STREAMS)
		die("too many streams");
	streams[n_streams].id = id;
	return &streams[n_streams++];
}

static uint8_t pattern(size_t off, int32_t id)
{
	return (uint8_t)(off * 7 + (size_t)id);
}

/* TLS out -> socket. */
static void flush(void)
{
	const uint8_t *d;
	ssize_t n;
	while ((n = hbone_output(h2, &d)) > 0)
		if (tls_write(tls, d, (size_t)n) != n)
			die("tls_write failed");
	if (n < 0)
		die("http/2 error");
	const void *out;
	size_t len;
	while ((len = tls_output(tls, &out)) > 0) {
		ssize_t w = send(fd, out, len, MSG_NOSIGNAL);
		if (w <= 0)
			die("send failed");
		tls_output_consumed(tls, (size_t)w);
	}
}

/* socket -> TLS in -> HTTP/2; returns false when the peer closed. */
static bool pump_in(void)
{
	uint8_t buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return false;
	tls_feed(tls, buf, (size_t)n);
	ssize_t r;
	while ((r = tls_read(tls, buf, sizeof(buf))) > 0)
		if (hbone_recv(h2, buf, (size_t)r) < 0)
			die("peer sent invalid HTTP/2");
	return r != -EPIPE;
}

static void handshake(void)
{
	const void *out;
	size_t len;
	int r;
	while ((r = tls_handshake(tls)) == 0) {
		while ((len = tls_output(tls, &out)) > 0) {
			ssize_t w = send(fd, out, len, MSG_NOSIGNAL);
			if (w <= 0)
				die("send failed");
			tls_output_consumed(tls, (size_t)w);
		}
		uint8_t buf[16384];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			die("connection closed during the handshake");
		tls_feed(tls, buf, (size_t)n);
	}
	if (r < 0) {
		fprintf(stderr, "hbone-peer: TLS: %s\n", tls_error(tls));
		exit(3);
	}
	while ((len = tls_output(tls, &out)) > 0) {
		if (send(fd, out, len, MSG_NOSIGNAL) <= 0)
			die("send failed");
		tls_output_consumed(tls, len);
	}
}

/* Events: the client checks its echo; the server echoes. */
static bool server_mode;

static void ev_request(void *ctx, int32_t id, const char *authority)
{
	(void)ctx;
	(void)authority;
	st(id);
	hbone_respond(h2, id, answer_status);
}

static void ev_response(void *ctx, int32_t id, int status)
{
	(void)ctx;
	st(id)->status = status;
}

static void ev_data(void *ctx, int32_t id, const uint8_t *data, size_t len)
{
	(void)ctx;
	struct stream_state *s = st(id);
	if (server_mode) {
		/* Echoed from the main loop as the client's window allows: a
		 * callback must never wait for the peer. */
		if (s->echo_off == s->echo_len)
			s->echo_off = s->echo_len = 0;
		if (s->echo_len + len > s->echo_cap) {
			size_t cap = s->echo_cap ? s->echo_cap : 65536;
			while (cap < s->echo_len + len)
				cap *= 2;
			uint8_t *grown = realloc(s->echo, cap);
			if (!grown)
				die("out of memory");
			s->echo = grown;
			s->echo_cap = cap;
		}
		memcpy(s->echo + s->echo_len, data, len);
		s->echo_len += len;
	} else {
		for (size_t i = 0; i < len; i++)
			if (data[i] != pattern(s->received + i, id))
				die("echoed bytes differ");
	}
	s->received += len;
	hbone_consumed(h2, id, len);
}

static void ev_eof(void *ctx, int32_t id)
{
	(void)ctx;
	st(id)->eof = true; /* the server half-closes once its echo is out */
}

/* Server: queue pending echoes; true if anything was taken. */
static bool push_echo(void)
{
	bool progressed = false;
	for (int i = 0; i < n_streams; i++) {
		struct stream_state *s = &streams[i];
		if (s->echo_off < s->echo_len) {
			ssize_t n = hbone_send(h2, s->id, s->echo + s->echo_off, s->echo_len - s->echo_off);
			if (n > 0) {
				s->echo_off += (size_t)n;
				progressed = true;
			}
		}
		if (s->eof && !s->echo_closed && s->echo_off == s->echo_len) {
			hbone_close_write(h2, s->id);
			s->echo_closed = true;
			progressed = true;
		}
	}
	return progressed;
}

static void ev_closed(void *ctx, int32_t id, uint32_t code)
{
	(void)ctx;
	st(id)->closed = true;
	st(id)->code = code;
}

static struct tls_ctx *tls_context;
static struct leaf_cert own_cert;
static char *own_roots;

static void teardown(void)
{
	hbone_conn_free(h2);
	tls_session_free(tls);
	tls_ctx_free(tls_context);
	free(own_cert.chain_pem);
	free(own_cert.key_pem);
	free(own_roots);
	close(fd);
}

static char *read_dir_file(const char *dir, const char *name)
{
	char path[4096], *text;
	size_t len;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (file_read(path, FILE_MAX_BYTES, &text, &len) < 0)
		die(path);
	return text;
}

static void setup(bool server, const char *cert_dir, const char *root_pem, const struct spiffe_id *want,
		  const char *td)
{
	char err[256];
	size_t len;
	own_cert.chain_pem = read_dir_file(cert_dir, "cert-chain.pem");
	own_cert.key_pem = read_dir_file(cert_dir, "key.pem");
	if (file_read(root_pem, FILE_MAX_BYTES, &own_roots, &len) < 0)
		die(root_pem);
	if (tls_ctx_new(&tls_context, server, &own_cert, own_roots, err, sizeof(err)) < 0)
		die(err);
	if (tls_session_new(&tls, tls_context, want, want ? 1 : 0, td) < 0)
		die("tls session");
	struct hbone_events ev = { ev_request, ev_response, ev_data, ev_eof, ev_closed, NULL };
	if (hbone_conn_new(&h2, server, &ev) < 0)
		die("http/2 session");
}

static int run_client(char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
	struct spiffe_id want;
	inet_pton(AF_INET, argv[2], &a.sin_addr);
	if (spiffe_parse(argv[6], &want) < 0)
		die("expected identity is not a SPIFFE id");
	setup(false, argv[4], argv[5], &want, NULL);
	int n = atoi(argv[7]);
	stream_bytes = strtoull(argv[8], NULL, 10);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect failed");
	handshake();
	for (int i = 0; i < n; i++) {
		char auth[32];
		snprintf(auth, sizeof(auth), "10.244.2.%d:7000", i % 250 + 1);
		st(hbone_connect(h2, auth, NULL, 0));
	}
	flush();
	uint8_t chunk[65536];
	int done = 0;
	while (done < n) {
		bool progressed = false;
		for (int i = 0; i < n_streams; i++) {
			struct stream_state *s = &streams[i];
			if (s->status != 200 || s->sent == stream_bytes)
				continue;
			size_t len = stream_bytes - s->sent < sizeof(chunk) ? stream_bytes - s->sent : sizeof(chunk);
			for (size_t k = 0; k < len; k++)
				chunk[k] = pattern(s->sent + k, s->id);
			ssize_t w = hbone_send(h2, s->id, chunk, len);
			if (w > 0) {
				s->sent += (size_t)w;
				progressed = true;
				if (s->sent == stream_bytes)
					hbone_close_write(h2, s->id);
			}
		}
		flush();
		if (!progressed && !pump_in())
			die("peer closed the connection");
		done = 0;
		for (int i = 0; i < n_streams; i++) {
			if (streams[i].status && streams[i].status != 200) {
				fprintf(stderr, "hbone-peer: status %d\n", streams[i].status);
				return 4;
			}
			done += streams[i].eof && streams[i].received == stream_bytes;
		}
	}
	printf("ok: %d streams x %zu bytes echoed; peer %s/%s, %s %s\n", n, stream_bytes,
	       tls_peer_identity(tls)->ns, tls_peer_identity(tls)->sa, tls_version(tls), tls_cipher(tls));
	teardown();
	return 0;
}

static int run_server(char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	socklen_t alen = sizeof(a);
	server_mode = true;
	setup(true, argv[3], argv[4], NULL, argv[5]);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1) < 0)
		die("listen failed");
	getsockname(lfd, (struct sockaddr *)&a, &alen);
	printf("port %u\n", ntohs(a.sin_port));
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	handshake();
	flush();
	for (;;) {
		bool progressed = push_echo();
		flush();
		if (!progressed && !pump_in())
			break;
	}
	for (int i = 0; i < n_streams; i++)
		free(streams[i].echo);
	int echoed = 0;
	for (int i = 0; i < n_streams; i++)
		echoed += streams[i].eof;
	fprintf(stderr, "hbone-peer: server done, %d streams %s, client %s/%s\n",
		answer_status == 200 ? echoed : n_streams, answer_status == 200 ? "echoed" : "refused",
		tls_peer_identity(tls)->ns, tls_peer_identity(tls)->sa);
	close(lfd);
	teardown();
	return (answer_status == 200 ? echoed : n_streams) ? 0 : 5;
}

int main(int argc, char **argv)
{
	wolfSSL_Init();
	if (argc == 9 && !strcmp(argv[1], "client"))
		return run_client(argv);
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "server")) {
		if (argc == 7)
			answer_status = atoi(argv[6]);
		return run_server(argv);
	}
	fprintf(stderr, "usage: see the comment at the top of hbone_peer.c\n");
	return 2;
}
