#!/usr/bin/env bash
# Certificates minted by the local CA, checked by independent tools:
# openssl verify and x509 -text (exact SAN, key type, usages, lifetime) and
# Python's cryptography (signature chain, SAN, usages, key pairing).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

"$ctl" ca init --dir "$work/ca" --trust-domain cluster.local
[ "$(stat -c %a "$work/ca/ca-key.pem")" = 600 ] || fail "CA key is not mode 0600"
"$ctl" ca mint --dir "$work/ca" --identity spiffe://cluster.local/ns/shop/sa/web \
  --out "$work/web" --lifetime 86400
[ "$(stat -c %a "$work/web/key.pem")" = 600 ] || fail "key.pem is not mode 0600"

openssl verify -CAfile "$work/ca/root-cert.pem" "$work/web/cert-chain.pem" | grep -q ': OK$' ||
  fail "openssl verify failed"
text=$(openssl x509 -in "$work/web/cert-chain.pem" -noout -text)
for want in 'URI:spiffe://cluster.local/ns/shop/sa/web' 'Public Key Algorithm: id-ecPublicKey' \
  'NIST CURVE: P-256' 'Digital Signature, Key Encipherment' \
  'TLS Web Server Authentication, TLS Web Client Authentication' 'Signature Algorithm: ecdsa-with-SHA256'; do
  grep -qF "$want" <<<"$text" || fail "x509 -text lacks: $want"
done
grep -qE '^ +Subject: *$' <<<"$text" || fail "subject is not empty"
start=$(date -d "$(openssl x509 -in "$work/web/cert-chain.pem" -noout -startdate | cut -d= -f2)" +%s)
end=$(date -d "$(openssl x509 -in "$work/web/cert-chain.pem" -noout -enddate | cut -d= -f2)" +%s)
[ $((end - start)) = 86400 ] || fail "lifetime is $((end - start)) s, expected 86400"

/usr/bin/python3 - "$work/web" "$work/ca/root-cert.pem" <<'PY'
import re
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

out, root_path = sys.argv[1], sys.argv[2]
pem = open(f"{out}/cert-chain.pem", "rb").read()
chain = [x509.load_pem_x509_certificate(b) for b in
         re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", pem, re.S)]
root = x509.load_pem_x509_certificate(open(root_path, "rb").read())
leaf, issuer = chain[0], chain[1]
assert len(chain) == 2, "chain must be leaf + issuing CA"
assert issuer == root and leaf.issuer == root.subject
root.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                         ec.ECDSA(leaf.signature_hash_algorithm))
san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
assert san.critical
assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == \
    ["spiffe://cluster.local/ns/shop/sa/web"]
assert len(list(san.value)) == 1
ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
assert isinstance(leaf.public_key().curve, ec.SECP256R1)
key = serialization.load_pem_private_key(open(f"{out}/key.pem", "rb").read(), None)
assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
assert bc.ca
print("cryptography: chain, SAN, usages and key pairing OK")
PY

step() { echo "--- $*"; }
step "intermediate CA: chains carry it"
"$ctl" ca init --dir "$work/int" --parent "$work/ca" >/dev/null
"$ctl" ca mint --dir "$work/int" --identity spiffe://cluster.local/ns/shop/sa/api --out "$work/api" >/dev/null
[ "$(grep -c 'BEGIN CERTIFICATE' "$work/api/cert-chain.pem")" = 3 ] || fail "chain is not leaf + intermediate + root"
cmp -s "$work/api/root-cert.pem" "$work/ca/root-cert.pem" || fail "intermediate's trust bundle is not the root's"
openssl verify -CAfile "$work/ca/root-cert.pem" -untrusted "$work/api/cert-chain.pem" "$work/api/cert-chain.pem" |
  grep -q ': OK$' || fail "openssl rejects the intermediate chain"
if openssl verify -CAfile "$work/ca/root-cert.pem" "$work/api/cert-chain.pem" >/dev/null 2>&1; then
  fail "leaf verified without its intermediate: the check proves nothing"
fi

step "ztunnel-ctl certificates lists a files-provider directory"
mkdir -p "$work/certs/shop"
cp -r "$work/web" "$work/certs/shop/web"
cp -r "$work/api" "$work/certs/shop/api"
out=$("$ctl" certificates --cert-dir "$work/certs") || fail "certificates: exit $?: $out"
echo "$out"
grep -q '^spiffe://cluster.local/ns/shop/sa/web  serial [0-9a-f]\{32\}  20.*issuer /O=cluster.local/CN=ztunnel local root CA  Available$' <<<"$out" ||
  fail "web line wrong"
grep -q 'sa/api .*CN=ztunnel intermediate CA  Available$' <<<"$out" || fail "api line wrong"
cp "$work/web/key.pem" "$work/certs/shop/api/key.pem"
rc=0; out=$("$ctl" certificates --cert-dir "$work/certs") || rc=$?
[ "$rc" = 1 ] || fail "a broken set must fail the listing (exit $rc)"
grep -q 'sa/api .*Unavailable: .*key.pem does not match' <<<"$out" || fail "no reason given: $out"

step "bad inputs"
rc=0; "$ctl" ca mint --dir "$work/ca" --identity spiffe://cluster.local/ns/shop --out "$work/x" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "malformed identity: exit $rc"
cp -r "$work/ca" "$work/bad"
printf '%s\n' '-----BEGIN EC PRIVATE KEY-----' 'bm90IGEga2V5' '-----END EC PRIVATE KEY-----' > "$work/bad/ca-key.pem"
rc=0; out=$("$ctl" ca mint --dir "$work/bad" --identity spiffe://cluster.local/ns/a/sa/b --out "$work/x" 2>&1) || rc=$?
if [ "$rc" != 1 ] || ! grep -q 'CA key' <<<"$out"; then fail "garbled key: exit $rc: $out"; fi
"$ctl" ca init --dir "$work/other" >/dev/null
cp "$work/other/ca-key.pem" "$work/bad/ca-key.pem"
rc=0; out=$("$ctl" ca mint --dir "$work/bad" --identity spiffe://cluster.local/ns/a/sa/b --out "$work/x" 2>&1) || rc=$?
if [ "$rc" != 1 ] || ! grep -q 'does not match' <<<"$out"; then fail "mismatched key: exit $rc: $out"; fi
echo ok
