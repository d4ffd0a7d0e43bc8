/* ztunnel-ca: the cluster CA of DESIGN.md §4, a Deployment that alone
 * holds the CA key. Serves Istio's CreateCertificate (SPEC.md §4) to the
 * node agents, each only for the identities of its own node's pods. */
#include "ca_int.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ztunnel/log.h"
#include "ztunnel/version.h"

static const char usage[] =
	"usage: ztunnel-ca --ca-dir DIR [options]\n"
	"\n"
	"The mesh's certificate authority: serves Istio's certificate RPC\n"
	"(istio.v1.auth.IstioCertificateService/CreateCertificate, gRPC over TLS)\n"
	"to the ztunnel agents. Each caller is identified by a TokenReview on the\n"
	"API server. A node agent (--agent) may ask for a pod's identity only while\n"
	"a pod with that ServiceAccount runs on the agent's own node (the node of\n"
	"the pod its token is bound to); any other ServiceAccount only for its own\n"
	"identity. The CA key is read from --ca-dir and nowhere else.\n"
	"\n"
	"  --ca-dir DIR         ca-cert.pem, ca-key.pem (P-256), optional root-cert.pem\n"
	"                       (the trust bundle; default: ca-cert.pem's chain); the\n"
	"                       names of Istio's cacerts Secret. Re-read on change.\n"
	"  --listen ADDR        gRPC over TLS (default 0.0.0.0:15012)\n"
	"  --http-port PORT     /metrics and /ready (default 15014; 0: off)\n"
	"  --dns-name NAME      a name of the serving certificate, repeatable\n"
	"                       (default ztunnel-ca.ztunnel-system.svc)\n"
	"  --trust-domain TD    (default cluster.local)\n"
	"  --agent NS/SA        the node agents' ServiceAccount, repeatable\n"
	"                       (default ztunnel-system/ztunnel)\n"
	"  --audience AUD       the audience callers' tokens must carry (default istio-ca)\n"
	"  --cert-ttl SECONDS   lifetime when the request names none (default 86400)\n"
	"  --max-cert-ttl SECONDS  cap on any lifetime asked for (default 86400)\n"
	"  --max-connections N  TLS connections at once (default 256)\n"
	"  --kubeconfig FILE    the API server and credentials; else in-cluster:\n"
	"  --kube-server URL    (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)\n"
	"  --kube-token-file F  (default /var/run/secrets/kubernetes.io/serviceaccount/token)\n"
	"  --kube-ca-file F     (default /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)\n"
	"  --log-level LEVEL    error, warn, info (default), debug\n"
	"  --log-format FORMAT  text (default) or json\n"
	"  --version, --help\n";

#define MAX_LIST 16

static _Atomic bool stopping;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stopping, true);
}

static long number(const char *flag, const char *v, long min, long max)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*end || end == v || n < min || n > max) {
		fprintf(stderr, "ztunnel-ca: %s must be a number from %ld to %ld, not %s\n", flag, min, max, v);
		exit(2);
	}
	return n;
}

