#!/usr/bin/env bash
# Our CreateCertificate client (nghttp2 + wolfSSL, ztunnel/grpc/client.c)
# against a CA on another gRPC stack (grpcio, fixtures/ca/ca_server.py,
# with Istio's own messages): the call carries the CSR, 24 h, the
# ImpersonatedIdentity, "authorization: Bearer <token>" and "clusterid" as
# istiod expects; the chain comes back in order. A CA that refuses
# (PERMISSION_DENIED) is reported with its message; an answer without a
# certificate, a CA whose certificate does not chain to our roots, and one
# whose name is not the address's are errors, never a certificate.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
ca_server_prepare
tool="$build/tests/cli/grpc_ca_tool"

# A CA for the server's TLS certificate (localhost), and another one.
for ca in ca other; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$ca" \
    -keyout "$work/$ca.key" -out "$work/$ca.pem" 2>/dev/null
done
ca_server_cert ca
printf 'sa-token-123\n' > "$work/token"
"$tool" make-csr spiffe://cluster.local/ns/shop/sa/web "$work/csr.pem" "$work/key.pem"
server() { ca_server_start "$work/server.pem" "$work/server.key" "$1"; } # MODE; sets $port
call() { # ADDRESS ROOTS: sets $out and $rc
  rc=0
  out=$("$tool" call "$1" "$2" "$(cat "$work/token")" cluster-a "$work/csr.pem" spiffe://cluster.local/ns/shop/sa/web 2>&1 |
    tr '\0' '|') || rc=$?
}

server ok
call "https://localhost:$port" "$work/ca.pem"
[ "$rc" = 0 ] || fail "call failed: $out"
[ "$out" = "LEAF for spiffe://cluster.local/ns/shop/sa/web|ROOT|" ] || fail "chain read as \"$out\""
jq -e --rawfile csr "$work/csr.pem" '.csr == $csr and .validity == 86400 and
  .impersonated == "spiffe://cluster.local/ns/shop/sa/web" and .authorization == "Bearer sa-token-123" and
  .clusterid == "cluster-a"' "$work/record" >/dev/null || fail "the CA saw: $(cat "$work/record")"
echo "grpcio CA: request and headers as istiod expects, chain in order"

call "https://localhost:$port" "$work/other.pem"
[ "$rc" = 1 ] && [[ $out == *"TLS with the CA"* ]] || fail "a CA certificate from other roots was accepted: $out"
call "https://127.0.0.1:$port" "$work/ca.pem"
[ "$rc" = 1 ] && [[ $out == *"TLS with the CA"* ]] || fail "a CA certificate for another name was accepted: $out"
echo "TLS: other roots and another name refused"

kill "${pids[@]}"
pids=()
server deny
call "https://localhost:$port" "$work/ca.pem"
[ "$rc" = 1 ] && [[ $out == *"grpc-status 7: identity has no pod on the caller's node"* ]] ||
  fail "a refusal was not reported with its status and message: $out"
kill "${pids[@]}"
pids=()
server empty
call "https://localhost:$port" "$work/ca.pem"
[ "$rc" = 1 ] && [[ $out == *"not a certificate chain"* ]] || fail "an empty answer was taken: $out"
echo "refusal and empty answer: errors, no certificate"
echo ok
