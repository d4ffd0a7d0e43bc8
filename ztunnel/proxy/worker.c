/* Worker threads: one io_uring loop each, with its own SO_REUSEPORT
 * listeners, HBONE pool and TLS contexts; the first worker's listeners are
 * the ones in the capture SOCKMAP, and the kernel (>= 6.6) spreads
 * bpf_sk_assign'ed SYNs over the reuseport group. */
#include "chunk.h"
#include "conn.h"
#include "link.h"
#include "live.h"
#include "tls_cache.h"

#include <errno.h>
#include <malloc.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/access_log.h"
#include "ztunnel/handover.h"
#include "ztunnel/log.h"

static void arm_accept(struct worker *w, int dir);

static void on_accept(struct op *op, int res, uint32_t flags)
{
	struct accept_slot *a = (struct accept_slot *)op;
	struct worker *w = a->w;
	int dir = a->dir;

	if (res >= 0 && w->loop.stopping) {
		reset_socket(res); /* the worker is stopping: no new connections */
		close(res);
	} else if (res >= 0 && dir == PROXY_INBOUND_HBONE)
		link_accept(w, res);
	else if (res >= 0)
		conn_start(w, (uint8_t)dir, res);
	else if (res != -ECANCELED)
		log_warn("accept failed", LF_UINT("worker", w->id), LF_ERRNO(res));
	if (!(flags & IORING_CQE_F_MORE) && !w->loop.stopping && w->lfd[dir] >= 0)
		arm_accept(w, dir);
}

static void arm_accept(struct worker *w, int dir)
{
	io_uring_prep_multishot_accept(loop_sqe(&w->loop, &w->accept[dir].op), w->lfd[dir], NULL,
				       NULL, SOCK_CLOEXEC);
}

/* The listeners went to a successor (handover): it accepts from them now.
 * A connection our accept already took is still ours to serve. */
static void stop_accepting(struct worker *w)
{
	for (int d = 0; d < PROXY_DIRECTIONS; d++) {
		if (w->lfd[d] < 0)
			continue;
		io_uring_prep_cancel(loop_sqe(&w->loop, NULL), &w->accept[d].op, 0);
		close(w->lfd[d]);
		w->lfd[d] = -1;
	}
}

static void arm_tick(struct worker *w)
{
	/* Policy changes must close denied connections within a second. */
	w->tick.tv_nsec = 200 * 1000 * 1000;
	io_uring_prep_timeout(loop_sqe(&w->loop, &w->tick_op), &w->tick, 0, 0);
}

/* The node's addresses as the control thread last set them (at most a
 * tick late: the capture already follows, and a connection to a new
 * address meanwhile is refused, not let through). */
static void node_addrs_follow(struct worker *w)
{
	struct proxy *p = w->p;
	unsigned gen = atomic_load(&p->node_gen);

	if (gen == w->node_gen)
		return;
	pthread_mutex_lock(&p->node_lock);
	memcpy(w->node_addrs, p->node_addrs, sizeof(w->node_addrs));
	w->node = (struct route_node){ p->cfg->node_name, w->node_addrs, p->n_node_addrs };
	w->node_gen = atomic_load(&p->node_gen);
	pthread_mutex_unlock(&p->node_lock);
}

void proxy_set_node_addrs(struct proxy *p, const uint32_t *addrs, uint32_t n)
{
	pthread_mutex_lock(&p->node_lock);
	p->n_node_addrs = n < ZT_MAX_NODE_ADDRS ? n : ZT_MAX_NODE_ADDRS;
	memcpy(p->node_addrs, addrs, p->n_node_addrs * sizeof(*addrs));
	atomic_fetch_add(&p->node_gen, 1);
	pthread_mutex_unlock(&p->node_lock);
}

static void on_tick(struct op *op, int res, uint32_t flags)
{
	struct worker *w = CONTAINER(op, struct worker, tick_op);

	(void)res;
	(void)flags;
	node_addrs_follow(w);
	links_tick(w);
	live_answer_request(w);
	watch_recheck(w);
	watch_retry(w);
	watch_idle(w);
	watch_report(w);
	if (atomic_load(&w->p->handed_over))
		stop_accepting(w);
	if (atomic_load(&w->p->draining)) {
		links_drain(w);
		atomic_store(&w->live, w->n_conns + links_live(w));
	}
	/* After a burst (a flood of refused or short connections) glibc keeps
	 * the freed memory in the workers' arenas: give it back. */
	if (atomic_load(&w->p->links_freed) >= 1000 && atomic_exchange(&w->p->links_freed, 0) >= 1000)
		malloc_trim(0);
	if (!w->loop.stopping)
		arm_tick(w);
}

