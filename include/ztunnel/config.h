/* The agent's one configuration struct. Every setting is declared once in
 * the option table (ztunnel/config/config.c) with its flag, environment
 * variable, default and help text; precedence is
 * default < config file (--config, JSON) < environment < command line. */
#ifndef ZTUNNEL_CONFIG_H
#define ZTUNNEL_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

#include "ztunnel/log.h"

enum identity_provider_kind {
	IDENTITY_UNSET = 0, /* the agent refuses to run its data path */
	IDENTITY_LOCAL_CA,
	IDENTITY_FILES,
	IDENTITY_INSECURE_PLAINTEXT, /* tests and demos: mesh traffic unencrypted */
	IDENTITY_CA,                 /* a cluster CA over Istio's certificate RPC */
};

/* Kernel features with a fallback (docs/operations.md "Kernels"): auto
 * picks by what the kernel offers; the others force a path (tests run both). */
enum attach_mode { ATTACH_AUTO = 0, ATTACH_TCX, ATTACH_CLSACT };
enum listener_mode { LISTENERS_AUTO = 0, LISTENERS_REUSEPORT, LISTENERS_SHARED };

enum node_traffic_mode {
	NODE_TRAFFIC_EXEMPT = 0, /* Istio: connections opened on the node are not captured */
	NODE_TRAFFIC_PROBES_ONLY,
};

struct zt_config {
	char *config_file;
	char *node_name;
	char *snapshot;
	bool kube;
	char *kube_server;
	char *kube_token_file;
	char *kube_ca_file;
	char *kubeconfig;
	char *ca_address, *ca_root_cert, *ca_token_file; /* --identity-provider ca */
	char *trust_domain;
	char *cluster_id;
	char *root_namespace;
	char *bpf_pin_dir;
	char *cni_socket;
	char *cni_conf_dir;
	char *uplinks;
	char *ca_dir;
	char *cert_dir;
	int identity_provider; /* enum identity_provider_kind */
	int cert_lifetime;
	char *admin_addr;
	char *metrics_addr;
	char *readiness_addr;
	int termination_deadline;
	int fwmark, fwmark_mask, route_table; /* capture's policy routing */
	int attach;    /* enum attach_mode */
	int listeners; /* enum listener_mode */
	int outbound_port;
	int inbound_port;
	int inbound_plain_port;
	int worker_threads;
	int max_pending_handshakes;
	int max_pending_handshakes_per_source;
	int max_streams_per_peer;
	int pool_max_streams;
	int max_stream_rate;
	int max_connections_per_peer;
	int stream_idle_timeout;
	int access_log_interval;
	int node_traffic; /* enum node_traffic_mode */
	char *node_cgroup;
	char *kubelet_cgroup;
	int peer_buffer_mb;
	int log_level;  /* enum log_level */
	int log_format; /* enum log_format */
	bool capture;
	bool help;
	bool version;
};

/* Fills cfg from defaults, file, environment and argv. On error returns
 * -EINVAL (or the file's -errno) and writes a one-line reason into err.
 * cfg must be released with config_free() whatever the result. */
int config_load(struct zt_config *cfg, int argc, char **argv, char *err, size_t err_size);
void config_free(struct zt_config *cfg);
void config_print_help(FILE *out, const char *prog);
/* Every setting's effective value, keyed by its name in camelCase
 * ("trust-domain" -> trustDomain), for the admin's /config_dump. */
struct cJSON;
struct cJSON *config_to_json(const struct zt_config *cfg);

#endif
