#!/usr/bin/env bash
# The README's first command works: tools/demo builds, brings up agents,
# shows mesh traffic relayed by the agents and non-mesh traffic untouched,
# and leaves nothing behind.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name demo)
before=$(host_links)
clusters+=("$name")
out=$("$src_root/tools/demo" --skip-bootstrap --name "$name" 2>&1) || { echo "$out"; fail "demo exited non-zero"; }
echo "$out" | tail -n 40
[ "$(grep -c ' ok, server saw ' <<<"$out")" = 4 ] || fail "expected 4 successful connections"
[ "$(grep -c 'relayed by the agent' <<<"$out")" = 3 ] || fail "expected 3 relayed connections"
grep -q 'not captured (no mesh pod involved)' <<<"$out" || fail "non-mesh traffic should not be captured"
grep -q '^  captured_outbound [1-9]' <<<"$out" || fail "no capture counters shown"
if grep -q FAILED <<<"$out"; then fail "demo reported a failed connection"; fi
clusters=()
assert_gone "$name" "$before"
echo "ok"