static bool drained(void *ctx)
{
	struct worker *w = ctx;
	return !w->n_conns && !w->links;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	state_reader_register();
	/* Counters and access-log lines of this worker are its own. */
	if (tm_thread_register() < 0)
		log_warn("worker counts into the shared metrics shard (out of memory)", LF_UINT("worker", w->id));
	access_log_thread_queue();
	for (int d = 0; d < PROXY_DIRECTIONS; d++)
		arm_accept(w, d);
	w->tick_op.fn = on_tick;
	arm_tick(w);
	loop_run(&w->loop);
	/* Release what is in flight: connections reset, HBONE connections
	 * closed, their completions reaped (a clean exit, no leaks). */
	for (int d = 0; d < PROXY_DIRECTIONS; d++)
		io_uring_prep_cancel(loop_sqe(&w->loop, NULL), &w->accept[d].op, 0);
	/* Istio's words for what the drain did not see finish (SPEC §6). */
	watch_close_all(w, TM_R_SHUTDOWN, "connection closed due to connection drain");
	links_close_all(w);
	loop_drain(&w->loop, drained, w, 2000);
	state_reader_unregister();
	return NULL;
}

/* The predecessor ran more workers than we do: its extra listeners would
 * hold SYNs nobody accepts. Closing them resets what they queued; said. */
static void adopt_leftovers(struct handover_fds *adopt, int n_workers)
{
	int extra = 0;

	for (int d = 0; d < PROXY_DIRECTIONS; d++)
		for (int i = n_workers; i < adopt->n[d]; i++) {
			if (adopt->fd[d][i] >= 0)
				close(adopt->fd[d][i]);
			adopt->fd[d][i] = -1;
			extra++;
		}
	if (extra)
		log_warn("the previous agent had more workers: its extra listeners closed (connections they queued "
			 "are reset)", LF_INT("listeners", extra));
}

/* bpf_sk_assign to a listener of a reuseport group picks within the group
 * from kernel 6.5; before, a SYN assigned to one reuseport listener of
 * several can go astray: one listener per port, shared by the workers. */
static bool listeners_shared(const struct zt_config *cfg)
{
	struct utsname u;
	int major = 0, minor = 0;

	if (cfg->listeners != LISTENERS_AUTO)
		return cfg->listeners == LISTENERS_SHARED;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return true;
	return major < 6 || (major == 6 && minor < 5);
}

/* At most as many as a handover can pass on (its listeners, per port). */
static int worker_count(const struct zt_config *cfg)
{
	long n = cfg->worker_threads > 0 ? cfg->worker_threads : sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > HANDOVER_MAX_PER_DIRECTION ? HANDOVER_MAX_PER_DIRECTION : (int)n;
}

static bool reuseport(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	return getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on;
}

