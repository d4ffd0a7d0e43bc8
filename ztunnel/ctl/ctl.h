/* ztunnel-ctl commands. Each takes its arguments with argv[0] the word
 * that named it ("workloads", or "dump" of "snapshot dump") and returns
 * the process exit status (enum ctl_exit in live.h). */
#ifndef ZTUNNEL_CTL_H
#define ZTUNNEL_CTL_H

/* Of a running agent, through its admin API. */
int ctl_workloads(int argc, char **argv);
int ctl_services(int argc, char **argv);
int ctl_policies(int argc, char **argv);
int ctl_certificates(int argc, char **argv); /* --cert-dir: offline */
int ctl_connections(int argc, char **argv);
int ctl_log(int argc, char **argv);
int ctl_check(int argc, char **argv); /* --snapshot: offline */
int ctl_snapshot_dump(int argc, char **argv);
int ctl_report_compliance(int argc, char **argv);

/* Offline, or of the node rather than the agent. */
int ctl_snapshot_lint(int argc, char **argv);
int ctl_capture_stats(int argc, char **argv);
int ctl_ca(int argc, char **argv);

#endif
