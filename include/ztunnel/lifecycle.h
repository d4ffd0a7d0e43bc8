/* The agent's life after a stop is asked for (SPEC.md §10): SIGTERM,
 * SIGINT or POST /quitquitquit start a drain (readiness fails, HBONE peers
 * get GOAWAY, live connections run on) that ends when nothing is left or
 * at the deadline; a second SIGINT ends it at once. Shared by the control
 * thread (drives it), the admin server (readiness, /quitquitquit waits
 * for the end) and the workers (read the phase). */
#ifndef ZTUNNEL_LIFECYCLE_H
#define ZTUNNEL_LIFECYCLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum lifecycle_phase { LC_SERVING, LC_DRAINING, LC_DONE };

struct lifecycle {
	atomic_int phase;
	atomic_bool handover_pending; /* a new agent is getting ready to take over */
	int64_t deadline_ms; /* monotonic; set when the drain starts */
	pthread_mutex_t lock;
	pthread_cond_t done;
};

void lifecycle_init(struct lifecycle *lc);
void lifecycle_fini(struct lifecycle *lc);
/* Starts the drain (once): true if this call started it. */
bool lifecycle_drain(struct lifecycle *lc, int64_t deadline_ms);
bool lifecycle_draining(const struct lifecycle *lc);
/* The drain is over (drained, or the deadline passed): waiters wake. */
void lifecycle_done(struct lifecycle *lc);
/* Waits up to timeout_ms for lifecycle_done: 0, or -ETIMEDOUT. */
int lifecycle_wait_done(struct lifecycle *lc, int timeout_ms);

/* Seconds to drain before connections are closed (SPEC §10): setting
 * (> 0), else CONNECTION_TERMINATION_DEADLINE ("10s" or "10"), else from
 * TERMINATION_GRACE_PERIOD_SECONDS T (T-5 if T > 10, else T-1, at least
 * 1), else 5. */
int lifecycle_deadline_s(int setting);

#endif
