/* Files as the agent reads and writes them: whole, bounded, atomically. */
#ifndef ZTUNNEL_FILE_H
#define ZTUNNEL_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Reads a whole regular file of at most max_bytes into a NUL-terminated
 * buffer (free it): 0, or -EFBIG, -EISDIR, -errno. A file that shrinks
 * while read yields what was there. */
int file_read(const char *path, size_t max_bytes, char **out, size_t *len);
/* Writes text through PATH.tmp and a rename, so a reader never sees half a
 * file; 0 or -errno (the temporary file is removed on failure). */
int file_write_atomic(const char *path, const char *text, mode_t mode);

/* What a file of ours may hold at most (snapshots are the largest). */
#define FILE_MAX_BYTES (256u << 20)

#endif
