#include "ztunnel/snapshot_watch.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

int snapshot_watch_open(struct snapshot_watch *w, const char *path)
{
	struct stat st;
	char dir[PATH_MAX];

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode)) {
		snprintf(dir, sizeof(dir), "%s", path);
		if (asprintf(&w->file, "%s/%s", path, SNAPSHOT_FILE_NAME) < 0)
			return -ENOMEM;
	} else {
		/* Watch the parent: editors and `mv` replace the file itself. */
		char tmp[PATH_MAX];
		snprintf(tmp, sizeof(tmp), "%s", path);
		snprintf(dir, sizeof(dir), "%s", dirname(tmp));
		if (!(w->file = strdup(path)))
			return -ENOMEM;
	}
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	/* kubelet's ConfigMap update renames a new `..data` symlink over the old
	 * one (IN_MOVED_TO); plain files are rewritten or renamed in place. */
	if (inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
						  IN_MOVED_FROM | IN_ATTRIB) < 0) {
		int r = -errno;
		snapshot_watch_close(w);
		return r;
	}
	return 0;
}

void snapshot_watch_close(struct snapshot_watch *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->file);
	w->fd = -1;
	w->file = NULL;
}

int snapshot_watch_drain(struct snapshot_watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int seen = 0;

	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? seen : -errno;
		if (n == 0)
			return seen;
		seen = 1; /* any event in the directory: re-check the file identity */
	}
}

int snapshot_watch_changed(struct snapshot_watch *w)
{
	struct stat st;

	if (stat(w->file, &st) < 0)
		return -errno;
	int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (st.st_dev == w->dev && st.st_ino == w->ino && st.st_size == w->size &&
	    mtime == w->mtime_ns)
		return 0;
	w->dev = st.st_dev;
	w->ino = st.st_ino;
	w->size = st.st_size;
	w->mtime_ns = mtime;
	return 1;
}
