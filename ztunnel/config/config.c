#include "ztunnel/config.h"
#include "ztunnel/file.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum opt_type { OPT_STRING, OPT_INT, OPT_BOOL, OPT_ENUM, OPT_FLAG };

struct opt {
	const char *name; /* --name, JSON key; env is ZTUNNEL_<NAME> */
	enum opt_type type;
	size_t offset;
	const char *def;
	const char *help;
	int min, max;                /* OPT_INT */
	const char *const *choices;  /* OPT_ENUM, NULL-terminated */
};

static const char *const node_traffic_modes[] = { "exempt", "probes-only", NULL };
static const char *const attach_modes[] = { "auto", "tcx", "clsact", NULL };
static const char *const listener_modes[] = { "auto", "reuseport", "shared", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
/* "" is the unset default: a security agent never falls back to plaintext
 * on its own, it must be told so by name. */
static const char *const identity_providers[] = { "", "local-ca", "files", "insecure-plaintext", "ca", NULL };

#define OFF(f) offsetof(struct zt_config, f)

/* The single declaration of every setting. */
static const struct opt options[] = {
	{ "config", OPT_STRING, OFF(config_file), NULL, "JSON file with settings (keys are flag names)" },
	{ "node-name", OPT_STRING, OFF(node_name), NULL, "Kubernetes node this agent serves (required for identities)" },
	{ "snapshot", OPT_STRING, OFF(snapshot), NULL, "cluster snapshot file, or ConfigMap directory holding snapshot.json (required without --kube)" },
	{ "kube", OPT_BOOL, OFF(kube), "false", "follow the Kubernetes API (list + watch) instead of --snapshot" },
	{ "kube-server", OPT_STRING, OFF(kube_server), NULL, "--kube: API server URL (default: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, in a pod)" },
	{ "kube-token-file", OPT_STRING, OFF(kube_token_file), "/var/run/secrets/kubernetes.io/serviceaccount/token", "--kube: bearer token file, re-read before every request (kubelet rotates it)" },
	{ "kube-ca-file", OPT_STRING, OFF(kube_ca_file), "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "--kube: CA bundle the API server's certificate is verified against" },
	{ "kubeconfig", OPT_STRING, OFF(kubeconfig), NULL, "implies --kube; outside a pod (development): the server, CA and token or client certificate of this kubeconfig's current context, instead of --kube-server/--kube-token-file/--kube-ca-file (credential plugins and insecure-skip-tls-verify are refused)" },
	{ "trust-domain", OPT_STRING, OFF(trust_domain), "cluster.local", "SPIFFE trust domain of local workloads" },
	{ "cluster-id", OPT_STRING, OFF(cluster_id), "Kubernetes", "cluster name in metrics labels (Istio's CLUSTER_ID)" },
	{ "root-namespace", OPT_STRING, OFF(root_namespace), "istio-system", "namespace whose policies apply mesh-wide" },
	{ "bpf-pin-dir", OPT_STRING, OFF(bpf_pin_dir), "/sys/fs/bpf/ztunnel", "bpffs directory for pinned maps and links" },
	{ "cni-socket", OPT_STRING, OFF(cni_socket), "/var/run/ztunnel/cni.sock", "unix socket ztunnel-cni talks to" },
	{ "cni-conf-dir", OPT_STRING, OFF(cni_conf_dir), NULL, "CNI configuration directory whose primary network gets ztunnel-cni chained last, and again whenever the primary CNI rewrites it (unset: the install step alone chains it)" },
	{ "capture", OPT_BOOL, OFF(capture), "true", "attach eBPF capture and run the data path (false: follow the snapshot only)" },
	{ "uplinks", OPT_STRING, OFF(uplinks), "auto", "node interfaces to capture on, comma-separated (auto: every interface with an IPv4 address)" },
	{ "admin-addr", OPT_STRING, OFF(admin_addr), "127.0.0.1:15000", "admin API listen address (config_dump, connections, logging, quitquitquit; keep it on loopback), or off" },
	{ "metrics-addr", OPT_STRING, OFF(metrics_addr), "0.0.0.0:15020", "Prometheus metrics listen address (/metrics, /stats/prometheus), or off" },
	{ "readiness-addr", OPT_STRING, OFF(readiness_addr), "0.0.0.0:15021", "readiness probe listen address (/healthz/ready), or off" },
	{ "fwmark", OPT_INT, OFF(fwmark), "0x400", "packet mark that steers captured packets' return traffic to the local table (must not be used by the node's CNI: Cilium uses 0x400 in some modes; ztunnel preflight checks); hex with 0x", 1, 0x7fffffff },
	{ "fwmark-mask", OPT_INT, OFF(fwmark_mask), "0xf00", "bits of the mark the policy rule compares (--fwmark must lie within them)", 1, 0x7fffffff },
	{ "route-table", OPT_INT, OFF(route_table), "100", "routing table of that rule (holds only: local default dev lo)", 1, 0x7fffffff },
	{ "attach", OPT_ENUM, OFF(attach), "auto", "how the program goes on interfaces: tcx (links, kernel >= 6.6), clsact (tc filters, older kernels), or auto (tcx, else clsact)", 0, 0, attach_modes },
	{ "listeners", OPT_ENUM, OFF(listeners), "auto", "capture listeners: reuseport (one per worker, the kernel spreads connections; bpf_sk_assign to a reuseport group needs kernel >= 6.5), shared (one per port, every worker accepts from it), or auto (reuseport from 6.5, else shared)", 0, 0, listener_modes },
	{ "termination-deadline", OPT_INT, OFF(termination_deadline), "0", "seconds a stop (SIGTERM, SIGINT, POST /quitquitquit) lets live connections finish before they are closed; 0: $CONNECTION_TERMINATION_DEADLINE, else $TERMINATION_GRACE_PERIOD_SECONDS minus 5 (minus 1 when <= 10), else 5 (as Istio's ztunnel)", 0, 86400 },
	{ "outbound-port", OPT_INT, OFF(outbound_port), "15001", "outbound capture listener port", 1, 65535 },
	{ "inbound-port", OPT_INT, OFF(inbound_port), "15008", "inbound HBONE listener port (peers always dial podIP:15008; eBPF hands those SYNs to this listener)", 1, 65535 },
	{ "inbound-plain-port", OPT_INT, OFF(inbound_plain_port), "15006", "inbound plaintext listener port", 1, 65535 },
	{ "worker-threads", OPT_INT, OFF(worker_threads), "0", "io_uring workers (0: one per core)", 0, 1024 },
	{ "max-pending-handshakes", OPT_INT, OFF(max_pending_handshakes), "1024", "inbound HBONE connections allowed to wait for their TLS handshake on this node (more are reset and counted)", 1, 1000000 },
	{ "max-pending-handshakes-per-source", OPT_INT, OFF(max_pending_handshakes_per_source), "64", "the same, per source address: one pod cannot take the node's share", 1, 1000000 },
	{ "pool-max-streams-per-connection", OPT_INT, OFF(pool_max_streams), "100", "outbound: once the next stream would make this many open on a pooled HBONE connection, it leaves the pool (serving the streams it has) and a new one is dialled for its key (Istio's POOL_MAX_STREAMS_PER_CONNECTION, SPEC 2.5; also capped by the peer's SETTINGS; 1: a new connection and TLS handshake per tunnelled connection)", 1, 65535 },
	{ "max-stream-rate", OPT_INT, OFF(max_stream_rate), "10000", "new inbound HBONE streams one connection may open per second (a burst of as many, then that rate; more are answered 503 and counted): a peer cannot make the agent dial its pods as fast as it can send HEADERS frames", 1, 10000000 },
	{ "max-streams-per-peer", OPT_INT, OFF(max_streams_per_peer), "1000", "inbound HBONE streams one peer address may hold open on this node, over all its connections (more are answered 503 and counted)", 1, 10000000 },
	{ "node-traffic", OPT_ENUM, OFF(node_traffic), "exempt", "connections opened on the node itself to enrolled pods: exempt (as Istio: not captured, counted per pod) or probes-only (only processes in --kubelet-cgroup may reach STRICT pods; others get EPERM at connect)", 0, 0, node_traffic_modes },
	{ "node-cgroup", OPT_STRING, OFF(node_cgroup), "/sys/fs/cgroup", "probes-only: cgroup v2 directory holding the node's processes (the connect hook is attached there)" },
	{ "kubelet-cgroup", OPT_STRING, OFF(kubelet_cgroup), NULL, "probes-only: the kubelet's cgroup v2 directory (its probes stay exempt); required with probes-only" },
	{ "max-connections-per-peer", OPT_INT, OFF(max_connections_per_peer), "256", "authenticated inbound HBONE connections one peer address may hold open on this node (more are closed after the handshake and counted)", 1, 10000000 },
	{ "stream-idle-timeout", OPT_INT, OFF(stream_idle_timeout), "0", "seconds an inbound HBONE stream may move no bytes either way before it is closed (0: never, as Istio; TCP keepalive still detects dead peers)", 0, 86400 },
	{ "peer-buffer-mb", OPT_INT, OFF(peer_buffer_mb), "64", "MiB of received data waiting for slow pods that one peer address may hold; above it the agent stops reading that peer's connections until the pods catch up", 1, 65536 },
	{ "identity-provider", OPT_ENUM, OFF(identity_provider), NULL, "required with capture: where workload certificates come from: ca (a cluster CA over Istio's certificate RPC: ztunnel-ca or istiod; keys stay on the node), files, local-ca (tests and single-node demos: the CA key on the node), or insecure-plaintext (tests and demos only: mesh traffic relayed unencrypted, no identities)", 0, 0, identity_providers },
	{ "ca-address", OPT_STRING, OFF(ca_address), "https://ztunnel-ca.ztunnel-system.svc:15012", "ca: the CA's address (https://HOST:PORT; HOST is checked against its certificate); istiod: https://istiod.istio-system.svc:15012" },
	{ "ca-root-cert", OPT_STRING, OFF(ca_root_cert), "/var/run/secrets/ztunnel/ca-root/root-cert.pem", "ca: the roots the CA's TLS certificate must chain to" },
	{ "ca-token-file", OPT_STRING, OFF(ca_token_file), "/var/run/secrets/tokens/ztunnel-ca-token", "ca: the agent's projected ServiceAccount token (authorization: Bearer), re-read for every request" },
	{ "ca-dir", OPT_STRING, OFF(ca_dir), "/var/run/secrets/ztunnel/ca", "local-ca: directory with ca-cert.pem, ca-key.pem and optional root-cert.pem (trust bundle; default: the CA chain), re-read on change" },
	{ "cert-dir", OPT_STRING, OFF(cert_dir), "/var/run/secrets/ztunnel/certs", "files: <dir>/<namespace>/<service account>/{cert-chain,key,root-cert}.pem" },
	{ "cert-lifetime", OPT_INT, OFF(cert_lifetime), "86400", "leaf certificate lifetime in seconds, minted (local-ca) or asked for (ca); renewed at half-life", 10, 2592000 },
	{ "access-log-interval", OPT_INT, OFF(access_log_interval), "0", "seconds between \"connection update\" access-log lines for a long-lived connection (0: only at open and close; its bytes reach the metrics every 30 s regardless)", 0, 86400 },
	{ "log-level", OPT_ENUM, OFF(log_level), "info", "error|warn|info|debug", 0, 0, log_levels },
	{ "log-format", OPT_ENUM, OFF(log_format), "text", "text (key=value) or json lines", 0, 0, log_formats },
	{ "help", OPT_FLAG, OFF(help), NULL, "print this help and exit" },
	{ "version", OPT_FLAG, OFF(version), NULL, "print the version and exit" },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static void *field(struct zt_config *cfg, const struct opt *o)
{
	return (char *)cfg + o->offset;
}

static void env_name(const struct opt *o, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "ZTUNNEL_%s", o->name);

	for (size_t i = 0; i < n && i < size; i++)
		out[i] = out[i] == '-' ? '_' : (char)toupper((unsigned char)out[i]);
}

/* Applies one textual value; origin names where it came from for errors. */
static int opt_set(struct zt_config *cfg, const struct opt *o, const char *value,
		   const char *origin, char *err, size_t err_size)
{
	void *p = field(cfg, o);
	char *end;
	long v;

	switch (o->type) {
	case OPT_STRING: {
		char *copy = strdup(value);
		if (!copy)
			return -ENOMEM;
		free(*(char **)p);
		*(char **)p = copy;
		return 0;
	}
	case OPT_INT:
		errno = 0;
		v = strncmp(value, "0x", 2) ? strtol(value, &end, 10) : strtol(value + 2, &end, 16);
		if (errno || end == value || *end || v < o->min || v > o->max) {
			snprintf(err, err_size, "%s: %s must be an integer in [%d, %d], got \"%s\"",
				 origin, o->name, o->min, o->max, value);
			return -EINVAL;
		}
		*(int *)p = (int)v;
		return 0;
	case OPT_BOOL:
	case OPT_FLAG:
		if (!strcmp(value, "true") || !strcmp(value, "1")) {
			*(bool *)p = true;
		} else if (!strcmp(value, "false") || !strcmp(value, "0")) {
			*(bool *)p = false;
		} else {
			snprintf(err, err_size, "%s: %s must be true or false, got \"%s\"", origin,
				 o->name, value);
			return -EINVAL;
		}
		return 0;
	case OPT_ENUM:
		for (int i = 0; o->choices[i]; i++) {
			if (!strcmp(o->choices[i], value)) {
				*(int *)p = i;
				return 0;
			}
		}
		char list[128] = "";
		for (int i = 0; o->choices[i]; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? "|" : "",
				 o->choices[i]);
		snprintf(err, err_size, "%s: %s must be one of %s, got \"%s\"", origin, o->name, list,
			 value);
		return -EINVAL;
	}
	return -EINVAL;
}

static const struct opt *opt_find(const char *name)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (!strcmp(options[i].name, name))
			return &options[i];
	return NULL;
}

static int apply_file(struct zt_config *cfg, const char *path, char *err, size_t err_size)
{
	char *text = NULL;
	char origin[PATH_MAX + 16];
	size_t len;
	int r = file_read(path, 1 << 20, &text, &len);

	if (r < 0) {
		snprintf(err, err_size, "config file %s: %s", path, strerror(-r));
		return r;
	}
	cJSON *root = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(root)) {
		snprintf(err, err_size, "config file %s: not a JSON object", path);
		cJSON_Delete(root);
		return -EINVAL;
	}
	snprintf(origin, sizeof(origin), "config file %s", path);
	cJSON *item;
	cJSON_ArrayForEach(item, root) {
		const struct opt *o = opt_find(item->string);
		char num[32];
		const char *value = NULL;

		if (!o || o->type == OPT_FLAG || o->offset == OFF(config_file)) {
			snprintf(err, err_size, "%s: unknown setting \"%s\"", origin, item->string);
			r = -EINVAL;
			break;
		}
		if (cJSON_IsString(item))
			value = item->valuestring;
		else if (cJSON_IsBool(item))
			value = cJSON_IsTrue(item) ? "true" : "false";
		else if (cJSON_IsNumber(item) && item->valuedouble == (double)(long)item->valuedouble)
			value = (snprintf(num, sizeof(num), "%ld", (long)item->valuedouble), num);
		if (!value) {
			snprintf(err, err_size, "%s: %s has an unsupported JSON type", origin, o->name);
			r = -EINVAL;
			break;
		}
		r = opt_set(cfg, o, value, origin, err, err_size);
		if (r < 0)
			break;
	}
	cJSON_Delete(root);
	return r;
}

