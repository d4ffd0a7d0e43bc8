#!/usr/bin/env bash
# Wire interoperability of ztunnel's TLS + HBONE cores with an independent
# peer (Python ssl/OpenSSL + h2), both directions: many streams on one
# connection, 50 MB on a stream, half-close; an untrusted CA and a wrong
# SAN must both fail.
# shellcheck source=tests/interop/lib.sh
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
h2py="$src/tests/interop/h2_peer.py"
"$py" -c 'import h2' 2>/dev/null || { echo "SKIP: python3-h2 missing (tools/bootstrap)"; exit 77; }

step "ours as client -> Python server: 100 streams, then 50 MB on one stream"
start_server "$py" "$h2py" server "$work/web" "$root"
"$peer" client 127.0.0.1 "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/web 100 65536 ||
  fail "our client against Python"
start_server "$py" "$h2py" server "$work/web" "$root"
"$peer" client 127.0.0.1 "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/web 1 52428800 ||
  fail "50 MB through Python"

step "Python client -> our server: 100 streams, then 50 MB"
start_server "$peer" server 0 "$work/web" "$root" cluster.local
"$py" "$h2py" client "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/web 100 65536 ||
  fail "Python client against ours"
wait "$server_pid" || fail "our server failed: $(cat "$work/server.err")"
start_server "$peer" server 0 "$work/web" "$root" cluster.local
"$py" "$h2py" client "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/web 1 52428800 ||
  fail "50 MB through ours"
wait "$server_pid" || fail "our server failed: $(cat "$work/server.err")"

step "wrong SAN: our client refuses the Python server"
start_server "$py" "$h2py" server "$work/web" "$root"
rc=0; out=$("$peer" client 127.0.0.1 "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/db 1 10 2>&1) || rc=$?
[ "$rc" = 3 ] || fail "wrong SAN: exit $rc: $out"
grep -q 'peer did not present the expected SAN' <<<"$out" || fail "no SAN reason: $out"

step "wrong SAN: the Python client refuses our server"
start_server "$peer" server 0 "$work/web" "$root" cluster.local
rc=0; out=$("$py" "$h2py" client "$port" "$work/client" "$root" spiffe://cluster.local/ns/shop/sa/db 1 10 2>&1) || rc=$?
if [ "$rc" = 0 ] || ! grep -q 'expected SAN' <<<"$out"; then fail "Python accepted a wrong SAN: $out"; fi

step "untrusted CA: our server refuses the Python client"
start_server "$peer" server 0 "$work/web" "$root" cluster.local
rc=0; "$py" "$h2py" client "$port" "$work/evil-client" "$root" spiffe://cluster.local/ns/shop/sa/web 1 10 >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "Python client with an untrusted certificate was served"
rc=0; wait "$server_pid" || rc=$?
[ "$rc" = 3 ] || fail "our server did not fail the handshake (exit $rc)"
grep -q 'TLS: handshake failed' "$work/server.err" || fail "no reason: $(cat "$work/server.err")"
echo ok
