#!/usr/bin/env bash
# tools/cluster killed half-way (SIGKILL, so no trap runs) leaves namespaces
# and state behind; the next `up` cleans them and works, `down` removes all.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name kill)
before=$(host_links)
clusters+=("$name")

for point in nodes pod-n1-p1 pod-n2-p1; do
  step "up killed after $point"
  rc=0
  ZT_CLUSTER_CRASH_AFTER=$point "$cluster" up --name "$name" --nodes 2 --pods-per-node 2 || rc=$?
  [ "$rc" = 137 ] || fail "expected the run to die of SIGKILL (137), got $rc"
  ip netns list | grep -q "^zt-$name-n1" || fail "killed run left nothing: the test proves nothing"
done

step "timed kill while creating pods"
"$cluster" up --name "$name" --nodes 2 --pods-per-node 8 &
sleep 0.4
kill -9 $! 2>/dev/null || true
wait $! 2>/dev/null || true

step "up again"
cluster_up "$name" --nodes 2 --pods-per-node 2
start_echo "$name" n2-p2 7001
check_tcp "$name" n1-p1 n2-p2 7001
reserved=("$(info "$name" | jq -r .stateDir)/cni/n1/ipam/zt-$name"/10.*)
[ "${#reserved[@]}" = 2 ] || fail "stale IPAM reservations survived the restart: ${reserved[*]}"

step "down"
"$cluster" down --name "$name"
clusters=()
assert_gone "$name" "$before"
echo "ok"
