#!/usr/bin/env bash
# `tools/cluster up --kube` runs a real kube-apiserver and etcd, listening
# only inside the cluster's underlay namespace, and holds the cluster there:
# namespaces with their labels, pods bound to their nodes whose status
# (played kubelet) carries the CNI's address and Ready, the pods' UIDs in
# the CNI args, EndpointSlices of the selected pods, ServiceAccounts, and
# Istio's CRDs: a valid AuthorizationPolicy is stored, an invalid one is
# refused by the API server's own validation (422). A watch streams ADDED
# and MODIFIED events; the node agents' tokens read pods but not Secrets;
# `publish` relabels and deletes through the API; `down` leaves no process,
# namespace or file behind.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
kube_bins=${ZT_KUBE_BIN_DIR:-$src_root/.deps/kube}
for f in kube-apiserver etcd istio-crds.yaml; do
  [ -s "$kube_bins/$f" ] || skip "$kube_bins/$f missing: build the test control plane with tools/bootstrap --kube"
done
name=$(unique_name kcp)
before=$(host_links)
tmp_before=$(find /tmp -maxdepth 1 -name 'zt-kube-*' | sort)

policy='{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
  "metadata": {"name": "web-from-api", "namespace": "shop"},
  "spec": {"selector": {"matchLabels": {"app": "web"}}, "action": "ALLOW",
           "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/api"]}}]}]}}'
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient", "team": "a"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web", "labels": {"app": "web"},
                    "ports": [{"name": "http", "containerPort": 7000}]},
          "n2-p1": {"namespace": "shop", "serviceAccount": "web", "labels": {"app": "web"},
                    "ports": [{"name": "http", "containerPort": 7000}]},
          "n1-p2": {"namespace": "shop", "serviceAccount": "api"},
          "n2-p2": {"namespace": "plain"}},
 "services": [{"name": "web", "namespace": "shop", "clusterIP": "10.96.0.10",
               "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}],
 "objects": ['"$policy"']}'
cluster_up "$name" --spec "$spec" --nodes 2 --pods-per-node 2 --kube
kdir="$(info "$name" | jq -r .stateDir)/kube"
kube() { "$src_root/tools/kube" api --dir "$kdir" "$@"; }

step "info describes the control plane; it listens only inside the underlay namespace"
info "$name" | jq -e --arg d "$kdir" '.kube == { server: "https://10.255.0.254:6443", kubeconfig: ($d + "/kubeconfig"),
  tokenFile: ($d + "/admin.token"), caFile: ($d + "/ca.crt"), netns: .underlayNetns }' >/dev/null ||
  fail "info .kube: $(info "$name" | jq -c .kube)"
apiserver=$(sed -n 's/^APISERVER_PID=//p' "$kdir/env")
etcd=$(sed -n 's/^ETCD_PID=//p' "$kdir/env")
ul_netns=$(command stat -L -c %i "/run/netns/zt-$name-ul")
for pid in "$apiserver" "$etcd"; do
  [ "$(command stat -L -c %i "/proc/$pid/ns/net")" = "$ul_netns" ] || fail "pid $pid does not run in zt-$name-ul"
done
listening=$(nsenter --net="/run/netns/zt-$name-ul" ss -Hltnp | grep -E "pid=($apiserver|$etcd)," | awk '{print $4}' | sort | tr '\n' ' ')
[ "$listening" = "10.255.0.254:6443 127.0.0.1:2379 127.0.0.1:2380 " ] || fail "listening on: $listening"
kube GET /version | jq -e '.gitVersion == "v1.37.2"' >/dev/null || fail "not kube-apiserver v1.37.2: $(kube GET /version)"

step "namespaces carry the spec's labels"
kube GET /api/v1/namespaces/shop | jq -e '.metadata.labels["istio.io/dataplane-mode"] == "ambient" and .metadata.labels.team == "a"' \
  >/dev/null || fail "namespace shop: $(kube GET /api/v1/namespaces/shop | jq -c .metadata.labels)"
kube GET /api/v1/namespaces/plain >/dev/null || fail "namespace plain missing"

