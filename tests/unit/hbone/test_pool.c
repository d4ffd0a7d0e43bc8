/* HBONE connection pool (SPEC.md §2.5): keys, single flight, the stream
 * limit (ours and the peer's), retirement, idle release, broken conns. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ztunnel/hbone_pool.h"

/* Identities are interned objects the pool compares by address. */
static const char id_a[] = "a", id_b[] = "b", id_c[] = "c", id_x[] = "x", id_y[] = "y", id_z[] = "z";

static struct hbone_pool_key key(const void *src, const void *dst, uint32_t dst_ip)
{
	return (struct hbone_pool_key){ .src_id = src, .dst_id = dst, .src_ip = 0x0101010a, .dst_ip = dst_ip,
					.dst_port = 15008 };
}

static int conn_a, conn_b, conn_c;

static void one_dial_per_key_then_shared(void **state)
{
	(void)state;
	struct hbone_pool p;
	struct hbone_pooled *pc, *other;
	struct hbone_pool_key k = key(id_x, id_y, 1);
	hbone_pool_init(&p);
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &pc), HBONE_POOL_DIAL);
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &other), HBONE_POOL_WAIT);
	hbone_pool_dialed(&p, pc, &conn_a, 0);
	assert_int_equal(pc->streams, 1);
	assert_int_equal(hbone_pool_checkout(&p, &k, 1, &other), HBONE_POOL_USE);
	assert_ptr_equal(other, pc);
	assert_int_equal(pc->streams, 2);
	/* Another source identity, destination or source IP never shares. */
	struct hbone_pool_key k2 = key(id_z, id_y, 1);
	struct hbone_pool_key k3 = key(id_x, id_y, 2);
	struct hbone_pool_key k4 = k;
	k4.src_ip = 0x0201010a;
	assert_int_equal(hbone_pool_checkout(&p, &k2, 1, &other), HBONE_POOL_DIAL);
	assert_int_equal(hbone_pool_checkout(&p, &k3, 1, &other), HBONE_POOL_DIAL);
	assert_int_equal(hbone_pool_checkout(&p, &k4, 1, &other), HBONE_POOL_DIAL);
	assert_int_equal(p.n, 4);
	hbone_pool_fini(&p);
}

static void a_connection_retires_before_its_stream_limit(void **state)
{
	(void)state;
	struct hbone_pool p;
	struct hbone_pooled *pc, *x;
	struct hbone_pool_key k = key(id_a, id_b, 1);
	hbone_pool_init(&p);
	hbone_pool_checkout(&p, &k, 0, &pc);
	hbone_pool_dialed(&p, pc, &conn_a, 0);
	for (int i = 1; i < 99; i++)
		assert_int_equal(hbone_pool_checkout(&p, &k, 0, &x), HBONE_POOL_USE);
	assert_int_equal(pc->streams, 99);
	assert_true(pc->retired); /* the 100th would reach the limit */
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &x), HBONE_POOL_DIAL);
	assert_ptr_not_equal(x, pc);
	hbone_pool_dialed(&p, x, &conn_b, 3); /* the peer allows only 3 streams */
	struct hbone_pooled *y;
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &y), HBONE_POOL_USE);
	assert_ptr_equal(y, x);
	assert_true(x->retired); /* 2 of 3 taken */
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &y), HBONE_POOL_DIAL);
	hbone_pool_fini(&p);
}

static void idle_and_drained_connections_are_released(void **state)
{
	(void)state;
	struct hbone_pool p;
	struct hbone_pooled *pc, *pd;
	void *closed[4];
	struct hbone_pool_key k = key(id_a, id_b, 1), k2 = key(id_a, id_c, 2);
	hbone_pool_init(&p);
	hbone_pool_checkout(&p, &k, 0, &pc);
	hbone_pool_dialed(&p, pc, &conn_a, 0);
	hbone_pool_checkout(&p, &k2, 0, &pd);
	hbone_pool_dialed(&p, pd, &conn_b, 0);
	assert_int_equal(hbone_pool_expire(&p, 1000, closed, 4), 0); /* streams open */
	hbone_pool_release(&p, pc, 10);
	hbone_pool_release(&p, pd, 10);
	assert_int_equal(hbone_pool_expire(&p, 299, closed, 4), 0);
	struct hbone_pooled *again;
	assert_int_equal(hbone_pool_checkout(&p, &k2, 200, &again), HBONE_POOL_USE); /* k2 used at 200 */
	hbone_pool_release(&p, again, 201);
	assert_int_equal(hbone_pool_expire(&p, 300, closed, 4), 1);
	assert_ptr_equal(closed[0], &conn_a); /* idle since its checkout at 0 */
	assert_int_equal(hbone_pool_expire(&p, 499, closed, 4), 0);
	assert_int_equal(hbone_pool_expire(&p, 500, closed, 4), 1);
	assert_int_equal(p.n, 0);
	hbone_pool_fini(&p);
}

