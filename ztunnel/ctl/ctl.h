/* ztunnel-ctl subcommands; each returns the process exit status. */
#ifndef ZTUNNEL_CTL_H
#define ZTUNNEL_CTL_H

int ctl_snapshot(int argc, char **argv);
int ctl_capture(int argc, char **argv);
int ctl_ca(int argc, char **argv);
int ctl_certificates(int argc, char **argv);
int ctl_check(int argc, char **argv);

#endif
