/* Per-thread shards of counters and labelled series, summed at scrape. */
#include "ztunnel/telemetry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ztunnel/hash.h"
#include "render.h"

/* A worker's table: 4,096 label sets in 8,192 slots (open addressing). */
#define SERIES_MAX 4096
#define SLOTS 8192
#define MAX_COLLECTORS 16

struct tm_shard {
	struct tm_shard *next;
	atomic_int_fast64_t c[TM_COUNTERS];
	_Atomic(struct tm_series *) slots[SLOTS];
	uint32_t n_series;
	_Atomic(struct tm_series *) overflow[TM_FAMILIES];
	bool shared; /* counted into by unregistered threads: inserts lock */
};

static struct {
	pthread_mutex_t lock;
	_Atomic(struct tm_shard *) shards;
	struct tm_shard *shared;
	struct {
		tm_collector_fn fn;
		void *ctx;
	} collectors[MAX_COLLECTORS];
	int n_collectors;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static __thread struct tm_shard *local;

static struct tm_shard *shard_new(bool shared)
{
	struct tm_shard *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->shared = shared;
	pthread_mutex_lock(&reg.lock);
	s->next = atomic_load(&reg.shards);
	atomic_store_explicit(&reg.shards, s, memory_order_release);
	pthread_mutex_unlock(&reg.lock);
	return s;
}

int tm_init(void)
{
	if (reg.shared)
		return 0;
	tm_process_started();
	reg.shared = shard_new(true);
	return reg.shared ? 0 : -ENOMEM;
}

void tm_fini(void)
{
	struct tm_shard *s = atomic_exchange(&reg.shards, NULL);

	while (s) {
		struct tm_shard *next = s->next;
		for (uint32_t i = 0; i < SLOTS; i++)
			free(atomic_load(&s->slots[i]));
		for (int f = 0; f < TM_FAMILIES; f++)
			free(atomic_load(&s->overflow[f]));
		free(s);
		s = next;
	}
	reg.shared = NULL;
	reg.n_collectors = 0;
	local = NULL;
}

int tm_thread_register(void)
{
	if (local)
		return 0;
	local = shard_new(false);
	return local ? 0 : -ENOMEM;
}

static struct tm_shard *shard(void)
{
	return local ? local : reg.shared;
}

void tm_count(enum tm_counter c, int64_t n)
{
	struct tm_shard *s = shard();

	if (s)
		atomic_fetch_add_explicit(&s->c[c], n, memory_order_relaxed);
}

int64_t tm_counter_value(enum tm_counter c)
{
	int64_t sum = 0;

	for (struct tm_shard *s = atomic_load_explicit(&reg.shards, memory_order_acquire); s; s = s->next)
		sum += atomic_load_explicit(&s->c[c], memory_order_relaxed);
	return sum;
}

static struct tm_series *series_new(enum tm_family f, const char *labels, size_t len, uint32_t hash)
{
	struct tm_series *s = calloc(1, sizeof(*s) + len + 1);

	if (!s)
		return NULL;
	s->family = (uint8_t)f;
	s->hash = hash;
	s->len = (uint16_t)len;
	memcpy(s->labels, labels, len);
	return s;
}

/* Where label sets go once a table is full: one series per family, so a
 * flood of new workloads costs a counter, not memory. */
static struct tm_series *overflow(struct tm_shard *sh, enum tm_family f)
{
	static const char labels[] = "overflow=\"true\"";

	struct tm_series *s = atomic_load_explicit(&sh->overflow[f], memory_order_relaxed);

	if (!s && (s = series_new(f, labels, sizeof(labels) - 1, 0)))
		atomic_store_explicit(&sh->overflow[f], s, memory_order_release);
	atomic_fetch_add_explicit(&sh->c[TM_SERIES_OVERFLOW], 1, memory_order_relaxed);
	return s;
}

static struct tm_series *lookup(struct tm_shard *sh, enum tm_family f, const char *p, size_t n, uint32_t h,
				uint32_t *free_slot)
{
	for (uint32_t i = 0; i < SLOTS; i++) {
		uint32_t slot = (h + i) & (SLOTS - 1);
		struct tm_series *s = atomic_load_explicit(&sh->slots[slot], memory_order_acquire);
		if (!s) {
			*free_slot = slot;
			return NULL;
		}
		if (s->hash == h && s->family == f && s->len == n && !memcmp(s->labels, p, n))
			return s;
	}
	*free_slot = SLOTS;
	return NULL;
}

static struct tm_series *get_locked(struct tm_shard *sh, enum tm_family f, const char *p, size_t n, uint32_t h)
{
	uint32_t slot;
	struct tm_series *s = lookup(sh, f, p, n, h, &slot);

