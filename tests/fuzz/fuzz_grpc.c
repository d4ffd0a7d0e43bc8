/* Fuzz target: what a certificate authority sends the agent (and what an
 * agent sends our CA): gRPC frames holding CreateCertificate responses and
 * requests. A frame is complete or not, decoded or refused; what decodes
 * encodes and decodes again to the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ztunnel/grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ca_response resp;
	struct ca_request req;
	uint8_t *again;
	size_t len;

	long whole = grpc_frame_complete(data, size, GRPC_MESSAGE_MAX);
	FUZZ_CHECK(whole <= (long)size);
	if (grpc_ca_response_decode(data, size, &resp) == 0) {
		FUZZ_CHECK(whole == (long)size && resp.n > 0);
		if (grpc_ca_response_encode(&resp, &again, &len) == 0) {
			struct ca_response back;
			FUZZ_CHECK(grpc_ca_response_decode(again, len, &back) == 0 && back.n == resp.n);
			for (size_t i = 0; i < resp.n; i++)
				FUZZ_CHECK(!strcmp(back.chain[i], resp.chain[i]));
			grpc_ca_response_free(&back);
			free(again);
		}
		grpc_ca_response_free(&resp);
	}
	if (grpc_ca_request_decode(data, size, &req) == 0) {
		FUZZ_CHECK(whole == (long)size && req.csr && *req.csr);
		grpc_ca_request_free(&req);
	}
	return 0;
}
