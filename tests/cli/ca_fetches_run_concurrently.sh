#!/usr/bin/env bash
# The agent's way to a cluster CA (cert_cache + cert_fetcher + the ca
# provider, as with --identity-provider ca) against a signing CA on grpcio:
# 10 identities, at most 8 CSRs in flight (SPEC.md §4), each on its own
# fetch thread with its own key, RNG and TLS context; every identity gets
# a certificate that chains to the CA's roots. Run under ThreadSanitizer
# too by hand (build/tsan).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography missing: run tools/bootstrap"
ca_server_prepare
tool="$build/tests/cli/grpc_ca_tool"

# The server's TLS certificate (localhost) and the mesh root it signs with.
for ca in tls mesh; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/O=cluster.local/CN=$ca" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$work/$ca.key" -out "$work/$ca.pem" 2>/dev/null
done
ca_server_cert tls
printf 'sa-token-123\n' > "$work/token"
ca_server_start "$work/server.pem" "$work/server.key" sign "$work/mesh.pem" "$work/mesh.key" sa-token-123

out=$("$tool" fetch-many "https://localhost:$port" "$work/tls.pem" "$work/token" 10 2>&1) ||
  fail "not every identity got a certificate: $out"
[ "$out" = "10 of 10 available, at most 8 in flight" ] || fail "fetch-many said: $out"
[ "$(wc -l < "$work/record")" = 10 ] || fail "the CA saw $(wc -l < "$work/record") requests, not 10"
jq -e -s 'map(.impersonated) | sort == [range(10) | "spiffe://cluster.local/ns/shop/sa/sa\(.)"]' \
  "$work/record" >/dev/null || fail "the CA saw other identities: $(jq -r .impersonated "$work/record")"
echo "10 identities from a signing CA, at most 8 CSRs in flight"
echo ok
