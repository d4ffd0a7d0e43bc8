#!/usr/bin/env bash
# --stream-idle-timeout (issue 8/13 item 11; off by default, as in Istio):
# an inbound HBONE stream that moves no bytes either way for that long is
# closed, logged and counted; a stream that keeps moving bytes stays.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name id)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "web"}, "n2-p1": {"namespace": "mesh", "serviceAccount": "api"}}}'
agent_extra="--stream-idle-timeout 2"
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/api"'
start_echo "$name" n2-p1 7000
in_pod() { local p=$1; shift; nsenter --net="/run/netns/$(pod_field "$name" "$p" netns)" "$@"; }

step "a stream idle for 4 s is closed by the 2 s timeout"
if in_pod n1-p1 "$py" "$echo_py" check "$(pod_field "$name" n2-p1 ip)" 7000 "$(pod_field "$name" n1-p1 ip)" 1024 4 2>/dev/null; then
  fail "an idle stream survived --stream-idle-timeout"
fi
wait_log "$name" n2 '"direction":"inbound".*"error":"idle timeout (--stream-idle-timeout)"'

step "a stream that keeps moving bytes for 4 s stays"
out=$(in_pod n1-p1 "$py" "$echo_py" hold "$(pod_field "$name" n2-p1 ip)" 7000 4 2>&1) && fail "active stream: $out"
grep -q 'connection still open after 4' <<<"$out" || fail "an active stream was closed: $out"

down_and_check "$name" "$before"
