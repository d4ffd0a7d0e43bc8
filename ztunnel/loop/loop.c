#include "ztunnel/loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/clock.h"
#include "ztunnel/log.h"

static void on_wake(struct op *op, int res, uint32_t flags)
{
	struct loop *l = (struct loop *)((char *)op - offsetof(struct loop, wake_op));

	(void)res;
	(void)flags;
	l->stopping = true;
}

int loop_init(struct loop *l, unsigned entries)
{
	memset(l, 0, sizeof(*l));
	/* One thread submits and reaps: completions' task work runs only when
	 * that thread waits (kernel >= 6.1), with fewer interrupts. The ring
	 * starts disabled so that the worker thread, not its creator, becomes
	 * the issuer (loop_run enables it). */
	int r = io_uring_queue_init(entries, &l->ring,
				    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					    IORING_SETUP_R_DISABLED);
	l->disabled = r == 0;
	if (r == -EINVAL)
		r = io_uring_queue_init(entries, &l->ring, 0);
	if (r < 0)
		return r;
	l->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (l->wake_fd < 0) {
		r = -errno;
		io_uring_queue_exit(&l->ring);
		return r;
	}
	l->wake_op.fn = on_wake;
	io_uring_prep_read(loop_sqe(l, &l->wake_op), l->wake_fd, &l->wake_buf, sizeof(l->wake_buf), 0);
	return 0;
}

int loop_bufs_init(struct loop *l, struct loop_bufs *b, uint16_t bgid, unsigned n, unsigned size)
{
	size_t ring_bytes = n * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = { .ring_entries = n, .bgid = bgid };
	int r;

	memset(b, 0, sizeof(*b));
	if (n & (n - 1) || n > 32768)
		return -EINVAL; /* a power of two, as the kernel wants */
	if (posix_memalign((void **)&b->ring, 4096, ring_bytes) || !(b->mem = malloc((size_t)n * size))) {
		free(b->ring);
		b->ring = NULL;
		return -ENOMEM;
	}
	reg.ring_addr = (unsigned long)b->ring;
	if ((r = io_uring_register_buf_ring(&l->ring, &reg, 0)) < 0) {
		free(b->ring);
		free(b->mem);
		memset(b, 0, sizeof(*b));
		return r;
	}
	b->n = n;
	b->size = size;
	b->bgid = bgid;
	b->on = true;
	io_uring_buf_ring_init(b->ring);
	for (unsigned i = 0; i < n; i++)
		io_uring_buf_ring_add(b->ring, b->mem + (size_t)i * size, size, (unsigned short)i,
				      io_uring_buf_ring_mask(n), (int)i);
	io_uring_buf_ring_advance(b->ring, (int)n);
	return 0;
}

void loop_bufs_fini(struct loop *l, struct loop_bufs *b)
{
	if (b->on)
		io_uring_unregister_buf_ring(&l->ring, b->bgid);
	free(b->ring);
	free(b->mem);
	memset(b, 0, sizeof(*b));
}

void loop_prep_recv_select(struct loop *l, struct op *op, int fd, struct loop_bufs *b)
{
	struct io_uring_sqe *sqe = loop_sqe(l, op);

	io_uring_prep_recv(sqe, fd, NULL, b->size, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = b->bgid;
}

uint8_t *loop_bufs_take(struct loop_bufs *b, uint32_t cqe_flags, int *bid)
{
	if (!(cqe_flags & IORING_CQE_F_BUFFER)) {
		*bid = -1;
		return NULL;
	}
	*bid = (int)(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
	return b->mem + (size_t)*bid * b->size;
}

void loop_bufs_give(struct loop_bufs *b, int bid)
{
	if (bid < 0)
		return;
	io_uring_buf_ring_add(b->ring, b->mem + (size_t)bid * b->size, b->size, (unsigned short)bid,
			      io_uring_buf_ring_mask(b->n), 0);
	io_uring_buf_ring_advance(b->ring, 1);
}

void loop_fini(struct loop *l)
{
	io_uring_queue_exit(&l->ring);
	close(l->wake_fd);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	while (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	io_uring_sqe_set_data(sqe, op);
	return sqe;
}

void loop_reserve(struct loop *l, unsigned n)
{
	if (io_uring_sq_space_left(&l->ring) < n)
		io_uring_submit(&l->ring);
}

void loop_connect(struct loop *l, struct op *connect, struct op *timeout, struct __kernel_timespec *ts,
		  int fd, const struct sockaddr *addr, socklen_t addr_len)
{
	loop_reserve(l, 2);
	struct io_uring_sqe *sqe = loop_sqe(l, connect);
	io_uring_prep_connect(sqe, fd, addr, addr_len);
	sqe->flags |= IOSQE_IO_LINK;
	io_uring_prep_link_timeout(loop_sqe(l, timeout), ts, 0);
}

static void reap(struct loop *l)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&l->ring, head, cqe) {
		struct op *op = io_uring_cqe_get_data(cqe);
		n++;
		if (op)
			op->fn(op, cqe->res, cqe->flags);
	}
	io_uring_cq_advance(&l->ring, n);
}

int loop_run(struct loop *l)
{
	int e;

	/* Debian's liburing 2.3 declares io_uring_enable_rings() but its
	 * shared library lacks it: the register call it would make. */
	if (l->disabled && (e = (int)syscall(__NR_io_uring_register, l->ring.ring_fd,
					     IORING_REGISTER_ENABLE_RINGS, NULL, 0)) < 0) {
		e = -errno;
		log_error("io_uring enable failed", LF_ERRNO(e));
		return e;
	}
	l->disabled = false;
	while (!l->stopping) {
		int r = io_uring_submit_and_wait(&l->ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_error("io_uring wait failed", LF_ERRNO(r));
			return r;
		}
		reap(l);
	}
	return 0;
}

int64_t loop_now_ms(void)
{
	return clock_mono_ms();
}

void loop_drain(struct loop *l, bool (*done)(void *ctx), void *ctx, int ms)
{
	int64_t deadline = loop_now_ms() + ms;

	while (!done(ctx)) {
		struct __kernel_timespec ts = { 0, 20 * 1000 * 1000 };
		struct io_uring_cqe *cqe;
		int r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return;
		reap(l);
		if (loop_now_ms() >= deadline)
			return;
	}
}

void loop_stop(struct loop *l)
{
	uint64_t one = 1;
	(void)!write(l->wake_fd, &one, sizeof(one));
}
