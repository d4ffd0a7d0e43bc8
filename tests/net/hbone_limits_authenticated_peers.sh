#!/usr/bin/env bash
# An authenticated peer cannot hold unbounded streams or memory on the
# destination agent (issue 8/13 item 11). With --max-streams-per-peer 50
# and --peer-buffer-mb 4: a peer opening 60 streams to a pod whose app
# never reads gets 50 answered 200 and 10 answered 503 (logged once); three
# connections pushing 4 MiB on each of 20 streams into that stalled app
# (48 MiB the HTTP/2 windows would let it park on us) are paused once the
# peer holds 4 MiB, so the agent's memory stays near its budget, while
# other peers' traffic to the same node flows, and after 30 s without
# draining the paused connections are closed (nothing is held forever); with
# --max-connections-per-peer 4, six connections at once keep four. (Measured here under ASan:
# +19 MiB RSS with the budget, +43 MiB without; the test allows +30.)
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
rpeer=${ZT_RUSTLS_PEER:-$src_root/.deps/rustls-peer/release/rustls-peer}
[ -x "$rpeer" ] || skip "$rpeer not built (tools/bootstrap --test-peers; needs cargo)"
# A small quarantine: freed memory is reused, so RSS measures live memory.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
name=$(unique_name pl)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "api"}, "n1-p2": {"namespace": "mesh", "serviceAccount": "db"},
          "n2-p1": {"namespace": "plain"}, "n2-p2": {"namespace": "mesh", "serviceAccount": "web"}}}'
agent_extra="--max-streams-per-peer 50 --peer-buffer-mb 4 --max-connections-per-peer 4"
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/api"'
api=$(pod_field "$name" n1-p1 ip)
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" stall 7000 &
started_pids+=("$!")
start_echo "$name" n1-p2 7000
sleep 0.3
peer_dir="$cadir/peer"
"$ctl" ca mint --dir "$cadir" --identity spiffe://cluster.local/ns/plain/sa/hog --out "$peer_dir" >/dev/null
hog() { # ARGS...: the rustls peer in n2-p1 against n1-p1's 15008
  nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" "$rpeer" client --connect "$api:15008" \
    --cert-dir "$peer_dir" --roots "$cadir/root-cert.pem" --expect spiffe://cluster.local/ns/mesh/sa/api \
    --authority "$api:7000" "$@"
}
state=$(info "$name" | jq -r .stateDir)
pid1=$(cat "$state/nodes/n1/agent.pid")
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$pid1/status"; }

step "60 streams from one peer: 50 served, 10 refused"
out=$(hog --streams 60 --tally 2>&1) || fail "tally client: $out"
if ! grep -qx 'status 200: 50' <<<"$out" || ! grep -qx 'status 503: 10' <<<"$out"; then
  fail "want 50 x 200 and 10 x 503: $out"
fi
wait_log "$name" n1 '"msg":"HBONE streams refused: the peer holds its limit of open streams","src.identity":"spiffe://cluster.local/ns/plain/sa/hog","limit":50'

step "6 connections at once from one peer: 4 kept, 2 closed after the handshake"
conns=()
for i in 1 2 3 4 5 6; do
  nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" "$rpeer" client \
    --connect "$(pod_field "$name" n1-p2 ip):15008" --cert-dir "$peer_dir" --roots "$cadir/root-cert.pem" \
    --expect spiffe://cluster.local/ns/mesh/sa/db --authority "$(pod_field "$name" n1-p2 ip):7000" \
    --rounds 2 --idle 3 --bytes 16 --greeting > "$state/conn.$i" 2>&1 &
  conns+=("$!")
done
ok=0
for p in "${conns[@]}"; do wait "$p" && ok=$((ok + 1)); done
[ "$ok" = 4 ] || fail "$ok of 6 connections served, want 4: $(cat "$state"/conn.*)"
wait_log "$name" n1 '"error":"peer holds its limit of HBONE connections (--max-connections-per-peer)"'

step "48 MiB pushed at a stalled app: the peer is paused at its 4 MiB budget"
sleep 1
rss0=$(rss_kb)
hogs=()
for i in 1 2 3; do
  hog --streams 20 --bytes 4194304 > "$state/hog.$i" 2>&1 &
  hogs+=("$!")
  started_pids+=("$!")
done
sleep 6
rss1=$(rss_kb)
echo "n1 agent RSS: ${rss0} KiB idle, ${rss1} KiB with the peer paused"
wait_log "$name" n1 '"msg":"HBONE peer over its buffer budget: its connection is paused until the pods catch up"'
[ "$rss1" -lt $((rss0 + 30 * 1024)) ] || fail "agent RSS grew by $((rss1 - rss0)) KiB: the budget did not hold"
check_tcp "$name" n2-p2 n1-p2 7000
kill "${hogs[@]}" 2>/dev/null || true
# Not held forever: a peer whose pods do not drain loses its connections.
wait_log "$name" n1 '"error":"HBONE peer over its buffer budget for 30 s: connection closed"' 40


down_and_check "$name" "$before"
