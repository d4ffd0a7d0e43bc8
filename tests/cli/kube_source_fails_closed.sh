#!/usr/bin/env bash
# The agent's Kubernetes source against a scripted API server
# (fixtures/kube/fake_api.py) in the cases a real one produces only by
# chance: a relist whose second page fails is never taken as done (the
# deleted pod goes, the watch does not resume from the half list); a
# steady stream of changes still gets new objects into the model within
# about a second; a cluster serving security.istio.io only in older
# versions leaves the agent not ready (policies would be ignored), while a
# cluster without Istio's group at all runs without policies.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
fake="$src/tests/cli/fixtures/kube/fake_api.py"

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() { # MODE: the fake API server and an agent following it
  api=$(free_port)
  /usr/bin/python3 "$fake" "$api" "$1" &
  pids+=("$!")
  for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$api/api/v1/namespaces" && break; sleep 0.1; done
  "$agent" --kube --kube-server "http://127.0.0.1:$api" --kube-token-file "$work/none" --kube-ca-file "$work/none" \
    --node-name n1 --capture false --log-format json --admin-addr 127.0.0.1:0 --metrics-addr off \
    --readiness-addr off 2> "$work/agent-$1.log" &
  pids+=("$!")
  for _ in $(seq 1 50); do
    admin=$(jq -r 'select(.msg == "admin listening" and .server == "admin") | .port' "$work/agent-$1.log" 2>/dev/null | head -n 1)
    [ -n "$admin" ] && break
    sleep 0.1
  done
  [ -n "$admin" ] || { cat "$work/agent-$1.log" >&2; fail "agent did not start"; }
}
pods() { curl -s "http://127.0.0.1:$admin/config_dump" | jq -r '[.workloads[].name] | sort | join(",")'; }
ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/healthz/ready"; }

start relist
# c arrives ~2 s in, then a service changes every 20 ms for 10 s: c must
# be in the model well before that stream ends.
for _ in $(seq 1 50); do [ "$(pods)" = "a,c" ] && break; sleep 0.1; done
got=$(pods)
[ "$got" = "a,c" ] || { tail -n 20 "$work/agent-relist.log" >&2; fail "pods in the model: \"$got\", want a,c"; }
grep -q '"msg":"Istio CRD not installed' "$work/agent-relist.log" || fail "an absent Istio group was not reported"
for _ in $(seq 1 60); do [ "$(pods)" = "a,c" ] || break; sleep 0.05; done
[ "$(pods)" = "a,c" ] || fail "the model changed under a stream of service events: $(pods)"
echo "relist after a failed page: the model has a and c, not the deleted b nor the half list's stale pod"

kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()
start old-istio
for _ in $(seq 1 30); do grep -q 'not in v1' "$work/agent-old-istio.log" && break; sleep 0.1; done
grep -q 'not in v1' "$work/agent-old-istio.log" || fail "security.istio.io without v1 was not reported"
sleep 1
[ "$(ready)" = 500 ] || fail "the agent is ready although it cannot read Istio's policies (readiness $(ready))"
[ "$(curl -s "http://127.0.0.1:$admin/config_dump" | jq '.snapshot.generation')" = 0 ] ||
  fail "a model was applied without Istio's policies"
echo "security.istio.io served only in v1beta1: not ready, no model"
