#!/usr/bin/env bash
# `ztunnel preflight` on a test node (its own network namespace and bpffs):
# a node that can run the agent passes; each blocking problem, made real
# here, fails it (exit 1) with the check's name and the fix: io_uring
# refused by a seccomp filter (as a container runtime's default profile
# does), the agent's fwmark taken by another rule (as Cilium's can be) and
# then freed by choosing another mark, a missing capability, no primary CNI
# configuration. Nothing is left behind by the checks (the program is
# loaded, never pinned).
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || skip "python3-seccomp missing: run tools/bootstrap"
name=$(unique_name pf)
before=$(host_links)
new_spec '{"namespaces": {"a": {}}, "pods": {"n1-p1": {"namespace": "a"}}}'
cluster_up "$name" --spec "$spec" --nodes 1 --pods-per-node 1
state=$(info "$name" | jq -r .stateDir)
ns=/run/netns/$(info "$name" | jq -r '.nodes[0].netns')
conf=$(info "$name" | jq -r '.nodes[0].cniConfDir')
work=$(mktemp -d /tmp/zt-preflight-XXXXXX)
temp_files+=("$work")
# preflight [WRAPPER...] -- [FLAGS...]: sets $out and $rc.
preflight() {
  local wrap=()
  while [ "$1" != -- ]; do wrap+=("$1"); shift; done
  shift
  rc=0
  out=$(nsenter --net="$ns" "${wrap[@]}" "$build/ztunnel/ztunnel" preflight --bpf-pin-dir "$state/bpf/n1" \
    --cni-conf-dir "$conf" "$@" 2>&1) || rc=$?
  echo "$out"
  if grep -q 'Sanitizer\|runtime error:' <<<"$out"; then fail "sanitizer finding"; fi
}
# line CHECK RESULT PATTERN: the check's line says RESULT and matches PATTERN.
line() { grep -E "^$1 +$2 " <<<"$out" | grep -q -- "$3" || fail "$1: want $2 matching \"$3\": $out"; }
fix() { grep -A1 -E "^$1 +FAIL " <<<"$out" | grep -E '^ +fix: ' | grep -q -- "$2" || fail "$1: no fix mentioning \"$2\""; }

step "a node that can run the agent"
preflight --
[ "$rc" = 0 ] || fail "preflight failed on a good node (exit $rc)"
line kernel ok "TCX links, reuseport listeners"
line program ok "loads"
line bpffs ok "is bpffs"
line io_uring ok allowed
line routing ok "fwmark 0x400/0xf00, table 100: free"
line cni ok "primary network found"
[ -z "$(find "$state/bpf/n1" -mindepth 1 2>/dev/null)" ] || fail "preflight pinned something: $(find "$state/bpf/n1")"

step "io_uring refused by a seccomp filter"
cat > "$work/deny_io_uring.py" <<'PY'
import errno, os, sys, seccomp
f = seccomp.SyscallFilter(seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(errno.EPERM), "io_uring_setup")
f.load()
os.execv(sys.argv[1], sys.argv[1:])
PY
preflight /usr/bin/python3 "$work/deny_io_uring.py" --
[ "$rc" = 1 ] || fail "preflight passed with io_uring blocked"
line io_uring FAIL "Operation not permitted"
fix io_uring "seccomp profile"
fix io_uring "daemonset/seccomp/ztunnel.json"

step "the fwmark taken by another rule, then another mark chosen"
ip -n "${ns##*/}" rule add fwmark 0x400/0xf00 lookup 200 pref 90
preflight --
[ "$rc" = 1 ] || fail "preflight passed with the mark taken"
line routing FAIL "another rule uses the same mark: fwmark 0x400/0xf00 lookup 200"
fix routing "--fwmark"
preflight -- --fwmark 0x800
[ "$rc" = 0 ] || fail "preflight failed with a free mark (exit $rc)"
line routing ok "fwmark 0x800/0xf00, table 100: free"
ip -n "${ns##*/}" rule del fwmark 0x400/0xf00 lookup 200 pref 90

step "a missing capability"
preflight setpriv --bounding-set -net_admin --inh-caps -net_admin --
[ "$rc" = 1 ] || fail "preflight passed without CAP_NET_ADMIN"
line capabilities FAIL "missing: NET_ADMIN"

step "no primary CNI configuration"
mkdir -p "$work/empty-cni"
preflight -- --cni-conf-dir "$work/empty-cni"
[ "$rc" = 1 ] || fail "preflight passed without a CNI configuration"
line cni FAIL "no primary network"
fix cni "install the cluster's network"

"$cluster" down --name "$name"
clusters=()
assert_gone "$name" "$before"
echo "PASS"
