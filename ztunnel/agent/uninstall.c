/* ztunnel uninstall (docs/operations.md "Uninstall"): once the agents are
 * gone, leaves the node as it was before the first one: no program on any
 * interface, no pinned maps, no policy-routing rule or route, no
 * ztunnel-cni in the CNI configuration, no sockets. */
#include "ztunnel/agent.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ztunnel/capture.h"
#include "ztunnel/cni_install.h"
#include "ztunnel/handover.h"

/* A socket file nobody listens on any more. */
static bool stale_socket(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool stale;

	if (fd < 0 || strlen(path) >= sizeof(a.sun_path)) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	strcpy(a.sun_path, path);
	stale = connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno == ECONNREFUSED;
	close(fd);
	return stale;
}

int uninstall_run(const struct zt_config *cfg)
{
	struct capture_removed removed;
	char handover[PATH_MAX], msg[512] = "";
	int status = 0;

	int r = capture_uninstall(cfg->bpf_pin_dir, &removed);
	if (r == -EBUSY) {
		fprintf(stderr, "ztunnel uninstall: an agent runs on this node (it holds %s): stop it first "
				"(kubectl delete -f daemonset/ztunnel.yaml, or SIGTERM)\n",
			cfg->bpf_pin_dir);
		return 1;
	}
	printf("capture: %d links detached, %d clsact filters removed, %d pinned maps and programs removed "
	       "(%s)\n",
	       removed.links, removed.filters, removed.pins, cfg->bpf_pin_dir);
	if (r < 0) {
		fprintf(stderr, "ztunnel uninstall: capture state only partly removed: %s\n", strerror(-r));
		status = 1;
	}
	struct capture_routing rt = { (uint32_t)cfg->fwmark, (uint32_t)cfg->fwmark_mask, (uint32_t)cfg->route_table };
	if ((r = capture_routing_remove(&rt)) < 0) {
		fprintf(stderr, "ztunnel uninstall: cannot remove the policy-routing rule and route: %s\n",
			strerror(-r));
		status = 1;
	} else {
		printf("routing: %d of the rule (fwmark 0x%x/0x%x lookup %u) and the route (local default, "
		       "table %u) removed\n",
		       r, rt.mark, rt.mask, rt.table, rt.table);
	}
	if (cfg->cni_conf_dir && *cfg->cni_conf_dir) {
		if ((r = cni_install(cfg->cni_conf_dir, cfg->cni_socket, false, msg, sizeof(msg))) < 0) {
			fprintf(stderr, "ztunnel uninstall: CNI configuration: %s\n", msg[0] ? msg : strerror(-r));
			status = 1;
		} else {
			printf("cni: %s\n", msg);
		}
	}
	handover_path(cfg, handover, sizeof(handover));
	const char *sockets[] = { cfg->cni_socket, handover };
	for (int i = 0; i < 2; i++)
		if (stale_socket(sockets[i]) && unlink(sockets[i]) == 0)
			printf("socket: %s removed\n", sockets[i]);
	return status;
}
