#!/usr/bin/env bash
# A security agent never relays mesh traffic in plaintext on its own: with
# capture on and no --identity-provider (the default), it refuses to start
# and says why; plaintext needs the explicit, loudly named
# --identity-provider insecure-plaintext. (It used to default to "none" and
# relay everything unencrypted.)
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

echo '{"apiVersion":"v1","kind":"List","items":[]}' > "$work/snap.json"
rc=0
timeout 10 "$agent" --snapshot "$work/snap.json" --node-name n1 > "$work/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "agent without an identity provider: exit $rc, want 1: $(cat "$work/out")"
grep -q 'no --identity-provider: refusing to start, mesh traffic would be relayed in plaintext' "$work/out" ||
  fail "no clear reason: $(cat "$work/out")"
# An empty value through the environment: still refused.
rc=0
ZTUNNEL_IDENTITY_PROVIDER='' timeout 10 "$agent" --snapshot "$work/snap.json" --node-name n1 > "$work/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "empty ZTUNNEL_IDENTITY_PROVIDER: exit $rc"
rc=0
timeout 10 "$agent" --snapshot "$work/snap.json" --identity-provider none > "$work/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "the old value 'none' was accepted"
help=$("$agent" --help)
grep -q -- '--identity-provider insecure-plaintext' <<<"$help" || fail "--help does not say how to run insecurely"
echo ok
