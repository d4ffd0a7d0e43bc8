/* Prints AES-GCM and ChaCha20-Poly1305 throughput of the wolfSSL this tree
 * links, on TLS-record-sized (16 KiB) buffers. A figure, not a test: it
 * shows whether the AES-NI build from tools/bootstrap is the one in use. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/version.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORD 16384

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef int (*seal_fn)(void *ctx, uint8_t *out, const uint8_t *in, uint32_t len, uint8_t *tag);

static int seal_aes(void *ctx, uint8_t *out, const uint8_t *in, uint32_t len, uint8_t *tag)
{
	static const uint8_t iv[12];
	return wc_AesGcmEncrypt(ctx, out, in, len, iv, sizeof(iv), tag, 16, NULL, 0);
}

static int seal_chacha(void *ctx, uint8_t *out, const uint8_t *in, uint32_t len, uint8_t *tag)
{
	static const uint8_t iv[12];
	return wc_ChaCha20Poly1305_Encrypt(ctx, iv, NULL, 0, in, len, out, tag);
}

static int run(const char *name, seal_fn fn, void *ctx, double seconds)
{
	uint8_t *in = calloc(1, RECORD), *out = malloc(RECORD), tag[16];
	uint64_t bytes = 0;
	double start = now_s(), elapsed;
	int r = 0;

	if (!in || !out)
		return 1;
	do {
		for (int i = 0; i < 64 && r == 0; i++) {
			r = fn(ctx, out, in, RECORD, tag);
			bytes += RECORD;
		}
		elapsed = now_s() - start;
	} while (r == 0 && elapsed < seconds);
	if (r == 0)
		printf("%-22s %8.2f GB/s\n", name, (double)bytes / elapsed / 1e9);
	else
		fprintf(stderr, "%s: wolfSSL error %d\n", name, r);
	free(in);
	free(out);
	return r != 0;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;
	static const uint8_t key[32] = { 1, 2, 3 };
	Aes aes;
	int failed = 0;

	printf("wolfSSL %s, AES-NI compiled in: %s, CPU has AES-NI: %s\n", LIBWOLFSSL_VERSION_STRING,
#ifdef WOLFSSL_AESNI
	       "yes",
#else
	       "NO",
#endif
	       __builtin_cpu_supports("aes") ? "yes" : "no");
	wc_AesInit(&aes, NULL, INVALID_DEVID);
	failed |= wc_AesGcmSetKey(&aes, key, 16) || run("AES-128-GCM seal", seal_aes, &aes, seconds);
	failed |= wc_AesGcmSetKey(&aes, key, 32) || run("AES-256-GCM seal", seal_aes, &aes, seconds);
	wc_AesFree(&aes);
	failed |= run("ChaCha20-Poly1305 seal", seal_chacha, (void *)key, seconds);
	return failed;
}
