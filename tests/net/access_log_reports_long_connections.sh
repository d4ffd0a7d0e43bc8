#!/usr/bin/env bash
# A long-lived connection is visible before it ends: with
# --access-log-interval 1 both agents write a "connection update" line
# every second with the bytes so far, and its bytes are in the metrics
# while it is still open (not only at close). At access:debug (POST
# /logging) a "connection opened" line comes at set-up (SPEC.md §6.2).
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name lg)
before=$(host_links)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"}}}'
agent_extra="--access-log-interval 1"
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
start_echo "$name" n2-p1 7000
node_ns() { info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns'; }
on_node() { local n=$1; shift; nsenter --net="/run/netns/$(node_ns "$n")" "$@"; }
received() { # NODE: client -> server bytes in the mTLS series of this pair
  on_node "$1" curl -sf http://127.0.0.1:15020/metrics |
    awk '/^istio_tcp_received_bytes_total\{/ && /source_workload="n1-p1"/ && /response_flags="-"/ && /mutual_tls/ { s += $NF } END { print s + 0 }'
}

step "access:debug through the admin API"
[ "$(on_node n1 curl -s -X POST 'http://127.0.0.1:15000/logging?level=access:debug')" = \
  "current log level is info,access=debug" ] || fail "POST /logging?level=access:debug"

step "a connection that sends 1000 bytes, then stays open 3 s"
src=$(pod_field "$name" n1-p1 ip)
dst=$(pod_field "$name" n2-p1 ip)
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7000), timeout=10)
s.recv(64)                      # the greeting
s.sendall(b"x" * 1000)
got = 0
while got < 1000:
    got += len(s.recv(4096))
time.sleep(3)
s.close()' "$dst" &
client=$!
started_pids+=("$client")
wait_access_update() { # NODE DIRECTION
  for _ in $(seq 1 40); do
    jq -c -R 'fromjson? | select(.msg == "connection update" and .direction == "'"$2"'" and .bytes_recv + .bytes_sent >= 1000)' \
      "$(agent_log "$name" "$1")" | grep -q . && return 0
    sleep 0.1
  done
  fail "$1 wrote no \"connection update\" line for the open $2 connection"
}
wait_access_update n1 outbound
wait_access_update n2 inbound
kill -0 "$client" 2>/dev/null || fail "the connection ended before the checks (too slow a machine?)"
[ "$(received n1)" -ge 1000 ] || fail "n1's metrics do not have the open connection's bytes: $(received n1)"
[ "$(received n2)" -ge 1000 ] || fail "n2's metrics do not have the open connection's bytes: $(received n2)"
wait "$client" || fail "the long connection failed"
started_pids=("${started_pids[@]/$client}")
wait_access "$name" n1 '.msg == "connection complete" and ."src.addr" != "" and .bytes_sent == 1000'
[ "$(received n1)" = 1000 ] || fail "bytes counted twice or lost: $(received n1), want 1000"
grep -q '"msg":"connection opened".*"src.addr":"'"$src"':' "$(agent_log "$name" n1)" ||
  fail "no \"connection opened\" line at access:debug"

down_and_check "$name" "$before"
echo "PASS"
