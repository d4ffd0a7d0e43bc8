/* The agent process: wires capture, data path, enrollment and control. */
#ifndef ZTUNNEL_AGENT_H
#define ZTUNNEL_AGENT_H

#include "ztunnel/config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int agent_run(const struct zt_config *cfg);
/* ztunnel uninstall: removes what agents left on the node (none may run);
 * prints what it did; the exit status. */
int uninstall_run(const struct zt_config *cfg);

#endif
