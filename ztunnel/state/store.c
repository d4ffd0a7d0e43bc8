/* The current model behind an RCU pointer: a reload builds off to the side,
 * publishes with one pointer exchange and frees the old model once no
 * reader can still see it. Readers never block (liburcu, membarrier flavour). */
#include "ztunnel/file.h"
#include "ztunnel/log.h"
#include "ztunnel/state.h"
#include "ztunnel/telemetry.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-memb.h>

#define SNAPSHOT_MAX_BYTES (256u << 20)

/* ThreadSanitizer cannot see liburcu's grace periods (membarrier), so it
 * would report every reclamation as a race. Tell it what RCU guarantees:
 * everything a reader did before unlock happens before the free that
 * follows synchronize_rcu(). Compiled only into -fsanitize=thread builds. */
#ifdef __SANITIZE_THREAD__
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char rcu_grace_token;
#define tsan_reader_done() __tsan_release(&rcu_grace_token)
#define tsan_grace_period_over() __tsan_acquire(&rcu_grace_token)
#else
#define tsan_reader_done() ((void)0)
#define tsan_grace_period_over() ((void)0)
#endif

void state_store_init(struct state_store *s, const struct snapshot_opts *opts)
{
	memset(s, 0, sizeof(*s));
	s->opts = *opts;
	s->next_generation = 1;
	pthread_mutex_init(&s->source_lock, NULL);
}

void state_store_release(struct state_store *s)
{
	model_free(atomic_exchange_explicit(&s->current, NULL, memory_order_acq_rel));
	free(s->source);
	s->source = NULL;
	pthread_mutex_destroy(&s->source_lock);
}

bool state_store_ready(struct state_store *s)
{
	return state_store_generation(s) > 0;
}

uint64_t state_store_generation(struct state_store *s)
{
	return atomic_load_explicit(&s->generation, memory_order_acquire);
}

int64_t state_store_applied_at(struct state_store *s)
{
	return atomic_load_explicit(&s->applied_unix, memory_order_relaxed);
}

int state_store_source(struct state_store *s, char **text, size_t *len, char *origin, size_t origin_size)
{
	int r = 0;

	pthread_mutex_lock(&s->source_lock);
	if (!s->source && s->printer && state_store_generation(s))
		r = s->printer(s->printer_ctx, text, len);
	else if (!s->source)
		r = -ENOENT;
	else if (!(*text = malloc(s->source_len + 1)))
		r = -ENOMEM;
	else {
		memcpy(*text, s->source, s->source_len + 1);
		*len = s->source_len;
	}
	if (r == 0)
		snprintf(origin, origin_size, "%s", s->origin);
	pthread_mutex_unlock(&s->source_lock);
	return r;
}

void state_store_set_printer(struct state_store *s, state_printer_fn print, void *ctx)
{
	pthread_mutex_lock(&s->source_lock);
	s->printer = print;
	s->printer_ctx = ctx;
	pthread_mutex_unlock(&s->source_lock);
}

void state_store_origin(struct state_store *s, char *origin, size_t size)
{
	pthread_mutex_lock(&s->source_lock);
	snprintf(origin, size, "%s", s->origin);
	pthread_mutex_unlock(&s->source_lock);
}

/* Keeps the applied text (none: the printer answers); a copy that fails
 * only costs /snapshot. */
static void keep_source(struct state_store *s, const char *json, size_t len, const char *origin)
{
	char *copy = json ? malloc(len + 1) : NULL;

	if (copy) {
		memcpy(copy, json, len);
		copy[len] = '\0';
	}
	pthread_mutex_lock(&s->source_lock);
	free(s->source);
	s->source = copy;
	s->source_len = copy ? len : 0;
	snprintf(s->origin, sizeof(s->origin), "%s", origin);
	pthread_mutex_unlock(&s->source_lock);
}

void state_reader_register(void)
{
	urcu_memb_register_thread();
}

void state_reader_unregister(void)
{
	urcu_memb_unregister_thread();
}

const struct zt_model *state_read_lock(struct state_store *s)
{
	urcu_memb_read_lock();
	return atomic_load_explicit(&s->current, memory_order_acquire);
}

void state_read_unlock(void)
{
	tsan_reader_done();
	urcu_memb_read_unlock();
}

static void log_diags(const struct zt_diags *d, const char *origin)
{
	for (uint32_t i = 0; i < d->n; i++) {
		const struct zt_diag *g = &d->items[i];
		enum log_level lvl = g->level == ZT_DIAG_WARNING ? LOG_LEVEL_WARN : LOG_LEVEL_ERROR;
		log_at(lvl, "snapshot finding", LF_STR("source", origin),
		       LF_STR("severity", diag_level_name(g->level)), LF_STR("object", g->object),
		       LF_STR("field", g->field), LF_STR("reason", g->reason));
	}
}

static int publish(struct state_store *s, int r, struct zt_model *m, const struct zt_diags *diags,
		   const char *json, size_t len, const char *origin)
{
	log_diags(diags, origin);
	tm_count(TM_SNAPSHOT_INVALID_OBJECTS, diags->n_invalid);
	if (r < 0) {
		tm_count(TM_SNAPSHOT_REJECTED, 1);
		log_error("snapshot rejected, keeping the previous one", LF_STR("source", origin),
			  LF_UINT("errors", diags->n_errors),
			  LF_UINT("kept_generation", state_store_generation(s)), LF_ERRNO(r));
		model_free(m);
		return r;
	}
	m->generation = s->next_generation++;
	keep_source(s, json, len, origin);
	struct zt_model *old = atomic_exchange_explicit(&s->current, m, memory_order_acq_rel);
	atomic_store_explicit(&s->applied_unix, (int_fast64_t)time(NULL), memory_order_relaxed);
	atomic_store_explicit(&s->generation, m->generation, memory_order_release);
	tm_count(TM_SNAPSHOT_APPLIED, 1);
	log_info("snapshot applied", LF_STR("source", origin), LF_UINT("generation", m->generation),
		 LF_UINT("namespaces", m->n_namespaces), LF_UINT("pods", m->n_workloads),
		 LF_UINT("enrolled", m->n_enrolled), LF_UINT("services", m->n_services),
		 LF_UINT("authorization_policies", m->n_policies),
		 LF_UINT("peer_authentications", m->n_peer_authns),
		 LF_UINT("model_bytes", m->arena.reserved_bytes), LF_UINT("build_ms", m->build_ms));
	if (old) {
		urcu_memb_synchronize_rcu();
		tsan_grace_period_over();
		model_free(old);
	}
	return 0;
}

int state_store_publish(struct state_store *s, int r, struct zt_model *m, const struct zt_diags *diags,
			const char *origin)
{
	return publish(s, r, m, diags, NULL, 0, origin);
}

int state_store_apply(struct state_store *s, const char *json, size_t len, const char *origin)
{
	struct zt_diags diags;
	struct zt_model *m = NULL;

	diags_init(&diags);
	int r = snapshot_build(json, len, &s->opts, &m, &diags);
	r = publish(s, r, m, &diags, json, len, origin);
	diags_release(&diags);
	return r;
}

int state_store_load_file(struct state_store *s, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int r = file_read(path, SNAPSHOT_MAX_BYTES, &text, &len);

	if (r < 0) {
		tm_count(TM_SNAPSHOT_REJECTED, 1);
		log_error("snapshot unreadable, keeping the previous one", LF_STR("source", path),
			  LF_UINT("kept_generation", state_store_generation(s)), LF_ERRNO(r));
		return r;
	}
	r = state_store_apply(s, text, len, path);
	free(text);
	return r;
}
