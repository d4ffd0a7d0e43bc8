#!/usr/bin/env bash
# 2,000 connections opened and closed through both agents: every one is
# relayed and logged, and the agents hold no more file descriptors
# afterwards than before (no socket leaks in the relay).
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name lek)
new_spec '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}}}'
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n1 '"msg":"snapshot applied".*"generation":2'
wait_log "$name" n2 '"msg":"snapshot applied".*"generation":2'
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000 # warm up: pools and listeners exist

state=$(info "$name" | jq -r .stateDir)
fds() { find "/proc/$(cat "$state/nodes/$1/agent.pid")/fd" -mindepth 1 -maxdepth 1 | wc -l; }
before1=$(fds n1)
before2=$(fds n2)
n_before=$(count_log "$name" n1 '"msg":"connection complete"')
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" \
  "$py" "$echo_py" many "$(pod_field "$name" n2-p1 ip)" 7000 2000 || fail "connections failed"
wait_count_log "$name" n1 '"msg":"connection complete"' $((n_before + 2000))
sleep 0.5
echo "fds n1 $before1 -> $(fds n1), n2 $before2 -> $(fds n2)"
[ "$(fds n1)" -le "$before1" ] || fail "agent n1 leaks file descriptors"
[ "$(fds n2)" -le "$before2" ] || fail "agent n2 leaks file descriptors"
assert_agents_clean "$name"
echo ok
