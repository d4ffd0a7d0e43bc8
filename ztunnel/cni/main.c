/* ztunnel-cni: chained CNI plugin (spec 1.0.0) that hands each pod to the
 * node's agent. ADD fails when the agent is unreachable or refuses (fail
 * closed: kubelet retries); DEL succeeds when the agent is gone (the pod
 * is going away regardless); prevResult is passed through unchanged. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ztunnel/cni_install.h"
#include "ztunnel/version.h"

#define DEFAULT_AGENT_SOCKET "/var/run/ztunnel/cni.sock"
#define AGENT_TIMEOUT_S 10
#define MAX_STDIN (1 << 20)

/* CNI spec error codes. */
enum {
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_AGENT_REFUSED = 100, /* plugin-specific */
};

static const char *const supported_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0" };
#define N_VERSIONS (sizeof(supported_versions) / sizeof(supported_versions[0]))

/* The configuration's cniVersion, echoed in results and errors. */
static char conf_version[16] = "1.0.0";

static int print_json(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s) {
		puts(s);
		cJSON_free(s);
	}
	cJSON_Delete(o);
	return s ? 0 : 1;
}

static int cni_error(int code, const char *msg, const char *details)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cniVersion", conf_version);
	cJSON_AddNumberToObject(o, "code", code);
	cJSON_AddStringToObject(o, "msg", msg);
	if (details)
		cJSON_AddStringToObject(o, "details", details);
	print_json(o);
	return 1;
}

static char *read_stdin(void)
{
	char *buf = malloc(MAX_STDIN + 1);
	size_t n = 0;

	if (!buf)
		return NULL;
	while (n < MAX_STDIN) {
		size_t got = fread(buf + n, 1, MAX_STDIN - n, stdin);
		if (!got)
			break;
		n += got;
	}
	buf[n] = '\0';
	return buf;
}

/* K8S_POD_NAMESPACE etc. from CNI_ARGS "K1=V1;K2=V2". */
static void cni_arg(const char *args, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);

	out[0] = '\0';
	for (const char *p = args; p && *p;) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			snprintf(out, size, "%.*s", (int)(len - klen - 1), p + klen + 1);
			return;
		}
		p = end ? end + 1 : NULL;
	}
}

/* Sends one request, returns the agent's reply (or NULL, *err set). */
static cJSON *agent_call(const char *path, cJSON *req, int *err)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = AGENT_TIMEOUT_S };
	char buf[65536];
	cJSON *reply = NULL;

	*err = 0;
	if (strlen(path) >= sizeof(a.sun_path)) {
		*err = ENAMETOOLONG;
		return NULL;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char *text = cJSON_PrintUnformatted(req);
	ssize_t n;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || !text ||
	    send(fd, text, strlen(text), MSG_NOSIGNAL) < 0 || (n = recv(fd, buf, sizeof(buf) - 1, 0)) <= 0) {
		*err = errno ? errno : EPROTO;
	} else {
		buf[n] = '\0';
		if (!(reply = cJSON_Parse(buf)))
			*err = EPROTO;
	}
	cJSON_free(text);
	close(fd);
	return reply;
}

/* While the agent is down or not ready, may this pod start without it?
 * Only when the enrollment cache the agent keeps (enrollment.json beside
 * its socket, or "enrollmentCache" in the configuration) says a new pod of
 * its namespace would not join the mesh ("none"); kube-system never does.
 * No cache, a namespace it does not know, or one where pods join
 * ("ambient") or may ("mixed"): no, fail closed. Returns NULL when it may
 * start, else why not. */
static const char *start_without_agent(const cJSON *conf, const char *sock, const char *ns, char *why,
				       size_t size)
{
	const cJSON *c = cJSON_GetObjectItem(conf, "enrollmentCache");
	char path[4096];

	if (!strcmp(ns, "kube-system"))
		return NULL;
	if (cJSON_IsString(c)) {
		snprintf(path, sizeof(path), "%s", c->valuestring);
	} else {
		const char *slash = strrchr(sock, '/');
		snprintf(path, sizeof(path), "%.*senrollment.json", slash ? (int)(slash - sock + 1) : 0, sock);
	}
	FILE *f = fopen(path, "r");
	char *text = f ? calloc(1, MAX_STDIN + 1) : NULL;
	if (text)
		fread(text, 1, MAX_STDIN, f);
	if (f)
		fclose(f);
	cJSON *cache = text ? cJSON_Parse(text) : NULL;
	free(text);
	const cJSON *namespaces = cJSON_GetObjectItem(cache, "namespaces");
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(namespaces, ns);
	const char *verdict = why;
	if (!cJSON_IsObject(namespaces))
		snprintf(why, size, "no readable enrollment cache at %s: whether a pod of namespace %s joins the "
			 "mesh is unknown", path, ns);
	else if (!*ns || !cJSON_IsString(mode))
		snprintf(why, size, "namespace \"%s\" is not in the enrollment cache: whether its pods join the "
			 "mesh is unknown", ns);
	else if (strcmp(mode->valuestring, "none"))
		snprintf(why, size, "namespace %s is in the ambient mesh (%s): its pods must not start unprotected",
			 ns, mode->valuestring);
	else
		verdict = NULL;
	cJSON_Delete(cache);
	return verdict;
}

