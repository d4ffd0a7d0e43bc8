#!/usr/bin/env bash
# The README's first command works: tools/demo builds, shows all 12 pod to
# pod connections succeeding and leaves nothing behind.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name demo)
before=$(host_links)
clusters+=("$name")
out=$("$src_root/tools/demo" --skip-bootstrap --name "$name" 2>&1) || { echo "$out"; fail "demo exited non-zero"; }
echo "$out" | tail -n 20
[ "$(grep -c ' ok (server saw ' <<<"$out")" = 12 ] || fail "expected 12 successful connections"
if grep -q FAILED <<<"$out"; then fail "demo reported a failed connection"; fi
clusters=()
assert_gone "$name" "$before"
echo "ok"
