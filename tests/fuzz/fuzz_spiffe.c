/* Fuzz target: the peer identity of a TLS handshake. The bytes are read two
 * ways: as a URI SAN string for spiffe_parse (an accepted id formats and
 * parses back to itself), and as a DER certificate whose subject alt names
 * are walked the way tls/session.c check_peer walks a peer's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "fuzz.h"
#include "ztunnel/identity.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	wolfSSL_Init();
	return 0;
}

static void parse_and_round_trip(const char *uri)
{
	struct spiffe_id id, again;
	char buf[800]; /* check_peer's "got" */

	if (spiffe_parse(uri, &id) < 0) {
		FUZZ_CHECK(!id.td[0] && !id.ns[0] && !id.sa[0]);
		return;
	}
	FUZZ_CHECK(id.td[0] && id.ns[0] && id.sa[0]);
	FUZZ_CHECK(spiffe_format(&id, buf, sizeof(buf)) > 0);
	FUZZ_CHECK(!strcmp(buf, uri));
	FUZZ_CHECK(spiffe_parse(buf, &again) == 0);
	FUZZ_CHECK(!memcmp(&id, &again, sizeof(id)));
}

/* check_peer: every alt name, non-SPIFFE ones skipped. */
static void walk_alt_names(const uint8_t *der, size_t size)
{
	WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer(der, (int)size, WOLFSSL_FILETYPE_ASN1);
	char *name;

	if (!x)
		return;
	while ((name = wolfSSL_X509_get_next_altname(x)))
		parse_and_round_trip(name);
	wolfSSL_X509_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = fuzz_cstring(data, size);

	if (!uri)
		return 0;
	parse_and_round_trip(uri);
	free(uri);
	if (size <= INT32_MAX)
		walk_alt_names(data, size);
	return 0;
}
