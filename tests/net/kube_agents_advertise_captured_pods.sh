#!/usr/bin/env bash
# SPEC 8.5 against a real kube-apiserver: a pod is HBONE to the other nodes
# only once its capture is in place, which its node's agent says with the
# annotation ambient.istio.io/redirection=enabled (written through
# pods/status, as istio-cni does). A pod labelled while its node has no
# agent gets plaintext it can answer, not HBONE nobody serves, unless it
# is STRICT: then nothing (the connection waits 5 s for the annotation,
# then is refused); once the agent is back it captures and annotates the
# pods and traffic moves to HBONE. The agent's restart never takes the
# annotation off its captured pods. Attacks: a tenant removing the annotation from a captured pod, or
# putting it on a pod that is not captured, is undone by the pod's agent.
# An owner's "disabled" opts the pod out (as in Istio) and is never
# overwritten. A node's token (pod-bound, as the DaemonSet projects it) can
# write that annotation on its own node's pods and nothing else: not on
# another node's pods, not over an owner's "disabled", not labels, other
# annotations, status, or the pod; the agent checks that at start
# (ztunnel_kube_write_guard) and says loudly when the policy is missing.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_kube
name=$(unique_name kc)
before=$(host_links)
strict='{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"mtls","namespace":"vault"},"spec":{"mtls":{"mode":"STRICT"}}}'
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}, "vault": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"},
          "n1-p2": {"namespace": "legacy"}, "n2-p2": {"namespace": "legacy", "serviceAccount": "old"},
          "n1-p3": {"namespace": "legacy"}, "n2-p3": {"namespace": "vault", "serviceAccount": "safe"}},
 "objects": ['"$strict"']}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 3 --kube
state=$(info "$name" | jq -r .stateDir)
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
annotate() { # NAMESPACE POD VALUE|null: as the pod's owner would (the pod itself); checks it took
  local v=null got
  [ "$3" = null ] || v="\"$3\""
  got=$(kapi PATCH "/api/v1/namespaces/$1/pods/$2" "$(body "{\"metadata\":{\"annotations\":{\"$key\":$v}}}")" |
    jq -r --arg k "$key" '.metadata.annotations[$k] // "null"')
  [ "$got" = "$3" ] || fail "the owner's write of $key=$3 on $1/$2 did not take ($got)"
}
metric() { # NODE SERIES: its value on the node's metrics port
  nsenter --net="/run/netns/$(info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns')" \
    curl -sf http://127.0.0.1:15020/metrics | awk -v k="$2" '$1 == k { print $2 }'
}
writes_ok() { metric "$1" 'ztunnel_kube_annotation_writes_total{result="ok"}'; }
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
start_echo "$name" n2-p3 7000

step "each agent annotates the pods it captured, and no other"
wait_redirection shop n1-p1 enabled 10
wait_redirection shop n2-p1 enabled 10
[ "$(redirection legacy n1-p2)" = "" ] || fail "an unlabelled pod was annotated"
[ "$(redirection legacy n2-p2)" = "" ] || fail "an unlabelled pod was annotated"
tcp_via n1 n1-p1 n2-p1 HBONE
ok=$(writes_ok n2)
[ "${ok:-0}" -ge 1 ] || fail "n2 counts no annotation write: ${ok:-none}"
for n in n1 n2; do
  for _ in $(seq 1 50); do [ "$(metric "$n" ztunnel_kube_write_guard)" = 1 ] && break; sleep 0.2; done
  [ "$(metric "$n" ztunnel_kube_write_guard)" = 1 ] ||
    fail "$n does not report its writes guarded by the admission policy: $(grep -i 'admission policy' "$(agent_log "$name" "$n")")"
done

step "pods labelled while their node has no agent: plaintext they can answer, never HBONE nobody serves; STRICT gets nothing"
# Every change of n2-p1 while its agent stops and starts again: it must keep its annotation.
"$src_root/tools/kube" api --dir "$state/kube" GET \
  "/api/v1/namespaces/shop/pods?watch=1&fieldSelector=metadata.name%3Dn2-p1" > "$state/n2-p1.watch" 2>&1 &
watcher=$!
started_pids+=("$watcher")
"$cluster" agent --name "$name" --node n2 stop
for p in legacy/n2-p2 vault/n2-p3; do
  kapi PATCH "/api/v1/namespaces/${p%/*}/pods/${p#*/}" \
    "$(body '{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}')" >/dev/null
