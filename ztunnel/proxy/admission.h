/* Admission of unauthenticated connections (inbound HBONE before its TLS
 * handshake completes): a global cap and a per-source cap, so one pod
 * cannot spend the agent's descriptors and memory before anyone knows who
 * it is. Lock-free and shared by all workers: the per-source count is a
 * count-min sketch (two independently seeded hashes; a source is refused
 * only when both of its buckets are full), so an attacker cannot aim at a
 * victim's bucket. Pure: no I/O, unit-tested on its own. */
#ifndef ZTUNNEL_PROXY_ADMISSION_H
#define ZTUNNEL_PROXY_ADMISSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define ADMISSION_BUCKETS 4096

enum admission_verdict {
	ADMIT_OK = 0,
	ADMIT_OVER_TOTAL,      /* the node-wide cap is reached */
	ADMIT_OVER_PER_SOURCE, /* this source holds its share */
};

struct admission {
	uint32_t max_total, max_per_source;
	uint32_t seed[2];
	atomic_uint total;
	atomic_uint buckets[2][ADMISSION_BUCKETS];
};

void admission_init(struct admission *a, uint32_t max_total, uint32_t max_per_source, uint32_t seed);
/* Takes a slot for src (IPv4, network order) or says why not (nothing
 * taken then). Every ADMIT_OK is paired with one admission_leave(). */
enum admission_verdict admission_enter(struct admission *a, uint32_t src);
void admission_leave(struct admission *a, uint32_t src);
uint32_t admission_pending(struct admission *a);
/* Hands one slot of from over to to (the total is unchanged: no one else
 * can take it in between). */
void admission_move(struct admission *a, uint32_t from, uint32_t to);
/* The same sketch as a per-source budget of units (bytes): add or take
 * back n for src; the estimate of src's usage (never below the truth). */
void admission_add(struct admission *a, uint32_t src, uint32_t n);
void admission_sub(struct admission *a, uint32_t src, uint32_t n);
uint32_t admission_usage(struct admission *a, uint32_t src);

#endif
