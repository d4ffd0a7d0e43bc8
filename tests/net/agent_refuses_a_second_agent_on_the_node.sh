#!/usr/bin/env bash
# One agent per node: a second agent started on the same node (same BPF pin
# directory) exits at once with a clear error instead of silently joining
# the SO_REUSEPORT listeners and taking part of the traffic; the first one
# keeps serving every connection. A killed agent leaves no stale lock.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name sa)
before=$(host_links)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n1-p2": {"namespace": "shop", "serviceAccount": "api"}}}'
mesh_cluster_up "$name" "$spec" --nodes 1 --pods-per-node 2
state=$(info "$name" | jq -r .stateDir)
node_ns=/run/netns/$(info "$name" | jq -r '.nodes[0].netns')
start_echo "$name" n1-p2 7000
check_tcp "$name" n1-p1 n1-p2 7000
listeners() { nsenter --net="$node_ns" ss -Hltn 'sport = :15001' | wc -l; }
first=$(listeners)

step "a second agent on the node refuses to start"
rc=0
timeout 20 nsenter --net="$node_ns" "$build/ztunnel/ztunnel" --snapshot "$state/configmap" --node-name n1 \
  --bpf-pin-dir "$state/bpf/n1" --cni-socket "$state/second.sock" \
  --identity-provider local-ca --ca-dir "$cadir" --log-format json > "$state/second.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "second agent: exit $rc, want 1: $(cat "$state/second.log")"
grep -q 'another ztunnel agent runs on this node' "$state/second.log" || fail "no clear reason: $(cat "$state/second.log")"
[ "$(listeners)" = "$first" ] || fail "the second agent's listeners joined: $(listeners) vs $first"
for _ in 1 2 3 4 5 6 7 8; do check_tcp "$name" n1-p1 n1-p2 7000; done
wait_log "$name" n1 '"protocol":"HBONE"'

step "after the first agent is killed, a new one starts (no stale lock)"
"$cluster" agent --name "$name" --node n1 kill
"$cluster" agent --name "$name" --node n1 start
for _ in $(seq 1 50); do
  nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" check \
    "$(pod_field "$name" n1-p2 ip)" 7000 "$(pod_field "$name" n1-p1 ip)" 2>/dev/null && break
  sleep 0.1
done
check_tcp "$name" n1-p1 n1-p2 7000
if grep -q 'another ztunnel agent' "$(agent_log "$name" n1)"; then fail "stale lock after a kill"; fi

down_and_check "$name" "$before"
