#!/usr/bin/env bash
# Streams that end with received data still queued (the app stopped
# reading, then died) give their share of the HBONE connection's flow
# control window back: five such streams on one pooled connection (one
# worker, so one connection) would otherwise use up its 16 MiB window and
# stall every later stream on it. Afterwards 10 MB still pass.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name win)
new_spec '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"serviceAccount": "client"}, "n2-p1": {"serviceAccount": "server"}}}'
agent_extra="--worker-threads 1"
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/server"'
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000
dst=$(pod_field "$name" n2-p1 ip)
out=$(mktemp /tmp/zt-cut-XXXXXX)
temp_files+=("$out")

for i in 1 2 3 4 5; do
  step "stream $i: the app stops reading, the sender fills every buffer, the app dies"
  nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" "$py" "$echo_py" stall 7300 &
  app=$!
  sleep 0.3
  nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" expect-cut "$dst" 7300 20 > "$out" &
  cut=$!
  sleep 1.5
  kill -9 "$app"
  wait "$app" 2>/dev/null || true
  wait "$cut" || fail "stream $i: the client never saw the app die"
done
step "the pooled connection still carries 10 MB"
[ "$(ip netns exec "zt-$name-n1" ss -Htn state established dport = :15008 | wc -l)" = 1 ] ||
  fail "expected the one pooled HBONE connection to be reused"
check_tcp_bytes "$name" n1-p1 n2-p1 7000 10485760
assert_agents_clean "$name"
echo ok
