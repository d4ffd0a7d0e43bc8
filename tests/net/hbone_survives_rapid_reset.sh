#!/usr/bin/env bash
# HTTP/2 rapid reset (CVE-2023-44487, issue 8/13 item 10) against a live
# 15008: an authenticated peer opens CONNECT streams and resets each at
# once, 3,000 of them. A stream reset in the read batch it arrived in never
# reaches the pod (no upstream connection, no access-log line); past a
# budget (a burst of 100, then 10 a second) the agent answers GOAWAY
# ENHANCE_YOUR_CALM and closes the connection; the resets are logged in
# aggregate; other pods' traffic to the same pod is unaffected. The same
# peer opening (not resetting) 400 streams in four quick batches, against
# an agent restarted with --max-stream-rate 50, gets a burst of 50 and then
# 50 a second served and 503 for the rest, counted, in a few log lines, no
# access-log line per refusal. A peer that sends DATA on stream 0 in the
# middle of a relay gets GOAWAY PROTOCOL_ERROR and loses the connection;
# its relayed stream is logged with the error.
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

step "an authenticated peer breaking its TLS mid-relay: the relayed stream ends, logged with the reason (ASan-clean)"
broken='"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker".*"error":"TLS'
n=$(grep -c "$broken" "$log" || true)
out=$(nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" /usr/bin/python3 "$src_root/tests/interop/h2_peer.py" \
  connect "$api" 15008 "$client" "$client/root-cert.pem" "$api:7000" then-garbage)
echo "$out"
grep -qx 'status 200' <<<"$out" || fail "the stream did not relay: $out"
secs=$(sed -n 's/^closed after //p' <<<"$out")
[ -n "$secs" ] && [ "$secs" -le 5 ] || fail "the agent kept a connection whose TLS broke: $out"
for _ in $(seq 1 50); do [ "$(grep -c "$broken" "$log" || true)" -gt "$n" ] && break; sleep 0.1; done
[ "$(grep -c "$broken" "$log" || true)" -gt "$n" ] ||
  fail "the relayed stream's end was not logged with the TLS error: $(grep attacker "$log" | tail -n 2)"
assert_agents_clean "$name" # the link's error text, freed with the link, was read by the tunnel's log line

step "an authenticated peer sending DATA on stream 0 mid-relay: GOAWAY PROTOCOL_ERROR, the connection ends, the stream is logged"
n=$(grep -c '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker".*"error":"' "$log" || true)
out=$(nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" /usr/bin/python3 "$src_root/tests/interop/h2_peer.py" \
  connect "$api" 15008 "$client" "$client/root-cert.pem" "$api:7000" then-bad-frame)
echo "$out"
grep -qx 'status 200' <<<"$out" || fail "the stream did not relay: $out"
grep -qx 'goaway 1' <<<"$out" || fail "no GOAWAY PROTOCOL_ERROR (1) for DATA on stream 0: $out"
secs=$(sed -n 's/^closed after //p' <<<"$out")
[ -n "$secs" ] && [ "$secs" -le 5 ] || fail "the agent kept a connection after an HTTP/2 connection error: $out"
for _ in $(seq 1 50); do
  [ "$(grep -c '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker".*"error":"' "$log" || true)" -gt "$n" ] && break
  sleep 0.1
done
[ "$(grep -c '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker".*"error":"' "$log" || true)" -gt "$n" ] ||
  fail "the relayed stream's end was not logged with an error: $(grep attacker "$log" | tail -n 2)"
grep attacker "$log" | tail -n 1 | grep -q '"error":"HTTP/2 connection error: GOAWAY PROTOCOL_ERROR sent: DATA: stream_id == 0' ||
  fail "the stream's line does not say what the peer did: $(grep attacker "$log" | tail -n 1)"
assert_agents_clean "$name"

step "400 streams in four quick batches at --max-stream-rate 50: a burst of 50, then 50 a second served"
ZT_CLUSTER_AGENT_ARGS="--max-stream-rate 50" "$cluster" agent --name "$name" --node n1 roll
"$cluster" agent --name "$name" --node n1 ready
completed() { grep -c '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker"' "$log" || true; }
metric() {
  nsenter --net="/run/netns/zt-$name-n1" curl -sf -m 5 http://127.0.0.1:15020/metrics | awk -v m="$1" '$1 == m { print $2 }'
}
c0=$(completed) m0=$(metric 'ztunnel_limit_hits_total{limit="stream_rate"}')
# Four batches of 100, 0.6 s apart: well above the rate all along.
out=$(nsenter --net="/run/netns/$(pod_field "$name" n2-p1 netns)" /usr/bin/python3 "$src_root/tests/interop/h2_peer.py" \
  stream-burst "$api" 15008 "$client" "$client/root-cert.pem" "$api:7000" 400 0.6)
echo "$out"
ok=$(awk '$1 == "status" && $2 == 200 { print $3 }' <<<"$out") refused=$(awk '$1 == "status" && $2 == 503 { print $3 }' <<<"$out")
secs=$(awk '$1 == "seconds" { print $2 }' <<<"$out")
ok=${ok:-0} refused=${refused:-0}
[ $((ok + refused)) -eq 400 ] || fail "every stream must be answered 200 or 503: $out"
# A burst of 50, then 50 a second for as long as it ran: kept above the
# rate, the connection still gets the rate, not nothing.
max=$(awk -v s="$secs" 'BEGIN { printf "%d", 50 + 50 * s + 10 }')
min=$(awk -v s="$secs" 'BEGIN { printf "%d", 50 + 50 * (s - 0.3) * 0.7 }')
[ "$ok" -le "$max" ] || fail "$ok streams served in $secs s: more than --max-stream-rate 50 allows ($max)"
[ "$ok" -ge "$min" ] || fail "$ok streams served in $secs s above the rate: the rate must still be served (>= $min)"
[ "$refused" -ge 1 ] || fail "nothing refused"
m1=$(metric 'ztunnel_limit_hits_total{limit="stream_rate"}')
[ $((m1 - m0)) -eq "$refused" ] || fail "refusals counted $((m1 - m0)), answered 503 $refused"
wait_count_log "$name" n1 '"msg":"connection complete".*"src.identity":"spiffe://cluster.local/ns/plain/sa/attacker"' $((c0 + ok))
[ "$(completed)" -eq $((c0 + ok)) ] || fail "refused streams wrote access-log lines: $(( $(completed) - c0 )) for $ok served"
lines=$(grep -c 'faster than --max-stream-rate' "$log" || true)
[ "$lines" -ge 1 ] && [ "$lines" -le $(( ${secs%.*} + 2 )) ] || fail "$lines log lines for the refusals in $secs s: want one a second at most"

step "others still reach the pod"
check_tcp "$name" n1-p2 n1-p1 7000
check_tcp "$name" n2-p2 n1-p1 7000
down_and_check "$name" "$before"
