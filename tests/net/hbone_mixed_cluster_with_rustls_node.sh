#!/usr/bin/env bash
# A mixed cluster: node n3 runs no agent of ours but an HBONE peer built on
# Istio ztunnel's own libraries (tests/interop/rustls-peer: rustls + h2),
# serving its pod n3-p1 the way Istio's ztunnel does in dedicated mode (15008
# in the pod, CONNECT to the pod's own address only, 401 from its policy).
# Our agents on n1/n2 hold certificates from the same CA.
# Proves: our outbound reaches it (SPIFFE SAN checked, Istio's headers sent,
# 50 MB after its session tickets, an idle connection kept by PINGs past two
# 10 s intervals, no redial); its CONNECT reaches our 15008 (the pod sees
# the foreign pod's address); a policy denial each way: its 401 makes our
# agent cancel the stream and close the pod's socket cleanly, ours answers
# it 401.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
rpeer=${ZT_RUSTLS_PEER:-$src_root/.deps/rustls-peer/release/rustls-peer}
[ -x "$rpeer" ] || skip "$rpeer not built (tools/bootstrap --test-peers; needs cargo)"
name=$(unique_name mx)
deny_foreign_7100='{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy",
 "metadata":{"name":"no-foreign-7100","namespace":"shop"},
 "spec":{"action":"DENY","rules":[{"from":[{"source":{"principals":["cluster.local/ns/shop/sa/foreign"]}}],
                                   "to":[{"operation":{"ports":["7100"]}}]}]}}'
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n1-p2": {"namespace": "shop", "serviceAccount": "db"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"},
          "n3-p1": {"namespace": "shop", "serviceAccount": "foreign"}},
 "objects": ['"$deny_foreign_7100"']}'
before=$(host_links)
mesh_cluster_up "$name" "$spec" --nodes 3 --pods-per-node 2 --foreign-nodes 1
[ "$(info "$name" | jq '[.nodes[] | select(.agent)] | length')" = 2 ] || fail "n3 runs an agent"
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/db"'
pod_ip() { pod_field "$name" "$1" ip; }
in_pod() { local p=$1; shift; nsenter --net="/run/netns/$(pod_field "$name" "$p" netns)" "$@"; }
peer_dir=$(mktemp -d /tmp/zt-mx-XXXXXX)
temp_files+=("$peer_dir")
"$ctl" ca mint --dir "$cadir" --identity spiffe://cluster.local/ns/shop/sa/foreign --out "$peer_dir/cert" >/dev/null

step "the foreign node's peer serves n3-p1:15008 (denies shop/db), its app on 7000"
start_echo "$name" n3-p1 7000
in_pod n3-p1 "$rpeer" server --listen "$(pod_ip n3-p1):15008" --cert-dir "$peer_dir/cert" \
  --roots "$cadir/root-cert.pem" --trust-domain cluster.local --forward \
  --deny spiffe://cluster.local/ns/shop/sa/db > "$peer_dir/server.out" 2> "$peer_dir/server.err" &
started_pids+=("$!")
for _ in $(seq 1 50); do grep -qs '^port' "$peer_dir/server.out" && break; sleep 0.1; done
grep -q '^port 15008' "$peer_dir/server.out" || fail "peer did not start: $(cat "$peer_dir/server.err")"
peer_log() { cat "$peer_dir/server.err"; }

step "our agent -> rustls/h2 server: 256 KiB, then 50 MB after its session tickets"
# The foreign server does not spoof: the app sees its own pod address (and
# the echo carries its 16-byte greeting back to the peer).
in_pod n1-p1 "$py" "$echo_py" check "$(pod_ip n3-p1)" 7000 "$(pod_ip n3-p1)" || fail "n1-p1 -> n3-p1: $(peer_log)"
in_pod n1-p1 "$py" "$echo_py" check "$(pod_ip n3-p1)" 7000 "$(pod_ip n3-p1)" 52428800 || fail "50 MB to n3-p1"
peer_log | grep -q "peer spiffe://cluster.local/ns/shop/sa/web, Some(TLSv1_3), Some(TLS13_AES_256_GCM_SHA384)" ||
  fail "the peer did not see our client identity over TLS 1.3 AES-256-GCM: $(peer_log)"
