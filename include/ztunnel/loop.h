/* io_uring event loop, one per worker thread. Every submission carries a
 * `struct op *` as user_data; its handler runs with the completion result. */
#ifndef ZTUNNEL_LOOP_H
#define ZTUNNEL_LOOP_H

#include <liburing.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>

struct op;
typedef void (*op_fn)(struct op *op, int res, uint32_t flags);

struct op {
	op_fn fn;
};

struct loop {
	struct io_uring ring;
	int wake_fd;       /* eventfd: other threads ask this loop to stop */
	struct op wake_op;
	uint64_t wake_buf;
	bool stopping;
	bool disabled; /* created with R_DISABLED: the running thread enables it */
};

/* Receive buffers the kernel picks when data arrives (a provided-buffer
 * ring, kernel >= 5.19): a connection waiting for data holds none. */
struct loop_bufs {
	struct io_uring_buf_ring *ring;
	uint8_t *mem;
	unsigned n, size;
	uint16_t bgid;
	bool on; /* registered; off on older kernels (callers bring buffers) */
};

int loop_init(struct loop *l, unsigned entries);
/* Before loop_run, or on its thread: n buffers of size bytes as group bgid.
 * 0, or -errno (then b->on is false and nothing is held). */
int loop_bufs_init(struct loop *l, struct loop_bufs *b, uint16_t bgid, unsigned n, unsigned size);
void loop_bufs_fini(struct loop *l, struct loop_bufs *b);
/* A recv on fd whose buffer the kernel takes from b (up to b->size). Its
 * completion: res > 0 and the buffer in loop_bufs_take(b, flags); or
 * -ENOBUFS when the ring was empty (the caller then brings a buffer). */
void loop_prep_recv_select(struct loop *l, struct op *op, int fd, struct loop_bufs *b);
/* The buffer a completion's flags name (*bid: give it back with
 * loop_bufs_give), NULL if none. */
uint8_t *loop_bufs_take(struct loop_bufs *b, uint32_t cqe_flags, int *bid);
void loop_bufs_give(struct loop_bufs *b, int bid);
void loop_fini(struct loop *l);
/* An SQE for op (never NULL: submits to make room when the ring is full). */
struct io_uring_sqe *loop_sqe(struct loop *l, struct op *op);
/* Makes room for n SQEs that must land in one submission (linked ops). */
void loop_reserve(struct loop *l, unsigned n);
/* A connect bounded by a linked timeout (both SQEs in one submission):
 * connect completes with -ECANCELED when *timeout expires first; the
 * timeout op completes too. */
void loop_connect(struct loop *l, struct op *connect, struct op *timeout, struct __kernel_timespec *ts,
		  int fd, const struct sockaddr *addr, socklen_t addr_len);
/* Runs until loop_stop() is called from any thread; only the thread that
 * runs the loop may submit to it. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* Monotonic milliseconds: the clock of timeouts and deadlines. */
int64_t loop_now_ms(void);
/* After loop_run: keeps completing operations until done(ctx) or ms pass,
 * so that what was in flight can be released. */
void loop_drain(struct loop *l, bool (*done)(void *ctx), void *ctx, int ms);

#endif
