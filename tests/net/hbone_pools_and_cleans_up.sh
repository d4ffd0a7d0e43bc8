#!/usr/bin/env bash
# HBONE under load: 200 parallel connections between two pods share a few
# pooled HBONE connections (100 streams each at most); an app killed
# mid-stream reaches the client as a reset or close and leaves nothing
# behind; 10,000 connections opened and closed leave the agents with no
# more file descriptors and no more memory than before; with
# --pool-max-streams-per-connection 1 each connection gets its own HBONE
# connection (a handshake each), closed when its stream ends, the server
# side first; a dial that reuses a 4-tuple the server holds in TIME_WAIT
# opens at once.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name hbp)
new_spec '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"serviceAccount": "client"}, "n2-p1": {"serviceAccount": "server"}}}'
# A small quarantine: freed memory is reused, so RSS measures live memory.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/client"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/server"'
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000
state=$(info "$name" | jq -r .stateDir)
pid_of() { cat "$state/nodes/$1/agent.pid"; }
# Descriptors other than pooled HBONE connections (a worker may dial one
# that then stays pooled: that is reuse, not a leak).
fds() {
  local all pooled
  all=$(find "/proc/$(pid_of "$1")/fd" -mindepth 1 -maxdepth 1 | wc -l)
  pooled=$(ip netns exec "zt-$name-$1" ss -Htn state established '( sport = :15008 or dport = :15008 )' | wc -l)
  echo $((all - pooled))
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$(pid_of "$1")/status"; }
in_pod() { local p=$1; shift; nsenter --net="/run/netns/$(pod_field "$name" "$p" netns)" "$@"; }
dst=$(pod_field "$name" n2-p1 ip)
workers=$(grep -o '"msg":"data path listening","workers":[0-9]*' "$(agent_log "$name" n1)" | grep -o '[0-9]*$')
hbone_conns() { ip netns exec "zt-$name-n1" ss -Htn state established dst "$dst" dport = :15008 | wc -l; }

step "200 parallel connections share a few HBONE connections"
out=$(mktemp /tmp/zt-par-XXXXXX)
temp_files+=("$out")
in_pod n1-p1 "$py" "$echo_py" parallel "$dst" 7000 200 3 > "$out" &
par=$!
started_pids+=("$par")
for _ in $(seq 1 100); do grep -q "200 connections open" "$out" && break; sleep 0.1; done
grep -q "200 connections open" "$out" || fail "200 parallel connections did not all open"
n=$(hbone_conns)
echo "HBONE connections carrying 200 streams: $n"
# Each worker pools on its own (no locks on the data path): at most 100
# streams per connection means 2 at least, and about one more per worker.
if [ "$n" -lt 2 ] || [ "$n" -gt $((workers + 3)) ]; then
  fail "expected 2-$((workers + 3)) pooled HBONE connections for 200 streams, saw $n"
fi
wait "$par" || fail "parallel client failed"

step "destination app killed mid-stream: the client sees it, nothing leaks"
sleep 1
base1=$(fds n1)
base2=$(fds n2)
nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" "$py" "$echo_py" serve 7200 &
app=$!
started_pids+=("$app")
sleep 0.5
in_pod n1-p1 "$py" "$echo_py" expect-cut "$dst" 7200 15 > "$out" &
cut=$!
sleep 1
kill -9 "$app"
wait "$cut" || fail "the client never saw the app die"
echo "client saw: $(cat "$out")"
wait_log "$name" n2 '"dst.addr":"'"$dst"':7200".*"direction":"inbound".*"error":"[^"]'
wait_access "$name" n1 '."dst.hbone_addr" == "'"$dst"':7200" and .direction == "outbound" and .error != ""'
sleep 1
[ "$(fds n1)" -le "$base1" ] || fail "n1 leaked descriptors after the cut: $base1 -> $(fds n1)"
[ "$(fds n2)" -le "$base2" ] || fail "n2 leaked descriptors after the cut: $base2 -> $(fds n2)"

step "10,000 connections opened and closed: no fd or memory growth"
in_pod n1-p1 "$py" "$echo_py" many "$dst" 7000 2000 || fail "warm-up connections failed"
sleep 1
f1=$(fds n1) f2=$(fds n2) m1=$(rss_kb n1) m2=$(rss_kb n2)
n_before=$(count_log "$name" n1 '"msg":"connection complete"')
in_pod n1-p1 "$py" "$echo_py" many "$dst" 7000 10000 || fail "connections failed"
wait_count_log "$name" n1 '"msg":"connection complete"' $((n_before + 10000))
sleep 1
echo "fds n1 $f1 -> $(fds n1), n2 $f2 -> $(fds n2); RSS KiB n1 $m1 -> $(rss_kb n1), n2 $m2 -> $(rss_kb n2)"
[ "$(fds n1)" -le "$f1" ] || fail "agent n1 leaks file descriptors"
[ "$(fds n2)" -le "$f2" ] || fail "agent n2 leaks file descriptors"
# Live memory must not scale with connections served (10,000 leaked
# tunnels would be tens of MiB); allow allocator noise.
[ "$(rss_kb n1)" -le $((m1 + 4096)) ] || fail "agent n1 memory grew: $m1 -> $(rss_kb n1) KiB"
[ "$(rss_kb n2)" -le $((m2 + 4096)) ] || fail "agent n2 memory grew: $m2 -> $(rss_kb n2) KiB"
[ "$(hbone_conns)" -le "$workers" ] || fail "sequential connections should reuse one HBONE connection per worker"

step "--pool-max-streams-per-connection 1: a new HBONE connection per connection, none left over"
metric() { # NODE NAME{LABELS}
  nsenter --net="/run/netns/zt-$name-$1" curl -sf -m 5 http://127.0.0.1:15020/metrics | awk -v m="$2" '$1 == m { print $2 }'
}
opened() { metric n1 'ztunnel_hbone_connections_opened_total{side="client"}'; }
recycled() { metric n2 'ztunnel_capture_packets_total{verdict="captured_inbound_hbone_time_wait"}'; }
ZT_CLUSTER_AGENT_ARGS="--pool-max-streams-per-connection 1" "$cluster" agent --name "$name" --node n1 roll
"$cluster" agent --name "$name" --node n1 ready
check_tcp "$name" n1-p1 n2-p1 7000
# Ten source ports for n1's dials: each comes back while n2 may still hold
# its last connection's 4-tuple in TIME_WAIT (n1 lets n2 close first, so
# the wait is n2's): such a SYN must open a new connection at once, not
# be dropped until the TIME_WAIT ends.
ports=$(ip netns exec "zt-$name-n1" sysctl -n net.ipv4.ip_local_port_range | tr -s '\t ' ' ')
ip netns exec "zt-$name-n1" sysctl -qw net.ipv4.ip_local_port_range="40000 40009"
o0=$(opened) r0=$(recycled)
timeout 120 nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" many "$dst" 7000 300 ||
  fail "connections failed or stalled (SYNs on 4-tuples in TIME_WAIT?)"
o1=$(opened) r1=$(recycled)
echo "client HBONE connections opened for 300 connections: $((o1 - o0)); SYNs on a TIME_WAIT 4-tuple: $((r1 - r0))"
[ $((o1 - o0)) -ge 300 ] || fail "expected a new HBONE connection per connection, saw $((o1 - o0)) for 300"
[ $((r1 - r0)) -gt 0 ] || fail "ten ports for 300 dials, yet no SYN met a TIME_WAIT 4-tuple: the test proves nothing"
tw=$(ip netns exec "zt-$name-n1" ss -Htan state time-wait dst "$dst" dport = :15008 | wc -l)
[ "$tw" -eq 0 ] || fail "n1 closed first and holds $tw HBONE 4-tuples in TIME_WAIT (its ports to n2 run out)"
for _ in $(seq 1 30); do [ "$(hbone_conns)" -eq 0 ] && break; sleep 0.1; done
[ "$(hbone_conns)" -eq 0 ] || fail "spent HBONE connections were left open: $(hbone_conns)"
ip netns exec "zt-$name-n1" sysctl -qw net.ipv4.ip_local_port_range="$ports"

step "agents stopped with a tunnel open: they release everything (LeakSanitizer reads their exit)"
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" hold "$dst" 7000 20 > "$out" &
holder=$!
started_pids+=("$holder")
for _ in $(seq 1 50); do grep -q open "$out" && break; sleep 0.1; done
grep -q open "$out" || fail "long-lived connection did not open"
for n in n1 n2; do
  pid=$(pid_of "$n")
  "$cluster" agent --name "$name" --node "$n" stop
  if kill -0 "$pid" 2>/dev/null; then fail "agent $n did not exit on SIGTERM"; fi
  grep -q '"msg":"shutting down"' "$(agent_log "$name" "$n")" || fail "agent $n was killed, not stopped"
done
wait "$holder" || fail "the open connection was not closed when the agents stopped"
assert_agents_clean "$name"
echo ok
