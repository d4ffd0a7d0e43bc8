/* Follows a snapshot file, or a directory holding it as a mounted ConfigMap
 * (kubelet swaps a `..data` symlink atomically), with inotify. */
#ifndef ZTUNNEL_SNAPSHOT_WATCH_H
#define ZTUNNEL_SNAPSHOT_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* File name of the snapshot inside a directory (the ConfigMap key). */
#define SNAPSHOT_FILE_NAME "snapshot.json"

struct snapshot_watch {
	int fd;          /* inotify fd: poll it for readability */
	char *file;      /* path of the snapshot file to read */
	/* identity of the last loaded content, to ignore no-op events */
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
};

/* path is a file or a directory (then PATH/snapshot.json). */
int snapshot_watch_open(struct snapshot_watch *w, const char *path);
void snapshot_watch_close(struct snapshot_watch *w);
/* Drains pending events; returns 1 if the file may have new content, 0 if
 * not, -errno on failure. */
int snapshot_watch_drain(struct snapshot_watch *w);
/* Records the file's current identity; returns 1 if it differs from the
 * last one recorded (or 0 if the same, -errno if it cannot be stat'ed). */
int snapshot_watch_changed(struct snapshot_watch *w);

#endif
