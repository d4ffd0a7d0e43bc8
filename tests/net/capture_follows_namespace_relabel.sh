#!/usr/bin/env bash
# Relabelling a namespace in the snapshot releases and re-enrolls its
# running pods live: capture stops and resumes, connections keep working,
# no pod is restarted.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name rel)
new_spec '{}'
echo '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}}}' > "$spec"
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n1 '"msg":"snapshot applied".*"generation":2'
start_echo "$name" n2-p1 7000

o=$(stat "$name" n1 captured_outbound)
check_tcp "$name" n1-p1 n2-p1 7000
[ "$(stat "$name" n1 captured_outbound)" = $((o + 1)) ] || fail "not captured while enrolled"

step "label removed"
echo '{"namespaces": {"default": {}}}' > "$spec"
"$cluster" publish --name "$name" --spec "$spec"
wait_log "$name" n1 '"msg":"pod released".*"pod":"n1-p1"'
wait_log "$name" n2 '"msg":"pod released".*"pod":"n2-p1"'
o=$(stat "$name" n1 captured_outbound)
i=$(stat "$name" n2 captured_inbound_plain)
check_tcp "$name" n1-p1 n2-p1 7000
[ "$(stat "$name" n1 captured_outbound)" = "$o" ] || fail "captured after release"
[ "$(stat "$name" n2 captured_inbound_plain)" = "$i" ] || fail "captured inbound after release"

step "label back"
echo '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}}}' > "$spec"
"$cluster" publish --name "$name" --spec "$spec"
wait_log "$name" n1 '"msg":"pod enrolled".*"pod":"n1-p1".*"reason":"enrolled: namespace label'
o=$(stat "$name" n1 captured_outbound)
check_tcp "$name" n1-p1 n2-p1 7000
[ "$(stat "$name" n1 captured_outbound)" = $((o + 1)) ] || fail "not captured after re-enrolling"
assert_agents_clean "$name"
echo ok
