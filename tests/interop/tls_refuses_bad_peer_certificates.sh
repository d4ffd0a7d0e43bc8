#!/usr/bin/env bash
# Certificates signed by the trusted CA but unfit for HBONE are refused by
# our TLS core in both roles (SPEC.md §2.1): only a URI SAN names a SPIFFE
# identity (a DNS SAN spelling "spiffe://..." names nobody), a key usage
# without digitalSignature cannot sign TLS 1.3, and an extended key usage
# must name the role (clientAuth for a client, serverAuth for a server). A
# well-formed certificate from the same openssl recipe passes, so the test
# can fail. Leaves are made with openssl, not our CA.
# "[ A ] && B || fail": fail unless both hold.
# shellcheck disable=SC2015 source=tests/interop/lib.sh
source "$(dirname "$0")/lib.sh"

# leaf NAME EXTENSIONS: an openssl-signed P-256 leaf in $work/NAME.
leaf() {
  local d="$work/$1"
  mkdir -p "$d"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/key.pem" 2>/dev/null
  openssl req -new -key "$d/key.pem" -subj /O=test -out "$d/csr.pem"
  printf '%s\n' "$2" > "$d/ext.cnf"
  openssl x509 -req -in "$d/csr.pem" -CA "$work/ca/ca-cert.pem" -CAkey "$work/ca/ca-key.pem" \
    -days 1 -extfile "$d/ext.cnf" -out "$d/leaf.pem" 2>/dev/null
  cat "$d/leaf.pem" "$work/ca/ca-cert.pem" > "$d/cert-chain.pem"
}
good='keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth'
leaf ok "$good
subjectAltName=critical,URI:$web_id"
leaf dns "$good
subjectAltName=critical,DNS:spiffe://cluster.local/ns/shop/sa/web"
leaf nodigsig "keyUsage=critical,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:$web_id"
leaf serveronly "keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=critical,URI:$web_id"
leaf clientonly "keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=critical,URI:$web_id"

# as_server DIR WANT: our server presents DIR's certificate to our client;
# WANT is "ok" or an extended regexp of the client's error (ours, or
# wolfSSL's own when it refuses first).
as_server() {
  local rc=0 out
  start_server "$peer" server 0 "$work/$1" "$root" cluster.local
  out=$("$peer" client 127.0.0.1 "$port" "$work/client" "$root" "$web_id" 1 100 2>&1) || rc=$?
  kill "$server_pid" 2>/dev/null || true
  if [ "$2" = ok ]; then
    [ "$rc" = 0 ] || fail "server certificate $1 refused: $out"
  else
    [ "$rc" = 3 ] && grep -qEi "$2" <<<"$out" || fail "server certificate $1: exit $rc, want '$2': $out"
  fi
}
# as_client DIR WANT: our client presents DIR's certificate to our server.
as_client() {
  local rc=0 src=0
  start_server "$peer" server 0 "$work/web" "$root" cluster.local
  "$peer" client 127.0.0.1 "$port" "$work/$1" "$root" "$web_id" 1 100 >/dev/null 2>&1 || rc=$?
  wait "$server_pid" || src=$?
  if [ "$2" = ok ]; then
    [ "$rc" = 0 ] && [ "$src" = 0 ] || fail "client certificate $1 refused: $(cat "$work/server.err")"
  else
    [ "$src" = 3 ] && grep -qEi "$2" "$work/server.err" ||
      fail "client certificate $1: server exit $src, want '$2': $(cat "$work/server.err")"
  fi
}

step "control: a well-formed openssl leaf works in both roles"
as_server ok ok
as_client ok ok
step "a DNS SAN spelling spiffe:// is no identity"
as_server dns "peer certificate has no SPIFFE URI SAN"
as_client dns "peer certificate has no SPIFFE URI SAN"
step "key usage without digitalSignature"
as_server nodigsig "key usage does not allow digitalSignature"
as_client nodigsig "key usage does not allow digitalSignature"
step "extended key usage must name the role"
as_server clientonly "extended key usage lacks serverAuth|Ext Key Use server/client auth not set"
as_client serveronly "extended key usage lacks clientAuth|Ext Key Use server/client auth not set"
as_server serveronly ok
as_client clientonly ok
echo ok
