#!/usr/bin/env bash
# 2 nodes x 2 pods made with the real ptp/host-local plugins: every pod opens
# a TCP connection to every pod (itself included) and the server sees the
# client's own pod IP. After down nothing of the cluster is left.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name conn)
before=$(host_links)

step "up"
cluster_up "$name" --nodes 2 --pods-per-node 2
[ "$(info "$name" | jq '.pods | length')" = 4 ] || fail "expected 4 pods in cluster.json"
[ "$(info "$name" | jq '[.pods[].ip] | unique | length')" = 4 ] || fail "pod IPs not unique"
info "$name" | jq -e '.nodes | map(.podCIDR) | unique | length == 2' >/dev/null || fail "pod CIDRs"
mountpoint -q "$(info "$name" | jq -r .bpffs)" || fail "bpffs not mounted"

mapfile -t pods < <(pod_names "$name")
for p in "${pods[@]}"; do start_echo "$name" "$p" 7000; done
step "full mesh of TCP connections"
for from in "${pods[@]}"; do
  for to in "${pods[@]}"; do check_tcp "$name" "$from" "$to" 7000; done
done
echo "ok: ${#pods[@]}x${#pods[@]} connections"

step "down"
"$cluster" down --name "$name"
clusters=()
assert_gone "$name" "$before"
echo "ok: nothing left"
