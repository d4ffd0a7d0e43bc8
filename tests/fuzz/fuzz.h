/* Shared by the libFuzzer harnesses: the entry points and an invariant
 * check that aborts (libFuzzer saves the input that broke it). */
#ifndef ZTUNNEL_TESTS_FUZZ_H
#define ZTUNNEL_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "invariant broken: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                          \
		}                                                                         \
	} while (0)

/* The input as a C string (what the code under test gets from its caller),
 * with a second NUL after it; NULL when out of memory. Caller frees. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 2);

	if (s) {
		memcpy(s, data, size);
		s[size] = s[size + 1] = '\0';
	}
	return s;
}

#endif