/* The host-side interface and addresses from the previous plugin's result. */
static void add_prev_result(cJSON *req, const cJSON *prev)
{
	const cJSON *it;
	cJSON *ips = cJSON_AddArrayToObject(req, "ips");

	cJSON_ArrayForEach(it, cJSON_GetObjectItem(prev, "interfaces")) {
		const cJSON *sandbox = cJSON_GetObjectItem(it, "sandbox");
		const cJSON *name = cJSON_GetObjectItem(it, "name");
		if ((!cJSON_IsString(sandbox) || !*sandbox->valuestring) && cJSON_IsString(name)) {
			cJSON_AddStringToObject(req, "hostInterface", name->valuestring);
			break;
		}
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(prev, "ips")) {
		const cJSON *addr = cJSON_GetObjectItem(it, "address");
		if (cJSON_IsString(addr)) {
			char ip[64];
			snprintf(ip, sizeof(ip), "%s", addr->valuestring);
			char *slash = strchr(ip, '/');
			if (slash)
				*slash = '\0';
			cJSON_AddItemToArray(ips, cJSON_CreateString(ip));
		}
	}
}

static bool version_supported(const char *v)
{
	for (size_t i = 0; i < N_VERSIONS; i++)
		if (!strcmp(v, supported_versions[i]))
			return true;
	return false;
}

static int run(const char *cmd)
{
	char *input = read_stdin();
	cJSON *conf = input ? cJSON_Parse(input) : NULL;
	char ns[256], name[256], uid[128];
	int err;

	free(input);
	if (!cJSON_IsObject(conf)) {
		cJSON_Delete(conf);
		return cni_error(CNI_ERR_DECODE, "cannot decode network configuration on stdin", NULL);
	}
	const cJSON *ver = cJSON_GetObjectItem(conf, "cniVersion");
	if (!cJSON_IsString(ver) || !version_supported(ver->valuestring)) {
		cJSON_Delete(conf);
		return cni_error(CNI_ERR_INCOMPATIBLE_VERSION, "unsupported cniVersion",
				 "supported: 0.3.0 0.3.1 0.4.0 1.0.0");
	}
	snprintf(conf_version, sizeof(conf_version), "%s", ver->valuestring);
	const cJSON *sock = cJSON_GetObjectItem(conf, "agentSocket");
	const char *path = cJSON_IsString(sock) ? sock->valuestring : DEFAULT_AGENT_SOCKET;
	const cJSON *prev = cJSON_GetObjectItem(conf, "prevResult");
	const char *args = getenv("CNI_ARGS");
	cni_arg(args, "K8S_POD_NAMESPACE", ns, sizeof(ns));
	cni_arg(args, "K8S_POD_NAME", name, sizeof(name));
	cni_arg(args, "K8S_POD_UID", uid, sizeof(uid));

	if (!strcmp(cmd, "ADD") && !cJSON_IsObject(prev)) {
		cJSON_Delete(conf);
		return cni_error(CNI_ERR_INVALID_CONFIG, "ztunnel-cni must be chained after a plugin that sets up the pod network (no prevResult)", NULL);
	}
	if (!getenv("CNI_CONTAINERID") || (!strcmp(cmd, "ADD") && !getenv("CNI_NETNS"))) {
		cJSON_Delete(conf);
		return cni_error(CNI_ERR_INVALID_ENV, "CNI_CONTAINERID and CNI_NETNS are required", NULL);
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "command", cmd);
	cJSON_AddStringToObject(req, "containerId", getenv("CNI_CONTAINERID"));
	cJSON_AddStringToObject(req, "netns", getenv("CNI_NETNS") ? getenv("CNI_NETNS") : "");
	cJSON_AddStringToObject(req, "podNamespace", ns);
	cJSON_AddStringToObject(req, "podName", name);
	cJSON_AddStringToObject(req, "podUid", uid);
	if (cJSON_IsObject(prev))
		add_prev_result(req, prev);

	cJSON *reply = agent_call(path, req, &err);
	cJSON_Delete(req);
	int status = 0;
	bool away = !reply || cJSON_IsTrue(cJSON_GetObjectItem(reply, "notReady"));
	char why[1024];
	if (away && !strcmp(cmd, "ADD") && !start_without_agent(conf, path, ns, why, sizeof(why))) {
		/* Not a mesh pod: it starts; the agent attaches capture to its
		 * veth when it learns of the pod. */
		fprintf(stderr, "ztunnel-cni: agent %s; pod %s/%s is not in the mesh: starting it\n",
			reply ? "not ready" : "unreachable", ns, name);
		char *out = cJSON_PrintUnformatted(prev);
		if (out)
			puts(out);
		cJSON_free(out);
	} else if (!reply) {
		char details[1536];
		snprintf(details, sizeof(details), "%s: %s%s%s", path, strerror(err),
			 strcmp(cmd, "ADD") ? "" : "; ", strcmp(cmd, "ADD") ? "" : why);
		if (!strcmp(cmd, "DEL"))
			status = 0; /* nothing left to undo without an agent */
		else
			status = cni_error(CNI_ERR_TRY_AGAIN, "ztunnel agent unreachable", details);
	} else if (!cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"))) {
		const cJSON *e = cJSON_GetObjectItem(reply, "error");
		status = cni_error(CNI_ERR_AGENT_REFUSED, "ztunnel agent refused the pod",
				   cJSON_IsString(e) ? e->valuestring : "no reason given");
	} else if (!strcmp(cmd, "ADD")) {
		/* Chained plugin: the result is the previous one, unchanged. */
		char *out = cJSON_PrintUnformatted(prev);
		if (out)
			puts(out);
		cJSON_free(out);
	}
	cJSON_Delete(reply);
	cJSON_Delete(conf);
	return status;
}