static void add(const char **list, size_t *n, const char *flag, const char *v)
{
	if (*n == MAX_LIST) {
		fprintf(stderr, "ztunnel-ca: at most %d %s\n", MAX_LIST, flag);
		exit(2);
	}
	list[(*n)++] = v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca-dir", 1, 0, 'd' },       { "listen", 1, 0, 'l' },	  { "http-port", 1, 0, 'p' },
		{ "dns-name", 1, 0, 'n' },     { "trust-domain", 1, 0, 't' }, { "agent", 1, 0, 'a' },
		{ "audience", 1, 0, 'u' },     { "cert-ttl", 1, 0, 'c' },	  { "max-cert-ttl", 1, 0, 'm' },
		{ "max-connections", 1, 0, 'x' }, { "kubeconfig", 1, 0, 'k' }, { "kube-server", 1, 0, 's' },
		{ "kube-token-file", 1, 0, 'T' }, { "kube-ca-file", 1, 0, 'C' }, { "log-level", 1, 0, 'L' },
		{ "log-format", 1, 0, 'F' },   { "version", 0, 0, 'V' },	  { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *ca_dir = NULL, *listen = "0.0.0.0:15012", *kubeconfig = NULL, *kube_server = NULL;
	const char *token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
	const char *kube_ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
	const char *dns[MAX_LIST], *agents[MAX_LIST];
	size_t n_dns = 0, n_agents = 0;
	long http_port = 15014, max_conns = 256;
	int level = LOG_LEVEL_INFO, format = LOG_FORMAT_TEXT, c;
	static struct ca_service svc = { .audience = "istio-ca",
					 .rules = { .trust_domain = "cluster.local" },
					 .signer = { .default_ttl_s = 86400, .max_ttl_s = 86400 } };

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': ca_dir = optarg; break;
		case 'l': listen = optarg; break;
		case 'p': http_port = number("--http-port", optarg, 0, 65535); break;
		case 'n': add(dns, &n_dns, "--dns-name", optarg); break;
		case 't': svc.rules.trust_domain = optarg; break;
		case 'a':
			if (!strchr(optarg, '/')) {
				fprintf(stderr, "ztunnel-ca: --agent is NAMESPACE/SERVICEACCOUNT, not %s\n", optarg);
				return 2;
			}
			add(agents, &n_agents, "--agent", optarg);
			break;
		case 'u': svc.audience = optarg; break;
		case 'c': svc.signer.default_ttl_s = number("--cert-ttl", optarg, 60, 365 * 86400L); break;
		case 'm': svc.signer.max_ttl_s = number("--max-cert-ttl", optarg, 60, 365 * 86400L); break;
		case 'x': max_conns = number("--max-connections", optarg, 1, 65536); break;
		case 'k': kubeconfig = optarg; break;
		case 's': kube_server = optarg; break;
		case 'T': token_file = optarg; break;
		case 'C': kube_ca = optarg; break;
		case 'L':
			if ((level = log_level_parse(optarg)) < 0) {
				fprintf(stderr, "ztunnel-ca: unknown --log-level %s\n", optarg);
				return 2;
			}
			break;
		case 'F':
			if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
				fprintf(stderr, "ztunnel-ca: --log-format is text or json\n");
				return 2;
			}
			format = strcmp(optarg, "json") ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
			break;
		case 'V': printf("ztunnel-ca %s\n", ZTUNNEL_VERSION); return 0;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind < argc || !ca_dir) {
		fprintf(stderr, "ztunnel-ca: %s\n\n%s", optind < argc ? "unexpected argument" : "--ca-dir is required",
			usage);
		return 2;
	}
	if (svc.signer.default_ttl_s > svc.signer.max_ttl_s)
		svc.signer.default_ttl_s = svc.signer.max_ttl_s;
	log_setup((enum log_level)level, (enum log_format)format, STDERR_FILENO);
	if (!n_dns)
		dns[n_dns++] = "ztunnel-ca.ztunnel-system.svc";
	if (!n_agents)
		agents[n_agents++] = "ztunnel-system/ztunnel";
	svc.rules.agents = agents;
	svc.rules.n_agents = n_agents;
	snprintf(svc.signer.files.dir, sizeof(svc.signer.files.dir), "%s", ca_dir);
	pthread_mutex_init(&svc.signer.lock, NULL);
	pthread_mutex_init(&svc.pods_lock, NULL);
	if (!(svc.limits = ca_limits_new()))
		return 1;

	/* The API server: TokenReview for every call, and the pods. */
	struct kubeconfig kc = { 0 };
	char server[512], err[512];
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	svc.api.opts.trust_domain = svc.rules.trust_domain;
	svc.api.pods_only = true;
	if (kubeconfig) {
		if (kubeconfig_load(kubeconfig, &kc, err, sizeof(err)) < 0) {
			log_error("unusable --kubeconfig", LF_STR("path", kubeconfig), LF_STR("reason", err));
			return 1;
		}
		kubeconfig_apply(&kc, &svc.api);
	} else {
		if (kube_server)
			snprintf(server, sizeof(server), "%s", kube_server);
		else if (host && port)
			snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
				 port);
		else {
			log_error("no API server: --kubeconfig, --kube-server, or KUBERNETES_SERVICE_HOST/PORT in a pod");
			return 1;
		}
		svc.api.server = server;
		svc.api.token_file = token_file;
		svc.api.ca_file = kube_ca;
	}
	if (local_ca_provider_load(&svc.signer.files, (int64_t)time(NULL), err, sizeof(err)) < 0)
		log_error("cannot load the CA yet; refusing requests until it can", LF_STR("dir", ca_dir),
			  LF_STR("error", err));
	int r = kube_source_start(&svc.pods_source, &svc.api);
	if (r < 0) {
		log_error("cannot follow the pods on the API server", LF_ERRNO(r));
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct MHD_Daemon *http = http_port ? ca_http_start(&svc, (uint16_t)http_port) : NULL;
	if (http_port && !http)
		return 1;
	struct ca_server_opts so = { listen, dns, n_dns, (int)max_conns };
	r = ca_server_run(&svc, &so, &stopping);
	if (r < 0)
		log_error("cannot listen", LF_STR("address", listen), LF_ERRNO(r));
	if (atomic_load(&svc.live) > 0) {
		/* Idle connections' threads may still read what we would free. */
		log_info("stopped", LF_INT("connections_left", atomic_load(&svc.live)));
		_exit(r < 0 ? 1 : 0);
	}
	if (http)
		MHD_stop_daemon(http);
	kube_source_stop(svc.pods_source);
	ca_pods_free(&svc.pods);
	ca_limits_free(svc.limits);
	local_ca_provider_fini(&svc.signer.files);
	kubeconfig_free(&kc);
	log_info("stopped");
	return r < 0 ? 1 : 0;
}
