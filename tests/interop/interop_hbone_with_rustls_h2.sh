#!/usr/bin/env bash
# Wire interoperability of ztunnel's TLS + HBONE cores with a peer built on
# the libraries Istio's ztunnel uses (rustls 0.23 with aws-lc-rs, h2, tokio;
# tests/interop/rustls-peer), both directions. rustls keeps its defaults:
# its server sends two TLS 1.3 session tickets with 32-byte nonces after
# every handshake, which a wolfSSL without --enable-ticket-nonce-malloc
# refuses (our client then fails every connection to Istio's ztunnel).
# Covered: many streams on one connection, 50 MB on a stream after the
# tickets, half-close, 401 both ways, an idle connection kept alive by
# PINGs past two intervals, wrong SAN and untrusted CA refused both ways
# with wolfSSL's error number in our log.
# "[ A ] && B || fail": fail unless both hold.
# shellcheck disable=SC2015 source=tests/interop/lib.sh
source "$(dirname "$0")/lib.sh"
rpeer=${ZT_RUSTLS_PEER:-$src/.deps/rustls-peer/release/rustls-peer}
[ -x "$rpeer" ] || { echo "SKIP: $rpeer not built (tools/bootstrap --test-peers; needs cargo)"; exit 77; }

rustls_server() { start_server "$rpeer" server --listen 127.0.0.1:0 --cert-dir "$work/web" --roots "$root" \
  --trust-domain cluster.local "$@"; }
ours_server() { start_server "$peer" server 0 "$work/web" "$root" cluster.local "$@"; }
# rustls_client CERT_DIR EXPECTED_ID ARGS...
rustls_client() {
  local dir=$1 want=$2
  shift 2
  "$rpeer" client --connect "127.0.0.1:$port" --cert-dir "$dir" --roots "$root" --expect "$want" \
    --authority 10.244.2.7:7000 "$@"
}

step "ours as client -> rustls server (tickets with 32-byte nonces): 100 streams, then 50 MB"
rustls_server
"$peer" client 127.0.0.1 "$port" "$work/client" "$root" "$web_id" 100 65536 ||
  fail "our client against rustls: $(cat "$work/server.err")"
"$peer" client 127.0.0.1 "$port" "$work/client" "$root" "$web_id" 1 52428800 ||
  fail "50 MB through rustls: $(cat "$work/server.err")"
grep -q "peer $client_id, Some(TLSv1_3), Some(TLS13_AES_256_GCM_SHA384), alpn Some(\"h2\")" "$work/server.err" ||
  fail "rustls did not see TLS 1.3 / AES-256-GCM / h2 with our identity: $(cat "$work/server.err")"
grep -q '200, 52428800 bytes in, 52428800 bytes out' "$work/server.err" || fail "rustls did not echo 50 MB"
kill "$server_pid"

step "rustls client -> our server: 100 streams, then 50 MB"
ours_server
out=$(rustls_client "$work/client" "$web_id" --streams 100 --bytes 65536) || fail "rustls client against ours"
grep -q "peer $web_id, Some(TLSv1_3), Some(TLS13_AES_256_GCM_SHA384)" <<<"$out" || fail "rustls saw: $out"
wait "$server_pid" || fail "our server failed: $(cat "$work/server.err")"
ours_server
rustls_client "$work/client" "$web_id" --bytes 52428800 >/dev/null || fail "50 MB through ours"
wait "$server_pid" || fail "our server failed: $(cat "$work/server.err")"

step "401: rustls refuses our CONNECT, we refuse the rustls CONNECT"
rustls_server --deny "$client_id"
rc=0; out=$("$peer" client 127.0.0.1 "$port" "$work/client" "$root" "$web_id" 1 10 2>&1) || rc=$?
[ "$rc" = 4 ] && grep -q 'status 401' <<<"$out" || fail "our client did not see 401 (exit $rc): $out"
grep -q '401 denied by policy' "$work/server.err" || fail "rustls did not deny: $(cat "$work/server.err")"
kill "$server_pid"
ours_server 401
rustls_client "$work/client" "$web_id" --streams 3 --status 401 >/dev/null || fail "rustls client did not see 401"
wait "$server_pid" || fail "our server: $(cat "$work/server.err")"

step "idle past two PING intervals (10 s each): the connection lives, then carries data again"
ours_server
out=$(rustls_client "$work/client" "$web_id" --rounds 2 --idle 25 --streams 5 --bytes 1048576) ||
  fail "rustls client after idling: $out"
pings=$(sed -n 's/.* \([0-9]*\) PING(s) acked$/\1/p' <<<"$out")
[ "${pings:-0}" -ge 2 ] || fail "our server acked ${pings:-0} PINGs in 25 s, want >= 2: $out"
wait "$server_pid" || fail "our server: $(cat "$work/server.err")"

step "wrong SAN: each side refuses the other"
rustls_server
rc=0; out=$("$peer" client 127.0.0.1 "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/db 1 10 2>&1) || rc=$?
[ "$rc" = 3 ] && grep -q 'peer did not present the expected SAN' <<<"$out" || fail "wrong SAN (exit $rc): $out"
kill "$server_pid"
ours_server
rc=0; out=$(rustls_client "$work/client" spiffe://cluster.local/ns/shop/sa/db 2>&1) || rc=$?
[ "$rc" != 0 ] && grep -q 'expected SAN' <<<"$out" || fail "rustls accepted a wrong SAN: $out"
kill "$server_pid" 2>/dev/null || true

step "untrusted CA: each side refuses the other, with wolfSSL's error number"
ours_server
rc=0; rustls_client "$work/evil-client" "$web_id" >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "rustls client with an untrusted certificate was served"
rc=0; wait "$server_pid" || rc=$?
[ "$rc" = 3 ] || fail "our server did not fail the handshake (exit $rc)"
grep -q 'TLS: handshake failed (server side): wolfSSL error -[0-9]*: .' "$work/server.err" ||
  fail "no wolfSSL error in: $(cat "$work/server.err")"
"$ctl" ca mint --dir "$work/evil" --identity "$web_id" --out "$work/evil-web" >/dev/null
start_server "$rpeer" server --listen 127.0.0.1:0 --cert-dir "$work/evil-web" --roots "$root" --trust-domain cluster.local
rc=0; out=$("$peer" client 127.0.0.1 "$port" "$work/client" "$root" "$web_id" 1 10 2>&1) || rc=$?
[ "$rc" = 3 ] && grep -q 'handshake failed (client side): wolfSSL error -[0-9]*: ' <<<"$out" ||
  fail "our client accepted an untrusted server, or said nothing useful (exit $rc): $out"
echo ok
