#!/usr/bin/env bash
# A pod that starts before the snapshot lists it is enrolled by its
# namespace but has no identity yet: its connections wait (SPEC §3.1: up
# to 5 s) for the snapshot and its certificate, then go over HBONE - never
# out in plaintext because the pod is new; after 5 s they are refused.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name new)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "web"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "api"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/web"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/api"'
start_echo "$name" n2-p1 7000
dst=$(pod_field "$name" n2-p1 ip)
src=$(pod_field "$name" n1-p1 ip)
in_client() { nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$@"; }

step "snapshot without the client pod: its connection waits, then goes over HBONE"
hide_pod "$name" n1 n1-p1
wait_log "$name" n1 '"msg":"certificate no longer needed","identity":"spiffe://cluster.local/ns/mesh/sa/web"'
in_client "$py" "$echo_py" check "$dst" 7000 "$src" &
client=$!
started_pids+=("$client")
sleep 1.5
kill -0 "$client" 2>/dev/null || fail "the connection did not wait for the snapshot"
if [ -n "$(access_lines "$name" n1 '."dst.hbone_addr" == "'"$dst"':7000" or ."dst.addr" == "'"$dst"':7000"')" ]; then
  fail "the connection went somewhere before its workload was known"
fi
publish_spec "$name" n1
wait "$client" || fail "the waiting connection failed once the pod was in the snapshot"
wait_access "$name" n1 '."dst.hbone_addr" == "'"$dst"':7000" and .direction == "outbound" and .error == "" and .protocol == "HBONE" and ."src.identity" == "spiffe://cluster.local/ns/mesh/sa/web"'

step "never listed within 5 s: refused, not sent in plaintext"
hide_pod "$name" n1 n1-p1
if in_client "$py" "$echo_py" check "$dst" 7000 "$src" 2>/dev/null; then
  fail "a connection from an unknown workload got through"
fi
wait_log "$name" n1 '"msg":"connection refused".*"error":"failed to fetch information about local workload (waited 5 s)"'
if [ -n "$(access_lines "$name" n1 '."dst.addr" == "'"$dst"':7000" and .protocol == "TCP"')" ]; then
  fail "the unknown workload's connection was relayed in plaintext"
fi
assert_agents_clean "$name"
echo ok
