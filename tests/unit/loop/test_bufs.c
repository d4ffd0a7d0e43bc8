/* The provided-buffer ring on a real io_uring: reads land in buffers the
 * kernel picks, an empty ring answers -ENOBUFS (the caller's cue to bring
 * its own), and a buffer given back is used again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ztunnel/loop.h"

struct got {
	struct op op;
	int res;
	uint32_t flags;
	bool done;
};

static void on_done(struct op *op, int res, uint32_t flags)
{
	struct got *g = (struct got *)op;
	g->res = res;
	g->flags = flags;
	g->done = true;
}

static void wait_all(struct loop *l, struct got *g, int n)
{
	for (int tries = 0; tries < 100; tries++) {
		bool all = true;
		for (int i = 0; i < n; i++)
			all &= g[i].done;
		if (all)
			return;
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { 0, 10 * 1000 * 1000 };
		io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
		unsigned head, k = 0;
		io_uring_for_each_cqe(&l->ring, head, cqe) {
			struct op *op = io_uring_cqe_get_data(cqe);
			k++;
			if (op)
				op->fn(op, cqe->res, cqe->flags);
		}
		io_uring_cq_advance(&l->ring, k);
	}
	fail_msg("completions missing");
}

static void reads_take_ring_buffers_and_an_empty_ring_says_so(void **state)
{
	(void)state;
	struct loop l;
	struct loop_bufs b;
	int sp[3][2];
	struct got g[3] = { 0 };

	assert_int_equal(loop_init(&l, 64), 0);
	/* The agent's rings start disabled; this one too, as in the agent. */
	int r = loop_bufs_init(&l, &b, 7, 2, 64);
	if (r == -EINVAL || r == -ENOSYS) {
		loop_fini(&l);
		skip(); /* kernel without provided-buffer rings */
	}
	assert_int_equal(r, 0);
	assert_true(b.on);
	assert_int_equal(loop_bufs_init(&l, &(struct loop_bufs){ 0 }, 8, 3, 64), -EINVAL); /* not a power of two */
	if (l.disabled)
		assert_int_equal(syscall(__NR_io_uring_register, l.ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
		g[i].op.fn = on_done;
		loop_prep_recv_select(&l, &g[i].op, sp[i][0], &b);
	}
	for (int i = 0; i < 3; i++) {
		char msg[16];
		snprintf(msg, sizeof(msg), "hello %d", i);
		assert_int_equal(write(sp[i][1], msg, strlen(msg)), (ssize_t)strlen(msg));
	}
	wait_all(&l, g, 3);
	int ok = 0, bids[3];
	for (int i = 0; i < 3; i++) {
		uint8_t *p = loop_bufs_take(&b, g[i].flags, &bids[i]);
		if (g[i].res > 0) {
			ok++;
			assert_non_null(p);
			char want[16];
			snprintf(want, sizeof(want), "hello %d", i);
			assert_memory_equal(p, want, strlen(want));
		} else {
			assert_int_equal(g[i].res, -ENOBUFS);
			assert_null(p);
			assert_int_equal(bids[i], -1);
		}
	}
	assert_int_equal(ok, 2); /* two buffers, three reads: one told -ENOBUFS */
	/* Given back, a buffer serves the read that found none. */
	for (int i = 0; i < 3; i++)
		if (g[i].res > 0) {
			loop_bufs_give(&b, bids[i]);
			break;
		}
	for (int i = 0; i < 3; i++)
		if (g[i].res == -ENOBUFS) {
			g[i].done = false;
			loop_prep_recv_select(&l, &g[i].op, sp[i][0], &b);
			wait_all(&l, &g[i], 1);
			int bid;
			uint8_t *p = loop_bufs_take(&b, g[i].flags, &bid);
			assert_true(g[i].res > 0);
			assert_non_null(p);
			assert_memory_equal(p, "hello", 5);
		}
	for (int i = 0; i < 3; i++) {
		close(sp[i][0]);
		close(sp[i][1]);
	}
	loop_bufs_fini(&l, &b);
	loop_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reads_take_ring_buffers_and_an_empty_ring_says_so),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
