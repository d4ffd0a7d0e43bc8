/* Per client address budgets for ztunnel-ca (ca_int.h): a small open
 * hash of addresses, entries dropped when they hold nothing and their
 * failure window has passed. Under a lock: connections come and go at a
 * few per second. */
#include "ca_int.h"

#include <stdlib.h>
#include <string.h>

#include "ztunnel/clock.h"

#define SLOTS 4096 /* addresses tracked at once; beyond: refused (fail closed) */

struct entry {
	char addr[48];
	int conns, failures;
	int64_t window_start;
};

struct ca_limits {
	pthread_mutex_t lock;
	struct entry e[SLOTS];
};

struct ca_limits *ca_limits_new(void)
{
	struct ca_limits *l = calloc(1, sizeof(*l));

	if (l)
		pthread_mutex_init(&l->lock, NULL);
	return l;
}

void ca_limits_free(struct ca_limits *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static bool idle(const struct entry *e, int64_t now)
{
	return !e->conns && now - e->window_start >= CA_AUTH_WINDOW_S;
}

/* The entry of addr, made if needed (reusing an idle one); NULL when full. */
static struct entry *find(struct ca_limits *l, const char *addr, int64_t now)
{
	struct entry *spare = NULL;

	for (uint32_t i = 0, h = hash(addr); i < SLOTS; i++) {
		struct entry *e = &l->e[(h + i) % SLOTS];
		if (!strcmp(e->addr, addr))
			return e;
		if (!e->addr[0] || idle(e, now)) {
			if (!spare)
				spare = e;
			if (!e->addr[0])
				break;
		}
	}
	if (spare) {
		memset(spare, 0, sizeof(*spare));
		strncpy(spare->addr, addr, sizeof(spare->addr) - 1);
		spare->window_start = now;
	}
	return spare;
}

static int64_t now_s(void)
{
	return clock_mono_ms() / 1000;
}

bool ca_limits_conn_take(struct ca_limits *l, const char *addr)
{
	pthread_mutex_lock(&l->lock);
	struct entry *e = find(l, addr, now_s());
	bool ok = e && e->conns < CA_MAX_CONNS_PER_ADDR;
	if (ok)
		e->conns++;
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void ca_limits_conn_put(struct ca_limits *l, const char *addr)
{
	pthread_mutex_lock(&l->lock);
	struct entry *e = find(l, addr, now_s());
	if (e && e->conns > 0)
		e->conns--;
	pthread_mutex_unlock(&l->lock);
}

bool ca_limits_auth_allowed(struct ca_limits *l, const char *addr, int64_t now)
{
	pthread_mutex_lock(&l->lock);
	struct entry *e = find(l, addr, now);
	if (e && now - e->window_start >= CA_AUTH_WINDOW_S) {
		e->window_start = now;
		e->failures = 0;
	}
	bool ok = e && e->failures < CA_AUTH_FAILURES_PER_WINDOW;
	pthread_mutex_unlock(&l->lock);
	return ok;
}

void ca_limits_auth_failed(struct ca_limits *l, const char *addr, int64_t now)
{
	pthread_mutex_lock(&l->lock);
	struct entry *e = find(l, addr, now);
	if (e)
		e->failures++;
	pthread_mutex_unlock(&l->lock);
}
