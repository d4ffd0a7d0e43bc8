#!/usr/bin/env bash
# tools/bench kube [PODS SERVICES POLICIES]: see tools/bench --help. A
# 2-node netns cluster on the real API server (tools/cluster up --kube,
# release agents following it), then PODS pods on 100 nodes without an agent,
# SERVICES Services with their EndpointSlices and POLICIES
# AuthorizationPolicies written through the API (tools/benchsrc/kube_load.py).
# Measured on n1's agent: time from labelling a namespace to its pod on n1
# enrolled and captured (the agent's "pod enrolled" line, written after the
# BPF maps are updated), five times; CPU while the API makes 20 pod changes a
# second for 30 s (and while idle, for comparison); RSS.
# ZT_BENCH_PERF=FILE records the agent's profile during the churn (perf).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pods=${1:-10000} services=${2:-2000} policies=${3:-1000}
rel="$top/build/release"
cluster="$top/tools/cluster"
name="zk$(( $$ % 100000 ))"
[ "$(id -u)" -eq 0 ] || { echo "bench kube: needs root (network namespaces)" >&2; exit 1; }
[ -x "$top/.deps/kube/kube-apiserver" ] || { echo "bench kube: no kube-apiserver: run tools/bootstrap --kube" >&2; exit 1; }
work=$(mktemp -d /tmp/zt-bench-XXXXXX)
cleanup() {
  "$cluster" down --name "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$rel/ztunnel/ztunnel-ctl" ca init --dir "$work/ca" --trust-domain cluster.local >/dev/null
cat > "$work/spec.json" <<'JSON'
{"namespaces": {"shop": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"}}}
JSON
"$cluster" up --name "$name" --spec "$work/spec.json" --nodes 2 --pods-per-node 1 --kube \
  --agent "$rel/ztunnel/ztunnel" --cni "$rel/ztunnel/ztunnel-cni" \
  --agent-args "--identity-provider local-ca --ca-dir $work/ca --log-level info" >/dev/null
info=$("$cluster" info --name "$name")
state=$(jq -r .stateDir <<<"$info")
underlay=$(jq -r .underlayNetns <<<"$info")
log="$state/nodes/n1/agent.log"
pid=$(cat "$state/nodes/n1/agent.pid")
ms() { date +%s%3N; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
count() { grep -c -- "$1" "$log" || true; }
kapi() { "$top/tools/kube" api --dir "$state/kube" "$@"; }
load() { nsenter --net="/run/netns/$underlay" python3 "$top/tools/benchsrc/kube_load.py" "$@" --kube-dir "$state/kube"; }
# wait_count PATTERN N SECONDS: until the log has N lines matching PATTERN.
wait_count() {
  local deadline=$(( $(ms) + $3 * 1000 ))
  until [ "$(count "$1")" -ge "$2" ]; do
    [ "$(ms)" -lt "$deadline" ] || { echo "bench kube: n1's agent did not log $1 in $3 s" >&2; exit 1; }
    sleep 0.01
  done
}
echo "bench kube: n1's agent on the real API server, $pods pods / $services services / $policies policies"
echo "agent RSS before the load: $(rss_mb) MB"

t0=$(ms)
load load --pods "$pods" --services "$services" --policies "$policies"
loaded=$(( $(ms) - t0 ))
# The model holds every pod once the watch events are applied.
deadline=$(( $(ms) + 120000 ))
until grep '"msg":"snapshot applied"' "$log" | tail -n 1 | jq -e --argjson p "$pods" --argjson s "$services" \
  --argjson a "$policies" '.pods >= $p and .services >= $s and .authorization_policies >= $a' >/dev/null 2>&1; do
  [ "$(ms)" -lt "$deadline" ] || { echo "bench kube: the agent never applied $pods pods" >&2; exit 1; }
  sleep 0.1
done
echo "written through the API in $((loaded / 1000)) s; agent caught up $(( $(ms) - t0 - loaded )) ms after the last write"
grep '"msg":"snapshot applied"' "$log" | tail -n 1 | jq -c '{pods, services, authorization_policies, enrolled, build_ms, model_bytes}'

ticks=$(getconf CLK_TCK)
idle0=$(cpu_ticks); sleep 10; idle1=$(cpu_ticks)
echo "idle CPU at this size: $(( (idle1 - idle0) * 1000 / ticks / 10 / 10 )).$(( (idle1 - idle0) * 1000 / ticks / 10 % 10 )) % of one core"

body="$work/label.json"
lat=()
for run in 1 2 3 4 5; do
  enrolled=$(count '"msg":"pod enrolled".*"pod":"n1-p1"')
  released=$(count '"msg":"pod released".*"pod":"n1-p1"')
  echo '{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}' > "$body"
  t0=$(ms)
  kapi --type merge PATCH /api/v1/namespaces/shop "$body" >/dev/null
  wait_count '"msg":"pod enrolled".*"pod":"n1-p1"' $((enrolled + 1)) 10
  lat+=($(( $(ms) - t0 )))
  echo '{"metadata":{"labels":{"istio.io/dataplane-mode":null}}}' > "$body"
  kapi --type merge PATCH /api/v1/namespaces/shop "$body" >/dev/null
  wait_count '"msg":"pod released".*"pod":"n1-p1"' $((released + 1)) 10
  [ "$run" = 5 ] || sleep 1
done
sorted=$(printf '%s\n' "${lat[@]}" | sort -n | tr '\n' ' ')
echo "namespace labelled -> pod on n1 enrolled and captured: ${lat[*]} ms (median $(cut -d' ' -f3 <<<"$sorted") ms; target <= 1000)"

perf_pid=""
if [ -n "${ZT_BENCH_PERF:-}" ]; then
  perf record -g -p "$pid" -o "$ZT_BENCH_PERF" >/dev/null 2>&1 & perf_pid=$!
fi
c0=$(cpu_ticks); t0=$(ms)
load churn --rate 20 --seconds 30
c1=$(cpu_ticks); t1=$(ms)
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
pct10=$(( (c1 - c0) * 1000 * 1000 / ticks / (t1 - t0) ))
echo "20 pod changes/s for 30 s: agent CPU $((pct10 / 10)).$((pct10 % 10)) % of one core (target < 10 %)"
echo "agent RSS: $(rss_mb) MB now, $(hwm_mb) MB peak (target < 150 MB)"
