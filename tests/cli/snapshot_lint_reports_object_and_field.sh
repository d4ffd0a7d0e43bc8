#!/usr/bin/env bash
# ztunnel-ctl snapshot lint on a kubectl-shaped file: clean passes; a broken
# policy is named with its field and exits 1; a broken file exits 1.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

out=$("$ctl" snapshot lint "$fixtures/cluster.json") || fail "clean fixture should exit 0: $out"
grep -q '7 pods (2 enrolled)' <<<"$out" || fail "summary missing: $out"

jq '.items |= map(if .metadata.name == "allow-frontend"
      then .spec.rules[0].from[0].source.ipBlocks = ["10.0.0.0/33"] else . end)' \
  "$fixtures/cluster.json" > "$work/broken.json"
rc=0
out=$("$ctl" snapshot lint "$work/broken.json") || rc=$?
echo "$out"
[ "$rc" = 1 ] || fail "broken policy: expected exit 1, got $rc"
grep -q '^invalid: AuthorizationPolicy shop/allow-frontend: spec.rules\[0\].from\[0\].source.ipBlocks\[0\]: "10.0.0.0/33" is not an IP address or CIDR$' <<<"$out" ||
  fail "lint did not name object and field"

head -c 300 "$fixtures/cluster.json" > "$work/truncated.json"
rc=0
out=$("$ctl" snapshot lint "$work/truncated.json") || rc=$?
[ "$rc" = 1 ] || fail "truncated: expected exit 1, got $rc"
grep -q '^error: invalid JSON at line' <<<"$out" || fail "truncated: no position: $out"

rc=0
"$ctl" snapshot lint "$work/missing.json" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "missing file: expected exit 1, got $rc"
rc=0
"$ctl" snapshot lint 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "usage error: expected exit 2, got $rc"
echo ok