/* The dial's checkout time counts: a connection used once is kept for the
 * idle period after it (a clock that does not start at 0 caught this). */
static void a_dialled_connection_is_idle_from_its_dial(void **state)
{
	(void)state;
	struct hbone_pool p;
	struct hbone_pooled *pc;
	void *closed[4];
	struct hbone_pool_key k = key(id_a, id_b, 1);
	hbone_pool_init(&p);
	assert_int_equal(hbone_pool_checkout(&p, &k, 1000, &pc), HBONE_POOL_DIAL);
	hbone_pool_dialed(&p, pc, &conn_a, 0);
	hbone_pool_release(&p, pc, 1005);
	assert_int_equal(hbone_pool_expire(&p, 1010, closed, 4), 0);
	assert_int_equal(hbone_pool_expire(&p, 1299, closed, 4), 0);
	assert_int_equal(hbone_pool_expire(&p, 1300, closed, 4), 1);
	hbone_pool_fini(&p);
}

/* --pool-max-streams-per-connection 1: every stream dials its own
 * connection, which is to be closed as soon as its stream ends. */
static void one_stream_per_connection_closes_each_after_its_stream(void **state)
{
	(void)state;
	struct hbone_pool p;
	struct hbone_pooled *pc, *pd;
	struct hbone_pool_key k = key(id_a, id_b, 1);
	hbone_pool_init(&p);
	p.max_streams = 1;
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &pc), HBONE_POOL_DIAL);
	hbone_pool_dialed(&p, pc, &conn_a, 0);
	assert_true(pc->retired);
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &pd), HBONE_POOL_DIAL); /* not shared */
	assert_ptr_not_equal(pd, pc);
	hbone_pool_dialed(&p, pd, &conn_b, 0);
	assert_true(hbone_pool_release(&p, pc, 1)); /* spent: close it now */
	assert_ptr_equal(hbone_pool_remove(&p, pc), &conn_a);
	/* With the default limit a released connection stays for reuse. */
	p.max_streams = HBONE_POOL_MAX_STREAMS;
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &pc), HBONE_POOL_DIAL);
	hbone_pool_dialed(&p, pc, &conn_c, 0);
	assert_false(hbone_pool_release(&p, pc, 1));
	hbone_pool_fini(&p);
}

static void failed_dials_and_broken_connections_leave_the_pool(void **state)
{
	(void)state;
	struct hbone_pool p;
	struct hbone_pooled *pc, *x;
	struct hbone_pool_key k = key(id_a, id_b, 1);
	hbone_pool_init(&p);
	hbone_pool_checkout(&p, &k, 0, &pc);
	hbone_pool_dialed(&p, pc, NULL, 0); /* TLS failed */
	assert_int_equal(p.n, 0);
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &pc), HBONE_POOL_DIAL); /* no lingering WAIT */
	hbone_pool_dialed(&p, pc, &conn_c, 0);
	assert_ptr_equal(hbone_pool_remove(&p, pc), &conn_c); /* GOAWAY */
	assert_int_equal(hbone_pool_checkout(&p, &k, 0, &x), HBONE_POOL_DIAL);
	hbone_pool_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_dial_per_key_then_shared),
		cmocka_unit_test(one_stream_per_connection_closes_each_after_its_stream),
		cmocka_unit_test(a_connection_retires_before_its_stream_limit),
		cmocka_unit_test(idle_and_drained_connections_are_released),
		cmocka_unit_test(a_dialled_connection_is_idle_from_its_dial),
		cmocka_unit_test(failed_dials_and_broken_connections_leave_the_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
