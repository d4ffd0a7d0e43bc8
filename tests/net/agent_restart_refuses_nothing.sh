#!/usr/bin/env bash
# A rolling restart of both nodes' agents under load refuses nothing: the
# new agent starts beside the running one, takes its listening sockets over
# the handover socket once it is ready (the SOCKMAP keeps pointing at the
# same sockets), and only then does the old one get SIGTERM and drain.
# Paced new connections across nodes (HBONE) and within a node, 5 s per
# connection, run through both restarts: every one must succeed (none
# refused, reset or timed out). A connection established before the
# restart lives through the old agent's drain. The old agents exit cleanly.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name rr)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "client"},
          "n1-p2": {"namespace": "mesh", "serviceAccount": "local"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "server"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
tcp="$build/tools/ztunnel-bench-tcp"
in_pod() { nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" "${@:2}"; }
pid_of() { cat "$(info "$name" | jq -r .stateDir)/nodes/$1/agent.pid"; }
for p in n2-p1 n1-p2; do
  in_pod "$p" "$tcp" serve 7001 > /dev/null 2>&1 &
  started_pids+=("$!")
done
start_echo "$name" n2-p1 7000
for _ in $(seq 1 50); do in_pod n2-p1 ss -Hltn 'sport = :7001' | grep -q LISTEN && break; sleep 0.1; done
check_tcp "$name" n1-p1 n2-p1 7000
rate=${ZT_ROLL_RATE:-150} secs=24

step "load: $rate new connections/s to n2-p1 (HBONE) and $rate/s to n1-p2 (same node), for $secs s"
work=$(mktemp -d /tmp/zt-roll-XXXXXX)
temp_files+=("$work")
in_pod n1-p1 "$tcp" steady "$(pod_field "$name" n2-p1 ip)" 7001 "$secs" "$rate" > "$work/remote" 2>&1 & remote=$!
in_pod n1-p1 "$tcp" steady "$(pod_field "$name" n1-p2 ip)" 7001 "$secs" "$rate" > "$work/local" 2>&1 & local_=$!
started_pids+=("$remote" "$local_")
# Established before the restart; idles 6 s, then moves data: lives
# through n2's old agent's drain.
in_pod n1-p1 "$py" "$echo_py" check "$(pod_field "$name" n2-p1 ip)" 7000 "$(pod_field "$name" n1-p1 ip)" 65536 6 & long=$!
started_pids+=("$long")
sleep 3

step "rolling restart of n2's agent, then n1's, under that load"
for n in n2 n1; do
  old=$(pid_of "$n")
  "$cluster" agent --name "$name" --node "$n" roll
  [ "$(pid_of "$n")" != "$old" ] || fail "$n still runs its old agent"
  ! kill -0 "$old" 2>/dev/null || fail "$n's old agent ($old) still runs"
  grep -q '"msg":"handed the listeners over to a new agent: draining"' "$(agent_log "$name" "$n")" ||
    fail "$n's old agent did not hand over"
  sleep 2
done
wait "$long" || fail "the connection established before the restart did not survive the drain"

rc=0
wait "$remote" || rc=1
wait "$local_" || rc=1
echo "across nodes: $(cat "$work/remote")"
echo "same node:    $(cat "$work/local")"
if [ "$rc" != 0 ]; then
  for n in n1 n2; do
    echo "$n: what went wrong:" >&2
    jq -cR 'fromjson? | select((.error // "") != "" or .level == "warn" or .level == "error")' "$(agent_log "$name" "$n")" >&2
  done
  fail "connections failed during the rolling restart"
fi
for f in remote local; do
  [ "$(awk '{ print $2 }' "$work/$f")" -gt $((rate * secs * 9 / 10)) ] || fail "$f: too few connections made: $(cat "$work/$f")"
done
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n1 '.protocol == "HBONE" and ."dst.workload" == "n2-p1"'
down_and_check "$name" "$before"
echo "PASS"
