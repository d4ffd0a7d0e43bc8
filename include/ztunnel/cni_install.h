/* Chaining ztunnel-cni into the node's primary CNI configuration: the
 * plugin's install/uninstall commands and the agent, which re-chains it
 * when the primary CNI rewrites its file. */
#ifndef ZTUNNEL_CNI_INSTALL_H
#define ZTUNNEL_CNI_INSTALL_H

#include <stdbool.h>
#include <stddef.h>

/* Adds (install) or removes ztunnel-cni in the primary configuration of a
 * CNI config directory. Returns 0 or -errno; msg says what happened. */
int cni_install(const char *dir, const char *agent_socket, bool install, char *msg, size_t size);
/* 1 when ztunnel-cni is the last plugin of the primary configuration, 0
 * when not (or it is not a conflist), -errno when there is none. */
int cni_chained(const char *dir);

#endif
