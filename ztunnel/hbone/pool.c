#include "ztunnel/hbone_pool.h"

#include <stdlib.h>
#include <string.h>

void hbone_pool_init(struct hbone_pool *p)
{
	memset(p, 0, sizeof(*p));
	p->max_streams = HBONE_POOL_MAX_STREAMS;
	p->idle_s = HBONE_POOL_IDLE_S;
}

void hbone_pool_fini(struct hbone_pool *p)
{
	for (uint32_t i = 0; i < p->n; i++)
		free(p->conns[i]);
	free(p->conns);
	memset(p, 0, sizeof(*p));
}

bool hbone_pool_key_equal(const struct hbone_pool_key *a, const struct hbone_pool_key *b)
{
	return a->src_ip == b->src_ip && a->dst_ip == b->dst_ip && a->dst_port == b->dst_port &&
	       a->src_id == b->src_id && a->dst_id == b->dst_id;
}

static void take_stream(struct hbone_pooled *pc, int64_t now)
{
	pc->streams++;
	pc->last_checkout = now;
	/* SPEC §2.5: once the next stream would reach the limit the
	 * connection leaves the pool and a new one is opened for the key. */
	if (pc->streams + 1 >= pc->max_streams)
		pc->retired = true;
}

enum hbone_pool_result hbone_pool_checkout(struct hbone_pool *p, const struct hbone_pool_key *key,
					   int64_t now, struct hbone_pooled **out)
{
	*out = NULL;
	for (uint32_t i = 0; i < p->n; i++) {
		struct hbone_pooled *pc = p->conns[i];
		if (pc->retired || !hbone_pool_key_equal(&pc->key, key))
			continue;
		if (!pc->conn)
			return HBONE_POOL_WAIT; /* single flight per key */
		take_stream(pc, now);
		*out = pc;
		return HBONE_POOL_USE;
	}
	if (p->n == p->cap) {
		uint32_t cap = p->cap ? p->cap * 2 : 16;
		struct hbone_pooled **nc = realloc(p->conns, cap * sizeof(*nc));
		if (!nc)
			return HBONE_POOL_WAIT;
		p->conns = nc;
		p->cap = cap;
	}
	struct hbone_pooled *pc = calloc(1, sizeof(*pc));
	if (!pc)
		return HBONE_POOL_WAIT;
	pc->key = *key;
	pc->max_streams = p->max_streams;
	pc->last_checkout = now; /* the dialer's checkout */
	p->conns[p->n++] = pc;
	*out = pc;
	return HBONE_POOL_DIAL;
}

void hbone_pool_dialed(struct hbone_pool *p, struct hbone_pooled *pc, void *conn, uint32_t peer_max)
{
	if (!conn) {
		hbone_pool_remove(p, pc);
		return;
	}
	pc->conn = conn;
	if (peer_max && peer_max < pc->max_streams)
		pc->max_streams = peer_max;
	pc->streams = 0;
	take_stream(pc, pc->last_checkout);
}

bool hbone_pool_release(struct hbone_pool *p, struct hbone_pooled *pc, int64_t now)
{
	(void)p;
	if (pc->streams)
		pc->streams--;
	(void)now; /* idle counts from the last checkout (SPEC §2.5) */
	return pc->retired && pc->conn && !pc->streams;
}

void *hbone_pool_remove(struct hbone_pool *p, struct hbone_pooled *pc)
{
	void *conn = pc->conn;

	for (uint32_t i = 0; i < p->n; i++) {
		if (p->conns[i] == pc) {
			p->conns[i] = p->conns[--p->n];
			free(pc);
			break;
		}
	}
	return conn;
}

uint32_t hbone_pool_expire(struct hbone_pool *p, int64_t now, void **out, uint32_t max)
{
	uint32_t k = 0;

	for (uint32_t i = p->n; i-- > 0 && k < max;) {
		struct hbone_pooled *pc = p->conns[i];
		if (!pc->conn || pc->streams)
			continue;
		if (pc->retired || now - pc->last_checkout >= p->idle_s)
			out[k++] = hbone_pool_remove(p, pc);
	}
	return k;
}
