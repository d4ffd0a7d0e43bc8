/* The current model behind an RCU pointer: a reload builds off to the side,
 * publishes with one pointer exchange and frees the old model once no
 * reader can still see it. Readers never block (liburcu, membarrier flavour). */
#include "ztunnel/log.h"
#include "ztunnel/state.h"

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
}

void state_store_release(struct state_store *s)
{
	model_free(atomic_exchange_explicit(&s->current, NULL, memory_order_acq_rel));
}

bool state_store_ready(struct state_store *s)
{
	return atomic_load(&s->stats.generation) > 0;
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

int state_store_apply(struct state_store *s, const char *json, size_t len, const char *origin)
{
	struct zt_diags diags;
	struct zt_model *m = NULL;

	diags_init(&diags);
	int r = snapshot_build(json, len, &s->opts, &m, &diags);
	log_diags(&diags, origin);
	atomic_fetch_add(&s->stats.invalid_objects, diags.n_invalid);
	if (r < 0) {
		atomic_fetch_add(&s->stats.reloads_rejected, 1);
		log_error("snapshot rejected, keeping the previous one", LF_STR("source", origin),
			  LF_UINT("errors", diags.n_errors),
			  LF_UINT("kept_generation", atomic_load(&s->stats.generation)), LF_ERRNO(r));
		diags_release(&diags);
		return r;
	}
	diags_release(&diags);
	m->generation = s->next_generation++;
	struct zt_model *old = atomic_exchange_explicit(&s->current, m, memory_order_acq_rel);
	atomic_store(&s->stats.generation, m->generation);
	atomic_store(&s->stats.last_applied_unix, (int_fast64_t)time(NULL));
	atomic_fetch_add(&s->stats.reloads_applied, 1);
	log_info("snapshot applied", LF_STR("source", origin), LF_UINT("generation", m->generation),
		 LF_UINT("namespaces", m->n_namespaces), LF_UINT("pods", m->n_workloads),
		 LF_UINT("enrolled", m->n_enrolled), LF_UINT("services", m->n_services),
		 LF_UINT("authorization_policies", m->n_policies),
		 LF_UINT("peer_authentications", m->n_peer_authns),
		 LF_UINT("model_bytes", m->arena.reserved_bytes));
	if (old) {
		urcu_memb_synchronize_rcu();
		tsan_grace_period_over();
		model_free(old);
	}
	return 0;
}

int state_write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
		return -errno;
	size_t len = strlen(text);
	int r = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

int state_read_file(const char *path, char **out, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = 0;
	char *buf = NULL;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EISDIR;
		goto out;
	}
	if ((uint64_t)st.st_size > SNAPSHOT_MAX_BYTES) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break; /* shrank while reading: parse what is there, JSON decides */
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return r;
}

int state_store_load_file(struct state_store *s, const char *path)
{
	char *text = NULL;
	size_t len = 0;
	int r = state_read_file(path, &text, &len);

	if (r < 0) {
		atomic_fetch_add(&s->stats.reloads_rejected, 1);
		log_error("snapshot unreadable, keeping the previous one", LF_STR("source", path),
			  LF_UINT("kept_generation", atomic_load(&s->stats.generation)), LF_ERRNO(r));
		return r;
	}
	r = state_store_apply(s, text, len, path);
	free(text);
	return r;
}
