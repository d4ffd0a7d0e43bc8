#!/usr/bin/env bash
# Connections opened on the node itself never cross a tc ingress hook. By
# default they stay exempt, as in Istio's ambient mode (counted per pod:
# authz_enforces_policy). With --node-traffic probes-only a connect hook on
# the node's cgroup refuses them towards STRICT pods unless the process is
# in the kubelet's cgroup (issue 8/13 item 2): a node process gets EPERM,
# the kubelet's probe gets through, a pod without STRICT stays reachable,
# and a STRICT PeerAuthentication applied later is enforced at once; the
# agent's own dials and pods' sockets are never judged by the hook, even
# when they run inside the node's cgroup. Ways around it refused too: an
# IPv6 socket to the pod's v4-mapped address (connect6 hook), and the
# pod's ClusterIP and nodePort, on the node's address and on localhost
# (the hook sees the frontend, the node's OUTPUT DNAT, as kube-proxy
# installs it, follows).
# The "node" and "kubelet" here are cgroup v2 groups the test creates.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
command -v iptables >/dev/null || skip "iptables not installed"
cg2=$(findmnt -rn -t cgroup2 -o TARGET | head -n 1)
[ -n "$cg2" ] || skip "no cgroup v2 mount"
name=$(unique_name nt)
before=$(host_links)
node_cg="$cg2/zt-$name"
mkdir "$node_cg" "$node_cg/kubelet"
temp_dirs+=("$node_cg/kubelet" "$node_cg")
strict() { printf '{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"mtls","namespace":"%s"},"spec":{"mtls":{"mode":"STRICT"}}}' "$1"; }
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "open": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web", "labels": {"app": "web"}},
          "n1-p2": {"namespace": "open", "serviceAccount": "svc"}},
 "services": [{"name": "web", "namespace": "shop", "clusterIP": "10.96.0.40", "type": "NodePort",
               "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 7000, "nodePort": 30080}]}],
 "objects": ['"$(strict shop)"']}'
agent_extra="--node-traffic probes-only --node-cgroup $node_cg --kubelet-cgroup $node_cg/kubelet"
mesh_cluster_up "$name" "$spec" --nodes 1 --pods-per-node 2
start_echo "$name" n1-p1 7000
start_echo "$name" n1-p2 7000
node_ns=/run/netns/$(info "$name" | jq -r '.nodes[0].netns')
# as CGROUP POD MODE [ADDRESS PORT]: from the node's network namespace, as
# a process of CGROUP, to the pod (or ADDRESS:PORT leading to it).
as() {
  local cg=$1 pod=$2 src
  src=$(ip -n "zt-$name-n1" -o route get "$(pod_field "$name" "$pod" ip)" | sed -n 's/.* src \([0-9.]*\).*/\1/p')
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" nsenter --net="$node_ns" \
    "$py" "$echo_py" "$3" "${4:-$(pod_field "$name" "$pod" ip)}" "${5:-7000}" "$([ "$3" = check ] && echo "$src" || echo 2)"
}

step "a node process cannot reach a STRICT pod; the kubelet can"
as "$node_cg" n1-p1 expect-fail || fail "a node process reached the STRICT pod"
[ "$(stat "$name" n1 node_strict_refused)" -ge 1 ] || fail "refusal not counted"
as "$node_cg/kubelet" n1-p1 check || fail "the kubelet's probe was refused"

step "no way around it: v4-mapped IPv6, the ClusterIP, the nodePort on the node and on localhost (OUTPUT DNAT after the hook)"
web=$(pod_field "$name" n1-p1 ip)
node1=$(info "$name" | jq -r '.nodes[0].ip')
# A route for the service range, as a node running kube-proxy has (its default).
ip -n "zt-$name-n1" route add 10.96.0.0/16 dev "$(ip -n "zt-$name-n1" -o route get "$web" | sed -n 's/.* dev \([^ ]*\).*/\1/p')"
# kube-proxy's localhost nodePorts need route_localnet (this node's namespace only).
ip netns exec "zt-$name-n1" sysctl -qw net.ipv4.conf.all.route_localnet=1
for rule in "-d 10.96.0.40 -p tcp --dport 80" "-d $node1 -p tcp --dport 30080" "-d 127.0.0.1 -p tcp --dport 30080"; do
  # shellcheck disable=SC2086 # the rule is a list of words
  nsenter --net="$node_ns" iptables -t nat -A OUTPUT $rule -j DNAT --to-destination "$web:7000"
done
refused=$(stat "$name" n1 node_strict_refused)
as "$node_cg" n1-p1 expect-fail "::ffff:$web" 7000 || fail "a node process reached the STRICT pod over IPv6 (v4-mapped)"
as "$node_cg" n1-p1 expect-fail 10.96.0.40 80 || fail "a node process reached the STRICT pod through its ClusterIP"
as "$node_cg" n1-p1 expect-fail "$node1" 30080 || fail "a node process reached the STRICT pod through its nodePort"
as "$node_cg" n1-p1 expect-fail 127.0.0.1 30080 || fail "a node process reached the STRICT pod through a localhost nodePort"
[ "$(stat "$name" n1 node_strict_refused)" -ge $((refused + 4)) ] || fail "the four refusals are not counted"
as "$node_cg/kubelet" n1-p1 check 10.96.0.40 80 || fail "the kubelet could not reach the pod through its ClusterIP"

step "the agent's own dials and pods' sockets are not judged, even inside the node's cgroup"
state=$(info "$name" | jq -r .stateDir)
cat "$state/nodes/n1/agent.pid" > "$node_cg/cgroup.procs"
sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$node_cg" nsenter --net="/run/netns/$(pod_field "$name" n1-p2 netns)" \
  "$py" "$echo_py" check "$(pod_field "$name" n1-p1 ip)" 7000 "$(pod_field "$name" n1-p2 ip)" ||
  fail "mesh traffic to the STRICT pod failed with the agent and the client in the node's cgroup"
wait_access "$name" n1 '."src.workload" == "n1-p2" and ."src.namespace" == "open" and ."dst.workload" == "n1-p1" and ."dst.namespace" == "shop" and .protocol == "HBONE"'

step "a pod without STRICT stays reachable from the node"
as "$node_cg" n1-p2 check || fail "a node process could not reach a PERMISSIVE pod"

step "STRICT applied later is enforced at connect at once"
jq --argjson a "$(strict shop)" --argjson b "$(strict open)" '.objects = [$a, $b]' "$spec" > "$spec.new" && mv "$spec.new" "$spec"
publish_spec "$name" n1
as "$node_cg" n1-p2 expect-fail || fail "a node process reached a pod made STRICT"
as "$node_cg/kubelet" n1-p2 check || fail "the kubelet's probe was refused after the change"

down_and_check "$name" "$before"