step "pods are bound to their nodes; kubelet's status has the CNI's address and Ready; the CNI got the API's UID"
pods=$(kube GET /api/v1/pods)
[ "$(jq '[.items[] | select(.metadata.namespace != "kube-system")] | length' <<<"$pods")" = 4 ] ||
  fail "want 4 pods: $(jq -c '[.items[].metadata.name]' <<<"$pods")"
for p in $(pod_names "$name"); do
  ns=$(pod_field "$name" "$p" namespace)
  jq -e --arg p "$p" --arg ns "$ns" --arg ip "$(pod_field "$name" "$p" ip)" --arg node "$(pod_field "$name" "$p" node)" \
    --arg uid "$(pod_field "$name" "$p" uid)" '.items[] | select(.metadata.name == $p and .metadata.namespace == $ns) |
      .spec.nodeName == $node and .metadata.uid == $uid and .status.phase == "Running" and .status.podIP == $ip and
      .status.podIPs == [{ ip: $ip }] and any(.status.conditions[]; .type == "Ready" and .status == "True")' \
    <<<"$pods" >/dev/null || fail "pod $ns/$p in the API: $(jq -c --arg p "$p" '.items[] | select(.metadata.name == $p) |
      { node: .spec.nodeName, uid: .metadata.uid, status }' <<<"$pods")"
  [[ $(pod_field "$name" "$p" cniArgs) == *"K8S_POD_UID=$(pod_field "$name" "$p" uid)"* ]] || fail "CNI args of $p lack its UID"
done
kube GET /api/v1/namespaces/shop/serviceaccounts | jq -e '[.items[].metadata.name] | sort == ["api", "default", "web"]' >/dev/null ||
  fail "service accounts of shop: $(kube GET /api/v1/namespaces/shop/serviceaccounts | jq -c '[.items[].metadata.name]')"
kube GET /api/v1/nodes | jq -e '[.items[] | .metadata.name] == ["n1", "n2"]' >/dev/null || fail "nodes n1, n2 missing"

step "the Service's EndpointSlice lists its ready pods and their named port"
slices=$(kube GET "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb")
jq -e --arg a "$(pod_field "$name" n1-p1 ip)" --arg b "$(pod_field "$name" n2-p1 ip)" '.items | length == 1 and
  (.[0].ports == [{ name: "http", protocol: "TCP", port: 7000 }]) and
  ([.[0].endpoints[] | select(.conditions.ready) | .addresses[0]] | sort == ([$a, $b] | sort)) and
  ([.[0].endpoints[].targetRef.name] | sort == ["n1-p1", "n2-p1"])' <<<"$slices" >/dev/null ||
  fail "EndpointSlices of shop/web: $(jq -c '[.items[] | { ports, endpoints }]' <<<"$slices")"

step "Istio's CRDs validate policies: the spec's is stored, an invalid one is refused with 422"
kube GET /apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/web-from-api |
  jq -e '.spec.action == "ALLOW"' >/dev/null || fail "the spec's AuthorizationPolicy is missing"
bad=$(jq -c '.metadata.name = "bad" | .spec.action = "PERMIT"' <<<"$policy")
if out=$(kube POST /apis/security.istio.io/v1/namespaces/shop/authorizationpolicies - <<<"$bad" 2>/dev/null); then
  fail "an AuthorizationPolicy with action PERMIT was accepted"
fi
jq -e '.code == 422 and .reason == "Invalid" and any(.details.causes[]; .field == "spec.action")' <<<"$out" >/dev/null ||
  fail "want 422 Invalid on spec.action, got: $out"
bad=$(jq -c '.metadata.name = "bad" | .spec.rules[0].from[0].source.principals = "not-a-list"' <<<"$policy")
out=$(kube POST /apis/security.istio.io/v1/namespaces/shop/authorizationpolicies - <<<"$bad" 2>/dev/null) || true
jq -e '.code == 422' <<<"$out" >/dev/null || fail "principals as a string: want 422, got: $out"

