#!/usr/bin/env bash
# The agents follow a real kube-apiserver (--kube), running as the
# DaemonSet's ServiceAccount with a TokenRequest token and exactly the RBAC
# of daemonset/ztunnel.yaml (created for real, server-side validated):
# labelling a namespace through the API enrolls its pods and their traffic
# goes over HBONE; an AuthorizationPolicy created through the API is
# enforced and stops being enforced once deleted (the time from the API
# write to enforcement is printed); the API server killed and restarted
# mid-test: the agents keep enforcing the last model, resume their watches
# (at most one relist per kind) and follow the next change; removing the
# label releases the pods; a pod created through the API after the agents
# started gets its identity and mesh traffic. A SubjectAccessReview shows the agent cannot
# read Secrets or write anything.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_kube
name=$(unique_name ka)
before=$(host_links)
new_spec '{"namespaces": {"shop": {}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"},
          "n1-p2": {"namespace": "legacy"}, "n2-p2": {"namespace": "legacy"},
          "n1-p3": {"namespace": "shop", "serviceAccount": "late"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2 --kube
state=$(info "$name" | jq -r .stateDir)
ms() { date +%s%3N; }
start_echo "$name" n2-p1 7000
for n in n1 n2; do
  grep -q '"msg":"following the Kubernetes API"' "$(agent_log "$name" "$n")" || fail "$n is not following the API"
  if grep -q 'refused the list' "$(agent_log "$name" "$n")"; then fail "$n lacks RBAC: $(grep 'refused the list' "$(agent_log "$name" "$n")")"; fi
done

step "RBAC: the agent's ServiceAccount reads what it needs and nothing else"
can() { # VERB RESOURCE [NAMESPACE] [GROUP]
  kapi POST /apis/authorization.k8s.io/v1/subjectaccessreviews "$(body "$(jq -n --arg v "$1" --arg r "$2" \
    --arg ns "${3:-}" --arg g "${4:-}" '{apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview",
      spec: {user: "system:serviceaccount:ztunnel-system:ztunnel",
             groups: ["system:serviceaccounts", "system:serviceaccounts:ztunnel-system", "system:authenticated"],
             resourceAttributes: {verb: $v, resource: $r, namespace: $ns, group: $g}}}')")" | jq -r .status.allowed
}
[ "$(can list pods)" = true ] || fail "the agent cannot list pods"
[ "$(can watch authorizationpolicies "" security.istio.io)" = true ] || fail "the agent cannot watch policies"
for denied in "get secrets ztunnel-system" "list secrets" "create pods shop" "update pods shop" "delete namespaces" \
  "patch configmaps ztunnel-system" "list serviceaccounts"; do
  # shellcheck disable=SC2086
  [ "$(can $denied)" = false ] || fail "the agent may $denied"
done

step "daemonset/uninstall.yaml is accepted by the API server (server-side dry run)"
un=$(mktemp /tmp/zt-kube-body-XXXXXX)
temp_files+=("$un")
/usr/bin/python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' \
  "$src_root/daemonset/uninstall.yaml" > "$un"
kapi POST "/apis/apps/v1/namespaces/ztunnel-system/daemonsets?dryRun=All&fieldValidation=Strict" "$un" |
  jq -e '.metadata.name == "ztunnel-uninstall"' >/dev/null || fail "daemonset/uninstall.yaml refused"

step "shop not labelled: its pods stay out"
check_tcp "$name" n1-p1 n2-p1 7000
[ "$(count_access "$name" n1 '."dst.workload" == "n2-p1"')" = 0 ] || fail "an unlabelled pod's traffic was captured"

step "label shop through the API: its pods enroll, traffic goes over HBONE"
t0=$(ms)
kapi --type merge PATCH /api/v1/namespaces/shop "$(body '{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}')" >/dev/null
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/web"' 10
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"' 10
echo "namespace label -> both identities issued: $(($(ms) - t0)) ms"
# Other nodes send a pod HBONE once its agent annotated its capture in place (SPEC 8.5).
for _ in $(seq 1 100); do
  [ "$(kapi GET /api/v1/namespaces/shop/pods/n2-p1 | jq -r '.metadata.annotations["ambient.istio.io/redirection"] // ""')" = enabled ] && break
  sleep 0.1
done
echo "namespace label -> n2-p1 annotated captured: $(($(ms) - t0)) ms"
hbone='."dst.workload" == "n2-p1" and .protocol == "HBONE" and ."src.identity" == "spiffe://cluster.local/ns/shop/sa/web"'
for _ in $(seq 1 20); do # n1's model has the annotation a moment later
  check_tcp "$name" n1-p1 n2-p1 7000
  [ "$(count_access "$name" n1 "$hbone")" = 0 ] || break
  sleep 0.1
done
wait_access "$name" n1 "$hbone"

ap='{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"deny-all","namespace":"shop"},"spec":{}}'
step "an AuthorizationPolicy created through the API is enforced"
t0=$(ms)
kapi POST /apis/security.istio.io/v1/namespaces/shop/authorizationpolicies "$(body "$ap")" >/dev/null
enforced=""
for _ in $(seq 1 50); do
  if nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" expect-fail \
    "$(pod_field "$name" n2-p1 ip)" 7000 1 2>/dev/null; then enforced=$(($(ms) - t0)); break; fi
  sleep 0.05
done
[ -n "$enforced" ] || fail "the policy was not enforced within a few seconds"
echo "API write -> policy enforced: $enforced ms"
wait_access "$name" n2 '.msg == "connection denied" and .reason == "policy_denied"'

step "the API server is killed and restarted: enforcement holds, watches resume"
relists() { nsenter --net="/run/netns/$(info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns')" \
  curl -sf http://127.0.0.1:15020/metrics | awk '$1 == "ztunnel_kube_relists_total" { print $2 }'; }
r1=$(relists n2)
"$src_root/tools/kube" restart-apiserver --dir "$state/kube" &
restarting=$!
started_pids+=("$restarting")
expect_blocked "$name" n1-p1 n2-p1 7000 # the last model stays in force meanwhile
wait "$restarting" || fail "the API server did not come back"
started_pids=("${started_pids[@]/$restarting}")
echo "enforcement held while the API server was down"

step "deleting the policy through the API lifts it (the watches resumed)"
t0=$(ms)
kapi DELETE /apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/deny-all >/dev/null
lifted=""
for _ in $(seq 1 200); do
  if nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" check \
    "$(pod_field "$name" n2-p1 ip)" 7000 "$(pod_field "$name" n1-p1 ip)" 1024 2>/dev/null; then
    lifted=$(($(ms) - t0)); break
  fi
  sleep 0.05
done
[ -n "$lifted" ] || fail "the deleted policy is still enforced (watches did not resume?)"
echo "API delete -> policy lifted: $lifted ms (after an API server restart)"
r2=$(relists n2)
echo "relists on n2 across the restart: $((r2 - r1))"
[ $((r2 - r1)) -le 6 ] || fail "relist storm: $((r2 - r1)) relists for 6 kinds"

step "a pod created through the API after the agents started gets its identity and mesh traffic"
t0=$(ms)
late=$("$cluster" pod --name "$name" --node n1 add | tail -n 1)
[ "$late" = n1-p3 ] || fail "tools/cluster pod add made $late"
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/late"' 10
echo "pod created through the API -> identity issued: $(($(ms) - t0)) ms (CNI ADD and status included)"
check_tcp "$name" n1-p3 n2-p1 7000
wait_access "$name" n2 '.protocol == "HBONE" and ."src.identity" == "spiffe://cluster.local/ns/shop/sa/late" and ."src.workload" == "n1-p3"'

step "snapshot dump from a live agent: the objects it follows, which lint and check read"
n1ns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')
dump=$(mktemp /tmp/zt-dump-XXXXXX)
temp_files+=("$dump")
nsenter --net="/run/netns/$n1ns" "$ctl" snapshot dump -f "$dump" || fail "snapshot dump from n1's agent failed"
jq -e '[.items[] | select(.kind == "Pod" and .metadata.name == "n1-p3" and .status.podIP != null)] | length == 1' \
  "$dump" >/dev/null || fail "the dump lacks the pod created last (with its status)"
jq -e '[.items[] | select(.kind == "Namespace" and .metadata.name == "shop" and
  .metadata.labels["istio.io/dataplane-mode"] == "ambient")] | length == 1' "$dump" >/dev/null ||
  fail "the dump lacks shop's label"
"$ctl" snapshot lint "$dump" >/dev/null || fail "snapshot lint of the live dump: $("$ctl" snapshot lint "$dump" 2>&1)"
"$ctl" check --snapshot "$dump" --from shop/n1-p3 --to shop/n2-p1:7000 | grep -q ALLOW ||
  fail "check on the live dump: $("$ctl" check --snapshot "$dump" --from shop/n1-p3 --to shop/n2-p1:7000 2>&1)"

step "remove the label through the API: the pods are released"
kapi --type merge PATCH /api/v1/namespaces/shop "$(body '{"metadata":{"labels":{"istio.io/dataplane-mode":null}}}')" >/dev/null
wait_log "$name" n1 '"msg":"certificate no longer needed"' 10
n=$(count_access "$name" n1 '."dst.workload" == "n2-p1"')
check_tcp "$name" n1-p1 n2-p1 7000
sleep 0.3
[ "$(count_access "$name" n1 '."dst.workload" == "n2-p1"')" = "$n" ] || fail "a released pod's traffic was still captured"

down_and_check "$name" "$before"
echo "PASS"
