#include "ztunnel/lifecycle.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

void lifecycle_init(struct lifecycle *lc)
{
	atomic_init(&lc->phase, LC_SERVING);
	atomic_init(&lc->handover_pending, false);
	lc->deadline_ms = 0;
	pthread_mutex_init(&lc->lock, NULL);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&lc->done, &a);
	pthread_condattr_destroy(&a);
}

void lifecycle_fini(struct lifecycle *lc)
{
	pthread_cond_destroy(&lc->done);
	pthread_mutex_destroy(&lc->lock);
}

bool lifecycle_drain(struct lifecycle *lc, int64_t deadline_ms)
{
	int serving = LC_SERVING;

	pthread_mutex_lock(&lc->lock);
	bool started = atomic_compare_exchange_strong(&lc->phase, &serving, LC_DRAINING);
	if (started)
		lc->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&lc->lock);
	return started;
}

bool lifecycle_draining(const struct lifecycle *lc)
{
	return atomic_load(&lc->phase) != LC_SERVING;
}

void lifecycle_done(struct lifecycle *lc)
{
	pthread_mutex_lock(&lc->lock);
	atomic_store(&lc->phase, LC_DONE);
	pthread_cond_broadcast(&lc->done);
	pthread_mutex_unlock(&lc->lock);
}

int lifecycle_wait_done(struct lifecycle *lc, int timeout_ms)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lc->lock);
	while (atomic_load(&lc->phase) != LC_DONE && r == 0)
		r = pthread_cond_timedwait(&lc->done, &lc->lock, &ts);
	pthread_mutex_unlock(&lc->lock);
	return r ? -ETIMEDOUT : 0;
}

/* "10s", "10" or "1m": Istio's duration setting, in whole seconds. */
static int parse_seconds(const char *s)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : -1;

	if (!s || end == s || v <= 0 || v > 86400)
		return -1;
	if (*end == 'm' && !end[1])
		v *= 60;
	else if (*end && !(*end == 's' && !end[1]))
		return -1;
	return (int)v;
}

int lifecycle_deadline_s(int setting)
{
	int t;

	if (setting > 0)
		return setting;
	if ((t = parse_seconds(getenv("CONNECTION_TERMINATION_DEADLINE"))) > 0)
		return t;
	if ((t = parse_seconds(getenv("TERMINATION_GRACE_PERIOD_SECONDS"))) > 0)
		return t > 10 ? t - 5 : t - 1 >= 1 ? t - 1 : 1;
	return 5;
}