static int cni_version(void)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "cniVersion", "1.0.0");
	cJSON_AddItemToObject(o, "supportedVersions",
			      cJSON_CreateStringArray(supported_versions, N_VERSIONS));
	return print_json(o);
}

/* ztunnel-cni install|uninstall --conf-dir DIR [--agent-socket PATH] */
static int install_cmd(int argc, char **argv)
{
	const char *dir = "/etc/cni/net.d", *sock = DEFAULT_AGENT_SOCKET;
	char msg[1024];

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--conf-dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--agent-socket") && i + 1 < argc) {
			sock = argv[++i];
		} else {
			fprintf(stderr, "ztunnel-cni: unknown argument \"%s\" (see --help)\n", argv[i]);
			return 2;
		}
	}
	int r = cni_install(dir, sock, !strcmp(argv[1], "install"), msg, sizeof(msg));
	fprintf(r < 0 ? stderr : stdout, "%s%s\n", r < 0 ? "ztunnel-cni: error: " : "", msg);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd = getenv("CNI_COMMAND");

	if (argc > 1 && (!strcmp(argv[1], "install") || !strcmp(argv[1], "uninstall")))
		return install_cmd(argc, argv);

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: ztunnel-cni (run by the container runtime with CNI_COMMAND set)\n"
		       "       ztunnel-cni install|uninstall [--conf-dir DIR] [--agent-socket PATH]\n\n"
		       "Chained CNI plugin (spec 1.0.0) that hands new pods to the node's ztunnel\n"
		       "agent for ambient enrollment. Commands: ADD CHECK DEL VERSION.\n"
		       "Network configuration: \"agentSocket\" (default " DEFAULT_AGENT_SOCKET ").\n"
		       "ADD fails when the agent is unreachable or refuses; DEL succeeds without it.\n\n"
		       "install chains the plugin last in the first configuration of DIR (default\n"
		       "/etc/cni/net.d), atomically and idempotently; uninstall removes it.\n");
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("ztunnel-cni %s\n", ZTUNNEL_VERSION);
		return 0;
	}
	if (!cmd)
		return cni_error(CNI_ERR_INVALID_ENV, "CNI_COMMAND is not set", NULL);
	if (!strcmp(cmd, "VERSION"))
		return cni_version();
	if (!strcmp(cmd, "ADD") || !strcmp(cmd, "CHECK") || !strcmp(cmd, "DEL"))
		return run(cmd);
	return cni_error(CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND", cmd);
}
