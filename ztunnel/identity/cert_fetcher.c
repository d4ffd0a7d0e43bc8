/* Provider fetches on a pool of CERT_MAX_IN_FLIGHT threads, results back
 * through a list and an eventfd. A fixed pool rather than a thread per
 * fetch: the threads exist from start-up (no fetch fails later because
 * one cannot be made), stop joins a known set, and idle ones cost only
 * their stacks. As many threads as the cache lets fetches be in flight,
 * so a started fetch never waits for a thread; the queue stays FIFO so a
 * caller that starts more keeps the cache's priority order. */
#include "ztunnel/cert_fetcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* One fetch: queued, then run, then waiting for delivery. */
struct fetch_job {
	struct fetch_job *next;
	struct spiffe_id id;
	uint64_t ticket;
	int64_t lifetime_s;
	int r;
	struct leaf_cert leaf;
	char err[256];
};

struct job_list {
	struct fetch_job *head, **tail;
};

struct cert_fetcher {
	struct cert_provider provider;
	pthread_mutex_t lock; /* guards queue, done, stopping */
	pthread_cond_t queued;
	struct job_list queue, done;
	bool stopping;
	int efd;
	uint32_t n_threads;
	pthread_t threads[CERT_MAX_IN_FLIGHT];
};

static void list_init(struct job_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_push(struct job_list *l, struct fetch_job *j)
{
	j->next = NULL;
	*l->tail = j;
	l->tail = &j->next;
}

static void *fetch_thread(void *arg)
{
	struct cert_fetcher *f = arg;
	const uint64_t one = 1;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (!f->stopping && !f->queue.head)
			pthread_cond_wait(&f->queued, &f->lock);
		if (f->stopping)
			break;
		struct fetch_job *j = f->queue.head;
		if (!(f->queue.head = j->next))
			f->queue.tail = &f->queue.head;
		pthread_mutex_unlock(&f->lock);
		/* The provider's clock: it checks what it got against it. */
		j->r = f->provider.fetch(f->provider.ctx, &j->id, (int64_t)time(NULL), j->lifetime_s, &j->leaf,
					 j->err, sizeof(j->err));
		pthread_mutex_lock(&f->lock);
		list_push(&f->done, j);
		/* Fails only at 2^64 - 2 undelivered wake-ups: the list holds
		 * the results, the fd only has to be readable. */
		ssize_t w = write(f->efd, &one, sizeof(one));
		(void)w;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static int runner_start(void *ctx, const struct spiffe_id *id, uint64_t ticket, int64_t lifetime_s)
{
	struct cert_fetcher *f = ctx;
	struct fetch_job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->id = *id;
	j->ticket = ticket;
	j->lifetime_s = lifetime_s;
	pthread_mutex_lock(&f->lock);
	list_push(&f->queue, j);
	pthread_cond_signal(&f->queued);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

struct cert_runner cert_fetcher_runner(struct cert_fetcher *f)
{
	return (struct cert_runner){ runner_start, f };
}

int cert_fetcher_fd(const struct cert_fetcher *f)
{
	return f->efd;
}

int cert_fetcher_start(struct cert_fetcher **out, struct cert_provider p)
{
	struct cert_fetcher *f = calloc(1, sizeof(*f));
	int r = 0;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->provider = p;
	list_init(&f->queue);
	list_init(&f->done);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->queued, NULL);
	if ((f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		r = -errno;
	while (r == 0 && f->n_threads < CERT_MAX_IN_FLIGHT) {
		r = -pthread_create(&f->threads[f->n_threads], NULL, fetch_thread, f);
		f->n_threads += r == 0;
	}
	if (r < 0) {
		cert_fetcher_stop(f);
		return r;
	}
	*out = f;
	return 0;
}

/* Frees a list's jobs, and a certificate a fetch left in one. */
static void list_free(struct fetch_job *j)
{
	while (j) {
		struct fetch_job *next = j->next;
		leaf_cert_free(&j->leaf);
		free(j);
		j = next;
	}
}

int cert_fetcher_deliver(struct cert_fetcher *f, struct cert_cache *c, int64_t now)
{
	uint64_t count;
	int n = 0;

	/* Results are pushed and the eventfd written under the lock: reset
	 * and taken together here, the fd is readable exactly when results
	 * wait (no spurious wake-up). */
	pthread_mutex_lock(&f->lock);
	ssize_t got = read(f->efd, &count, sizeof(count));
	struct fetch_job *j = f->done.head;
	list_init(&f->done);
	pthread_mutex_unlock(&f->lock);
	(void)got; /* EAGAIN: called without a wake-up; the list says */
	while (j) {
		struct fetch_job *next = j->next;
		cert_cache_complete(c, &j->id, j->ticket, j->r, &j->leaf, j->err, now);
		free(j);
		j = next;
		n++;
	}
	return n;
}

void cert_fetcher_stop(struct cert_fetcher *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_cond_broadcast(&f->queued);
	pthread_mutex_unlock(&f->lock);
	for (uint32_t i = 0; i < f->n_threads; i++)
		pthread_join(f->threads[i], NULL);
	list_free(f->queue.head);
	list_free(f->done.head);
	if (f->efd >= 0)
		close(f->efd);
	pthread_cond_destroy(&f->queued);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
