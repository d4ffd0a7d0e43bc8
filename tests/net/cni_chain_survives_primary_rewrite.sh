#!/usr/bin/env bash
# The primary CNI rewrites its configuration (a Calico or Cilium restart or
# upgrade) and drops ztunnel-cni from the chain: an agent started with
# --cni-conf-dir chains it back within a second, keeps the primary's own
# plugins and settings (once, pointing at its socket), and does it again
# the next time; a file it cannot parse is left alone and logged.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name cc)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh"}}}'
cluster_up_agents "$name" "$spec" --nodes 1 --pods-per-node 1
state=$(info "$name" | jq -r .stateDir)
netns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')
confdir="$state/cni/n1"
conf=$(find "$confdir" -maxdepth 1 -name '*.conflist' | sort | head -n 1)
[ -n "$conf" ] || fail "no conflist in $confdir"
last_type() { jq -r '.plugins[-1].type' "$conf"; }
[ "$(last_type)" = ztunnel-cni ] || fail "ztunnel-cni is not chained at start: $(cat "$conf")"

step "n1's agent restarted with --cni-conf-dir"
"$cluster" agent --name "$name" --node n1 stop
read -ra extra < "$state/agent.args"
log="$state/nodes/n1/agent.log"
nsenter --net="/run/netns/$netns" "$(cat "$state/agent.bin")" --snapshot "$state/configmap" --node-name n1 \
  --bpf-pin-dir "$state/bpf/n1" --cni-socket "$state/nodes/n1/cni.sock" --cni-conf-dir "$confdir" \
  --log-format json "${extra[@]}" >> "$log" 2>&1 &
agent=$!
started_pids+=("$agent")
for _ in $(seq 1 100); do [ -S "$state/nodes/n1/cni.sock" ] && break; sleep 0.1; done

rewrite() { # the primary CNI writes its own file again, without us
  jq 'del(.plugins[] | select(.type == "ztunnel-cni")) | .plugins[0].mtu = 1400' "$conf" > "$conf.primary"
  mv "$conf.primary" "$conf"
  [ "$(last_type)" != ztunnel-cni ] || fail "the rewrite did not drop the plugin"
}
for round in 1 2; do
  step "round $round: the primary CNI rewrites its configuration"
  rewrite
  for _ in $(seq 1 30); do [ "$(last_type)" = ztunnel-cni ] && break; sleep 0.1; done
  [ "$(last_type)" = ztunnel-cni ] || fail "not chained again within 3 s: $(cat "$conf")"
  [ "$(jq -r '.plugins[0].mtu' "$conf")" = 1400 ] || fail "the primary's own settings were not kept"
  [ "$(jq '[.plugins[] | select(.type == "ztunnel-cni")] | length' "$conf")" = 1 ] || fail "chained twice"
  [ "$(jq -r '.plugins[-1].agentSocket' "$conf")" = "$state/nodes/n1/cni.sock" ] || fail "wrong agent socket"
done
wait_count_log "$name" n1 '"msg":"ztunnel-cni chained again' 2

step "a broken configuration (a half-written or hostile file): left alone, logged, the agent lives on"
good=$(cat "$conf")
printf '{"cniVersion": "1.0.0", "plugins": [' > "$conf.bad"
mv "$conf.bad" "$conf"
wait_log "$name" n1 '"msg":"cannot chain ztunnel-cni"' 3
kill -0 "$agent" || fail "agent died on a broken CNI configuration"
[ "$(cat "$conf")" = '{"cniVersion": "1.0.0", "plugins": [' ] || fail "the agent rewrote a file it could not parse"
jq 'del(.plugins[] | select(.type == "ztunnel-cni"))' <<<"$good" > "$conf.fixed"
mv "$conf.fixed" "$conf"
for _ in $(seq 1 30); do [ "$(last_type)" = ztunnel-cni ] && break; sleep 0.1; done
[ "$(last_type)" = ztunnel-cni ] || fail "not chained again once the file was valid"

step "the agent stops cleanly"
kill -0 "$agent" || fail "agent died"
kill -TERM "$agent"
for _ in $(seq 1 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
started_pids=("${started_pids[@]/$agent}")
"$cluster" agent --name "$name" --node n1 start
down_and_check "$name" "$before"
echo "PASS"
