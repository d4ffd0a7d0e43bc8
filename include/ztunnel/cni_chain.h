/* The agent's side of the CNI chain (--cni-conf-dir): the control thread
 * polls fd and re-chains ztunnel-cni when the primary CNI drops it. */
#ifndef ZTUNNEL_CNI_CHAIN_H
#define ZTUNNEL_CNI_CHAIN_H

#include <stdint.h>

struct cni_chain {
	int fd; /* inotify on dir */
	const char *dir, *socket;
	int64_t pending_ms;
	uint64_t rechained;
};

/* Watches dir and chains the plugin now if it is missing. 0 or -errno. */
int cni_chain_open(struct cni_chain *c, const char *dir, const char *socket);
/* fd readable: look again once the writer settled. */
void cni_chain_event(struct cni_chain *c);
int64_t cni_chain_deadline(const struct cni_chain *c);
void cni_chain_tick(struct cni_chain *c);
void cni_chain_close(struct cni_chain *c);

#endif
