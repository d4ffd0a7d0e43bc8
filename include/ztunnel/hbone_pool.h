/* The client's HBONE connection pool (SPEC.md §2.5), sans-IO: which pooled
 * connection a new tunnel uses, when to dial, when to retire. Connections
 * are opaque to it (void *). */
#ifndef ZTUNNEL_HBONE_POOL_H
#define ZTUNNEL_HBONE_POOL_H

#include <stdbool.h>
#include <stdint.h>

#define HBONE_POOL_MAX_STREAMS 100   /* POOL_MAX_STREAMS_PER_CONNECTION */
#define HBONE_POOL_IDLE_S 300        /* POOL_UNUSED_RELEASE_TIMEOUT */

/* Connections are never shared across keys. */
struct hbone_pool_key {
	const void *src_id, *dst_id; /* interned identities: equal when the same object */
	uint32_t src_ip, dst_ip; /* network order */
	uint16_t dst_port;
};

struct hbone_pooled {
	struct hbone_pool_key key;
	void *conn;           /* NULL while being dialled */
	uint32_t streams;     /* checked out */
	uint32_t max_streams; /* min(pool limit, peer's MAX_CONCURRENT_STREAMS) */
	int64_t last_checkout;
	bool retired;         /* left the pool: serves its streams, takes no more */
};

enum hbone_pool_result {
	HBONE_POOL_USE = 0, /* *out is a ready connection with a stream reserved */
	HBONE_POOL_DIAL,    /* no usable connection: dial, then hbone_pool_dialed */
	HBONE_POOL_WAIT,    /* a dial for this key is in flight: wait for it */
};

struct hbone_pool {
	struct hbone_pooled **conns;
	uint32_t n, cap;
	uint32_t max_streams;
	int64_t idle_s;
};

void hbone_pool_init(struct hbone_pool *p);
bool hbone_pool_key_equal(const struct hbone_pool_key *a, const struct hbone_pool_key *b);
void hbone_pool_fini(struct hbone_pool *p);
/* Reserves a stream. On DIAL, *out is the placeholder to pass back. */
enum hbone_pool_result hbone_pool_checkout(struct hbone_pool *p, const struct hbone_pool_key *key,
					   int64_t now, struct hbone_pooled **out);
/* The dial of placeholder pc ended: conn (or NULL on failure, which drops
 * the placeholder) and the peer's stream limit (0: unknown). */
void hbone_pool_dialed(struct hbone_pool *p, struct hbone_pooled *pc, void *conn, uint32_t peer_max);
/* A stream of pc ended. True when pc is retired and now carries nothing:
 * it should be closed now (not at the next expiry), so that connections
 * spent by their stream limit do not pile up. */
bool hbone_pool_release(struct hbone_pool *p, struct hbone_pooled *pc, int64_t now);
/* pc broke (I/O error, GOAWAY): it leaves the pool; returns conn. */
void *hbone_pool_remove(struct hbone_pool *p, struct hbone_pooled *pc);
/* Idle or retired-and-empty connections to close, moved into out (up to
 * max); returns how many. */
uint32_t hbone_pool_expire(struct hbone_pool *p, int64_t now, void **out, uint32_t max);

#endif
