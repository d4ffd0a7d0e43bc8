/* Rolling restart without a refused connection (docs/operations.md
 * "Upgrade"): a new agent started beside a running one connects to the
 * running one's handover socket, gets ready (model, certificates), then
 * takes the listening sockets themselves over the socket (SCM_RIGHTS).
 * The SOCKMAP keeps pointing at the same sockets, so no SYN ever finds no
 * listener and nothing queued is reset; the old agent stops accepting,
 * frees its ports and drains. */
#ifndef ZTUNNEL_HANDOVER_H
#define ZTUNNEL_HANDOVER_H

#include <stddef.h>

#include "ztunnel/config.h"
#include "ztunnel/proxy.h"

#define HANDOVER_MAX_PER_DIRECTION 64

/* Listening sockets per direction (outbound, inbound plain, inbound HBONE). */
struct handover_fds {
	int fd[PROXY_DIRECTIONS][HANDOVER_MAX_PER_DIRECTION];
	int n[PROXY_DIRECTIONS];
};

void handover_fds_close(struct handover_fds *f);
/* The socket's path: beside the CNI socket. */
void handover_path(const struct zt_config *cfg, char *out, size_t size);
/* The running agent's side: a listening unix socket (0600; a caller must
 * have our uid). */
int handover_listen(const char *path);
/* Accepts a successor's connection (non-blocking fd): the fd, or -errno. */
int handover_accept(int listen_fd);
/* Reads the successor's request: 0 when it is one ("take"). */
int handover_wait_take(int conn);
/* Sends it the listeners. */
int handover_give(int conn, const struct handover_fds *fds);
/* The new agent serves on the listeners (it sends this), or it failed:
 * the old one takes the node back (handover_wait_serving: 0, or -EPIPE when
 * the connection ended without it). */
int handover_serving(int conn);
int handover_wait_serving(int conn);
/* The new agent's side: a connection to a running agent, or -ENOENT /
 * -ECONNREFUSED when there is none. */
int handover_connect(const char *path);
/* Asks for the listeners (waits up to 5 s). */
int handover_take(int conn, struct handover_fds *out);

#endif
