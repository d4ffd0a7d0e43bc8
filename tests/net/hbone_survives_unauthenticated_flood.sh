#!/usr/bin/env bash
# 15008 cannot be starved before authentication (issue 8/13 item 9): a pod
# opens 20,000 TCP connections to a mesh pod's 15008 and never speaks TLS.
# The destination agent admits at most 64 unauthenticated connections per
# source (and 1,024 per node), resets the rest at once with one log line
# per second, allocates its big buffers only after a handshake and drops
# admitted ones after the 10 s handshake deadline. Meanwhile other pods'
# mesh traffic to the same pod works, the agent's descriptors stay far from
# its limit and its memory within 100 MB of idle, and after the flood its
# memory goes back. Then two sources fill the node-wide slots together
# (--max-pending-handshakes 128 here): a new peer still gets in, because
# the oldest wait of a source holding more slots is evicted for it.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
# A small quarantine: freed memory is reused, so RSS measures live memory.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
name=$(unique_name fl)
before=$(host_links)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "legacy"}, "n1-p2": {"namespace": "shop", "serviceAccount": "web"},
          "n1-p3": {"namespace": "legacy"}, "n1-p4": {"namespace": "shop", "serviceAccount": "late"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"}, "n2-p2": {"namespace": "shop", "serviceAccount": "db"},
          "n2-p3": {"namespace": "legacy"}, "n2-p4": {"namespace": "legacy"}}}'
agent_extra="--max-pending-handshakes 128"
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 4
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
start_echo "$name" n2-p1 7000
# The legitimate traffic of the test once before measuring: its pooled HBONE
# connections (one per worker and key) are part of the idle baseline.
for _ in 1 2 3 4; do check_tcp "$name" n1-p2 n2-p1 7000; check_tcp "$name" n2-p2 n2-p1 7000; done
state=$(info "$name" | jq -r .stateDir)
pid2=$(cat "$state/nodes/n2/agent.pid")
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$pid2/status"; }
fds() { find "/proc/$pid2/fd" -mindepth 1 | wc -l; }
nofile=$(awk '/Max open files/ { print $4 }' "/proc/$pid2/limits")
grep -q '"msg":"descriptor limit","nofile":'"$nofile" "$(agent_log "$name" n2)" || fail "agent did not report its descriptor limit"
sleep 1
rss0=$(rss_kb) fds0=$(fds)
echo "n2 agent idle: RSS ${rss0} KiB, ${fds0} fds (limit $nofile)"

out="$state/flood"
flooders=()
# flood POD COUNT TAG: COUNT idle connections from POD to n2-p1:15008, held 8 s.
flood() {
  nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" "$py" "$echo_py" flood \
    "$(pod_field "$name" n2-p1 ip)" 15008 "$2" 8 > "$out.$3" 2>&1 &
  started_pids+=("$!")
  flooders+=("$!")
}
# flooding COUNT N: until N flooders opened COUNT each.
flooding() {
  for _ in $(seq 1 100); do
    [ "$(cat "$out".* | grep -c "^opened $1\$")" = "$2" ] && break
    sleep 0.1
  done
  [ "$(cat "$out".* | grep -c "^opened $1\$")" = "$2" ] || fail "flood did not start: $(cat "$out".*)"
  sleep 1
}

step "20,000 unauthenticated connections from n1-p1 to n2-p1:15008"
flood n1-p1 10000 1
flood n1-p1 10000 2
flooding 10000 2

step "during the flood: mesh traffic to the same pod works, the agent holds"
for _ in 1 2 3; do check_tcp "$name" n1-p2 n2-p1 7000; check_tcp "$name" n2-p2 n2-p1 7000; done
rss1=$(rss_kb) fds1=$(fds)
echo "n2 agent under flood: RSS ${rss1} KiB, ${fds1} fds"
[ "$fds1" -lt $((fds0 + 200)) ] || fail "descriptors grew from $fds0 to $fds1 under an unauthenticated flood"
[ "$rss1" -lt $((rss0 + 100 * 1024)) ] || fail "RSS grew from $rss0 to $rss1 KiB"
wait_log "$name" n2 '"msg":"inbound HBONE connections refused before their handshake","reason":"per-source limit of unauthenticated connections","latest.src":"'"$(pod_field "$name" n1-p1 ip)"
lines=$(count_log "$name" n2 'refused before their handshake')
[ "$lines" -le 15 ] || fail "$lines refusal lines: not aggregated"

step "after the flood: descriptors and memory come back"
wait "${flooders[@]}"
sleep 12 # the handshake deadline (10 s) drops the admitted ones
rss2=$(rss_kb) fds2=$(fds)
echo "n2 agent after: RSS ${rss2} KiB, ${fds2} fds"
[ "$fds2" -le $((fds0 + 8)) ] || fail "descriptors left behind: $fds0 -> $fds2"
[ "$rss2" -lt $((rss0 + 20 * 1024)) ] || fail "memory not returned: $rss0 -> $rss2 KiB"
check_tcp "$name" n1-p2 n2-p1 7000

step "two sources fill the node's 128 slots together: a new peer still gets in"
metric() { nsenter --net="/run/netns/$(info "$name" | jq -r '.nodes[] | select(.name == "n2") | .netns')" \
  curl -sf http://127.0.0.1:15020/metrics | awk -v k="ztunnel_limit_hits_total{limit=\"$1\"}" '$1 == k { print $2 }'; }
evicted0=$(metric pending_handshakes_evicted)
flooders=()
rm -f "$out".*
flood n1-p1 100 a
flood n1-p3 100 b
flooding 100 2
refused=$(metric pending_handshakes_per_source)
[ "$(metric pending_handshakes_evicted)" = "$evicted0" ] || fail "sources holding equal shares evicted each other"
# n1-p4's identity has no HBONE connection to n2 yet: this one needs a slot.
check_tcp "$name" n1-p4 n2-p1 7000
wait_access "$name" n2 '."src.identity" == "spiffe://cluster.local/ns/shop/sa/late" and .protocol == "HBONE"'
evicted1=$(metric pending_handshakes_evicted)
echo "slots full (per-source refusals so far: $refused): the new peer evicted $((evicted1 - evicted0)) waiting connection(s)"
[ "$evicted1" -gt "$evicted0" ] || fail "the new peer got in without an eviction: were the slots full?"
wait "${flooders[@]}"

down_and_check "$name" "$before"
