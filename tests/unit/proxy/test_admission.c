/* Admission of unauthenticated connections: the per-source and node-wide
 * caps hold, slots come back, and one source at its cap does not lock out
 * the others (including ones whose first-hash bucket it shares). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>

#include "../../../ztunnel/proxy/admission.h"

static void per_source_cap_holds_and_slots_come_back(void **state)
{
	(void)state;
	struct admission *a = malloc(sizeof(*a));
	uint32_t attacker = inet_addr("10.244.1.66");
	admission_init(a, 1000, 64, 42);
	for (int i = 0; i < 64; i++)
		assert_int_equal(admission_enter(a, attacker), ADMIT_OK);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(admission_enter(a, attacker), ADMIT_OVER_PER_SOURCE);
	assert_int_equal(admission_pending(a), 64);
	/* Every other pod of a /16 still gets in. */
	for (uint32_t i = 1; i < 256 * 4; i++) {
		uint32_t src = htonl(ntohl(inet_addr("10.244.0.0")) + i);
		if (src == attacker)
			continue;
		assert_int_equal(admission_enter(a, src), ADMIT_OK);
		admission_leave(a, src);
	}
	admission_leave(a, attacker);
	assert_int_equal(admission_enter(a, attacker), ADMIT_OK);
	for (int i = 0; i < 64; i++)
		admission_leave(a, attacker);
	assert_int_equal(admission_pending(a), 0);
	free(a);
}

static void node_wide_cap_holds(void **state)
{
	(void)state;
	struct admission *a = malloc(sizeof(*a));
	admission_init(a, 100, 64, 7);
	for (uint32_t i = 0; i < 100; i++)
		assert_int_equal(admission_enter(a, htonl(0x0af40000 + i)), ADMIT_OK);
	assert_int_equal(admission_enter(a, htonl(0x0af40100)), ADMIT_OVER_TOTAL);
	assert_int_equal(admission_pending(a), 100);
	admission_leave(a, htonl(0x0af40000));
	assert_int_equal(admission_enter(a, htonl(0x0af40100)), ADMIT_OK);
	free(a);
}

/* As a byte budget: usage per source, never below the truth. */
/* An eviction hands the slot over: the total never drops, so no other
 * source can take it in between; the usages follow. */
static void a_slot_moves_between_sources_without_freeing(void **state)
{
	struct admission a;
	uint32_t heavy = 0x0a000001, fresh = 0x0a000002;

	(void)state;
	admission_init(&a, 4, 4, 7);
	for (int i = 0; i < 4; i++)
		assert_int_equal(admission_enter(&a, heavy), ADMIT_OK);
	assert_int_equal(admission_enter(&a, fresh), ADMIT_OVER_TOTAL);
	admission_move(&a, heavy, fresh);
	assert_int_equal(admission_pending(&a), 4);
	assert_int_equal(admission_usage(&a, heavy), 3);
	assert_int_equal(admission_usage(&a, fresh), 1);
	assert_int_equal(admission_enter(&a, heavy), ADMIT_OVER_TOTAL);
	admission_leave(&a, fresh);
	assert_int_equal(admission_usage(&a, fresh), 0);
	assert_int_equal(admission_pending(&a), 3);
}

static void byte_budget_tracks_usage_per_source(void **state)
{
	(void)state;
	struct admission *a = malloc(sizeof(*a));
	uint32_t hog = inet_addr("10.244.2.9"), other = inet_addr("10.244.2.10");
	admission_init(a, UINT32_MAX, UINT32_MAX, 3);
	admission_add(a, hog, 4u << 20);
	admission_add(a, other, 1000);
	assert_true(admission_usage(a, hog) >= 4u << 20);
	assert_true(admission_usage(a, other) >= 1000 && admission_usage(a, other) < 4u << 20);
	admission_sub(a, hog, 3u << 20);
	assert_true(admission_usage(a, hog) >= 1u << 20 && admission_usage(a, hog) < 2u << 20);
	admission_sub(a, hog, 1u << 20);
	admission_sub(a, other, 1000);
	assert_int_equal(admission_pending(a), 0);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(per_source_cap_holds_and_slots_come_back),
		cmocka_unit_test(node_wide_cap_holds),
		cmocka_unit_test(a_slot_moves_between_sources_without_freeing),
		cmocka_unit_test(byte_budget_tracks_usage_per_source),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
