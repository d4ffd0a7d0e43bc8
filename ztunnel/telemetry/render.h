/* Internal to ztunnel/telemetry: what the renderer reads from the registry. */
#ifndef ZTUNNEL_TELEMETRY_RENDER_H
#define ZTUNNEL_TELEMETRY_RENDER_H

#include <stddef.h>

#include "ztunnel/telemetry.h"

/* Every series of every shard (unsorted, not summed); free *out. */
int tm_series_collect(struct tm_series ***out, size_t *n);
void tm_run_collectors(struct tm_text *out);
/* process.c */
void tm_process_started(void);
void tm_render_process(struct tm_text *out);

#endif
