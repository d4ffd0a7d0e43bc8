#!/usr/bin/env bash
# SPEC 8.5 against a real kube-apiserver: a pod is HBONE to the other nodes
# only once its capture is in place, which its node's agent says with the
# annotation ambient.istio.io/redirection=enabled (written through
# pods/status, as istio-cni does). A pod labelled while its node has no
# agent gets plaintext it can answer, not HBONE nobody serves; once the
# agent is back it captures and annotates the pod and traffic moves to
# HBONE. Attacks: a tenant removing the annotation from a captured pod, or
# putting it on a pod that is not captured, is undone by the pod's agent.
# An owner's "disabled" opts the pod out (as in Istio) and is never
# overwritten. A node's token (pod-bound, as the DaemonSet projects it) can
# write that annotation on its own node's pods and nothing else: not on
# another node's pods, not labels, other annotations, status, or the pod.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
[ -x "$src_root/.deps/kube/kube-apiserver" ] || skip "no kube-apiserver: run tools/bootstrap --kube"
name=$(unique_name kc)
before=$(host_links)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"},
          "n1-p2": {"namespace": "legacy"}, "n2-p2": {"namespace": "legacy", "serviceAccount": "old"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2 --kube
state=$(info "$name" | jq -r .stateDir)
kapi() { "$src_root/tools/kube" api --dir "$state/kube" "$@"; }
body() { local f; f=$(mktemp /tmp/zt-kube-body-XXXXXX); temp_files+=("$f"); printf '%s\n' "$1" > "$f"; echo "$f"; }
key=ambient.istio.io/redirection
redirection() { # NAMESPACE POD: the annotation's value, "" when absent
  kapi GET "/api/v1/namespaces/$1/pods/$2" | jq -r --arg k "$key" '.metadata.annotations[$k] // ""'
}
wait_redirection() { # NAMESPACE POD VALUE SECONDS
  local _ v=""
  for _ in $(seq 1 $(($4 * 10))); do
    v=$(redirection "$1" "$2")
    [ "$v" = "$3" ] && return 0
    sleep 0.1
  done
  fail "$1/$2: $key is \"$v\" after $4 s, want \"$3\""
}
annotate() { # NAMESPACE POD VALUE|null: as the pod's owner would (the pod itself)
  local v=null
  [ "$3" = null ] || v="\"$3\""
  kapi PATCH "/api/v1/namespaces/$1/pods/$2" "$(body "{\"metadata\":{\"annotations\":{\"$key\":$v}}}")" >/dev/null
}
# tcp_via NODE_OF_SOURCE FROM TO PROTOCOL: connects until the source's agent
# logs FROM -> TO with that protocol (the models follow the API in a moment).
tcp_via() {
  local _
  for _ in $(seq 1 50); do
    check_tcp "$name" "$2" "$3" 7000
    [ -n "$(access_lines "$name" "$1" ".\"src.workload\" == \"$2\" and .\"dst.workload\" == \"$3\" and .protocol == \"$4\"")" ] &&
      return 0
    sleep 0.1
  done
  fail "$2 -> $3 never went over $4"
}
start_echo "$name" n2-p1 7000
start_echo "$name" n2-p2 7000
start_echo "$name" n1-p2 7000

step "each agent annotates the pods it captured, and no other"
wait_redirection shop n1-p1 enabled 10
wait_redirection shop n2-p1 enabled 10
[ "$(redirection legacy n1-p2)" = "" ] || fail "an unlabelled pod was annotated"
[ "$(redirection legacy n2-p2)" = "" ] || fail "an unlabelled pod was annotated"
tcp_via n1 n1-p1 n2-p1 HBONE
ok=$(nsenter --net="/run/netns/$(info "$name" | jq -r '.nodes[] | select(.name == "n2") | .netns')" \
  curl -sf http://127.0.0.1:15020/metrics | awk '$1 == "ztunnel_kube_annotation_writes_total{result=\"ok\"}" { print $2 }')
[ "${ok:-0}" -ge 1 ] || fail "n2 counts no annotation write: ${ok:-none}"

step "a pod labelled while its node has no agent: plaintext it can answer, never HBONE nobody serves"
"$cluster" agent --name "$name" --node n2 stop
kapi PATCH /api/v1/namespaces/legacy/pods/n2-p2 \
  "$(body '{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}')" >/dev/null
tcp_via n1 n1-p1 n2-p2 TCP
[ "$(redirection legacy n2-p2)" = "" ] || fail "n2-p2 annotated with no agent on its node"

step "its agent comes back: captures and annotates the pod; traffic moves to HBONE"
"$cluster" agent --name "$name" --node n2 start
wait_redirection legacy n2-p2 enabled 15
tcp_via n1 n1-p1 n2-p2 HBONE
wait_access "$name" n2 '."dst.workload" == "n2-p2" and .protocol == "HBONE" and ."src.identity" == "spiffe://cluster.local/ns/shop/sa/web"'

step "attack: a tenant removes the annotation from a captured pod; its agent puts it back"
annotate shop n2-p1 null
wait_redirection shop n2-p1 enabled 10
tcp_via n1 n1-p1 n2-p1 HBONE

step "attack: a tenant marks a pod that is not captured; its agent takes it off"
annotate legacy n1-p2 enabled
wait_redirection legacy n1-p2 "" 10
n=$(count_access "$name" n2 '."dst.workload" == "n1-p2"')
check_tcp "$name" n2-p1 n1-p2 7000 # plaintext to a pod outside the mesh, as before
[ "$(count_access "$name" n2 '."dst.workload" == "n1-p2" and .protocol == "HBONE"')" = 0 ] ||
  fail "a pod marked by a tenant, not captured, was sent HBONE"
[ "$(count_access "$name" n2 '."dst.workload" == "n1-p2"')" -gt "$n" ] || fail "n2-p1 -> n1-p2 was not relayed"

step "the owner's \"disabled\" opts a pod out and stays"
annotate shop n2-p1 disabled
wait_log "$name" n2 '"msg":"pod released","namespace":"shop","pod":"n2-p1"' 10
tcp_via n1 n1-p1 n2-p1 TCP
sleep 1
[ "$(redirection shop n2-p1)" = disabled ] || fail "an agent overwrote the owner's opt-out"
annotate shop n2-p1 null
wait_redirection shop n2-p1 enabled 10
tcp_via n1 n1-p1 n2-p1 HBONE

step "a compromised node's token writes nothing else (RBAC + daemonset/ztunnel.yaml's admission policy)"
server=$(info "$name" | jq -r .kube.server)
ulns=$(info "$name" | jq -r .kube.netns)
as_n1() { # METHOD PATH PATCH: the HTTP status of the request made with n1's agent token
  nsenter --net="/run/netns/$ulns" curl -sS -o "$state/.as_n1.out" -w '%{http_code}' -X "$1" \
    --cacert "$state/kube/ca.crt" -H "Authorization: Bearer $(cat "$state/nodes/n1/agent.token")" \
    -H 'Content-Type: application/merge-patch+json' --data-binary "@$(body "$3")" "$server$2"
}
refused() { # WHAT METHOD PATH PATCH NEEDLE
  local code
  code=$(as_n1 "$2" "$3" "$4")
  [ "$code" = 403 ] || [ "$code" = 422 ] || fail "n1's agent token could $1 (HTTP $code)"
  grep -q -- "$5" "$state/.as_n1.out" || fail "$1: refused for another reason: $(cat "$state/.as_n1.out")"
}
ann() { echo "{\"metadata\":{\"annotations\":{$1}}}"; }
refused "annotate a pod of n2" PATCH /api/v1/namespaces/shop/pods/n2-p1/status "$(ann "\"$key\":\"enabled\"")" \
  "only pods of the node"
refused "relabel a pod through its status" PATCH /api/v1/namespaces/legacy/pods/n1-p2/status \
  '{"metadata":{"labels":{"app":"hijack"}}}' "may not change a pod's labels"
refused "write another annotation" PATCH /api/v1/namespaces/legacy/pods/n1-p2/status "$(ann '"x.io/y":"z"')" \
  "may change only the annotation"
refused "set the annotation to another value" PATCH /api/v1/namespaces/shop/pods/n1-p1/status \
  "$(ann "\"$key\":\"disabled\"")" "may only set"
refused "rewrite a pod's status" PATCH /api/v1/namespaces/shop/pods/n1-p1/status \
  '{"status":{"message":"rewritten"}}' "may not change a pod's status"
refused "patch a pod itself" PATCH /api/v1/namespaces/shop/pods/n1-p1 "$(ann "\"$key\":\"enabled\"")" "forbidden"
code=$(as_n1 PATCH /api/v1/namespaces/shop/pods/n1-p1/status "$(ann "\"$key\":\"enabled\"")")
[ "$code" = 200 ] || fail "the agent's own write is refused (HTTP $code): $(cat "$state/.as_n1.out")"

for n in n1 n2; do
  if grep -q '"msg":"cannot write the redirection annotation"' "$(agent_log "$name" "$n")"; then
    fail "$n failed a write: $(grep '"msg":"cannot write the redirection annotation"' "$(agent_log "$name" "$n")" | tail -n 1)"
  fi
done

down_and_check "$name" "$before"
echo "PASS"
