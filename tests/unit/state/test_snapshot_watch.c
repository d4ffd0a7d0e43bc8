/* The watcher notices a rewritten file and kubelet's ConfigMap symlink swap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ztunnel/file.h"
#include "ztunnel/snapshot_watch.h"
#include "ztunnel/state.h"

static void write_file(const char *path, const char *text)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

static char *read_text(const char *path)
{
	char *t;
	size_t n;
	assert_int_equal(file_read(path, FILE_MAX_BYTES, &t, &n), 0);
	return t;
}

static void rewritten_file_is_noticed(void **state)
{
	(void)state;
	char dir[] = "/tmp/zt-watch-XXXXXX", path[256];
	struct snapshot_watch w;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/snap.json", dir);
	write_file(path, "one");
	assert_int_equal(snapshot_watch_open(&w, path), 0);
	assert_int_equal(snapshot_watch_changed(&w), 1); /* first look */
	assert_int_equal(snapshot_watch_drain(&w), 0);
	assert_int_equal(snapshot_watch_changed(&w), 0);
	write_file(path, "two!");
	assert_int_equal(snapshot_watch_drain(&w), 1);
	assert_int_equal(snapshot_watch_changed(&w), 1);
	char *t = read_text(w.file);
	assert_string_equal(t, "two!");
	free(t);
	snapshot_watch_close(&w);
	unlink(path);
	rmdir(dir);
}

/* kubelet: <dir>/..<ts>/key real files, ..data -> ..<ts>, key -> ..data/key;
 * an update writes a new ..<ts2>, then renames a new ..data_tmp over ..data. */
static void configmap_symlink_swap_is_noticed(void **state)
{
	(void)state;
	char dir[] = "/tmp/zt-watch-XXXXXX", p[512], q[512];
	struct snapshot_watch w;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/..2026_12_01", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/..2026_12_01/" SNAPSHOT_FILE_NAME, dir);
	write_file(p, "{\"v\":1}");
	snprintf(p, sizeof(p), "%s/..data", dir);
	assert_int_equal(symlink("..2026_12_01", p), 0);
	snprintf(p, sizeof(p), "%s/" SNAPSHOT_FILE_NAME, dir);
	assert_int_equal(symlink("..data/" SNAPSHOT_FILE_NAME, p), 0);

	assert_int_equal(snapshot_watch_open(&w, dir), 0);
	assert_int_equal(snapshot_watch_changed(&w), 1);
	char *t = read_text(w.file);
	assert_string_equal(t, "{\"v\":1}");
	free(t);

	snprintf(p, sizeof(p), "%s/..2026_12_02", dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/..2026_12_02/" SNAPSHOT_FILE_NAME, dir);
	write_file(p, "{\"v\":2}");
	/* Events for the new version directory, but the file we read is unchanged. */
	assert_true(snapshot_watch_drain(&w) >= 0);
	assert_int_equal(snapshot_watch_changed(&w), 0);
	snprintf(p, sizeof(p), "%s/..data_tmp", dir);
	assert_int_equal(symlink("..2026_12_02", p), 0);
	snprintf(q, sizeof(q), "%s/..data", dir);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(snapshot_watch_drain(&w), 1);
	assert_int_equal(snapshot_watch_changed(&w), 1);
	t = read_text(w.file);
	assert_string_equal(t, "{\"v\":2}");
	free(t);
	snapshot_watch_close(&w);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void missing_path_is_an_error(void **state)
{
	(void)state;
	struct snapshot_watch w;
	assert_true(snapshot_watch_open(&w, "/nonexistent/zt/snap.json") < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rewritten_file_is_noticed),
		cmocka_unit_test(configmap_symlink_swap_is_noticed),
		cmocka_unit_test(missing_path_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
