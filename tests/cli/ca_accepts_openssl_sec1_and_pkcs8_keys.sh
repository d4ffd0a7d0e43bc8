#!/usr/bin/env bash
# CA keys as operators bring them (openssl, cert-manager, Istio's cacerts
# Secret): SEC1 and unencrypted PKCS#8 P-256 keys both sign, through
# `ca mint` and `ca init --parent` (the same loader as the agent's local
# CA); RSA, other curves and encrypted keys are refused with the reason.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

# openssl_ca DIR KEYGEN...: a self-signed CA whose key the command wrote.
openssl_ca() {
  local dir=$1
  shift
  mkdir -p "$dir"
  "$@" -out "$dir/ca-key.pem" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca-key.pem" -subj /O=cluster.local -days 10 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$dir/ca-cert.pem"
  cp "$dir/ca-cert.pem" "$dir/root-cert.pem"
}

openssl_ca "$work/sec1" openssl ecparam -name prime256v1 -genkey -noout
openssl_ca "$work/pkcs8" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256
grep -q 'BEGIN EC PRIVATE KEY' "$work/sec1/ca-key.pem" || fail "openssl did not write SEC1"
grep -q 'BEGIN PRIVATE KEY' "$work/pkcs8/ca-key.pem" || fail "openssl did not write PKCS#8"
# PKCS#8 with the curve only in the AlgorithmIdentifier (what openssl 3
# writes), the case that used to be refused.
openssl asn1parse -in "$work/pkcs8/ca-key.pem" -strparse 27 | grep -q 'cont \[ 0 \]' &&
  fail "test premise: the inner key of openssl's PKCS#8 names its curve"

for kind in sec1 pkcs8; do
  "$ctl" ca mint --dir "$work/$kind" --identity spiffe://cluster.local/ns/shop/sa/web \
    --out "$work/$kind-leaf" >/dev/null || fail "$kind CA key refused by ca mint"
  openssl verify -CAfile "$work/$kind/root-cert.pem" "$work/$kind-leaf/cert-chain.pem" | grep -q ': OK$' ||
    fail "leaf of the $kind CA does not verify"
  "$ctl" ca init --dir "$work/$kind-int" --parent "$work/$kind" >/dev/null ||
    fail "$kind CA key refused as a parent"
  "$ctl" ca mint --dir "$work/$kind-int" --identity spiffe://cluster.local/ns/shop/sa/db \
    --out "$work/$kind-int-leaf" >/dev/null || fail "intermediate under the $kind CA cannot mint"
  openssl verify -CAfile "$work/$kind/root-cert.pem" -untrusted "$work/$kind-int/ca-cert.pem" \
    "$work/$kind-int-leaf/cert-chain.pem" | grep -q ': OK$' || fail "chain under the $kind CA does not verify"
done

# refused KIND "REASON" KEYGEN...: the CA is refused and says why.
refused() {
  local kind=$1 want=$2 out rc=0
  shift 2
  openssl_ca "$work/$kind" "$@"
  out=$("$ctl" ca mint --dir "$work/$kind" --identity spiffe://cluster.local/ns/shop/sa/web \
    --out "$work/$kind-leaf" 2>&1) || rc=$?
  [ "$rc" != 0 ] || fail "$kind CA key accepted"
  grep -qF "$want" <<<"$out" || fail "$kind: no clear reason: $out"
}
refused p384 "other than P-256" openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384
refused rsa "RSA" openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048
# An encrypted key cannot sign a request (openssl req needs the password).
mkdir -p "$work/enc"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:x -out "$work/enc/ca-key.pem"
openssl req -x509 -new -key "$work/enc/ca-key.pem" -passin pass:x -subj /O=cluster.local -days 10 \
  -addext basicConstraints=critical,CA:TRUE -out "$work/enc/ca-cert.pem"
cp "$work/enc/ca-cert.pem" "$work/enc/root-cert.pem"
rc=0; out=$("$ctl" ca mint --dir "$work/enc" --identity spiffe://cluster.local/ns/shop/sa/web \
  --out "$work/enc-leaf" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "encrypted CA key accepted"
grep -qF "encrypted" <<<"$out" || fail "encrypted key: no clear reason: $out"
echo ok
