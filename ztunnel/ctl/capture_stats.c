/* ztunnel-ctl capture stats: the eBPF program's verdict counters, read
 * from the pinned zt_stats map (works while the agent is down too). */
#include "ctl.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ztunnel/capture.h"

static void stats_usage(FILE *out)
{
	fprintf(out, "Usage: ztunnel-ctl capture stats [--bpf-pin-dir DIR] [--json]\n\n"
		     "Prints the capture program's per-reason packet counters from the maps\n"
		     "pinned in DIR (default /sys/fs/bpf/ztunnel), one \"reason count\" per line,\n"
		     "then, per enrolled pod, the connections opened on the node itself (node\n"
		     "processes, hostNetwork pods, the kubelet's probes) that it accepted: those\n"
		     "are exempt from capture and policy, as in Istio's ambient mode\n"
		     "(\"node_originated_by_pod POD_IP count\"; JSON: \"node_originated_by_pod\").\n");
}

int ctl_capture_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bpf-pin-dir", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *dir = "/sys/fs/bpf/ztunnel";
	bool json = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': dir = optarg; break;
		case 'j': json = true; break;
		case 'h': stats_usage(stdout); return 0;
		default: stats_usage(stderr); return 2;
		}
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/zt_stats", dir);
	int fd = bpf_obj_get(path);
	if (fd < 0) {
		fprintf(stderr, "error: cannot open %s: %s (is an agent using this pin dir?)\n", path,
			strerror(errno));
		return 1;
	}
	/* One document either way: JSON rendered by cJSON, text line by line. */
	cJSON *doc = cJSON_CreateObject(), *by_pod = cJSON_CreateObject();
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *per = calloc((size_t)ncpu, sizeof(*per));
	for (uint32_t k = 0; per && k < ZT_STAT_MAX; k++) {
		uint64_t sum = 0;
		if (bpf_map_lookup_elem(fd, &k, per) == 0)
			for (int i = 0; i < ncpu; i++)
				sum += per[i];
		cJSON_AddNumberToObject(doc, capture_stat_name(k), (double)sum);
		if (!json)
			printf("%s %llu\n", capture_stat_name(k), (unsigned long long)sum);
	}
	free(per);
	close(fd);
	/* Per pod: a plain hash keyed by the pod's IPv4 address. */
	snprintf(path, sizeof(path), "%s/zt_node_conns", dir);
	fd = bpf_obj_get(path);
	uint32_t key, next;
	for (int r = fd >= 0 ? bpf_map_get_next_key(fd, NULL, &next) : -1; r == 0;
	     r = bpf_map_get_next_key(fd, &key, &next)) {
		uint64_t n;
		char ip[INET_ADDRSTRLEN];
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &n) < 0 || !inet_ntop(AF_INET, &key, ip, sizeof(ip)))
			continue;
		cJSON_AddNumberToObject(by_pod, ip, (double)n);
		if (!json)
			printf("node_originated_by_pod %s %llu\n", ip, (unsigned long long)n);
	}
	if (fd >= 0)
		close(fd);
	cJSON_AddItemToObject(doc, "node_originated_by_pod", by_pod);
	char *text = json ? cJSON_PrintUnformatted(doc) : NULL;
	if (text)
		printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(doc);
	return 0;
}
