#!/usr/bin/env bash
# The README's first command works: tools/demo builds, brings up a real
# kube-apiserver and agents following it, labels a namespace through the
# API, shows mesh traffic in HBONE with identities, non-mesh traffic
# untouched, a connection denied by an AuthorizationPolicy created through
# the API, and leaves nothing behind (control plane included).
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name demo)
before=$(host_links)
clusters+=("$name")
out=$("$src_root/tools/demo" --skip-bootstrap --name "$name" 2>&1) || { echo "$out"; fail "demo exited non-zero"; }
echo "$out" | tail -n 40
grep -q 'agent n1: shop/n1-p1 enrolled, identity spiffe://cluster.local/ns/shop/sa/web' <<<"$out" ||
  fail "labelling shop through the API did not enroll n1-p1"
[ "$(grep -c ' ok, server saw ' <<<"$out")" = 5 ] || fail "expected 5 successful connections"
[ "$(grep -c 'relayed by the agent' <<<"$out")" = 4 ] || fail "expected 4 relayed connections"
grep -q 'mTLS spiffe://cluster.local/ns/shop/sa/web -> spiffe://cluster.local/ns/shop/sa/api' <<<"$out" ||
  fail "no HBONE connection with identities shown"
grep -q 'denied by policy, as expected' <<<"$out" || fail "no policy denial shown"
grep -q 'agent n2: connection denied legacy/n1-p2 -> shop/n2-p1 TCP: allow policies exist, but none allowed' <<<"$out" ||
  fail "the denial's log line is missing"
grep -q 'not captured (no mesh pod involved)' <<<"$out" || fail "non-mesh traffic should not be captured"
grep -q '^  captured_outbound [1-9]' <<<"$out" || fail "no capture counters shown"
if grep -q FAILED <<<"$out"; then fail "demo reported a failed connection"; fi
clusters=()
assert_gone "$name" "$before"
echo "ok"
