/* Namespace and Pod objects -> namespaces and workloads, with Istio's
 * enrollment and canonical-label conventions (DESIGN.md §3, SPEC.md §8.5). */
#include "build.h"

#include <string.h>
#include <sys/socket.h>

#define LABEL_DATAPLANE_MODE "istio.io/dataplane-mode"
#define ANNOTATION_SIDECAR "sidecar.istio.io/status"

static uint8_t dataplane_mode(struct build *b, const struct zt_labels *labels, const cJSON *object)
{
	const char *v = zt_label_get(labels, LABEL_DATAPLANE_MODE);

	if (!v)
		return ZT_MODE_UNSET;
	if (!strcmp(v, "ambient"))
		return ZT_MODE_AMBIENT;
	if (!strcmp(v, "none"))
		return ZT_MODE_NONE;
	build_warn(b, object, "metadata.labels[" LABEL_DATAPLANE_MODE "]",
		   "unknown value \"%s\" (ambient or none): treated as not set", v);
	return ZT_MODE_UNSET;
}

int snapshot_parse_namespace(struct build *b, const cJSON *item, struct zt_namespace *out)
{
	const cJSON *md = json_obj(item, "metadata");
	const cJSON *obj = item;

	out->name = build_strdup(b, json_str(md, "name"));
	if (!json_labels(b, json_obj(md, "labels"), obj, "metadata.labels", &out->labels))
		return 0;
	out->mode = dataplane_mode(b, &out->labels, obj);
	return 1;
}

/* Istio: pod label wins over the namespace label; hostNetwork pods, pods
 * with a sidecar, pods annotated redirection=disabled and kube-system are
 * never enrolled. */
static uint8_t enrollment(struct build *b, const struct zt_workload *w, const cJSON *md,
			  const cJSON *obj)
{
	const struct zt_namespace *ns = model_namespace(b->m, w->namespace);
	uint8_t pod_mode = dataplane_mode(b, &w->labels, obj);

	if (!strcmp(w->namespace, "kube-system"))
		return ZT_NOT_ENROLLED_KUBE_SYSTEM;
	if (w->host_network)
		return ZT_NOT_ENROLLED_HOST_NETWORK;
	if (cJSON_GetObjectItemCaseSensitive(json_obj(md, "annotations"), ANNOTATION_SIDECAR))
		return ZT_NOT_ENROLLED_SIDECAR;
	const char *redirection = json_str(json_obj(md, "annotations"), ZT_ANNOTATION_REDIRECTION);
	if (redirection && !strcmp(redirection, ZT_REDIRECTION_DISABLED))
		return ZT_NOT_ENROLLED_ANNOTATION_OPT_OUT;
	if (pod_mode == ZT_MODE_AMBIENT)
		return ZT_ENROLLED_POD_LABEL;
	if (pod_mode == ZT_MODE_NONE)
		return ZT_NOT_ENROLLED_POD_OPT_OUT;
	if (ns && ns->mode == ZT_MODE_AMBIENT)
		return ZT_ENROLLED_NAMESPACE_LABEL;
	return ZT_NOT_ENROLLED_NO_LABEL;
}

static const char *first_label(const struct zt_labels *l, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *v = zt_label_get(l, *keys);
		if (v && *v)
			return v;
	}
	return NULL;
}

/* Deployment pods are owned by ReplicaSet <deployment>-<pod-template-hash>;
 * Job pods of a CronJob by Job <cronjob>-<schedule time>. */
static void workload_owner(struct build *b, struct zt_workload *w, const cJSON *md)
{
	const cJSON *owners = json_arr(md, "ownerReferences"), *o;

	w->workload_name = w->name;
	w->workload_type = "pod";
	cJSON_ArrayForEach(o, owners) {
		const char *kind = json_str(o, "kind"), *name = json_str(o, "name");
		const char *hash = zt_label_get(&w->labels, "pod-template-hash");
		size_t n = name ? strlen(name) : 0;

		if (!kind || !name || !cJSON_IsTrue(cJSON_GetObjectItem(o, "controller")))
			continue;
		if (!strcmp(kind, "ReplicaSet")) {
			size_t h = hash ? strlen(hash) : 0;
			if (h && n > h + 1 && !strcmp(name + n - h, hash) && name[n - h - 1] == '-') {
				w->workload_name = arena_printf(b->a, "%.*s", (int)(n - h - 1), name);
				w->workload_type = "deployment";
			} else {
				w->workload_name = build_strdup(b, name);
			}
		} else if (!strcmp(kind, "Job")) {
			const char *dash = strrchr(name, '-');
			bool cron = dash && dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1);
			w->workload_name = cron ? arena_printf(b->a, "%.*s", (int)(dash - name), name)
						: build_strdup(b, name);
			w->workload_type = cron ? "cronjob" : "job";
		} else {
			w->workload_name = build_strdup(b, name);
		}
		return;
	}
}

static bool pod_ready(const cJSON *status)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, json_arr(status, "conditions")) {
		const char *type = json_str(c, "type"), *st = json_str(c, "status");
		if (type && st && !strcmp(type, "Ready"))
			return !strcmp(st, "True");
	}
	return false;
}

