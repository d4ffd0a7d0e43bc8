/* Pod enrollment: the CNI plugin tells the agent about pods (ADD/DEL/CHECK
 * over a unix socket); the snapshot says which are in the mesh; the agent
 * attaches capture to every pod veth and marks enrolled pods in zt_pods. */
#ifndef ZTUNNEL_ENROLL_H
#define ZTUNNEL_ENROLL_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "ztunnel/state.h"

#define ENROLL_MAX_IPS 4

struct capture;

struct enroll_pod {
	char uid[128], ns[128], name[256], container_id[128];
	char ifname[IF_NAMESIZE];
	uint32_t ifindex;
	uint32_t ips[ENROLL_MAX_IPS]; /* network byte order */
	uint32_t n_ips;
	bool has_ipv6; /* dual-stack: its IPv6 TCP is dropped while enrolled */
	bool enrolled;
	bool captured; /* enrolled, and zt_pods and zt_veths say so (every write took) */
	const char *reason; /* static string */
};

struct enroll {
	struct capture *capture;
	struct enroll_pod *pods;
	uint32_t n, cap;
	int listen_fd;
	/* enrollment.json beside the CNI socket: the plugin decides from it
	 * while the agent is down (only pods that would join the mesh fail). */
	char cache_path[4096];
	uint64_t cache_generation;
	const char *node; /* this node's name: its pods in the snapshot are looked for */
	bool read_only;   /* restoring beside a running agent: change nothing */
};

/* The decision for one pod (pure): the snapshot's view of the pod if it is
 * there (by uid, else IP), else its namespace label (the pod is newer than
 * the snapshot), else *current stays. Returns the reason. */
const char *enroll_decide(const struct zt_model *m, const struct enroll_pod *p, bool *enrolled);

/* Rebuilds the pod table from the pinned zt_pods map (agent restart) and
 * drops entries whose interface is gone. */
int enroll_init(struct enroll *e, struct capture *c, bool read_only);
/* The pods again from the pinned state (a successor taking over: the
 * running agent enrolled and released pods meanwhile). */
int enroll_reload(struct enroll *e);
void enroll_fini(struct enroll *e);
/* Re-decides every pod against a new model; updates zt_pods and the
 * service VIP map. */
void enroll_reconcile(struct enroll *e, const struct zt_model *m);

/* CNI requests (JSON over SOCK_SEQPACKET); also names the enrollment
 * cache (enrollment.json in the socket's directory). */
int enroll_listen(struct enroll *e, const char *path);
/* Serves one pending connection on listen_fd (call when readable). */
void enroll_serve_one(struct enroll *e, struct state_store *store);

#endif
