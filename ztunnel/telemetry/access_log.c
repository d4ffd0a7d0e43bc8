/* The access log off the data path: a worker formats its line into a
 * queue of its own (one writer, one reader, no lock) and goes on; a writer
 * thread drains every queue to the log descriptor. When a queue is full
 * (the log's reader is slower than the connections) the line is dropped
 * and counted, never waited for: a blocked stderr must not stall traffic. */
#include "ztunnel/access_log.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/telemetry.h"

#define QUEUE_BYTES (512 * 1024) /* a power of two */
#define LINE_MAX_BYTES 4096
#define IDLE_WAIT_MS 10

struct queue {
	struct queue *next;
	atomic_size_t head; /* written by the producer */
	atomic_size_t tail; /* written by the writer thread */
	char buf[QUEUE_BYTES];
};

static struct {
	pthread_mutex_t lock;
	_Atomic(struct queue *) queues;
	pthread_t thread;
	atomic_bool running, stop;
	int fd;
} alog = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static __thread struct queue *mine;
static __thread bool queued_thread;

void access_log_thread_queue(void)
{
	queued_thread = true;
}

static struct queue *queue_of_thread(void)
{
	if (mine || !queued_thread || !atomic_load(&alog.running))
		return mine;
	if (!(mine = calloc(1, sizeof(*mine))))
		return NULL;
	pthread_mutex_lock(&alog.lock);
	mine->next = atomic_load(&alog.queues);
	atomic_store_explicit(&alog.queues, mine, memory_order_release);
	pthread_mutex_unlock(&alog.lock);
	return mine;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* best effort, as every log line */
		p += w;
		n -= (size_t)w;
	}
}

/* Whole lines, at most PIPE_BUF bytes per write(2): a pipe (a container
 * runtime's log) keeps each write whole, so other threads' lines never
 * land inside one of ours. */
static void write_lines(int fd, const char *p, size_t n)
{
	while (n) {
		size_t take = n;
		if (take > PIPE_BUF) {
			take = PIPE_BUF;
			while (take && p[take - 1] != '\n')
				take--;
			if (!take)
				take = PIPE_BUF; /* a line longer than that: cannot be atomic */
		}
		write_all(fd, p, take);
		p += take;
		n -= take;
	}
}

/* Writes what q holds in one write(2), so that other threads' log lines
 * land between whole lines only (a wrapped ring is joined first). */
static bool drain(struct queue *q)
{
	static char joined[QUEUE_BYTES]; /* the writer thread's only */
	size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&q->head, memory_order_acquire);

	if (head == tail)
		return false;
	size_t from = tail % QUEUE_BYTES, n = head - tail;
	size_t first = n < QUEUE_BYTES - from ? n : QUEUE_BYTES - from;
	if (n == first) {
		write_lines(alog.fd, q->buf + from, n);
	} else {
		memcpy(joined, q->buf + from, first);
		memcpy(joined + first, q->buf, n - first);
		write_lines(alog.fd, joined, n);
	}
	atomic_store_explicit(&q->tail, head, memory_order_release);
	return true;
}

static bool drain_all(void)
{
	bool any = false;

	for (struct queue *q = atomic_load_explicit(&alog.queues, memory_order_acquire); q; q = q->next)
		any |= drain(q);
	return any;
}

static void *writer_main(void *arg)
{
	const struct timespec idle = { 0, IDLE_WAIT_MS * 1000000L };

	(void)arg;
	while (!atomic_load(&alog.stop)) {
		if (!drain_all())
			nanosleep(&idle, NULL);
	}
	drain_all();
	return NULL;
}

static bool enqueue(struct queue *q, const char *line, size_t n);

/* Every line of a queued thread (access or not) goes through its queue. */
static void queue_line(const char *line, size_t n)
{
	struct queue *q = queue_of_thread();

	if (!q) {
		write_all(alog.fd, line, n); /* not a worker: it may wait */
		return;
	}
	if (!enqueue(q, line, n))
		tm_count(TM_ACCESS_LOG_DROPPED, 1);
}

int access_log_start(int fd)
{
	alog.fd = fd;
	atomic_store(&alog.stop, false);
	int r = -pthread_create(&alog.thread, NULL, writer_main, NULL);
	if (r == 0) {
		atomic_store(&alog.running, true);
		log_set_writer(queue_line);
	}
	return r;
}

void access_log_stop(void)
{
	if (!atomic_load(&alog.running))
		return;
	log_set_writer(NULL);
	atomic_store(&alog.stop, true);
	pthread_join(alog.thread, NULL);
	atomic_store(&alog.running, false);
	struct queue *q = atomic_exchange(&alog.queues, NULL);
	while (q) {
		struct queue *next = q->next;
		free(q);
		q = next;
	}
}

/* Copies a formatted line into q, or false when it does not fit now. */
static bool enqueue(struct queue *q, const char *line, size_t n)
{
	size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);

	if (QUEUE_BYTES - (head - tail) < n)
		return false;
	size_t at = head % QUEUE_BYTES, first = n < QUEUE_BYTES - at ? n : QUEUE_BYTES - at;
	memcpy(q->buf + at, line, first);
	memcpy(q->buf, line + first, n - first);
	atomic_store_explicit(&q->head, head + n, memory_order_release);
	return true;
}

void access_log_emit(enum log_level level, const char *msg, const struct log_field *fields)
{
	char line[LINE_MAX_BYTES];
	struct timespec now;

	if (!log_target_enabled(LOG_TARGET_ACCESS, level))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	size_t n = log_format_line(line, sizeof(line), log_get_format(),
				   (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, level, msg, fields);
	tm_count(TM_ACCESS_LOG_LINES, 1);
	log_write_line(line, n);
}
