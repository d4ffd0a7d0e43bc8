/* Types of the immutable cluster model built from a snapshot (DESIGN.md §3,
 * SPEC.md §8). Everything a model points to lives in the model's arena and
 * stays valid until the model is retired. */
#ifndef ZTUNNEL_STATE_T_H
#define ZTUNNEL_STATE_T_H

#include <stdbool.h>
#include <stdint.h>

struct zt_ip {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* IPv4 in addr[0..3], rest zero */
};

struct zt_label {
	const char *key, *value;
};

/* Sorted by key. */
struct zt_labels {
	const struct zt_label *items;
	uint32_t n;
};

enum zt_dataplane_mode {
	ZT_MODE_UNSET = 0,
	ZT_MODE_AMBIENT,
	ZT_MODE_NONE,
};

/* Why a pod is or is not in the mesh (shown to operators). */
enum zt_enrollment {
	ZT_ENROLLED_POD_LABEL = 0,
	ZT_ENROLLED_NAMESPACE_LABEL,
	ZT_NOT_ENROLLED_POD_OPT_OUT,
	ZT_NOT_ENROLLED_NO_LABEL,
	ZT_NOT_ENROLLED_HOST_NETWORK,
	ZT_NOT_ENROLLED_SIDECAR,
	ZT_NOT_ENROLLED_KUBE_SYSTEM,
	ZT_NOT_ENROLLED_ANNOTATION_OPT_OUT,
};

enum zt_l4_proto {
	ZT_PROTO_TCP = 0,
	ZT_PROTO_UDP,
	ZT_PROTO_SCTP,
};

struct zt_namespace {
	const char *name;
	struct zt_labels labels;
	uint8_t mode; /* enum zt_dataplane_mode from istio.io/dataplane-mode */
};

struct zt_container_port {
	const char *name;
	uint16_t port;
	uint16_t host_port; /* 0: none; else the node forwards it here */
	uint8_t protocol;
};

struct zt_authz_policy;
struct zt_authz_index;
struct zt_peer_authn;

struct zt_workload {
	const char *uid, *name, *namespace, *node;
	const char *service_account;
	const char *identity; /* spiffe://<td>/ns/<ns>/sa/<sa> */
	const char *canonical_name, *canonical_revision;
	const char *workload_name, *workload_type; /* from ownerReferences */
	const char *phase;
	const struct zt_ip *ips;
	uint32_t n_ips;
	struct zt_labels labels;
	const struct zt_container_port *ports;
	uint32_t n_ports;
	/* AuthorizationPolicies that apply: global + namespace + selecting ones. */
	const struct zt_authz_policy *const *policies;
	uint32_t n_policies;
	/* Its rules by what a connection must carry to match them (NULL: no
	 * policies); shared by the workloads with the same list. */
	const struct zt_authz_index *authz_index;
	/* PeerAuthentication per level (mesh, namespace, workload; oldest wins
	 * within a level), NULL where none applies. */
	const struct zt_peer_authn *peer_authn_mesh, *peer_authn_namespace, *peer_authn_workload;
	bool host_network, ready, enrolled;
	/* Its capture is in place (SPEC §8.5: only then do other nodes send
	 * it HBONE): always, unless the model comes from the Kubernetes API,
	 * where its agent says so with the redirection annotation. */
	bool captured;
	uint8_t enrollment; /* enum zt_enrollment */
};

struct zt_service_port {
	const char *name;
	uint16_t port;
	uint16_t target_port;         /* 0: named, resolved per endpoint */
	uint16_t node_port;           /* 0: none (NodePort/LoadBalancer services) */
	const char *target_port_name; /* set when targetPort is a name */
	uint8_t protocol;
};

struct zt_endpoint {
	const struct zt_workload *workload;
	/* target port per service port (same index); 0: this pod does not
	 * serve that port (named targetPort it does not declare). */
	const uint16_t *target_ports;
	bool ready;
};

struct zt_service {
	const char *name, *namespace, *hostname;
	const struct zt_ip *vips;
	uint32_t n_vips;
	const struct zt_service_port *ports;
	uint32_t n_ports;
	/* spec.externalIPs and status.loadBalancer.ingress[].ip: addresses
	 * the nodes forward to the service's ports, like its cluster IPs. */
	const struct zt_ip *externals;
	uint32_t n_externals;
	bool external_local; /* externalTrafficPolicy: Local */
	struct zt_labels selector;
	bool has_selector;
	bool from_endpoint_slices; /* endpoints came from EndpointSlices */
	const struct zt_endpoint *endpoints;
	uint32_t n_endpoints;
};

/* Snapshot validation findings. */
enum zt_diag_level {
	ZT_DIAG_WARNING = 0, /* applied, but not everything as written */
	ZT_DIAG_INVALID,     /* object applied fail-closed */
	ZT_DIAG_ERROR,       /* snapshot rejected, previous model kept */
};

struct zt_diag {
	uint8_t level;
	const char *object; /* "AuthorizationPolicy default/deny-all", or "" */
	const char *field;  /* "spec.rules[0].from[0].source.ipBlocks[1]", or "" */
	const char *reason;
};

#endif
