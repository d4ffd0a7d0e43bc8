#!/usr/bin/env bash
# tools/cluster describes its pods as a kubectl-style snapshot in a few lines;
# an agent started in node n1's namespace follows it through kubelet-style
# ConfigMap updates: labelling a namespace ambient enrolls its running pods
# in the next model, with no pod restarted.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name snap)
build=${ZT_BUILD:?}
cluster_up "$name" --nodes 2 --pods-per-node 2
state=$(info "$name" | jq -r .stateDir)

cat > "$state/spec.json" <<'JSON'
{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "shop", "labels": {"app": "web"},
                    "ports": [{"name": "http", "containerPort": 7000}]},
          "n2-p1": {"namespace": "shop", "labels": {"app": "web"},
                    "ports": [{"name": "http", "containerPort": 7001}]},
          "n1-p2": {"namespace": "legacy"}},
 "services": [{"name": "web", "namespace": "shop", "clusterIP": "10.96.0.10",
               "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}],
 "objects": [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "allow-shop", "namespace": "shop"},
              "spec": {"rules": [{"from": [{"source": {"namespaces": ["shop"]}}]}]}}]}
JSON
"$cluster" snapshot --name "$name" --spec "$state/spec.json" --out "$state/snapshot.json"
"$build/ztunnel/ztunnel-ctl" snapshot lint "$state/snapshot.json" | tee "$state/lint.txt"
grep -q '4 pods (2 enrolled), 1 services, 1 authorization policies' "$state/lint.txt" ||
  fail "snapshot does not describe the cluster"
[ "$(jq '[.items[] | select(.kind == "Pod" and .status.podIP != null)] | length' "$state/snapshot.json")" = 4 ] ||
  fail "pods without IPs"

cm="$state/configmap"
"$cluster" snapshot --name "$name" --spec "$state/spec.json" --configmap "$cm"
node_ns=$(info "$name" | jq -r '.nodes[0].netns')
nsenter --net="/run/netns/$node_ns" "$build/ztunnel/ztunnel" --snapshot "$cm" --node-name n1 --capture false \
  --log-format json 2> "$state/agent.log" &
started_pids+=("$!")
wait_log() {
  local _
  for _ in $(seq 1 50); do grep -q "$1" "$state/agent.log" && return 0; sleep 0.1; done
  cat "$state/agent.log" >&2
  fail "agent never logged: $1"
}
wait_log '"msg":"snapshot applied".*"generation":1.*"pods":4,"enrolled":2'

step "label namespace legacy ambient"
jq '.namespaces.legacy = {"istio.io/dataplane-mode": "ambient"}' "$state/spec.json" > "$state/spec2.json"
"$cluster" snapshot --name "$name" --spec "$state/spec2.json" --configmap "$cm"
wait_log '"msg":"snapshot applied".*"generation":2.*"pods":4,"enrolled":3'
echo ok
