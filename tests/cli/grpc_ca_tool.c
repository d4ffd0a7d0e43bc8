/* Test helper: our CreateCertificate codec on stdin/stdout, for checks
 * against other implementations (ca_messages_match_istio_wire.sh).
 *   grpc_ca_tool encode-request CSR_FILE VALIDITY [IDENTITY] > frame
 *   grpc_ca_tool decode-response < frame   (prints each chain entry, NUL-separated)
 *   grpc_ca_tool make-csr SPIFFE_ID CSR_OUT KEY_OUT   (the agent's key and CSR)
 *   grpc_ca_tool call https://HOST:PORT ROOTS TOKEN CLUSTER CSR_FILE SPIFFE_ID
 *                                          (one CreateCertificate: the chain, NUL-separated) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/file.h"
#include "ztunnel/grpc.h"
#include "ztunnel/identity.h"

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
	fprintf(stderr, "usage: see the comment at the top of grpc_ca_tool.c\n");
	return 2;
}
