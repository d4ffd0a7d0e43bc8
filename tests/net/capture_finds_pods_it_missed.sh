#!/usr/bin/env bash
# Pods the agent never heard of from the CNI plugin (started before the
# plugin was chained, or while the agent was away; issue 8/13 item 14) are
# found from the snapshot and the node's routes and get capture: until
# then a non-mesh pod reached a STRICT mesh pod of its node in plaintext
# and a mesh pod's traffic left uncaptured. Simulated by a CNI DEL of both
# pods sent to the agent alone (their network stays), then a new snapshot.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name mi)
before=$(host_links)
strict='{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"mtls","namespace":"mesh"},"spec":{"mtls":{"mode":"STRICT"}}}'
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "web"}, "n1-p2": {"namespace": "legacy"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "api"}, "n2-p2": {"namespace": "legacy"}},
 "objects": ['"$strict"']}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/web"'
start_echo "$name" n1-p1 7000
start_echo "$name" n2-p1 7000
state=$(info "$name" | jq -r .stateDir)
node_ns=/run/netns/$(info "$name" | jq -r '.nodes[0].netns')
sock=$(info "$name" | jq -r '.nodes[0].cniSocket')
forget() { # POD: a CNI DEL that only the agent sees
  local f="$state/pods/$1.json"
  nsenter --net="$node_ns" env CNI_COMMAND=DEL CNI_CONTAINERID="$(jq -r .containerId "$f")" \
    CNI_NETNS="$(jq -r .netnsPath "$f")" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni CNI_ARGS="$(jq -r .cniArgs "$f")" \
    "$build/ztunnel/ztunnel-cni" <<<"$(jq -c --arg sock "$sock" '{cniVersion: "1.0.0", name: "zt",
      type: "ztunnel-cni", agentSocket: $sock, prevResult: .cniResult}' "$f")" || fail "CNI DEL of $1"
}
expect_blocked "$name" n1-p2 n1-p1 7000

step "the agent forgets both pods of n1: the mesh pod is reachable in plaintext"
forget n1-p1
forget n1-p2
check_tcp "$name" n1-p2 n1-p1 7000

step "a new snapshot: both are found and captured again"
jq '.namespaces.legacy = {"team": "old"}' "$spec" > "$spec.new" && mv "$spec.new" "$spec"
publish_spec "$name" n1
wait_log "$name" n1 '"msg":"pod discovered without a CNI request.*"pod":"n1-p1"'
wait_log "$name" n1 '"msg":"pod discovered without a CNI request.*"pod":"n1-p2"'
expect_blocked "$name" n1-p2 n1-p1 7000
wait_access "$name" n1 '.msg == "connection denied" and ."src.workload" == "n1-p2" and ."src.namespace" == "legacy" and .policy == "mesh/mtls"'
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n1 '."src.workload" == "n1-p1" and ."src.namespace" == "mesh" and ."dst.workload" == "n2-p1" and .protocol == "HBONE"'

down_and_check "$name" "$before"
