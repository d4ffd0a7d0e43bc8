/* The access log (SPEC.md §6.2): one line per connection, written by a
 * thread of its own so that a worker never waits for the log. */
#ifndef ZTUNNEL_ACCESS_LOG_H
#define ZTUNNEL_ACCESS_LOG_H

#include "ztunnel/log.h"

/* Starts the writer (lines go to fd); stop drains what is queued. */
int access_log_start(int fd);
void access_log_stop(void);
/* The calling thread (a worker) gets a queue of its own: its lines are
 * dropped and counted rather than waited for. Other threads write
 * directly. */
void access_log_thread_queue(void);
/* One line at level for target "access" (its own runtime level). */
void access_log_emit(enum log_level level, const char *msg, const struct log_field *fields);

#define access_log(lvl, msg, ...) \
	access_log_emit(lvl, msg, (const struct log_field[]){ __VA_ARGS__ __VA_OPT__(, ) LF_END_ })

#endif