static int apply_env(struct zt_config *cfg, char *err, size_t err_size)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		char name[64];
		const char *v;

		if (options[i].type == OPT_FLAG)
			continue;
		env_name(&options[i], name, sizeof(name));
		v = getenv(name);
		if (v) {
			int r = opt_set(cfg, &options[i], v, name, err, err_size);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Command-line values are applied last but the --config path must be known
 * first, so argv is scanned once into (option, value) pairs. */
struct arg_value {
	const struct opt *opt;
	const char *value;
};

static int scan_argv(int argc, char **argv, struct arg_value *vals, int *n_vals, char *err,
		     size_t err_size)
{
	struct option longopts[N_OPTIONS + 1];
	int c, idx;

	/* A boolean alone means true (--kube); "--capture false" and
	 * "--capture=false" still set it. */
	for (size_t i = 0; i < N_OPTIONS; i++)
		longopts[i] = (struct option){ options[i].name,
					       options[i].type == OPT_FLAG   ? no_argument
					       : options[i].type == OPT_BOOL ? optional_argument
									     : required_argument,
					       NULL, (int)i };
	longopts[N_OPTIONS] = (struct option){ 0 };
	optind = 0; /* glibc: full reset, so tests can parse repeatedly */
	opterr = 0;
	*n_vals = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		if (c == 'h') {
			vals[(*n_vals)++] = (struct arg_value){ opt_find("help"), "true" };
		} else if (c >= 0 && (size_t)c < N_OPTIONS) {
			const struct opt *o = &options[c];
			const char *v = o->type == OPT_FLAG ? "true" : optarg;
			if (o->type == OPT_BOOL && !v) {
				const char *next = optind < argc ? argv[optind] : NULL;
				bool literal = next && (!strcmp(next, "true") || !strcmp(next, "false") ||
							!strcmp(next, "1") || !strcmp(next, "0"));
				v = literal ? argv[optind++] : "true";
			}
			vals[(*n_vals)++] = (struct arg_value){ o, v };
		} else {
			snprintf(err, err_size, "unknown or incomplete option \"%s\" (see --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
		if (*n_vals >= argc)
			break;
	}
	if (optind < argc) {
		snprintf(err, err_size, "unexpected argument \"%s\" (see --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int config_load(struct zt_config *cfg, int argc, char **argv, char *err, size_t err_size)
{
	struct arg_value *vals = calloc((size_t)argc + 1, sizeof(*vals));
	const char *file;
	int n_vals = 0, r;

	memset(cfg, 0, sizeof(*cfg));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (!options[i].def)
			continue;
		r = opt_set(cfg, &options[i], options[i].def, "default", err, err_size);
		if (r < 0)
			goto out;
	}
	r = scan_argv(argc, argv, vals, &n_vals, err, err_size);
	if (r < 0)
		goto out;
	file = getenv("ZTUNNEL_CONFIG");
	for (int i = 0; i < n_vals; i++)
		if (vals[i].opt->offset == OFF(config_file))
			file = vals[i].value;
	if (file) {
		r = opt_set(cfg, opt_find("config"), file, "config", err, err_size);
		if (r < 0)
			goto out;
		r = apply_file(cfg, file, err, err_size);
		if (r < 0)
			goto out;
	}
	r = apply_env(cfg, err, err_size);
	for (int i = 0; r == 0 && i < n_vals; i++)
		r = opt_set(cfg, vals[i].opt, vals[i].value, "command line", err, err_size);
out:
	free(vals);
	return r;
}

void config_free(struct zt_config *cfg)
{
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (options[i].type == OPT_STRING) {
			char **p = field(cfg, &options[i]);
			free(*p);
			*p = NULL;
		}
	}
}

void config_print_help(FILE *out, const char *prog)
{
	fprintf(out,
		"Usage: %s [OPTIONS]\n\n"
		"Node agent of the ambient mesh: captures enrolled pods' TCP with eBPF, issues\n"
		"their SPIFFE certificates and carries mesh-to-mesh traffic over HBONE (mutual\n"
		"TLS 1.3 + HTTP/2 CONNECT to port 15008); other captured traffic is relayed\n"
		"transparently. --identity-provider is required: the agent never relays mesh\n"
		"traffic in plaintext unless told so with --identity-provider insecure-plaintext.\n\n"
		"Settings come from (lowest to highest): defaults, --config FILE (JSON object\n"
		"keyed by option name), environment ZTUNNEL_<OPTION>, command line.\n\n"
		"Options:\n",
		prog);
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct opt *o = &options[i];
		char flag[48], env[64];

		snprintf(flag, sizeof(flag), "--%s%s", o->name, o->type == OPT_FLAG ? "" : " VALUE");
		fprintf(out, "  %-30s %s", flag, o->help);
		if (o->def)
			fprintf(out, " [default: %s]", o->def);
		if (o->type != OPT_FLAG) {
			env_name(o, env, sizeof(env));
			fprintf(out, " (env %s)", env);
		}
		fputc('\n', out);
	}
}

/* "trust-domain" -> "trustDomain" (Istio's config_dump uses camelCase). */
static void camel(const char *name, char *out, size_t size)
{
	size_t n = 0;
	bool up = false;

	for (const char *p = name; *p && n + 1 < size; p++) {
		if (*p == '-') {
			up = true;
			continue;
		}
		out[n++] = up ? (char)toupper((unsigned char)*p) : *p;
		up = false;
	}
	out[n] = '\0';
}

cJSON *config_to_json(const struct zt_config *cfg)
{
	cJSON *o = cJSON_CreateObject();

	for (size_t i = 0; o && i < N_OPTIONS; i++) {
		const struct opt *opt = &options[i];
		const void *p = (const char *)cfg + opt->offset;
		char key[64];
		if (opt->type == OPT_FLAG)
			continue;
		camel(opt->name, key, sizeof(key));
		switch (opt->type) {
		case OPT_STRING: {
			const char *v = *(char *const *)p;
			if (v)
				cJSON_AddStringToObject(o, key, v);
			else
				cJSON_AddNullToObject(o, key);
			break;
		}
		case OPT_INT:
			cJSON_AddNumberToObject(o, key, *(const int *)p);
			break;
		case OPT_BOOL:
			cJSON_AddBoolToObject(o, key, *(const bool *)p);
			break;
		case OPT_ENUM: {
			int v = *(const int *)p, k = 0;
			while (opt->choices[k] && k < v)
				k++;
			cJSON_AddStringToObject(o, key, opt->choices[k] ? opt->choices[k] : "");
			break;
		}
		case OPT_FLAG:
			break;
		}
	}
	return o;
}
