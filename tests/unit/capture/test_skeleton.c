/* The generated skeleton loads into this kernel: proves the vmlinux.h ->
 * clang -> bpftool gen skeleton chain produces a verifiable program with the
 * maps the capture code relies on. Needs root (exit 77 otherwise). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include "redirect.skel.h"
#include "ztunnel/redirect.h"

static void skeleton_loads_and_has_the_capture_maps(void **state)
{
	(void)state;
	struct redirect *skel = redirect__open();
	assert_non_null(skel);
	/* The agent pins under --bpf-pin-dir; this test must not pin at all. */
	struct bpf_map *map;
	bpf_object__for_each_map(map, skel->obj)
		assert_int_equal(bpf_map__set_pin_path(map, NULL), 0);
	assert_int_equal(redirect__load(skel), 0);
	assert_true(bpf_program__fd(skel->progs.zt_ingress) >= 0);
	assert_int_equal(bpf_map__max_entries(skel->maps.zt_stats), ZT_STAT_MAX);
	assert_int_equal(bpf_map__max_entries(skel->maps.zt_listeners), ZT_LISTEN_MAX);
	assert_int_equal(bpf_map__type(skel->maps.zt_listeners), BPF_MAP_TYPE_SOCKMAP);
	assert_int_equal(bpf_map__value_size(skel->maps.zt_pods), sizeof(struct zt_pod));
	redirect__destroy(skel);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "skip: loading BPF needs root\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(skeleton_loads_and_has_the_capture_maps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
