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

int loop_init(struct loop *l, unsigned entries);
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