int proxy_start(struct proxy **out, const struct zt_config *cfg, struct state_store *store,
		const struct proxy_env *env, struct cert_share *certs, struct handover_fds *adopt)
{
	struct proxy *p = calloc(1, sizeof(*p));
	const uint16_t ports[PROXY_DIRECTIONS] = { (uint16_t)cfg->outbound_port,
						   (uint16_t)cfg->inbound_plain_port,
						   (uint16_t)cfg->inbound_port };
	int r = 0;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->cfg = cfg;
	pthread_mutex_init(&p->list_lock, NULL);
	p->store = store;
	p->env = *env;
	p->certs = certs;
	pthread_mutex_init(&p->node_lock, NULL);
	proxy_set_node_addrs(p, env->node_addrs, env->n_node_addrs);
	/* Unauthenticated connections never get more than a quarter of the
	 * descriptors: the rest stays for traffic that is known. */
	struct rlimit nofile = { 0 };
	uint32_t max_pending = (uint32_t)cfg->max_pending_handshakes;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur / 4 < max_pending) {
		max_pending = nofile.rlim_cur / 4 ? (uint32_t)(nofile.rlim_cur / 4) : 1;
		log_warn("descriptor limit is low: fewer unauthenticated HBONE connections allowed",
			 LF_UINT("nofile", nofile.rlim_cur), LF_UINT("max_pending_handshakes", max_pending));
	}
	/* Unpredictable, or an attacker could aim at a victim's buckets. */
	uint32_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint32_t)getpid() ^ (uint32_t)time(NULL);
	admission_init(&p->admission, max_pending, (uint32_t)cfg->max_pending_handshakes_per_source, seed);
	admission_init(&p->peer_streams, UINT32_MAX, (uint32_t)cfg->max_streams_per_peer, seed + 1);
	admission_init(&p->peer_conns, UINT32_MAX, (uint32_t)cfg->max_connections_per_peer, seed + 3);
	admission_init(&p->peer_bytes, UINT32_MAX, UINT32_MAX, seed + 2);
	p->peer_budget = cfg->peer_buffer_mb >= 4095 ? 4095u << 20 : (uint32_t)cfg->peer_buffer_mb << 20;
	p->n_workers = worker_count(cfg);
	bool shared = listeners_shared(cfg);
	p->workers = calloc((size_t)p->n_workers, sizeof(*p->workers));
	if (!p->workers) {
		free(p);
		return -ENOMEM;
	}
	for (int i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		w->p = p;
		w->node_gen = atomic_load(&p->node_gen) - 1; /* copied before the first connection */
		node_addrs_follow(w);
		w->id = i;
		w->seed = (unsigned)(getpid() * 7919 + i);
		for (int d = 0; d < PROXY_DIRECTIONS; d++)
			w->lfd[d] = -1;
		hbone_pool_init(&w->pool);
		w->pool.max_streams = (uint32_t)cfg->pool_max_streams;
		if ((r = loop_init(&w->loop, 1024)) < 0) {
			log_error("io_uring setup failed", LF_ERRNO(r));
			goto fail;
		}
		rxbuf_ring_init(w);
		for (int d = 0; d < PROXY_DIRECTIONS; d++) {
			w->accept[d] = (struct accept_slot){ { on_accept }, w, (uint8_t)d };
			if (adopt && i < adopt->n[d]) { /* the predecessor's: same reuseport group */
				w->lfd[d] = adopt->fd[d][i];
				adopt->fd[d][i] = -1;
				continue;
			}
			/* Worker 0's listener, every ring accepting from it (also when
			 * the predecessor handed over listeners without SO_REUSEPORT:
			 * a new one could not join them). */
			if ((shared || (adopt && adopt->n[d] > 0 && !reuseport(p->workers[0].lfd[d]))) && i > 0) {
				if ((w->lfd[d] = dup(p->workers[0].lfd[d])) < 0) {
					r = -errno;
					goto fail;
				}
				continue;
			}
			if ((w->lfd[d] = proxy_listen_transparent(ports[d], !shared)) < 0) {
				r = w->lfd[d];
				log_error("cannot listen (IP_TRANSPARENT needs CAP_NET_ADMIN)",
					  LF_UINT("port", ports[d]), LF_ERRNO(r));
				goto fail;
			}
		}
	}
	if (adopt)
		adopt_leftovers(adopt, p->n_workers);
	for (int d = 0; d < PROXY_DIRECTIONS; d++) {
		if ((r = env->listen(env->listen_ctx, (enum proxy_direction)d, p->workers[0].lfd[d])) < 0) {
			log_error("cannot register listener in the capture map", LF_ERRNO(r));
			goto fail;
		}
	}
	for (int i = 0; i < p->n_workers; i++) {
		if ((r = -pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) < 0) {
			p->n_workers = i;
			proxy_stop(p);
			return r;
		}
	}
	log_info("data path listening", LF_UINT("workers", p->n_workers),
		 LF_STR("listeners", shared ? "shared" : "reuseport"),
		 LF_UINT("outbound_port", ports[0]), LF_UINT("inbound_plain_port", ports[1]),
		 LF_UINT("inbound_hbone_port", ports[2]), LF_BOOL("hbone", certs != NULL));
	*out = p;
	return 0;
fail:
	for (int i = 0; i < p->n_workers; i++) {
		for (int d = 0; d < PROXY_DIRECTIONS; d++)
			if (p->workers[i].lfd[d] >= 0)
				close(p->workers[i].lfd[d]);
		if (p->workers[i].loop.wake_fd > 0) {
			rxbuf_ring_fini(&p->workers[i]);
			loop_fini(&p->workers[i].loop);
		}
	}
	free(p->workers);
	free(p);
	return r;
}

