#!/usr/bin/env bash
# HTTP/2 rapid reset (CVE-2023-44487, issue 8/13 item 10) against a live
# 15008: an authenticated peer opens CONNECT streams and resets each at
# once, 3,000 of them. A stream reset in the read batch it arrived in never
# reaches the pod (no upstream connection, no access-log line); past a
# budget (a burst of 100, then 10 a second) the agent answers GOAWAY
# ENHANCE_YOUR_CALM and closes the connection; the resets are logged in
# aggregate; other pods' traffic to the same pod is unaffected.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
/usr/bin/python3 -c 'import h2' 2>/dev/null || skip "python3-h2 missing (tools/bootstrap)"
name=$(unique_name rr)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "api"}, "n1-p2": {"namespace": "mesh", "serviceAccount": "web"},
          "n2-p1": {"namespace": "plain"}, "n2-p2": {"namespace": "mesh", "serviceAccount": "db"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/api"'
start_echo "$name" n1-p1 7000
api=$(pod_field "$name" n1-p1 ip)
client="$cadir/attacker"
"$ctl" ca mint --dir "$cadir" --identity spiffe://cluster.local/ns/plain/sa/attacker --out "$client" >/dev/null
log=$(agent_log "$name" n1)
served_before=$(grep -c '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker"' "$log" || true)

step "3,000 CONNECT + RST_STREAM from an authenticated peer"
out=$(nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" /usr/bin/python3 "$src_root/tests/interop/h2_peer.py" \
  rapid-reset "$api" 15008 "$client" "$client/root-cert.pem" "$api:7000" 3000)
echo "$out"
grep -qx 'goaway 11' <<<"$out" || fail "no GOAWAY ENHANCE_YOUR_CALM (11): $out"
wait_log "$name" n1 '"error":"HBONE peer reset too many streams before they were served (rapid reset): GOAWAY ENHANCE_YOUR_CALM"'
wait_log "$name" n1 '"msg":"HBONE streams reset by the peer before they were served"'
served=$(($(grep -c '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker"' "$log" || true) - served_before))
echo "streams that reached the pod: $served"
[ "$served" -le 20 ] || fail "$served reset streams still reached the pod"
lines=$(grep -c 'reset by the peer before they were served' "$log" || true)
[ "$lines" -le 5 ] || fail "$lines log lines for the resets: not aggregated"

step "others still reach the pod"
check_tcp "$name" n1-p2 n1-p1 7000
check_tcp "$name" n2-p2 n1-p1 7000
down_and_check "$name" "$before"
