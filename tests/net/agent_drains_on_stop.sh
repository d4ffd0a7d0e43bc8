#!/usr/bin/env bash
# A stop drains (SPEC §10): on SIGTERM the agent's readiness fails at once,
# its HBONE peers get GOAWAY (the other node's agent logs it and opens a new
# HBONE connection for the next stream), a live connection across the
# agent finishes normally, and the agent exits as soon as nothing is left,
# long before its deadline. A connection still open at the deadline is
# closed then, logged and counted ("connection closed due to connection
# drain"); the deadline comes from Istio's TERMINATION_GRACE_PERIOD_SECONDS
# when no setting is given. POST /quitquitquit takes the same path and
# answers only once the drain is over.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name dr)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "client"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "server"}}}'
export ZTUNNEL_TERMINATION_DEADLINE=20
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
unset ZTUNNEL_TERMINATION_DEADLINE
start_echo "$name" n2-p1 7000
ms() { date +%s%3N; }
agent() { "$cluster" agent --name "$name" --node "$1" "${@:2}"; }
pid_of() { cat "$(info "$name" | jq -r .stateDir)/nodes/$1/agent.pid"; }
in_pod() { nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" "${@:2}"; }
agent_http() { # NODE PORT PATH [CURL ARGS...]
  nsenter --net="/run/netns/$(info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns')" \
    curl -s -m 2 "${@:4}" "http://127.0.0.1:$2$3"
}
server=$(pod_field "$name" n2-p1 ip)
client_ip=$(pod_field "$name" n1-p1 ip)
check_tcp "$name" n1-p1 n2-p1 7000 # an HBONE connection n1 -> n2 in n1's pool
wait_access "$name" n2 '.protocol == "HBONE" and ."dst.workload" == "n2-p1"'

step "SIGTERM with a live connection: not ready at once, GOAWAY to the peer, the connection finishes"
# Connects now, idles 3 s, then moves 256 KiB each way and checks them.
in_pod n1-p1 "$py" "$echo_py" check "$server" 7000 "$client_ip" 262144 3 & live=$!
started_pids+=("$live")
sleep 0.5
n2pid=$(pid_of n2)
t0=$(ms)
kill -TERM "$n2pid"
for _ in $(seq 1 20); do [ "$(agent_http n2 15021 /healthz/ready -o /dev/null -w '%{http_code}')" = 500 ] && break; sleep 0.05; done
ready=$(agent_http n2 15021 /healthz/ready) || true
[[ $ready == *draining* ]] || fail "n2's readiness while draining: \"$ready\""
wait_log "$name" n1 '"msg":"HBONE peer is draining (GOAWAY)' 5
wait "$live" || fail "the live connection did not finish during the drain"
for _ in $(seq 1 50); do kill -0 "$n2pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$n2pid" 2>/dev/null || fail "n2's agent still runs after its last connection ended"
took=$(( $(ms) - t0 ))
echo "SIGTERM -> agent exited after its last connection: $took ms (deadline 20 s)"
[ "$took" -lt 10000 ] || fail "the drain waited for its deadline ($took ms), not for the connection"
grep -q '"msg":"drained: every connection ended"' "$(agent_log "$name" n2)" || fail "n2 did not log the drain's end"
assert_agents_clean "$name"

step "the peer opens a new HBONE connection for the next stream"
agent n2 start
agent n2 ready
opened=$(grep -c '"msg":"HBONE connection established"' "$(agent_log "$name" n1)" || true)
check_tcp "$name" n1-p1 n2-p1 7000
[ "$(grep -c '"msg":"HBONE connection established"' "$(agent_log "$name" n1)")" -gt "$opened" ] ||
  fail "n1 reused the drained HBONE connection"

step "deadline from TERMINATION_GRACE_PERIOD_SECONDS=3 (2 s): a connection still open then is closed and counted"
agent n2 stop
TERMINATION_GRACE_PERIOD_SECONDS=3 agent n2 start
agent n2 ready
in_pod n1-p1 "$py" "$echo_py" expect-cut "$server" 7000 15 & cut=$!
started_pids+=("$cut")
sleep 1
t0=$(ms)
kill -TERM "$(pid_of n2)"
wait "$cut" || fail "the connection open at the deadline was not closed"
took=$(( $(ms) - t0 ))
echo "SIGTERM -> connection closed at the deadline: $took ms (deadline 2 s)"
[ "$took" -ge 1800 ] && [ "$took" -lt 6000 ] || fail "closed after $took ms, want about 2 s"
wait_log "$name" n2 '"msg":"drain deadline passed: closing the connections left"' 5
wait_access "$name" n2 '.error == "connection closed due to connection drain"'

step "POST /quitquitquit drains the same way and answers when the drain is over"
agent n2 start
agent n2 ready
in_pod n1-p1 "$py" "$echo_py" check "$server" 7000 "$client_ip" 1024 2 & live=$!
started_pids+=("$live")
sleep 0.5
t0=$(ms)
answer=$(agent_http n2 15000 /quitquitquit -m 30 -X POST -w ' %{http_code}') || true
answer=${answer//$'\n'/}
took=$(( $(ms) - t0 ))
[ "$answer" = "shutdown now 200" ] || fail "/quitquitquit answered \"$answer\""
wait "$live" || fail "the live connection did not finish during the /quitquitquit drain"
echo "/quitquitquit answered after $took ms, once the live connection ended"
[ "$took" -ge 1000 ] || fail "/quitquitquit answered before the drain was over ($took ms)"

down_and_check "$name" "$before"
echo "PASS"
