#!/usr/bin/env bash
# The access log never stalls traffic (docs/metrics.md): with the agent's
# log going to a pipe nobody reads (a wedged log collector), 10,000 short
# connections through it all succeed; the lines that cannot be written are
# dropped and counted (ztunnel_access_log_dropped_total), not waited for,
# and what was queued is written once the reader comes back.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name al)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh"}, "n2-p1": {"namespace": "mesh"}}}'
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 1
start_echo "$name" n2-p1 7000
state=$(info "$name" | jq -r .stateDir)
netns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')

step "n1's agent restarted with its log into a pipe that is never read"
"$cluster" agent --name "$name" --node n1 stop
fifo="$state/n1-log.fifo"
mkfifo "$fifo"
exec 3<>"$fifo" # held open, never read: the pipe fills and stays full
read -ra extra < "$state/agent.args"
nsenter --net="/run/netns/$netns" "$(cat "$state/agent.bin")" --snapshot "$state/configmap" --node-name n1 \
  --bpf-pin-dir "$state/bpf/n1" --cni-socket "$state/nodes/n1/cni.sock" --log-format json "${extra[@]}" 2>&3 3>&- &
agent=$!
started_pids+=("$agent")
for _ in $(seq 1 100); do
  [ "$(nsenter --net="/run/netns/$netns" curl -s -m 1 -o /dev/null -w '%{http_code}' \
    http://127.0.0.1:15021/healthz/ready)" = 200 ] && break
  sleep 0.1
done
metric() {
  nsenter --net="/run/netns/$netns" curl -sf -m 5 http://127.0.0.1:15020/metrics | awk -v m="$1" '$1 == m { print $2 }'
}
[ "$(metric ztunnel_ready)" = 1 ] || fail "restarted agent not ready"

step "10,000 short connections through n1 while its log is wedged"
start=$(date +%s)
timeout 300 nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" \
  "$py" "$echo_py" many "$(pod_field "$name" n2-p1 ip)" 7000 10000 ||
  fail "connections failed or stalled while the log could not be written"
echo "10000 connections in $(($(date +%s) - start)) s"
kill -0 "$agent" || fail "agent died"
lines=$(metric ztunnel_access_log_lines_total)
dropped=$(metric ztunnel_access_log_dropped_total)
echo "access-log lines: $lines produced, $dropped dropped"
[ "$lines" -ge 10000 ] || fail "only $lines access-log lines produced for 10000 connections"
[ "$dropped" -gt 0 ] || fail "nothing dropped although the log could not be written: lines were lost silently or waited for"

step "the reader comes back: the agent writes what it kept and stops cleanly"
log="$state/n1-after.log"
# (not inheriting our descriptor 3, a writer: it would never see the end)
timeout 30 cat "$fifo" > "$log" 3>&- &
reader=$!
exec 3>&-
kill -TERM "$agent"
for _ in $(seq 1 100); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
kill -0 "$agent" 2>/dev/null && fail "agent did not stop on SIGTERM"
wait "$reader" || true
started_pids=("${started_pids[@]/$agent}")
grep -q '"msg":"connection complete"' "$log" || fail "queued access-log lines were not written once the reader came back"
grep -q '"msg":"shutting down"' "$log" || fail "the agent's last lines are missing"
if grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer' "$log"; then
  cat "$log" >&2
  fail "sanitizer finding"
fi
"$cluster" agent --name "$name" --node n1 start
down_and_check "$name" "$before"
echo "PASS"
