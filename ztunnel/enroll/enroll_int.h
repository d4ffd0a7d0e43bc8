/* Internal to ztunnel/enroll: pod table operations the CNI server uses. */
#ifndef ZTUNNEL_ENROLL_INT_H
#define ZTUNNEL_ENROLL_INT_H

#include "ztunnel/enroll.h"

struct enroll_pod *enroll_find(struct enroll *e, const char *uid, const char *container_id);
struct enroll_pod *enroll_add_pod(struct enroll *e);
void enroll_remove_pod(struct enroll *e, struct enroll_pod *p);
/* The enrollment cache the CNI plugin reads while the agent is away
 * (cache.c); 0 or -errno. */
int enroll_cache_write(const struct zt_model *m, const char *path);
/* Records the decision in zt_pods; logs it when new (added) or changed. */
void enroll_apply(struct enroll *e, const struct zt_model *m, struct enroll_pod *p, bool enrolled,
		  const char *reason, bool added);

#endif
