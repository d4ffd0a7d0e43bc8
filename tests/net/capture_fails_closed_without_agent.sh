#!/usr/bin/env bash
# Fail closed: with the agent SIGKILLed, enrolled pods' new connections fail
# (the pinned program drops SYNs with no listener: no plaintext bypass) and
# are counted; a restarted agent adopts the pinned state and traffic flows
# again without any CNI ADD. A pod forging another pod's source IP is
# dropped and counted, for a SYN and for a segment of the other pod's
# established connection.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name kil)
new_spec '{}'
echo '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}}}' > "$spec"
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"snapshot applied".*"generation":2'
wait_log "$name" n2 '"msg":"snapshot applied".*"generation":2'
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000

step "spoofed source from a pod's veth is dropped"
s1=$(stat "$name" n1 spoofed_source_dropped)
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" spoof-syn \
  "$(pod_field "$name" n1-p2 ip)" "$(pod_field "$name" n2-p1 ip)" 7000
sleep 0.3
[ "$(stat "$name" n1 spoofed_source_dropped)" = $((s1 + 1)) ] || fail "spoofed SYN not dropped"

step "a segment forged into another pod's established connection is dropped"
hold_out=$(mktemp /tmp/zt-hold-XXXXXX)
temp_files+=("$hold_out")
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" hold \
  "$(pod_field "$name" n2-p1 ip)" 7000 4 > "$hold_out" 2>&1 &
started_pids+=("$!")
for _ in $(seq 1 50); do grep -q open "$hold_out" && break; sleep 0.1; done
sport=$(nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" ss -Htn state established \
  "dst $(pod_field "$name" n2-p1 ip):7000" | awk '{split($3, a, ":"); print a[2]; exit}')
[ -n "$sport" ] || fail "no established connection to inject into"
s1=$(stat "$name" n1 spoofed_source_dropped)
nsenter --net="/run/netns/$(pod_field "$name" n1-p2 netns)" "$py" "$echo_py" spoof-segment \
  "$(pod_field "$name" n1-p1 ip)" "$sport" "$(pod_field "$name" n2-p1 ip)" 7000
sleep 0.3
[ "$(stat "$name" n1 spoofed_source_dropped)" = $((s1 + 1)) ] ||
  fail "a segment forged into n1-p1's connection was not dropped as spoofed"

step "agent on n1 killed: enrolled traffic fails closed"
"$cluster" agent --name "$name" --node n1 kill
d1=$(stat "$name" n1 no_listener_dropped)
expect_blocked "$name" n1-p1 n2-p1 7000
[ "$(stat "$name" n1 no_listener_dropped)" -gt "$d1" ] || fail "dropped SYN not counted"
# Inbound to an enrolled pod of n1 fails closed as well.
start_echo "$name" n1-p2 7000
expect_blocked "$name" n2-p2 n1-p2 7000

step "agent restarted: pinned state adopted, no CNI ADD"
adds_before=$(count_log "$name" n1 '"msg":"pod added"')
"$cluster" agent --name "$name" --node n1 start
wait_log "$name" n1 '"msg":"restored pods from pinned capture state","pods":2'
wait_log "$name" n1 '"msg":"data path listening"'
check_tcp "$name" n1-p1 n2-p1 7000
check_tcp "$name" n2-p2 n1-p2 7000
[ "$(count_log "$name" n1 '"msg":"CNI request')" = 0 ] || fail "unexpected CNI traffic"
[ "$(count_log "$name" n1 '"msg":"pod added"')" = "$adds_before" ] || fail "pods were re-added"
assert_agents_clean "$name"
echo ok