done
tcp_via n1 n1-p1 n2-p2 TCP
[ "$(redirection legacy n2-p2)" = "" ] || fail "n2-p2 annotated with no agent on its node"
expect_blocked "$name" n1-p1 n2-p3 7000
wait_log "$name" n1 'destination is STRICT and its node did not report its capture in place (waited 5 s)' 8

step "the agent comes back: captures and annotates the pods, traffic moves to HBONE, n2-p1 kept its annotation"
"$cluster" agent --name "$name" --node n2 start
wait_redirection legacy n2-p2 enabled 15
wait_redirection vault n2-p3 enabled 15
tcp_via n1 n1-p1 n2-p2 HBONE
tcp_via n1 n1-p1 n2-p3 HBONE
wait_access "$name" n2 '."dst.workload" == "n2-p2" and .protocol == "HBONE" and ."src.identity" == "spiffe://cluster.local/ns/shop/sa/web"'
kill "$watcher" 2>/dev/null || true
[ "$(jq -s 'length' "$state/n2-p1.watch")" -ge 1 ] || fail "the watch of n2-p1 saw nothing: $(cat "$state/n2-p1.watch")"
jq -se --arg k "$key" 'all(.[]; .object.metadata.annotations[$k] == "enabled")' "$state/n2-p1.watch" >/dev/null ||
  fail "n2-p1 lost its annotation while its agent restarted: $(jq -c --arg k "$key" '[.type, .object.metadata.annotations[$k]]' "$state/n2-p1.watch")"

step "attack: a tenant removes the annotation from a captured pod; its agent puts it back"
ok=$(writes_ok n2)
annotate shop n2-p1 null
wait_redirection shop n2-p1 enabled 10
[ "$(writes_ok n2)" -gt "$ok" ] || fail "the annotation came back without a write by n2's agent"
tcp_via n1 n1-p1 n2-p1 HBONE

step "attack: a tenant marks a pod that is not captured; its agent takes it off"
ok=$(writes_ok n1)
annotate legacy n1-p2 enabled
wait_redirection legacy n1-p2 "" 10
[ "$(writes_ok n1)" -gt "$ok" ] || fail "the annotation went without a write by n1's agent"
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
annotate legacy n1-p2 disabled
refused "overwrite an owner's disabled" PATCH /api/v1/namespaces/legacy/pods/n1-p2/status \
  "$(ann "\"$key\":\"enabled\"")" "may only set"
annotate legacy n1-p2 null
refused "set the annotation to another value" PATCH /api/v1/namespaces/shop/pods/n1-p1/status \
  "$(ann "\"$key\":\"disabled\"")" "may only set"
refused "rewrite a pod's status" PATCH /api/v1/namespaces/shop/pods/n1-p1/status \
  '{"status":{"message":"rewritten"}}' "may not change a pod's status"
refused "patch a pod itself" PATCH /api/v1/namespaces/shop/pods/n1-p1 "$(ann "\"$key\":\"enabled\"")" "forbidden"
code=$(as_n1 PATCH /api/v1/namespaces/shop/pods/n1-p1/status "$(ann "\"$key\":\"enabled\"")")
[ "$code" = 200 ] || fail "the agent's own write is refused (HTTP $code): $(cat "$state/.as_n1.out")"

step "without the admission policy the agent says so (and still annotates)"
kapi DELETE /apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/ztunnel-annotates-its-node-only >/dev/null
for _ in $(seq 1 50); do # the API server's policy cache follows in a moment
  [ "$(as_n1 PATCH "/api/v1/namespaces/legacy/pods/n1-p2/status?dryRun=All" '{"metadata":{"labels":{"x":"y"}}}')" = 200 ] && break
  sleep 0.2
done
"$cluster" agent --name "$name" --node n1 stop
"$cluster" agent --name "$name" --node n1 start
wait_log "$name" n1 '"msg":"the API server lets this agent relabel pods' 15
[ "$(metric n1 ztunnel_kube_write_guard)" = 0 ] || fail "n1 does not report its writes unguarded"
wait_redirection shop n1-p1 enabled 5

for n in n1 n2; do
  if grep -q '"msg":"cannot write the redirection annotation"' "$(agent_log "$name" "$n")"; then
    fail "$n failed a write: $(grep '"msg":"cannot write the redirection annotation"' "$(agent_log "$name" "$n")" | tail -n 1)"
  fi
done

down_and_check "$name" "$before"
echo "PASS"
