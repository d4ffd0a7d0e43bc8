/* tools/bench policy: cost of one L4 authorization decision with 1,000
 * AuthorizationPolicies in the snapshot. Two shapes: the policies spread
 * over 100 namespaces (the destination sees its namespace's 10 plus the
 * mesh-wide ones), and all 1,000 in the destination's namespace (every
 * one evaluated). Counts heap allocations during the decisions (malloc is
 * interposed): the decision path must make none. Figures, not assertions. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztunnel/authz.h"
#include "ztunnel/log.h"
#include "ztunnel/state.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
static volatile int counting;
static unsigned long allocations;

void *malloc(size_t n)
{
	allocations += counting;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	allocations += counting;
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	allocations += counting;
	return __libc_realloc(p, n);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A policy of realistic shape: principals, namespaces, ports, an ipBlock. */
static void policy(char **buf, size_t *len, size_t *cap, const char *ns, int i)
{
	char one[1024];
	int n = snprintf(one, sizeof(one),
			 "%s{\"apiVersion\":\"security.istio.io/v1\",\"kind\":\"AuthorizationPolicy\","
			 "\"metadata\":{\"name\":\"p%d\",\"namespace\":\"%s\"},\"spec\":{\"action\":\"%s\","
			 "\"rules\":[{\"from\":[{\"source\":{\"principals\":[\"cluster.local/ns/x%d/sa/a\","
			 "\"cluster.local/ns/x%d/sa/*\"],\"notNamespaces\":[\"blocked-%d\"]}}],"
			 "\"to\":[{\"operation\":{\"ports\":[\"%d\",\"%d\"]}}]},"
			 "{\"from\":[{\"source\":{\"ipBlocks\":[\"192.168.%d.0/24\"]}}]}]}}",
			 *len > 1 ? "," : "", i, ns, i % 10 == 0 ? "DENY" : "ALLOW", i, i + 1, i, 1000 + i % 50,
			 2000 + i % 50, i % 250);
	if (*len + (size_t)n + 1 > *cap) {
		*cap = (*cap + (size_t)n) * 2;
		*buf = realloc(*buf, *cap);
	}
	memcpy(*buf + *len, one, (size_t)n + 1);
	*len += (size_t)n;
}

static struct zt_model *build(bool all_in_one)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	len = (size_t)sprintf(buf, "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
				   "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"ns-0\","
				   "\"labels\":{\"istio.io/dataplane-mode\":\"ambient\"}}},"
				   "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\",\"namespace\":\"ns-0\","
				   "\"uid\":\"u\",\"labels\":{\"app\":\"web\"}},\"spec\":{\"nodeName\":\"n1\",\"containers\":[{\"name\":\"a\"}]},"
				   "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.0.0.1\",\"podIPs\":[{\"ip\":\"10.0.0.1\"}]}}");
	for (int i = 0; i < 1000; i++) {
		char ns[32];
		snprintf(ns, sizeof(ns), "%s", all_in_one ? "ns-0" : i < 10 ? "istio-system" : "ns-0");
		if (!all_in_one && i >= 20)
			snprintf(ns, sizeof(ns), "ns-%d", i / 10);
		policy(&buf, &len, &cap, ns, i);
	}
	strcat(buf + len, "]}");
	len += 2;
	struct snapshot_opts o = { "cluster.local", "istio-system" };
	struct zt_model *m = NULL;
	struct zt_diags d;
	diags_init(&d);
	if (snapshot_build(buf, len, &o, &m, &d) < 0) {
		diags_print(&d, stderr);
		exit(1);
	}
	diags_release(&d);
	free(buf);
	return m;
}

typedef void (*check_fn)(const struct zt_workload *, const struct authz_conn *, struct authz_decision *);

/* Decisions per second of check over a mix of peers, sources and ports;
 * the allowed share tells the two evaluations gave the same answers. */
static void measure(const char *label, const struct zt_workload *w, check_fn check, long iterations)
{
	char peers[64][96];
	for (int i = 0; i < 64; i++)
		snprintf(peers[i], sizeof(peers[i]), "spiffe://cluster.local/ns/x%d/sa/%s", i * 13 % 1000, i % 3 ? "a" : "b");
	struct authz_conn c = { .src = { .family = AF_INET }, .dst = w->ips[0] };
	struct authz_decision d;
	long allowed = 0;

	counting = 1;
	double t0 = now_s();
	for (long i = 0; i < iterations; i++) {
		c.peer = i % 7 ? peers[i % 64] : NULL;
		c.src.addr[0] = 192;
		c.src.addr[1] = 168;
		c.src.addr[2] = (uint8_t)(i % 256);
		c.dst_port = (uint16_t)(1000 + i % 60);
		check(w, &c, &d);
		allowed += d.allowed;
	}
	double dt = now_s() - t0;
	counting = 0;
	printf("%-44s %5u %10.0f ns %8.1f%% %12lu\n", label, w->n_policies, dt / (double)iterations * 1e9,
	       100.0 * (double)allowed / (double)iterations, allocations);
	allocations = 0;
}

static void run(const char *label, bool all_in_one, long iterations)
{
	struct zt_model *m = build(all_in_one);
	struct zt_ip ip = { .family = AF_INET };
	inet_pton(AF_INET, "10.0.0.1", ip.addr);
	const struct zt_workload *w = model_workload_by_ip(m, &ip);
	char linear[96];

	measure(label, w, authz_check, iterations);
	snprintf(linear, sizeof(linear), "  the same, every rule checked (no index)");
	measure(linear, w, authz_check_linear, iterations);
	model_free(m);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT, 2);
	printf("%-44s %5s %13s %9s %12s\n", "1,000 policies in the snapshot", "apply", "per decision",
	       "allowed", "allocations");
	run("spread over 100 namespaces", false, n);
	run("all in the destination's namespace", true, n / 10);
	printf("\ngoal: <= 1 us per decision, 0 allocations\n");
	return 0;
}
