/* A cluster model built by the agent's own code (snapshot_build), from a
 * snapshot file or from a running agent's /snapshot: offline and live
 * answers come from the same input through the same code. */
#ifndef ZTUNNEL_CTL_MODEL_LOAD_H
#define ZTUNNEL_CTL_MODEL_LOAD_H

#include <cjson/cJSON.h>

struct snapshot_opts;
struct zt_model;
struct zt_diags;

/* Reads and builds a snapshot file as the agent would: 0, -EINVAL when
 * the snapshot is rejected (diags say why), or the read error (printed).
 * diags is initialised in every case. */
int model_load_build_file(const char *path, const struct snapshot_opts *so, struct zt_model **m,
			  struct zt_diags *diags);

/* For a command that only needs the model: 0, or -errno after printing why
 * the snapshot is rejected; a note says how many objects are applied
 * fail-closed. */
int model_load_file(const char *path, const struct snapshot_opts *so, struct zt_model **m);

/* The running agent's model: its /snapshot, built with the trust domain
 * and root namespace of its /config_dump .config (dump: that answer).
 * 0, or -errno (printed). */
int model_load_agent(const char *admin, const cJSON *dump, struct zt_model **m);

#endif