step "a watch on pods streams MODIFIED for a patched pod and ADDED for a new one"
rv=$(kube GET /api/v1/pods | jq -r .metadata.resourceVersion)
events=$(mktemp /tmp/zt-watch-XXXXXX)
temp_files+=("$events")
# Not through kube(): $! must be curl's pid (tools/kube and nsenter exec it).
"$src_root/tools/kube" api --dir "$kdir" GET "/api/v1/pods?watch=1&resourceVersion=$rv&timeoutSeconds=20" > "$events" &
watcher=$!
started_pids+=("$watcher")
kube PATCH /api/v1/namespaces/shop/pods/n1-p1 - <<<'{"metadata": {"labels": {"version": "v2"}}}' >/dev/null
kube POST /api/v1/namespaces/plain/pods - >/dev/null <<<'{"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "late"}, "spec": {"nodeName": "n2", "containers": [{"name": "app", "image": "ztunnel-test/app"}]}}'
seen() { jq -e -s --arg t "$1" --arg p "$2" 'any(.[]; .type == $t and .object.metadata.name == $p)' "$events" >/dev/null 2>&1; }
for _ in $(seq 1 50); do seen MODIFIED n1-p1 && seen ADDED late && break; sleep 0.1; done
seen MODIFIED n1-p1 || fail "no MODIFIED event for n1-p1: $(cat "$events")"
jq -e -s 'any(.[]; .type == "MODIFIED" and .object.metadata.labels.version == "v2")' "$events" >/dev/null ||
  fail "the MODIFIED event lacks the new label"
seen ADDED late || fail "no ADDED event for the new pod: $(cat "$events")"
kill "$watcher" 2>/dev/null || true
kube DELETE "/api/v1/namespaces/plain/pods/late?gracePeriodSeconds=0" >/dev/null

step "a node agent's token reads what the agent reads, and no Secrets"
tok=$(info "$name" | jq -r '.nodes[0].kubeTokenFile')
agent_get() {
  nsenter --net="/run/netns/zt-$name-n1" curl -s -o /dev/null -w '%{http_code}' --cacert "$kdir/ca.crt" \
    -H "Authorization: Bearer $(cat "$tok")" "https://10.255.0.254:6443$1"
}
[ "$(agent_get /api/v1/pods)" = 200 ] || fail "the agent's token cannot list pods (from its node)"
[ "$(agent_get /apis/security.istio.io/v1/authorizationpolicies)" = 200 ] || fail "the agent's token cannot list policies"
[ "$(agent_get /api/v1/secrets)" = 403 ] || fail "the agent's token can list secrets"
jq -e --arg t "$(cat "$tok")" '.users[0].user.token == $t and .clusters[0].cluster.server == "https://10.255.0.254:6443"' \
  "$(info "$name" | jq -r '.nodes[0].kubeconfig')" >/dev/null || fail "n1's kubeconfig does not hold its token"

step "publish applies spec changes through the API, and leaves unchanged objects alone"
rv_pod=$(kube GET /api/v1/namespaces/shop/pods/n2-p1 | jq -r .metadata.resourceVersion)
jq '.namespaces.shop["istio.io/dataplane-mode"] = "none" | del(.namespaces.shop.team) | .objects = []' "$spec" > "$spec.new"
mv "$spec.new" "$spec"
"$cluster" publish --name "$name" --spec "$spec"
kube GET /api/v1/namespaces/shop | jq -e '.metadata.labels["istio.io/dataplane-mode"] == "none" and (.metadata.labels | has("team") | not)' \
  >/dev/null || fail "relabel not applied: $(kube GET /api/v1/namespaces/shop | jq -c .metadata.labels)"
kube GET /apis/security.istio.io/v1/namespaces/shop/authorizationpolicies | jq -e '.items == []' >/dev/null ||
  fail "the policy removed from the spec is still in the API"
[ "$(kube GET /api/v1/namespaces/shop/pods/n2-p1 | jq -r .metadata.resourceVersion)" = "$rv_pod" ] ||
  fail "publish modified pod n2-p1, which the spec did not change"

step "down stops the control plane and leaves nothing behind"
"$cluster" down --name "$name"
clusters=()
for pid in "$apiserver" "$etcd"; do
  if kill -0 "$pid" 2>/dev/null; then fail "pid $pid ($(tr '\0' ' ' < "/proc/$pid/cmdline")) survived down"; fi
done
assert_gone "$name" "$before"
[ "$(find /tmp -maxdepth 1 -name 'zt-kube-*' | sort)" = "$tmp_before" ] || fail "temporary files of tools/kube left in /tmp"
echo ok
