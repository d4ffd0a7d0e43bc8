#!/usr/bin/env bash
# The key and CSR the agent sends a cluster CA (SPEC.md §4), read by
# OpenSSL: the CSR's signature verifies with the key it carries, which is
# the PKCS#8 P-256 key we keep; its subject is empty; its only SAN is the
# SPIFFE id as a URI, marked critical; SHA-256 with ECDSA.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || skip "openssl missing: run tools/bootstrap"
tool="$build/tests/cli/grpc_ca_tool"
id=spiffe://cluster.local/ns/shop/sa/web
"$tool" make-csr "$id" "$work/csr.pem" "$work/key.pem" || fail "make-csr failed"
openssl req -in "$work/csr.pem" -noout -verify 2>&1 | grep -q 'verify OK' || fail "the CSR's signature does not verify"
text=$(openssl req -in "$work/csr.pem" -noout -text)
grep -q 'Signature Algorithm: ecdsa-with-SHA256' <<<"$text" || fail "not ECDSA with SHA-256: $text"
grep -Eq '^ +Version: 1 \(0x0\)' <<<"$text" || fail "not a PKCS#10 v1 request: $(grep Version <<<"$text")"
grep -q 'ASN1 OID: prime256v1' <<<"$text" || fail "not a P-256 key: $text"
grep -Eq '^ +Subject: *$' <<<"$text" || fail "the subject is not empty: $(grep Subject: <<<"$text")"
grep -A1 'X509v3 Subject Alternative Name: critical' <<<"$text" | grep -q "URI:$id\$" ||
  fail "the SAN is not the critical URI $id: $text"
[ "$(grep -c 'URI:\|DNS:\|IP Address:\|email:' <<<"$text")" = 1 ] || fail "more than one SAN: $text"
head -n 1 "$work/key.pem" | grep -q '^-----BEGIN PRIVATE KEY-----$' || fail "the key is not PKCS#8"
[ "$(openssl pkey -in "$work/key.pem" -pubout)" = "$(openssl req -in "$work/csr.pem" -noout -pubkey)" ] ||
  fail "the CSR carries another key than the one kept"
echo ok