peer_log | grep -q "CONNECT $(pod_ip n3-p1):7000 from spiffe://cluster.local/ns/shop/sa/web; baggage: .*k8s.namespace.name=shop.*; forwarded: for=\"$(pod_ip n1-p1):[0-9]*\"; traceparent: 00-[0-9a-f]\{32\}-[0-9a-f]\{16\}-0[01]" ||
  fail "CONNECT without Istio's headers: $(peer_log)"
peer_log | grep -q '200, 52428800 bytes in, 52428816 bytes out' || fail "50 MB not relayed: $(peer_log)"
wait_log "$name" n1 '"msg":"HBONE connection established".*"peer.identity":"spiffe://cluster.local/ns/shop/sa/foreign"'

step "idle 25 s (two PING intervals) on a tunnel, then data on it; no redial"
# Each agent worker pools its own connections, so the tunnel may dial one:
# count once it is open.
in_pod n1-p1 "$py" "$echo_py" check "$(pod_ip n3-p1)" 7000 "$(pod_ip n3-p1)" 65536 25 &
idler=$!
started_pids+=("$idler")
sleep 2
dials=$(peer_log | grep -c 'connection from 10.244.1')
wait "$idler" || fail "tunnel died while idle: $(peer_log)"
[ "$(peer_log | grep -c 'connection from 10.244.1')" = "$dials" ] || fail "our agent redialled: $(peer_log)"
[ "$(peer_log | grep -c 'server: PING acked')" -ge 2 ] || fail "our agent did not answer the peer's PINGs: $(peer_log)"
if peer_log | grep -q 'PING timeout'; then fail "PING timeout: $(peer_log)"; fi

step "its 401: our agent cancels the stream, the pod's socket is closed cleanly"
in_pod n1-p2 "$py" "$echo_py" expect-closed "$(pod_ip n3-p1)" 7000 || fail "n1-p2 did not see a clean close"
peer_log | grep -q "401 denied by policy" || fail "the peer did not deny shop/db: $(peer_log)"
wait_log "$name" n1 '"error":"HBONE CONNECT refused by the destination: status 401 (denied by authorization policy)"'
if peer_log | grep -q "stream failed"; then fail "the peer saw a broken stream: $(peer_log)"; fi

step "rustls/h2 client on n3-p1 -> our 15008 on n2-p1: 5 streams x 1 MiB, the pod sees n3-p1"
start_echo "$name" n2-p1 7000
start_echo "$name" n2-p1 7100
out=$(in_pod n3-p1 "$rpeer" client --connect "$(pod_ip n2-p1):15008" --cert-dir "$peer_dir/cert" \
  --roots "$cadir/root-cert.pem" --expect spiffe://cluster.local/ns/shop/sa/api \
  --authority "$(pod_ip n2-p1):7000" --streams 5 --bytes 1048576 --greeting 2>&1) || fail "foreign client: $out"
grep -q "greeting: from=$(pod_ip n3-p1)" <<<"$out" || fail "n2-p1 did not see the foreign pod's address: $out"
wait_log "$name" n2 '"msg":"HBONE connection accepted".*"peer.identity":"spiffe://cluster.local/ns/shop/sa/foreign"'

step "our 401: the DENY policy on port 7100 refuses the foreign identity"
out=$(in_pod n3-p1 "$rpeer" client --connect "$(pod_ip n2-p1):15008" --cert-dir "$peer_dir/cert" \
  --roots "$cadir/root-cert.pem" --expect spiffe://cluster.local/ns/shop/sa/api \
  --authority "$(pod_ip n2-p1):7100" --status 401 2>&1) || fail "foreign client did not get 401: $out"
wait_log "$name" n2 '"msg":"connection denied".*"src.identity":"spiffe://cluster.local/ns/shop/sa/foreign".*"policy":"shop/no-foreign-7100"'

down_and_check "$name" "$before"
