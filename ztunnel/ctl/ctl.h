/* ztunnel-ctl subcommands; each returns the process exit status. */
#ifndef ZTUNNEL_CTL_H
#define ZTUNNEL_CTL_H

struct snapshot_opts;
struct zt_model;
struct zt_diags;

/* Reads and builds a snapshot file as the agent would: 0, -EINVAL when
 * the snapshot is rejected (diags say why), or the read error (printed).
 * diags is initialised in every case. */
int ctl_build_snapshot(const char *path, const struct snapshot_opts *so, struct zt_model **m,
		       struct zt_diags *diags);

int ctl_snapshot(int argc, char **argv);
int ctl_capture(int argc, char **argv);
int ctl_ca(int argc, char **argv);
int ctl_certificates(int argc, char **argv);
int ctl_check(int argc, char **argv);

#endif
