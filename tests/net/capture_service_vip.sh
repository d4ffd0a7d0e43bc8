#!/usr/bin/env bash
# Service VIPs (DESIGN.md §1): a SYN to a VIP whose endpoints are in the
# mesh is captured for any source - a non-mesh client would otherwise reach
# a mesh pod around inbound policy - and the agent picks a ready endpoint
# and its named target port itself (no kube-proxy in this cluster).
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name vip)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh"}, "n1-p2": {"namespace": "plain"},
          "n2-p1": {"namespace": "mesh", "labels": {"app": "echo"},
                    "ports": [{"name": "tcp-echo", "containerPort": 7000}]},
          "n2-p2": {"namespace": "plain", "labels": {"app": "other"}}},
 "services": [{"name": "echo", "namespace": "mesh", "clusterIP": "10.96.0.10",
               "selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": "tcp-echo"}]},
              {"name": "other", "namespace": "plain", "clusterIP": "10.96.0.11",
               "selector": {"app": "other"}, "ports": [{"port": 80, "targetPort": 7000}]}]}'
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"snapshot applied".*"generation":2'
start_echo "$name" n2-p1 7000
start_echo "$name" n2-p2 7000

vip_check() { # FROM VIP: a round trip through the VIP; the server sees FROM's IP
  nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" \
    "$py" "$echo_py" check "$2" 80 "$(pod_field "$name" "$1" ip)" || fail "$1 -> $2:80"
}

step "non-mesh client -> VIP of a mesh service: captured by VIP"
s=$(stat "$name" n1 captured_service)
vip_check n1-p2 10.96.0.10
[ "$(stat "$name" n1 captured_service)" = $((s + 1)) ] || fail "not captured by VIP"
wait_access "$name" n1 '."src.workload" == "n1-p2" and ."src.namespace" == "plain" and ."dst.addr" == "10.244.2.2:7000" and ."dst.workload" == "n2-p1" and ."dst.service" == "echo.mesh.svc.cluster.local" and .direction == "outbound"'

step "mesh client -> VIP: captured by source, same endpoint choice"
o=$(stat "$name" n1 captured_outbound)
vip_check n1-p1 10.96.0.10
[ "$(stat "$name" n1 captured_outbound)" = $((o + 1)) ] || fail "not captured by source"

step "non-mesh client -> VIP of a non-mesh service: not captured"
s=$(stat "$name" n1 captured_service)
rc=0
nsenter --net="/run/netns/$(pod_field "$name" n1-p2 netns)" "$py" "$echo_py" expect-fail 10.96.0.11 80 1 || rc=$?
[ "$rc" = 0 ] || fail "a non-mesh VIP was served (nothing implements it without kube-proxy)"
[ "$(stat "$name" n1 captured_service)" = "$s" ] || fail "a non-mesh VIP was captured"
assert_agents_clean "$name"
echo ok