void proxy_listeners(const struct proxy *p, struct handover_fds *out)
{
	memset(out, 0, sizeof(*out));
	for (int d = 0; d < PROXY_DIRECTIONS; d++)
		for (int i = 0; p && i < p->n_workers && i < HANDOVER_MAX_PER_DIRECTION; i++)
			if (p->workers[i].lfd[d] >= 0)
				out->fd[d][out->n[d]++] = p->workers[i].lfd[d];
}

void proxy_handed_over(struct proxy *p)
{
	if (p)
		atomic_store(&p->handed_over, true);
}

void proxy_drain(struct proxy *p)
{
	if (!p || atomic_load(&p->draining))
		return;
	for (int i = 0; i < p->n_workers; i++)
		atomic_store(&p->workers[i].live, UINT32_MAX); /* not counted yet */
	atomic_store(&p->draining, true);
}

int64_t proxy_live(struct proxy *p)
{
	int64_t n = 0;

	for (int i = 0; p && i < p->n_workers; i++) {
		uint32_t live = atomic_load(&p->workers[i].live);
		if (live == UINT32_MAX)
			return -EAGAIN;
		n += live;
	}
	return n;
}

void proxy_stop(struct proxy *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n_workers; i++)
		loop_stop(&p->workers[i].loop);
	for (int i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		pthread_join(w->thread, NULL);
		for (int d = 0; d < PROXY_DIRECTIONS; d++)
			if (w->lfd[d] >= 0)
				close(w->lfd[d]);
		rxbuf_ring_fini(w);
		loop_fini(&w->loop);
		while (w->free_list) {
			struct conn *c = w->free_list;
			w->free_list = c->next_free;
			free(c);
		}
		while (w->free_chunks) {
			struct chunk *c = w->free_chunks;
			w->free_chunks = c->next;
			free(c);
		}
		hbone_pool_fini(&w->pool);
		tls_cache_fini(&w->tls);
		free(atomic_exchange(&w->answer, NULL));
	}
	free(p->workers);
	pthread_mutex_destroy(&p->list_lock);
	pthread_mutex_destroy(&p->node_lock);
	free(p);
}

int proxy_workers(const struct proxy *p)
{
	return p ? p->n_workers : 0;
}

/* Requests are numbered; a late answer to an earlier one is dropped. */
int proxy_connections(struct proxy *p, struct proxy_conn_list *out, int timeout_ms)
{
	memset(out, 0, sizeof(*out));
	if (!p)
		return -ENODEV;
	pthread_mutex_lock(&p->list_lock);
	out->workers = p->n_workers;
	uint32_t seq[p->n_workers > 0 ? p->n_workers : 1];
	struct live_answer *got[p->n_workers > 0 ? p->n_workers : 1];
	for (int i = 0; i < p->n_workers; i++) {
		free(atomic_exchange(&p->workers[i].answer, NULL));
		seq[i] = atomic_fetch_add(&p->workers[i].list_request, 1) + 1;
		got[i] = NULL;
	}
	const struct timespec step = { 0, 5 * 1000 * 1000 };
	for (int waited = 0; out->answered < p->n_workers && waited <= timeout_ms; waited += 5) {
		for (int i = 0; i < p->n_workers; i++) {
			if (got[i])
				continue;
			struct live_answer *a = atomic_exchange(&p->workers[i].answer, NULL);
			if (a && a->seq != seq[i]) {
				free(a);
				a = NULL;
			}
			if ((got[i] = a))
				out->answered++;
		}
		if (out->answered < p->n_workers)
			nanosleep(&step, NULL);
	}
	pthread_mutex_unlock(&p->list_lock);
	size_t total = 0;
	for (int i = 0; i < p->n_workers; i++)
		total += got[i] ? got[i]->n : 0;
	int r = 0;
	if (!(out->v = calloc(total ? total : 1, sizeof(*out->v))))
		r = -ENOMEM;
	for (int i = 0; i < p->n_workers; i++) {
		if (got[i] && r == 0) {
			memcpy(out->v + out->n, got[i]->v, got[i]->n * sizeof(*out->v));
			out->n += got[i]->n;
			out->truncated |= got[i]->truncated;
		}
		free(got[i]);
	}
	return r;
}

void proxy_conn_list_free(struct proxy_conn_list *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}
