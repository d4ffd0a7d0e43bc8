#!/usr/bin/env bash
# What a hostile pod can do to the agent's HTTP endpoints (docs/admin.md):
# the admin API (config_dump, quitquitquit) listens on the node's loopback
# only, so no pod reaches it; a pod (enrolled or not) that holds hundreds
# of idle connections to the node's readiness and metrics ports takes at
# most its per-client share, and the node's own probe and scrape still
# answer at once.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name ad)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh"}, "n1-p2": {"namespace": "plain"}}}'
cluster_up_agents "$name" "$spec" --nodes 1 --pods-per-node 2
node_ip=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .ip')
node_ns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')
in_pod() { local p=$1; shift; nsenter --net="/run/netns/$(pod_field "$name" "$p" netns)" "$@"; }
on_node() { nsenter --net="/run/netns/$node_ns" "$@"; }

step "the admin API is not reachable from pods (loopback of the node only)"
for p in n1-p1 n1-p2; do
  in_pod "$p" "$py" "$echo_py" expect-fail "$node_ip" 15000 2 || fail "$p reached the admin API on $node_ip:15000"
  code=$(in_pod "$p" curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST "http://$node_ip:15000/quitquitquit" || true)
  [ "$code" = 000 ] || fail "$p got HTTP $code from /quitquitquit"
done
[ "$(on_node curl -s -m 2 http://127.0.0.1:15021/healthz/ready)" = ready ] || fail "agent not ready"

step "pods hold 2 x 300 idle connections to the readiness and metrics ports"
for p in n1-p1 n1-p2; do
  for port in 15020 15021; do
    in_pod "$p" "$py" "$echo_py" flood "$node_ip" "$port" 300 8 >/dev/null &
    started_pids+=("$!")
  done
done
sleep 1
step "the node's probe and scrape still answer, each within a second"
for _ in $(seq 1 10); do
  [ "$(on_node curl -s -m 1 "http://$node_ip:15021/healthz/ready")" = ready ] ||
    fail "readiness starved by pods' idle connections"
  on_node curl -sf -m 1 "http://$node_ip:15020/metrics" | grep -q '^ztunnel_ready 1$' ||
    fail "metrics starved by pods' idle connections"
done
held=$(on_node ss -Htn state established "( sport = :15021 )" | grep -c "$(pod_field "$name" n1-p2 ip)" || true)
echo "connections the agent kept from n1-p2 to 15021: $held"
[ "$held" -le 8 ] || fail "one pod holds $held readiness connections (per-client limit 8)"
kill -0 "$(cat "$(info "$name" | jq -r .stateDir)/nodes/n1/agent.pid")" || fail "agent died"
for pid in "${started_pids[@]}"; do wait "$pid" 2>/dev/null || true; done

down_and_check "$name" "$before"
echo "PASS"
