#!/usr/bin/env bash
# Agents on both nodes: enrolled pods' connections go through the agents
# (eBPF counters and access logs prove it) on the other node and on the same
# node, 10 MB arrive intact, the destination sees the source pod IP and
# half-close and resets propagate; non-enrolled pods are never captured; a non-mesh client
# reaching a mesh pod is captured as inbound plaintext.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name cap)
before=$(host_links)
new_spec '{}'
cat > "$spec" <<'JSON'
{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh"}, "n1-p2": {"namespace": "mesh"},
          "n2-p1": {"namespace": "mesh"}, "n1-p3": {"namespace": "plain"},
          "n2-p2": {"namespace": "plain"}, "n2-p3": {"namespace": "plain"}}}
JSON
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 3
wait_log "$name" n1 '"msg":"snapshot applied".*"generation":2'
wait_log "$name" n2 '"msg":"snapshot applied".*"generation":2'
for p in n1-p1 n1-p2 n2-p1 n1-p3 n2-p3; do start_echo "$name" "$p" 7000; done

step "enrolled -> enrolled on the other node, 10 MB, half-close"
o1=$(stat "$name" n1 captured_outbound)
i2=$(stat "$name" n2 captured_inbound_plain)
check_tcp_bytes "$name" n1-p1 n2-p1 7000 10485760
[ "$(stat "$name" n1 captured_outbound)" = $((o1 + 1)) ] || fail "n1 did not capture outbound"
[ "$(stat "$name" n2 captured_inbound_plain)" = $((i2 + 1)) ] || fail "n2 did not capture inbound"
wait_access "$name" n1 '.msg == "connection complete" and ."dst.workload" == "n2-p1" and ."dst.namespace" == "mesh" and ."dst.service" == "" and .direction == "outbound" and .bytes_sent == 10485760'
wait_access "$name" n2 '.msg == "connection complete" and ."src.workload" == "n1-p1" and ."src.namespace" == "mesh" and .direction == "inbound" and .bytes_sent >= 10485760 and .bytes_recv == 10485760'

step "enrolled -> enrolled on the same node"
o1=$(stat "$name" n1 captured_outbound)
check_tcp_bytes "$name" n1-p1 n1-p2 7000 1048576
[ "$(stat "$name" n1 captured_outbound)" = $((o1 + 1)) ] || fail "same-node connection not captured"
# Without identities this is plaintext to a mesh pod of the node: it runs
# (and is logged as) the plaintext inbound checks.
wait_access "$name" n1 '."dst.workload" == "n1-p2" and ."dst.namespace" == "mesh" and ."dst.service" == "" and .direction == "inbound" and .bytes_sent >= 1048576 and .bytes_recv == 1048576'

step "non-enrolled -> non-enrolled: never captured"
before_stats=$("$ctl" capture stats --bpf-pin-dir "$(info "$name" | jq -r .stateDir)/bpf/n1" --json)
check_tcp "$name" n2-p2 n1-p3 7000
check_tcp "$name" n2-p2 n2-p3 7000
after_stats=$("$ctl" capture stats --bpf-pin-dir "$(info "$name" | jq -r .stateDir)/bpf/n1" --json)
for k in captured_outbound captured_inbound_plain captured_service; do
  [ "$(jq ".$k" <<<"$before_stats")" = "$(jq ".$k" <<<"$after_stats")" ] || fail "$k moved for non-mesh traffic"
done
[ "$(stat "$name" n2 captured_outbound)" = 0 ] || fail "n2 captured a non-enrolled pod's outbound"

step "non-enrolled client -> enrolled pod: inbound plaintext capture"
i1=$(stat "$name" n1 captured_inbound_plain)
check_tcp "$name" n2-p2 n1-p1 7000
[ "$(stat "$name" n1 captured_inbound_plain)" = $((i1 + 1)) ] || fail "inbound plaintext not captured"
wait_access "$name" n1 '."src.workload" == "n2-p2" and ."src.namespace" == "plain" and ."dst.workload" == "n1-p1" and .direction == "inbound"'

step "a reset by the server reaches the client as a reset"
nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" "$py" "$echo_py" reset-server 7100 &
started_pids+=("$!")
sleep 0.3
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" expect-reset \
  "$(pod_field "$name" n2-p1 ip)" 7100 || fail "reset not propagated through both agents"
wait_log "$name" n1 '"dst.addr":"10.244.2.2:7100".*"error":"connection reset by peer"'

down_and_check "$name" "$before"
echo ok
