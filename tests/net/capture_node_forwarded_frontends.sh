#!/usr/bin/env bash
# Traffic the node itself forwards to a mesh pod (issue 8/13 item 1): a
# NodePort (also on an address the node gets later), a hostPort and an externalIP, each with the DNAT rule
# kube-proxy (or the portmap plugin) installs, used to reach a STRICT pod
# in plaintext because the DNAT happens after tc ingress and the SYN's
# destination was a node or external address. They are captured by
# address like VIPs now, and the plaintext inbound checks run with the
# real client address: refused under STRICT (logged with the client's
# address), served under PERMISSIVE with the client's address preserved.
# A load-balancer address without any DNAT rule is served by the agent
# choosing the endpoint itself.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
command -v iptables >/dev/null || skip "iptables not installed"
name=$(unique_name nf)
before=$(host_links)
pa='{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"mtls","namespace":"shop"},"spec":{"mtls":{"mode":"STRICT"}}}'
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "api", "labels": {"app": "api"},
                    "ports": [{"name": "tcp", "containerPort": 7000, "hostPort": 8100}]},
          "n1-p2": {"namespace": "legacy"}, "n2-p1": {"namespace": "legacy"}, "n2-p2": {"namespace": "legacy"}},
 "services": [{"name": "api", "namespace": "shop", "clusterIP": "10.96.0.40", "type": "LoadBalancer",
               "selector": {"app": "api"}, "externalIPs": ["192.0.2.50"],
               "ports": [{"port": 80, "targetPort": 7000, "nodePort": 30080}],
               "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.60"}]}}}],
 "objects": ['"$pa"']}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
start_echo "$name" n1-p1 7000
api=$(pod_field "$name" n1-p1 ip)
n1=/run/netns/$(info "$name" | jq -r '.nodes[0].netns')
n2=/run/netns/$(info "$name" | jq -r '.nodes[1].netns')
node1=$(info "$name" | jq -r '.nodes[0].ip')
# kube-proxy's rules (nat PREROUTING) in n1's namespace only.
for rule in "-d $node1 -p tcp --dport 30080" "-d $node1 -p tcp --dport 8100" "-d 192.0.2.50 -p tcp --dport 80"; do
  # shellcheck disable=SC2086 # the rule is a list of words
  nsenter --net="$n1" iptables -t nat -A PREROUTING $rule -j DNAT --to-destination "$api:7000"
done
for ip in 192.0.2.50 192.0.2.60; do nsenter --net="$n2" ip route add "$ip/32" via "$node1"; done
client=$(pod_field "$name" n2-p1 ip)
in_pod() { local p=$1; shift; nsenter --net="/run/netns/$(pod_field "$name" "$p" netns)" "$@"; }
frontends=("$node1 30080" "$node1 8100" "192.0.2.50 80" "192.0.2.60 80")

step "STRICT: every forwarded frontend is refused, with the client's real address"
for f in "${frontends[@]}"; do
  read -r ip port <<<"$f"
  in_pod n2-p1 "$py" "$echo_py" expect-fail "$ip" "$port" 2 || fail "$ip:$port reached the STRICT pod in plaintext"
done
[ "$(count_log "$name" n1 '"msg":"connection denied","src.addr":"'"$client"':[0-9]*".*"dst.addr":"'"$api"':7000".*"policy":"shop/mtls"')" -ge 4 ] ||
  fail "denials not logged with the client address: $(grep 'connection denied' "$(agent_log "$name" n1)")"
in_pod n1-p2 "$py" "$echo_py" expect-fail "$node1" 30080 2 || fail "a same-node non-mesh pod reached it by nodePort"
# nodePort and hostPort on n1's address are captured on n1; the external
# and load-balancer IPs already on the client's node, like a VIP.
[ "$(stat "$name" n1 captured_service)" -ge 3 ] || fail "n1 did not capture its node frontends"
[ "$(stat "$name" n2 captured_service)" -ge 2 ] || fail "n2 did not capture the external frontends"

step "an address the node gets later: its nodePort is captured (and refused) too"
n=$(count_log "$name" n1 '"msg":"node addresses changed"')
nsenter --net="$n1" ip addr add 10.255.0.201/32 dev eth0
nsenter --net="$n2" ip route add 10.255.0.201/32 via "$node1"
nsenter --net="$n1" iptables -t nat -A PREROUTING -d 10.255.0.201 -p tcp --dport 30080 -j DNAT --to-destination "$api:7000"
wait_count_log "$name" n1 '"msg":"node addresses changed"' $((n + 1))
sleep 0.3 # the workers take the new address on their next tick
denied='.msg == "connection denied" and (."src.addr" | startswith("'"$client"':")) and ."dst.addr" == "'"$api"':7000"'
d=$(count_access "$name" n1 "$denied")
in_pod n2-p1 "$py" "$echo_py" expect-fail 10.255.0.201 30080 2 || fail "the nodePort on a new node address reached the STRICT pod"
[ "$(count_access "$name" n1 "$denied")" -gt "$d" ] || fail "the new address's nodePort was not captured and refused by n1"
frontends+=("10.255.0.201 30080")

step "PERMISSIVE: every frontend serves, the pod sees the client's address"
jq --argjson pa "${pa/STRICT/PERMISSIVE}" '.objects = [$pa]' "$spec" > "$spec.new" && mv "$spec.new" "$spec"
n=$(count_log "$name" n1 '"msg":"snapshot applied"')
"$cluster" publish --name "$name" --spec "$spec" >/dev/null
wait_count_log "$name" n1 '"msg":"snapshot applied"' $((n + 1))
for f in "${frontends[@]}"; do
  read -r ip port <<<"$f"
  in_pod n2-p1 "$py" "$echo_py" check "$ip" "$port" "$client" || fail "$ip:$port under PERMISSIVE"
done

down_and_check "$name" "$before"
