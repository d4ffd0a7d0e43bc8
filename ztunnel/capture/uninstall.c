/* ztunnel uninstall: what capture leaves on a node once no agent runs
 * (pinned links keep the program on every veth and fail closed), removed
 * so the node is as before the first agent. */
#include "ztunnel/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define PROG_NAME "zt_ingress"

/* Unlinks the pins in dir that are ours (every entry of links/; maps named
 * zt_*), then dir. Nothing else is touched: a wrong --bpf-pin-dir (the
 * bpffs root) must not take other components' pins. */
static int remove_pins(const char *dir, bool all, int *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (e->d_type == DT_DIR || (!all && strncmp(e->d_name, "zt_", 3)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) == 0)
			(*n)++;
		else if (!r)
			r = -errno;
	}
	closedir(d);
	if (rmdir(dir) < 0 && !r)
		r = errno == ENOTEMPTY ? -ENOTEMPTY : -errno;
	return r;
}

/* Our clsact filter on ifindex, if there (kernels without TCX). */
static int detach_filter(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = ZT_TC_HANDLE, .priority = ZT_TC_PRIORITY);
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_tc_query(&hook, &opts) < 0)
		return 0;
	int fd = bpf_prog_get_fd_by_id(opts.prog_id);
	bool ours = fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && !strcmp(info.name, PROG_NAME);
	if (fd >= 0)
		close(fd);
	if (!ours)
		return 0; /* someone else's filter at that handle: not ours to remove */
	opts.prog_fd = opts.prog_id = opts.flags = 0;
	return bpf_tc_detach(&hook, &opts) == 0 ? 1 : -errno;
}

int capture_uninstall(const char *pin_dir, struct capture_removed *out)
{
	char links[PATH_MAX];
	int r = 0;

	memset(out, 0, sizeof(*out));
	int lock = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) < 0) {
		close(lock);
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	}
	/* Links first: a link goes with its last pin (no agent holds one). */
	snprintf(links, sizeof(links), "%s/links", pin_dir);
	r = remove_pins(links, true, &out->links);
	struct if_nameindex *ifs = if_nameindex();
	/* An interface without clsact makes libbpf print an error: expected. */
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	for (struct if_nameindex *i = ifs; i && i->if_index; i++) {
		int d = detach_filter((int)i->if_index);
		if (d > 0)
			out->filters++;
		else if (d < 0 && !r)
			r = d;
	}
	libbpf_set_print(print);
	if (ifs)
		if_freenameindex(ifs);
	int p = remove_pins(pin_dir, false, &out->pins);
	if (lock >= 0)
		close(lock);
	return r ? r : p;
}
