/* The snapshot file (or ConfigMap directory) as the state source: inotify,
 * a debounce for writers' bursts, and a periodic re-stat because inotify
 * can overflow or miss a remount. */
#include "ztunnel/snapshot_source.h"

#include <errno.h>
#include <stdlib.h>

#include "ztunnel/clock.h"
#include "ztunnel/log.h"
#include "ztunnel/snapshot_watch.h"
#include "ztunnel/telemetry.h"

#define DEBOUNCE_MS 100
#define RESYNC_MS 30000

struct file_source {
	struct snapshot_source s;
	struct snapshot_watch w;
	int64_t pending_ms, resync_ms;
	bool loaded_once;
};


static int reload(struct file_source *f, struct state_store *store, bool force)
{
	int changed = snapshot_watch_changed(&f->w);

	if (changed < 0) {
		/* Gone (e.g. mid-swap): keep serving; the next event retries. */
		tm_count(TM_SNAPSHOT_REJECTED, 1);
		log_error("snapshot not readable, keeping the previous one", LF_STR("source", f->w.file),
			  LF_ERRNO(changed));
		return changed;
	}
	if (!changed && !force)
		return 0;
	int r = state_store_load_file(store, f->w.file);
	return r < 0 ? r : 1;
}

static int update(struct snapshot_source *s, struct state_store *store, bool readable, bool force)
{
	struct file_source *f = (struct file_source *)s;
	int64_t now = clock_mono_ms();

	if (!f->loaded_once) {
		f->loaded_once = true;
		force = true;
	}
	if (readable) {
		int ev = snapshot_watch_drain(&f->w);
		if (ev < 0)
			log_error("inotify read failed", LF_ERRNO(ev));
		else if (ev)
			f->pending_ms = now + DEBOUNCE_MS;
	}
	if (force || (f->pending_ms && now >= f->pending_ms) || now >= f->resync_ms) {
		f->pending_ms = 0;
		f->resync_ms = now + RESYNC_MS;
		return reload(f, store, force);
	}
	return 0;
}

static int64_t deadline_ms(struct snapshot_source *s)
{
	struct file_source *f = (struct file_source *)s;

	return f->pending_ms && f->pending_ms < f->resync_ms ? f->pending_ms : f->resync_ms;
}

static void close_source(struct snapshot_source *s)
{
	struct file_source *f = (struct file_source *)s;

	snapshot_watch_close(&f->w);
	free(f);
}

int snapshot_source_file(struct snapshot_source **out, const char *path)
{
	struct file_source *f = calloc(1, sizeof(*f));
	int r;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	if ((r = snapshot_watch_open(&f->w, path)) < 0) {
		free(f);
		return r;
	}
	f->s = (struct snapshot_source){ f->w.file, f->w.fd, update, deadline_ms, close_source };
	f->resync_ms = clock_mono_ms() + RESYNC_MS;
	*out = &f->s;
	return 0;
}
