/* The agent process: wires capture, data path, enrollment and control. */
#ifndef ZTUNNEL_AGENT_H
#define ZTUNNEL_AGENT_H

#include "ztunnel/config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int agent_run(const struct zt_config *cfg);
/* ztunnel uninstall: removes what agents left on the node (none may run);
 * prints what it did; the exit status. */
int uninstall_run(const struct zt_config *cfg);
/* ztunnel preflight: checks this node can run the agent (kernel, program,
 * BTF, bpffs, io_uring, capabilities, routing mark and table, CNI, and
 * with kc the API server); prints a table (print) or logs it. The number
 * of blocking problems. */
struct kube_config;
int preflight_run(const struct zt_config *cfg, const struct kube_config *kc, bool print);
/* The API server settings of cfg (--kubeconfig, --kube-server..., or in a
 * pod): fills kc, whose strings live in file and server; -errno (logged). */
struct kubeconfig;
int agent_kube_config(const struct zt_config *cfg, struct kube_config *kc, struct kubeconfig *file, char *server,
		      size_t size);

#endif
