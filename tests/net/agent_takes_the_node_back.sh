#!/usr/bin/env bash
# The handover's failure paths, under a steady load of new connections:
# a new agent that got the listeners but cannot serve (its admin port is
# taken) exits, and the running agent takes the node back (lock, ports, CNI
# socket) and serves on: no connection fails, and a pod added afterwards
# is enrolled. While one new agent waits to take over (it never gets
# certificates), a third one started beside them refuses to run (the
# node's lock) instead of putting its own listeners in the SOCKMAP.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name tb)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "a"},
          "n1-p2": {"namespace": "mesh", "serviceAccount": "b"}}}'
mesh_cluster_up "$name" "$spec" --nodes 1 --pods-per-node 2
state=$(info "$name" | jq -r .stateDir)
node_ns=/run/netns/$(info "$name" | jq -r '.nodes[0].netns')
tcp="$build/tools/ztunnel-bench-tcp"
in_pod() { nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" "${@:2}"; }
in_pod n1-p2 "$tcp" serve 7001 > /dev/null 2>&1 &
started_pids+=("$!")
for _ in $(seq 1 50); do in_pod n1-p2 ss -Hltn 'sport = :7001' | grep -q LISTEN && break; sleep 0.1; done
old=$(cat "$state/nodes/n1/agent.pid")
# beside LOG [EXTRA FLAGS...]: another agent on n1, as tools/cluster starts one.
beside() {
  local log=$1 extra=()
  shift
  read -ra extra < "$state/agent.args"
  nsenter --net="$node_ns" "$build/ztunnel/ztunnel" --snapshot "$state/configmap" --node-name n1 \
    --bpf-pin-dir "$state/bpf/n1" --cni-socket "$state/nodes/n1/cni.sock" --log-format json "${extra[@]}" "$@" \
    > "$log" 2>&1 9>&- &
  beside_pid=$!
  started_pids+=("$beside_pid")
}
log1="$state/nodes/n1/agent.log"
work=$(mktemp -d /tmp/zt-takeback-XXXXXX)
temp_files+=("$work")

step "a new agent that cannot serve after the handover: the running one takes the node back"
nsenter --net="$node_ns" "$py" -c 'import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 15099)); s.listen()
time.sleep(60)' & started_pids+=("$!")
in_pod n1-p1 "$tcp" steady "$(pod_field "$name" n1-p2 ip)" 7001 14 100 > "$work/load" 2>&1 & load=$!
started_pids+=("$load")
sleep 1
beside "$work/successor.log" --admin-addr 127.0.0.1:15099
rc=0
wait "$beside_pid" || rc=$?
[ "$rc" != 0 ] || fail "the successor that could not serve exited 0"
grep -q '"msg":"gave the listeners to a new agent: waiting for it to serve"' "$log1" || fail "no handover was attempted"
wait_log "$name" n1 '"msg":"the new agent failed to take over: this agent serves on"' 20
kill -0 "$old" 2>/dev/null || fail "the running agent died"
"$cluster" agent --name "$name" --node n1 ready ||
  fail "not ready after taking the node back: $(nsenter --net="$node_ns" curl -s -m 2 http://127.0.0.1:15000/healthz/ready) $(grep -h 'take\|handover\|admin' "$log1" | tail -n 6)"
wait "$load" || fail "connections failed while the node was taken back: $(cat "$work/load")"
echo "load through the failed handover: $(cat "$work/load")"
added=$("$cluster" pod --name "$name" --node n1 add | tail -n 1)
wait_log "$name" n1 '"msg":"pod added","namespace":"[^"]*","pod":"'"$added"'"' 10
if grep -q 'Sanitizer\|runtime error:' "$work/successor.log"; then fail "$(cat "$work/successor.log")"; fi

check_tcp_port() { in_pod n1-p1 "$tcp" steady "$(pod_field "$name" n1-p2 ip)" 7001 2 20 > "$work/check" 2>&1; }

step "a third agent beside a waiting one refuses to run; the running one serves on"
check_tcp_port || fail "the running agent does not serve after taking the node back: $(cat "$work/check")"
beside "$work/waiting.log" --identity-provider files --cert-dir "$work/no-certs"
for _ in $(seq 1 50); do grep -q 'taking over once ready' "$work/waiting.log" && break; sleep 0.1; done
grep -q 'taking over once ready' "$work/waiting.log" || fail "the waiting agent did not start: $(tail -n 5 "$work/waiting.log")"
waiting=$beside_pid
check_tcp_port || fail "the running agent stopped serving once an agent waits beside it: $(cat "$work/check") WAITING: $(grep -v '"level":"info"' "$work/waiting.log" | tail -n 8) OLD: $(grep -v 'connection complete' "$log1" | tail -n 5)"
beside "$work/third.log"
rc=0
wait "$beside_pid" || rc=$?
[ "$rc" != 0 ] || fail "the third agent ran"
grep -q 'another ztunnel agent runs on this node' "$work/third.log" || fail "third agent: $(tail -n 5 "$work/third.log")"
check_tcp_port || fail "the running agent stopped serving after the third agent: $(cat "$work/check") $(grep -h 'level":"\(warn\|error\)' "$log1" | tail -n 4) third: $(grep -h 'level":"\(warn\|error\)' "$work/third.log" | tail -n 4)"
kill "$waiting"
wait "$waiting" 2>/dev/null || true
check_tcp_port || fail "the running agent stopped serving after the waiting agent left"
[ "$(cat "$state/nodes/n1/agent.pid")" = "$old" ] || fail "the node's agent changed"
down_and_check "$name" "$before"
echo "PASS"
