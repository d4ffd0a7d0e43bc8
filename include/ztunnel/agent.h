/* The agent process: wires capture, data path, enrollment and control. */
#ifndef ZTUNNEL_AGENT_H
#define ZTUNNEL_AGENT_H

#include "ztunnel/config.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int agent_run(const struct zt_config *cfg);

#endif