static bool pod_ips(struct build *b, struct zt_workload *w, const cJSON *status, const cJSON *obj)
{
	const cJSON *list = json_arr(status, "podIPs"), *it;
	const char *single = json_str(status, "podIP");
	uint32_t n = 0;

	cJSON_ArrayForEach(it, list) n++;
	if (!n && single && *single)
		n = 1;
	if (!n)
		return true;
	struct zt_ip *ips = build_calloc(b, n, sizeof(*ips));
	if (!ips)
		return false;
	if (!list || !cJSON_GetArraySize(list)) {
		if (zt_ip_parse(single, &ips[0]) < 0) {
			build_error(b, obj, "status.podIP", "invalid IP \"%s\"", single);
			return false;
		}
	} else {
		uint32_t i = 0;
		cJSON_ArrayForEach(it, list) {
			const char *s = json_str(it, "ip");
			if (!s || zt_ip_parse(s, &ips[i]) < 0) {
				char field[48];
				snprintf(field, sizeof(field), "status.podIPs[%u].ip", i);
				build_error(b, obj, field, "invalid IP \"%s\"", s ? s : "");
				return false;
			}
			i++;
		}
	}
	w->ips = ips;
	w->n_ips = n;
	return true;
}

static bool container_ports(struct build *b, struct zt_workload *w, const cJSON *spec)
{
	const cJSON *c, *p;
	uint32_t n = 0;

	cJSON_ArrayForEach(c, json_arr(spec, "containers"))
		cJSON_ArrayForEach(p, json_arr(c, "ports")) n++;
	if (!n)
		return true;
	struct zt_container_port *ports = build_calloc(b, n, sizeof(*ports));
	if (!ports)
		return false;
	n = 0;
	cJSON_ArrayForEach(c, json_arr(spec, "containers")) {
		cJSON_ArrayForEach(p, json_arr(c, "ports")) {
			const cJSON *num = cJSON_GetObjectItemCaseSensitive(p, "containerPort");
			if (!cJSON_IsNumber(num) || num->valuedouble < 1 || num->valuedouble > 65535)
				continue;
			const cJSON *host = cJSON_GetObjectItemCaseSensitive(p, "hostPort");
			uint16_t hp = cJSON_IsNumber(host) && host->valuedouble >= 1 && host->valuedouble <= 65535
					      ? (uint16_t)host->valuedouble : 0;
			ports[n++] = (struct zt_container_port){ build_strdup(b, json_str(p, "name")),
								 (uint16_t)num->valuedouble, hp,
								 zt_proto_parse(json_str(p, "protocol")) };
		}
	}
	w->ports = ports;
	w->n_ports = n;
	return true;
}

static const char *const canonical_name_labels[] = { "service.istio.io/canonical-name",
						     "app.kubernetes.io/name", "app", NULL };
static const char *const canonical_rev_labels[] = { "service.istio.io/canonical-revision",
						    "app.kubernetes.io/version", "version", NULL };

int snapshot_parse_pod(struct build *b, const cJSON *item, struct zt_workload *w)
{
	const cJSON *md = json_obj(item, "metadata"), *spec = json_obj(item, "spec");
	const cJSON *status = json_obj(item, "status");
	const cJSON *obj = item;
	const char *phase = json_str(status, "phase");

	/* Finished pods keep their IP in the API but it may already belong to
	 * a new pod: they are not workloads. */
	if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")))
		return 0;
	w->uid = build_strdup(b, json_str(md, "uid"));
	w->name = build_strdup(b, json_str(md, "name"));
	w->namespace = build_strdup(b, json_str(md, "namespace"));
	w->node = build_strdup(b, json_str(spec, "nodeName"));
	w->phase = build_strdup(b, phase ? phase : "Unknown");
	const char *sa = json_str(spec, "serviceAccountName");
	w->service_account = build_strdup(b, sa && *sa ? sa : "default");
	w->identity = arena_printf(b->a, "spiffe://%s/ns/%s/sa/%s", b->m->trust_domain,
				   w->namespace, w->service_account);
	w->host_network = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "hostNetwork"));
	w->ready = pod_ready(status);
	if (!json_labels(b, json_obj(md, "labels"), obj, "metadata.labels", &w->labels) ||
	    !pod_ips(b, w, status, obj) || !container_ports(b, w, spec))
		return 0;
	workload_owner(b, w, md);
	const char *cn = first_label(&w->labels, canonical_name_labels);
	const char *cr = first_label(&w->labels, canonical_rev_labels);
	w->canonical_name = cn ? cn : w->workload_name;
	w->canonical_revision = cr ? cr : "latest";
	w->enrollment = enrollment(b, w, md, obj);
	w->enrolled = w->enrollment <= ZT_ENROLLED_NAMESPACE_LABEL;
	const char *redirection = json_str(json_obj(md, "annotations"), ZT_ANNOTATION_REDIRECTION);
	w->captured = !b->opts || !b->opts->capture_annotated ||
		      (redirection && !strcmp(redirection, ZT_REDIRECTION_ENABLED));
	for (uint32_t i = 0; w->enrolled && i < w->n_ips; i++) {
		if (w->ips[i].family == AF_INET6) {
			build_warn(b, obj, "status.podIPs",
				   "IPv6 address of an enrolled pod: its IPv6 TCP is dropped (IPv6 is not captured yet)");
			break;
		}
	}
	if (!w->uid)
		build_warn(b, obj, "metadata.uid", "missing: the CNI plugin cannot match this pod");
	if (!model_namespace(b->m, w->namespace))
		build_warn(b, obj, "metadata.namespace",
			   "namespace \"%s\" is not in the snapshot: its labels are unknown",
			   w->namespace);
	return 1;
}
