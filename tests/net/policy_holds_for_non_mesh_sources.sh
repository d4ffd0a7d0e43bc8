#!/usr/bin/env bash
# Non-mesh sources never get around inbound policy, however they are
# captured (issue 8/13 items 3 and 4), in a cluster with STRICT + ALLOW one
# principal (shop) and an open mesh namespace (open):
# - a pod opted out with istio.io/dataplane-mode=none that shares the
#   allowed service account reaches a STRICT pod through its VIP: refused
#   (it used to get HBONE with the shared identity and pass);
# - a non-mesh pod the snapshot does not list yet reaches a same-node STRICT
#   pod through its VIP: refused by the plaintext inbound checks (it used to
#   be relayed with none);
# - a listed non-mesh pod reaches an open mesh service through its VIP at
#   once, as plaintext (it used to wait 5 s for a certificate and be reset);
# - a mesh pod reaching a same-node mesh pod the snapshot does not list yet
#   waits and is refused after 5 s, or goes over HBONE once it is listed
#   (it used to leave in plaintext, item 5);
# - a same-node non-mesh connection through a VIP is re-checked on a policy
#   change and closed when now denied.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name nm)
before=$(host_links)
strict='{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"strict","namespace":"shop"},"spec":{"mtls":{"mode":"STRICT"}}}'
allow_web='{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"allow-web","namespace":"shop"},
 "spec":{"rules":[{"from":[{"source":{"principals":["cluster.local/ns/shop/sa/web"]}}]}]}}'
deny_all_open='{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"deny-all","namespace":"open"},"spec":{}}'
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "open": {"istio.io/dataplane-mode": "ambient"},
                "legacy": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n1-p2": {"namespace": "shop", "serviceAccount": "web", "labels": {"istio.io/dataplane-mode": "none"}},
          "n1-p3": {"namespace": "legacy"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api", "labels": {"app": "api"},
                    "ports": [{"name": "tcp", "containerPort": 7000}]},
          "n2-p2": {"namespace": "legacy"},
          "n2-p3": {"namespace": "open", "serviceAccount": "svc", "labels": {"app": "open"},
                    "ports": [{"name": "tcp", "containerPort": 7000}]}},
 "services": [{"name": "api", "namespace": "shop", "clusterIP": "10.96.0.20",
               "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": "tcp"}]},
              {"name": "open", "namespace": "open", "clusterIP": "10.96.0.21",
               "selector": {"app": "open"}, "ports": [{"port": 80, "targetPort": "tcp"}]}],
 "objects": ['"$strict,$allow_web"']}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 3
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/web"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
start_echo "$name" n2-p1 7000
start_echo "$name" n2-p3 7000
state=$(info "$name" | jq -r .stateDir)
in_pod() { local p=$1; shift; nsenter --net="/run/netns/$(pod_field "$name" "$p" netns)" "$@"; }
vip_ok() { in_pod "$1" "$py" "$echo_py" check "$2" 80 "$(pod_field "$name" "$1" ip)" || fail "$1 -> $2:80"; }
vip_refused() { in_pod "$1" "$py" "$echo_py" expect-fail "$2" 80 2 || fail "$1 -> $2:80 got through"; }

step "control: the allowed mesh pod reaches the STRICT service"
vip_ok n1-p1 10.96.0.20

step "an opted-out pod sharing the allowed service account is refused (STRICT)"
vip_refused n1-p2 10.96.0.20
wait_access "$name" n2 '.msg == "connection denied" and ."src.workload" == "n1-p2" and ."src.namespace" == "shop" and ."src.identity" == "" and .protocol == "TCP" and .policy == "shop/strict"'
if [ -n "$(access_lines "$name" n1 '."src.workload" == "n1-p2" and ."src.namespace" == "shop" and .protocol == "HBONE"')" ]; then
  fail "an opted-out pod was given an HBONE identity"
fi

step "a listed non-mesh pod reaches an open mesh service at once, in plaintext"
t0=$(date +%s%N)
vip_ok n1-p3 10.96.0.21
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "non-mesh client took ${ms} ms (waited for an identity?)"

step "a non-mesh pod unknown to the snapshot, same node as the STRICT pod: refused"
hide_pod "$name" n2 n2-p2
vip_refused n2-p2 10.96.0.20
wait_access "$name" n2 '.msg == "connection denied" and (."src.addr" | startswith("'"$(pod_field "$name" n2-p2 ip)"':")) and .direction == "inbound" and .protocol == "TCP" and .policy == "shop/strict"'
publish_spec "$name" n2

step "a mesh pod to a same-node mesh pod the snapshot does not list yet: waits, never plaintext"
hide_pod "$name" n2 n2-p1
in_pod n2-p3 "$py" "$echo_py" expect-fail "$(pod_field "$name" n2-p1 ip)" 7000 2 ||
  fail "n2-p3 reached a mesh pod the snapshot does not list"
wait_log "$name" n2 '"error":"destination pod of this node is enrolled but not in the snapshot (waited 5 s)"' 8
if [ -n "$(access_lines "$name" n2 '."src.workload" == "n2-p3" and ."src.namespace" == "open" and ."dst.addr" == "'"$(pod_field "$name" n2-p1 ip)"':7000" and .protocol == "TCP"')" ]; then
  fail "n2-p3 -> n2-p1 left in plaintext"
fi
# Listed again while a connection waits: it goes over HBONE (allow-web
# denies svc, so the answer is a policy denial over HBONE, not plaintext).
in_pod n2-p3 "$py" "$echo_py" expect-fail "$(pod_field "$name" n2-p1 ip)" 7000 4 &
waiter=$!
started_pids+=("$waiter")
sleep 1
publish_spec "$name" n2
wait "$waiter" || fail "n2-p3 got through to n2-p1 (allow-web should deny it)"
wait_access "$name" n2 '.msg == "connection denied" and ."src.identity" == "spiffe://cluster.local/ns/open/sa/svc" and .protocol == "HBONE" and .policy == "" and .rule == -1 and .status == 401'

step "a same-node non-mesh connection through a VIP is revoked by a policy change"
out="$state/hold.out"
in_pod n2-p2 "$py" "$echo_py" hold 10.96.0.21 80 15 > "$out" &
holder=$!
started_pids+=("$holder")
for _ in $(seq 1 50); do grep -q open "$out" && break; sleep 0.1; done
grep -q open "$out" || fail "n2-p2 -> open service did not connect"
jq --argjson o "[$strict, $allow_web, $deny_all_open]" '.objects = $o' "$spec" > "$spec.new" && mv "$spec.new" "$spec"
"$cluster" publish --name "$name" --spec "$spec" >/dev/null
wait "$holder" || fail "the connection survived a policy that now denies it"
wait_log "$name" n2 '"direction":"inbound".*"error":"connection closed due to policy change"'

down_and_check "$name" "$before"
