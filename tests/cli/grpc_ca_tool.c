/* Test helper: our CreateCertificate codec on stdin/stdout, for checks
 * against other implementations (ca_messages_match_istio_wire.sh).
 *   grpc_ca_tool encode-request CSR_FILE VALIDITY [IDENTITY] > frame
 *   grpc_ca_tool decode-response < frame   (prints each chain entry, NUL-separated)
 *   grpc_ca_tool make-csr SPIFFE_ID CSR_OUT KEY_OUT   (the agent's key and CSR)
 *   grpc_ca_tool call https://HOST:PORT ROOTS TOKEN CLUSTER CSR_FILE SPIFFE_ID
 *                                          (one CreateCertificate: the chain, NUL-separated)
 *   grpc_ca_tool fetch-many https://HOST:PORT ROOTS TOKEN_FILE N
 *                    (the agent's way: N identities through the certificate cache and
 *                     the fetch threads with the ca provider; prints what it got) */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/ca_provider.h"
#include "ztunnel/cert_fetcher.h"
#include "ztunnel/file.h"
#include "ztunnel/grpc.h"
#include "ztunnel/identity.h"
#include "ztunnel/log.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Drives the cache as the control thread does (poll the fetcher's fd,
 * deliver, tick) until every identity has a certificate or 30 s pass. */
static int fetch_many(const char *address, const char *roots, const char *token_file, int n)
{
	struct ca_provider cp = { .timeout_ms = 5000 };
	struct cert_provider p = { "ca", ca_provider_fetch, NULL, &cp };
	struct cert_fetcher *f;
	struct cert_cache c;
	uint32_t most = 0;
	int64_t start = (int64_t)time(NULL);

	snprintf(cp.address, sizeof(cp.address), "%s", address);
	snprintf(cp.roots_file, sizeof(cp.roots_file), "%s", roots);
	snprintf(cp.token_file, sizeof(cp.token_file), "%s", token_file);
	snprintf(cp.cluster_id, sizeof(cp.cluster_id), "Kubernetes");
	wolfSSL_Init(); /* once, before the threads: not safe to race */
	if (cert_fetcher_start(&f, p) < 0)
		return 1;
	cert_cache_init(&c, p, 3600, 1);
	cert_cache_set_runner(&c, cert_fetcher_runner(f));
	for (int i = 0; i < n; i++) {
		struct spiffe_id id = { "cluster.local", "shop", "" };
		snprintf(id.sa, sizeof(id.sa), "sa%d", i);
		cert_cache_want(&c, &id, start);
	}
	while (!cert_cache_all_available(&c) && time(NULL) < start + 30) {
		cert_cache_tick(&c, (int64_t)time(NULL));
		most = c.in_flight > most ? c.in_flight : most;
		struct pollfd pfd = { cert_fetcher_fd(f), POLLIN, 0 };
		if (poll(&pfd, 1, 1000) > 0)
			cert_fetcher_deliver(f, &c, (int64_t)time(NULL));
	}
	cert_fetcher_stop(f);
	int available = 0;
	for (uint32_t i = 0; i < c.n; i++) {
		const struct cert_entry *e = &c.entries[i];
		available += e->state == CERT_AVAILABLE;
		if (e->state != CERT_AVAILABLE)
			fprintf(stderr, "%s: %s\n", e->uri, e->last_error);
	}
	printf("%d of %d available, at most %u in flight\n", available, n, most);
	cert_cache_fini(&c);
	wolfSSL_Cleanup();
	return available == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (argc >= 4 && !strcmp(argv[1], "encode-request")) {
		char *csr = NULL;
		size_t n;
		if (file_read(argv[2], 1 << 20, &csr, &n) < 0)
			return 2;
		struct ca_request r = { csr, atoll(argv[3]), argc > 4 ? argv[4] : NULL };
		if (grpc_ca_request_encode(&r, &buf, &len) < 0)
			return 1;
		fwrite(buf, 1, len, stdout);
		free(buf);
		free(csr);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "decode-response")) {
		static uint8_t in[GRPC_MESSAGE_MAX + 5];
		size_t n = fread(in, 1, sizeof(in), stdin);
		struct ca_response resp;
		int r = grpc_ca_response_decode(in, n, &resp);
		if (r < 0) {
			fprintf(stderr, "decode failed: %d\n", r);
			return 1;
		}
		for (size_t i = 0; i < resp.n; i++)
			fwrite(resp.chain[i], 1, strlen(resp.chain[i]) + 1, stdout);
		grpc_ca_response_free(&resp);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "make-csr")) {
		struct spiffe_id id;
		char *csr, *key, err[256];
		if (spiffe_parse(argv[2], &id) < 0 || csr_create(&id, &csr, &key, err, sizeof(err)) < 0) {
			fprintf(stderr, "make-csr: %s\n", err);
			return 1;
		}
		int r = file_write_atomic(argv[3], csr, 0644) < 0 ||
			file_write_atomic(argv[4], key, 0600) < 0;
		free(csr);
		free(key);
		return r;
	}
	if (argc == 8 && !strcmp(argv[1], "call")) {
		char *csr = NULL, err[512];
		size_t n;
		struct ca_response resp;
		if (file_read(argv[6], 1 << 20, &csr, &n) < 0)
			return 2;
		struct grpc_ca_target t = { argv[2], argv[3], argv[4], argv[5], 5000 };
		struct ca_request req = { csr, 86400, argv[7] };
		int r = grpc_ca_call(&t, &req, &resp, err, sizeof(err));
		free(csr);
		if (r < 0) {
			fprintf(stderr, "call: %s (%d)\n", err, r);
			return 1;
		}
		for (size_t i = 0; i < resp.n; i++)
			fwrite(resp.chain[i], 1, strlen(resp.chain[i]) + 1, stdout);
		grpc_ca_response_free(&resp);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "fetch-many")) {
		log_setup(LOG_LEVEL_WARN, LOG_FORMAT_TEXT, 2);
		return fetch_many(argv[2], argv[3], argv[4], atoi(argv[5]));
	}
	fprintf(stderr, "usage: see the comment at the top of grpc_ca_tool.c\n");
	return 2;
}
