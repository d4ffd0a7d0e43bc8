/* The three HTTP servers (docs/admin.md) on libmicrohttpd's own threads.
 * Each connection is answered from memory in one response; every server
 * caps its connections, so a scraper or a hostile client on the node
 * cannot take more than that. */
#include "admin_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/log.h"
#include "ztunnel/lifecycle.h"

enum server { SERVER_ADMIN = 0, SERVER_METRICS, SERVER_READY };

static const char *const server_names[] = { "admin", "metrics", "readiness" };
/* Connections per server and per client. The admin's answers can be large
 * (config_dump of a big cluster, held until the client reads it): few of
 * them; the public ports serve a scraper and a kubelet among pods. */
static const unsigned limits[3][2] = { { 16, 4 }, { 256, 8 }, { 256, 8 } };

void reply_text(struct admin_reply *r, int status, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->status = status;
	r->type = "text/plain; charset=utf-8";
	tm_text_printf(&r->body, "%s", line);
}

void reply_json(struct admin_reply *r, int status, cJSON *doc)
{
	char *text = doc ? cJSON_Print(doc) : NULL;

	cJSON_Delete(doc);
	if (!text) {
		reply_text(r, 500, "out of memory\n");
		return;
	}
	r->status = status;
	r->type = "application/json";
	tm_text_printf(&r->body, "%s\n", text);
	cJSON_free(text);
}

void reply_error(struct admin_reply *r, int status, const char *msg)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, "error", msg);
	reply_json(r, status, doc);
}

static const char index_html[] =
	"<html><body><h1>ztunnel admin</h1><ul>"
	"<li><a href=\"/config_dump\">/config_dump</a> workloads, services, policies, certificates</li>"
	"<li><a href=\"/snapshot\">/snapshot</a> the snapshot the model was built from</li>"
	"<li><a href=\"/connections\">/connections</a> live connections</li>"
	"<li>POST /logging[?level=LEVEL|?level=access:LEVEL|?reset] log levels</li>"
	"<li>POST /quitquitquit drain and shut down (as SIGTERM); answers once the drain is over</li>"
	"<li><a href=\"/healthz/ready\">/healthz/ready</a> readiness</li>"
	"<li><a href=\"/metrics\">/metrics</a> Prometheus metrics</li>"
	"</ul></body></html>\n";

static void metrics(struct admin_reply *r)
{
	r->status = 200;
	r->type = "text/plain; version=0.0.4; charset=utf-8";
	tm_render(&r->body);
}

struct args {
	const char *level;
	bool reset;
};

static enum MHD_Result arg_of(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct args *a = cls;

	(void)kind;
	if (!strcmp(key, "level"))
		a->level = value ? value : "";
	else if (!strcmp(key, "reset"))
		a->reset = true;
	return MHD_YES;
}

static bool is(const char *method, const char *want)
{
	return !strcmp(method, want);
}

static void route_admin(struct admin *a, struct MHD_Connection *c, const char *url, const char *method,
			struct admin_reply *r)
{
	bool get = is(method, "GET") || is(method, "HEAD");

	if (!strcmp(url, "/logging")) {
		if (!is(method, "POST"))
			return reply_text(r, 405, "use POST /logging[?level=LEVEL|?level=TARGET:LEVEL,...|?reset]\n");
		struct args q = { 0 };
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, arg_of, &q);
		return admin_logging(a, q.level, q.reset, r);
	}
	if (!strcmp(url, "/quitquitquit")) {
		if (!is(method, "POST"))
			return reply_text(r, 405, "use POST /quitquitquit\n");
		log_info("shutdown requested through the admin API");
		atomic_store(&a->quit_answering, true);
		a->d.quit(a->d.quit_ctx);
		/* As Istio's: the answer comes once the drain is over (this
		 * blocks only the admin server's own thread). */
		if (a->d.life)
			lifecycle_wait_done(a->d.life,
					    (lifecycle_deadline_s(a->d.cfg->termination_deadline) + 5) * 1000);
		return reply_text(r, 200, "shutdown now\n");
	}
	if (!get)
		return reply_text(r, 405, "method not allowed\n");
	if (!strcmp(url, "/")) {
		r->status = 200;
		r->type = "text/html; charset=utf-8";
		tm_text_printf(&r->body, "%s", index_html);
	} else if (!strcmp(url, "/config_dump")) {
		admin_config_dump(a, r);
	} else if (!strcmp(url, "/snapshot")) {
		admin_snapshot(a, r);
	} else if (!strcmp(url, "/connections")) {
		admin_connections(a, r);
	} else if (!strcmp(url, "/healthz/ready")) {
		admin_ready_reply(a, true, r);
	} else if (!strcmp(url, "/metrics") || !strcmp(url, "/stats/prometheus")) {
		metrics(r);
	} else {
		reply_text(r, 404, "not found (see /)\n");
	}
}

static void route(struct admin *a, enum server s, struct MHD_Connection *c, const char *url, const char *method,
		  struct admin_reply *r)
{
	bool get = is(method, "GET") || is(method, "HEAD");

