#!/usr/bin/env bash
# ztunnel-ctl check, offline: the allowed case names the ALLOW rule, a DENY
# names its policy, a miss names the nearest ALLOW rule, a plaintext
# client under STRICT is refused with the PeerAuthentication; exit status
# 0 allowed, 1 denied, 2 bad input.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
snap="$fixtures/check_shop.json"

expect() { # RC PATTERN ARGS...
  local want=$1 pattern=$2 rc=0 out
  shift 2
  out=$("$ctl" check --snapshot "$snap" "$@" 2>&1) || rc=$?
  echo "$out"
  [ "$rc" = "$want" ] || fail "check $*: exit $rc, want $want"
  grep -q -- "$pattern" <<<"$out" || fail "check $*: no \"$pattern\""
}
expect 0 '^ALLOWED: allowed by shop/allow-web rule 0$' --from shop/web --to shop/api
expect 1 '^DENIED: explicitly denied by shop/no-9090 rule 0$' --from shop/web --to shop/api:9090
expect 1 'nearest ALLOW: shop/allow-web rule 0 (1 of 2' --from shop/web --to shop/api:7000
expect 1 'PeerAuthentication mode STRICT (shop/strict)' --from legacy/old --to shop/api
expect 1 'PeerAuthentication mode STRICT' --from-ip 10.9.9.9 --to-ip 10.0.0.2:8080
expect 0 'not in the mesh' --from shop/web --to legacy/old:80
expect 2 'no pod "shop/nope"' --from shop/nope --to shop/api
expect 2 'bad port' --from shop/web --to shop/api:http
rc=0
"$ctl" check --from shop/web >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "missing arguments: exit $rc, want 2"
echo ok
