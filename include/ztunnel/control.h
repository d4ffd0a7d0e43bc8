/* The agent's control thread: follows the snapshot, handles signals. The
 * data path (later issues) runs on io_uring workers beside it. */
#ifndef ZTUNNEL_CONTROL_H
#define ZTUNNEL_CONTROL_H

#include "ztunnel/config.h"
#include "ztunnel/enroll.h"
#include "ztunnel/state.h"

/* Runs until SIGTERM/SIGINT; returns the process exit status. enroll is
 * NULL when capture is off (no CNI socket, no pod reconciliation). */
int control_run(const struct zt_config *cfg, struct state_store *store, struct enroll *enroll);

#endif