	switch (s) {
	case SERVER_ADMIN:
		return route_admin(a, c, url, method, r);
	case SERVER_METRICS:
		if (strcmp(url, "/metrics") && strcmp(url, "/stats/prometheus"))
			return reply_text(r, 404, "not found (try /metrics)\n");
		if (!get)
			return reply_text(r, 405, "method not allowed\n");
		return metrics(r);
	case SERVER_READY:
		if (strcmp(url, "/healthz/ready"))
			return reply_text(r, 404, "not found (try /healthz/ready)\n");
		if (!get)
			return reply_text(r, 405, "method not allowed\n");
		return admin_ready_reply(a, false, r);
	}
}

struct server_ctx {
	struct admin *a;
	enum server s;
};

static struct server_ctx contexts[3];

/* Marks the /quitquitquit request: its answer must go out before the
 * server stops (admin_stop waits for it). */
static int quit_request;

static void completed(void *cls, struct MHD_Connection *c, void **req, enum MHD_RequestTerminationCode toe)
{
	struct server_ctx *sc = cls;

	(void)c;
	(void)toe;
	if (*req == &quit_request)
		atomic_store(&sc->a->quit_answering, false);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_size, void **req)
{
	static int first_call;
	struct server_ctx *sc = cls;
	struct admin_reply r = { 500, "text/plain", { 0 } };

	(void)version;
	(void)upload_data;
	if (!*req) {
		/* Headers only so far: answer once the (ignored) body is in. */
		*req = strcmp(url, "/quitquitquit") ? (void *)&first_call : (void *)&quit_request;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* no endpoint takes a body */
		return MHD_YES;
	}
	route(sc->a, sc->s, c, url, method, &r);
	if (r.body.failed) {
		tm_text_free(&r.body);
		reply_text(&r, 500, "out of memory\n");
	}
	struct MHD_Response *resp = MHD_create_response_from_buffer(r.body.len, r.body.p ? r.body.p : (char *)"",
								    r.body.p ? MHD_RESPMEM_MUST_FREE
									     : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		tm_text_free(&r.body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", r.type);
	enum MHD_Result ok = MHD_queue_response(c, (unsigned)r.status, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* "host:port" (IPv4) or "[v6]:port"; "off": no server. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, bool *v6)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || !colon[1] || port > 65535)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(ss, 0, sizeof(*ss));
	*v6 = host[0] == '[';
	if (*v6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			return -EINVAL;
		host[n - 1] = '\0';
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -EINVAL;
}

static int serve(struct admin *a, enum server s, const char *addr)
{
	struct sockaddr_storage ss;
	bool v6;

	if (!addr || !strcmp(addr, "off"))
		return 0;
	if (parse_addr(addr, &ss, &v6) < 0) {
		log_error("bad listen address (want HOST:PORT or off)", LF_STR("server", server_names[s]),
			  LF_STR("addr", addr));
		return -EINVAL;
	}
	contexts[s] = (struct server_ctx){ a, s };
	/* Small limits: these serve a scraper, a kubelet and an operator. */
	a->daemons[s] = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0),
					 0, NULL, NULL, handle, &contexts[s], MHD_OPTION_SOCK_ADDR, &ss,
					 MHD_OPTION_CONNECTION_LIMIT, limits[s][0], MHD_OPTION_PER_IP_CONNECTION_LIMIT, limits[s][1],
					 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_NOTIFY_COMPLETED, completed,
					 &contexts[s], MHD_OPTION_END);
	if (!a->daemons[s]) {
		log_error("cannot listen (address in use?)", LF_STR("server", server_names[s]), LF_STR("addr", addr));
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemons[s], MHD_DAEMON_INFO_BIND_PORT);
	log_info("admin listening", LF_STR("server", server_names[s]), LF_STR("addr", addr),
		 LF_UINT("port", info ? info->port : 0));
	return 0;
}

int admin_start(struct admin **out, const struct admin_deps *deps)
{
	struct admin *a = calloc(1, sizeof(*a));
	int r;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->d = *deps;
	for (int t = 0; t < LOG_TARGETS; t++)
		a->start_level[t] = log_get_level((enum log_target)t);
	admin_collectors_register(a);
	if ((r = serve(a, SERVER_ADMIN, deps->cfg->admin_addr)) < 0 ||
	    (r = serve(a, SERVER_METRICS, deps->cfg->metrics_addr)) < 0 ||
	    (r = serve(a, SERVER_READY, deps->cfg->readiness_addr)) < 0) {
		admin_stop(a);
		return r;
	}
	*out = a;
	return 0;
}

void admin_set_proxy(struct admin *a, struct proxy *p)
{
	if (a)
		atomic_store(&a->proxy, p);
}

void admin_stop(struct admin *a)
{
	if (!a)
		return;
	/* "shutdown now" is on its way to whoever asked: let it arrive. */
	for (int i = 0; i < 100 && atomic_load(&a->quit_answering); i++)
		usleep(20 * 1000);
	for (int s = 0; s < 3; s++)
		if (a->daemons[s])
			MHD_stop_daemon(a->daemons[s]);
	admin_collectors_unregister(a); /* no scrape may read a after this */
	free(a);
}
