#ifndef ZTUNNEL_CNI_INSTALL_H
#define ZTUNNEL_CNI_INSTALL_H

#include <stdbool.h>
#include <stddef.h>

/* Adds (install) or removes ztunnel-cni in the primary configuration of a
 * CNI config directory. Returns 0 or -errno; msg says what happened. */
int cni_install(const char *dir, const char *agent_socket, bool install, char *msg, size_t size);

#endif