	if (s)
		return s;
	if (sh->n_series >= SERIES_MAX || slot == SLOTS || !(s = series_new(f, p, n, h)))
		return overflow(sh, f);
	sh->n_series++;
	/* Readers (a scrape) see the series whole or not at all. */
	atomic_store_explicit(&sh->slots[slot], s, memory_order_release);
	return s;
}

struct tm_series *tm_series_get(enum tm_family f, const struct tm_labels *labels)
{
	static struct tm_series dummy; /* only before tm_init or out of memory */
	struct tm_shard *sh = shard();

	if (!sh)
		return &dummy;
	if (labels->truncated) {
		/* Names too long for the label buffer: never a broken line in the
		 * exposition, one overflow series instead. */
		if (!sh->shared)
			return overflow(sh, f) ?: &dummy;
		pthread_mutex_lock(&reg.lock);
		struct tm_series *o = overflow(sh, f);
		pthread_mutex_unlock(&reg.lock);
		return o ?: &dummy;
	}
	uint32_t h = hash_fnv1a(HASH_FNV_SEED ^ (uint32_t)f, labels->buf, labels->len);
	if (!sh->shared) {
		struct tm_series *s = get_locked(sh, f, labels->buf, labels->len, h);
		return s ? s : &dummy;
	}
	pthread_mutex_lock(&reg.lock);
	struct tm_series *s = get_locked(sh, f, labels->buf, labels->len, h);
	pthread_mutex_unlock(&reg.lock);
	return s ? s : &dummy;
}

int tm_collector_add(tm_collector_fn fn, void *ctx)
{
	int r = -ENOSPC;

	pthread_mutex_lock(&reg.lock);
	if (reg.n_collectors < MAX_COLLECTORS) {
		reg.collectors[reg.n_collectors].fn = fn;
		reg.collectors[reg.n_collectors++].ctx = ctx;
		r = 0;
	}
	pthread_mutex_unlock(&reg.lock);
	return r;
}

void tm_collector_del(tm_collector_fn fn, void *ctx)
{
	pthread_mutex_lock(&reg.lock);
	for (int i = 0; i < reg.n_collectors; i++) {
		if (reg.collectors[i].fn == fn && reg.collectors[i].ctx == ctx) {
			reg.collectors[i] = reg.collectors[--reg.n_collectors];
			break;
		}
	}
	pthread_mutex_unlock(&reg.lock);
}

int tm_series_collect(struct tm_series ***out, size_t *n)
{
	size_t cap = 256, len = 0;
	struct tm_series **v = malloc(cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (struct tm_shard *sh = atomic_load_explicit(&reg.shards, memory_order_acquire); sh; sh = sh->next) {
		for (uint32_t i = 0; i < SLOTS + TM_FAMILIES; i++) {
			struct tm_series *s = atomic_load_explicit(i < SLOTS ? &sh->slots[i] : &sh->overflow[i - SLOTS],
								   memory_order_acquire);
			if (!s)
				continue;
			if (len == cap) {
				struct tm_series **nv = realloc(v, 2 * cap * sizeof(*v));
				if (!nv) {
					free(v);
					return -ENOMEM;
				}
				v = nv;
				cap *= 2;
			}
			v[len++] = s;
		}
	}
	*out = v;
	*n = len;
	return 0;
}

/* Under the lock: a collector is never removed (its owner freed) while
 * a scrape runs it. */
void tm_run_collectors(struct tm_text *out)
{
	pthread_mutex_lock(&reg.lock);
	for (int i = 0; i < reg.n_collectors; i++)
		reg.collectors[i].fn(out, reg.collectors[i].ctx);
	pthread_mutex_unlock(&reg.lock);
}
