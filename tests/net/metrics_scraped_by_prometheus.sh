#!/usr/bin/env bash
# A real Prometheus, inside node n1's network namespace and listening only
# on its 127.0.0.1, scrapes n1's agent (127.0.0.1:15020) every second.
# Every query of the Grafana dashboard (daemonset/monitoring/) then answers
# for the traffic this test made: mTLS connections in and out of n1 (mTLS
# share above 0, bytes, connections, the pooled HBONE connection) and one
# denial, which appears under the DENY policy's name and as a DENY response
# flag. The certificates are valid, the agent is ready and its snapshot is
# fresh; counters of events that did not happen (a rejected snapshot, a
# pre-auth limit hit, capture drops) are there at 0, as the alerts' increase()
# needs. The alerting rules load and evaluate against the real series
# without error, and none of them is pending or firing. promtool check
# metrics finds nothing wrong in a raw scrape.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
for tool in prometheus promtool curl; do
  command -v "$tool" >/dev/null || skip "$tool missing (Debian packages prometheus, curl)"
done
mon="$src_root/daemonset/monitoring"
name=$(unique_name met)
before=$(host_links)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n1-p2": {"namespace": "shop", "serviceAccount": "db"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"},
          "n2-p2": {"namespace": "shop", "serviceAccount": "cache"}},
 "objects": [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "no-7100", "namespace": "shop"},
              "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["7100"]}}]}]}}]}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/web"'
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/db"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
start_echo "$name" n1-p2 7000
start_echo "$name" n1-p2 7100
start_echo "$name" n2-p1 7000
node_ns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')
[ -e "/run/netns/$node_ns" ] || fail "no network namespace for node n1: $node_ns"
in_node() { nsenter --net="/run/netns/$node_ns" "$@"; }

step "n1's agent serves /metrics on 127.0.0.1:15020"
in_node curl -sf -m 5 -o /dev/null http://127.0.0.1:15020/metrics || fail "no /metrics on n1's 127.0.0.1:15020"

step "Prometheus in n1's namespace, on 127.0.0.1 only, scraping the agent every second"
prom_dir=$(mktemp -d /tmp/zt-prom-XXXXXX)
temp_files+=("$prom_dir")
prom_port=19090
cat > "$prom_dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $mon/prometheus-rules.yaml
scrape_configs:
  - job_name: ztunnel
    static_configs:
      - targets: ['127.0.0.1:15020']
        labels:
          node: n1
EOF
promtool check config "$prom_dir/prometheus.yml" >/dev/null || fail "promtool check config"
# nsenter execs Prometheus (no fork), so $! is Prometheus itself.
nsenter --net="/run/netns/$node_ns" /usr/bin/prometheus --config.file="$prom_dir/prometheus.yml" --storage.tsdb.path="$prom_dir/data" \
  --web.listen-address="127.0.0.1:$prom_port" --web.enable-lifecycle > "$prom_dir/prometheus.log" 2>&1 &
prom_pid=$!
started_pids+=("$prom_pid")
stop_prometheus() {
  kill "$prom_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$prom_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$prom_pid" 2>/dev/null || true
  wait "$prom_pid" 2>/dev/null || true
  started_pids=("${started_pids[@]/$prom_pid}")
}
prom_get() { # PATH [curl args...]: the HTTP API's JSON answer
  local path=$1
  shift
  in_node curl -sf -m 5 "$@" "http://127.0.0.1:$prom_port$path"
}
prom_query() { prom_get /api/v1/query --get --data-urlencode "query=$1"; }
prom_failed() { tail -n 20 "$prom_dir/prometheus.log" >&2; fail "$*"; }
for _ in $(seq 1 300); do
  prom_get /-/ready >/dev/null 2>&1 && break
  kill -0 "$prom_pid" 2>/dev/null || prom_failed "Prometheus exited"
  sleep 0.1
done
prom_get /-/ready >/dev/null || prom_failed "Prometheus not ready after 30 s"
listening=$(in_node ss -Hltnp | awk -v p="pid=$prom_pid," 'index($0, p) { print $4 }' | sort -u)
[ "$listening" = "127.0.0.1:$prom_port" ] || fail "Prometheus listens on: $listening (want only 127.0.0.1:$prom_port)"
for _ in $(seq 1 100); do
  [ "$(prom_query 'up{job="ztunnel"}' | jq -r '.data.result[0].value[1] // empty')" = 1 ] && break
  sleep 0.1
done
[ "$(prom_query 'up{job="ztunnel"}' | jq -r '.data.result[0].value[1] // empty')" = 1 ] ||
  prom_failed "Prometheus has not scraped the agent: $(prom_get /api/v1/targets | jq -c '.data.activeTargets[] | {health, lastError}')"

step "known traffic, twice (a counter's first sample gives no rate): mTLS in, out and within n1, one denial"
traffic() {
  check_tcp "$name" n2-p1 n1-p2 7000 # inbound HBONE at n1: reporter="destination"
  check_tcp "$name" n1-p1 n2-p1 7000 # outbound HBONE from n1: reporter="source"
  check_tcp "$name" n1-p1 n1-p2 7000 # within n1: both
  expect_blocked "$name" n2-p1 n1-p2 7100 # denied at n1 by shop/no-7100
}
traffic
sleep 3
traffic
denials='sum by (policy) (ztunnel_authorization_decisions_total{job="ztunnel",action="deny",policy="shop/no-7100"})'
for _ in $(seq 1 150); do
  [ "$(prom_query "$denials" | jq -r '.data.result[0].value[1] // 0')" -ge 2 ] 2>/dev/null && break
  sleep 0.2
done
[ "$(prom_query "$denials" | jq -r '.data.result[0].value[1] // 0')" -ge 2 ] 2>/dev/null ||
  fail "Prometheus did not see 2 denials by shop/no-7100: $(prom_query "$denials" | jq -c .data.result)"
sleep 3 # a few more scrapes: bytes are counted when each side closes

step "every query of the dashboard answers"
queries=$(jq -c -f "$mon/dashboard-queries.jq" --arg rate_interval 1m --arg job ztunnel --arg node n1 \
  --arg namespace shop "$mon/grafana-dashboard.json")
[ -n "$queries" ] || fail "the dashboard has no queries"
declare -A result
while read -r q; do
  key="$(jq -r '"\(.panel)/\(.refId)"' <<<"$q")"
  expr=$(jq -r .expr <<<"$q")
  ans=$(prom_query "$expr") || fail "$key: the query failed: $expr"
  [ "$(jq -r .status <<<"$ans")" = success ] || fail "$key: $(jq -c . <<<"$ans")"
  result["$key"]=$(jq -c '[.data.result[] | {m: .metric, v: (.value[1] | tonumber)}]' <<<"$ans")
  echo "$key: $(jq -c 'map("\(.m | to_entries | map("\(.key)=\(.value)") | join(",")) \(.v)")' <<<"${result["$key"]}")"
  # Counters with fixed label values are exported from the start, at 0
  # (docs/metrics.md): even the panels of events this test does not cause
  # (limits, capture drops) have series.
  [ "$(jq length <<<"${result["$key"]}")" -gt 0 ] || fail "$key: no series: $expr"
done <<<"$queries"

# expect PANEL/REFID JQ_CONDITION [LABEL VALUE]: some series (with that
# label value) has .v meeting the condition.
expect() {
  local key=$1 cond=$2 label=${3:-} value=${4:-}
  [ -n "${result[$key]+set}" ] || fail "the dashboard has no query $key"
  jq -e --arg l "$label" --arg v "$value" \
    "any(.[]; (\$l == \"\" or .m[\$l] == \$v) and (.v | $cond))" <<<"${result["$key"]}" >/dev/null ||
    fail "$key: no series${label:+ with $label=$value} where value $cond: ${result[$key]}"
}
# expect_all PANEL/REFID JQ_CONDITION: every series meets it.
expect_all() {
  jq -e "all(.[]; .v | $2)" <<<"${result[$1]}" >/dev/null || fail "$1: not every value $2: ${result[$1]}"
}
expect "Agents ready/A" '. == 1'
expect "Agents ready/B" '. == 1'
expect "Agent readiness/A" '. == 1'
expect "Agent readiness/B" '. == 1'
expect "Inbound mTLS share/A" '. > 0'
expect "mTLS coverage: connections/A" '. > 0' reporter destination
expect "mTLS coverage: connections/A" '. > 0' reporter source
expect "mTLS coverage: bytes/A" '. > 0' reporter destination
expect "mTLS coverage: bytes/A" '. > 0' reporter source
expect "Throughput/A" '. > 0' reporter destination
expect "Throughput/B" '. > 0' reporter destination
expect "Throughput/C" '. > 0' reporter destination
expect "Connections opened/A" '. > 0' connection_security_policy mutual_tls
expect "Connections active/B" '. > 0' side client # n1-p1's pooled connections
expect "Connection failures by response flag/A" '. > 0' response_flags DENY
expect "Denials by policy/A" '. > 0' policy shop/no-7100
expect "Certificate expiry/A" '. > 0' identity spiffe://cluster.local/ns/shop/sa/web
expect_all "Certificate expiry/A" '. > 0'
expect "Soonest certificate expiry/A" '. > 0'
expect_all "Snapshot age/A" '. >= 0 and . < 600'
expect "Oldest snapshot/A" '. >= 0 and . < 600'
expect "Snapshot loads/A" '. >= 0' result applied
# The alerts' increase() sees a first rejection or limit hit only if the
# series was there, at 0, before it (daemonset/monitoring/README.md).
expect "Snapshot loads/A" '. == 0' result rejected
expect "Limits hit/A" '. == 0' limit pending_handshakes
expect "Limits hit/A" '. == 0' limit pending_handshakes_per_source
# The capture panel's matcher is on the label the agent exports.
[ "$(prom_query 'sum(ztunnel_capture_packets_total{job="ztunnel",verdict="captured_outbound"})' |
  jq -r '.data.result[0].value[1] // 0')" -gt 0 ] || fail "no captured_outbound verdicts in ztunnel_capture_packets_total"

step "the alerting rules evaluate without error, and none is pending or firing"
rules=$(prom_get /api/v1/rules)
[ "$(jq '[.data.groups[].rules[]] | length' <<<"$rules")" = "$(grep -c '^ *- alert:' "$mon/prometheus-rules.yaml")" ] ||
  fail "not every rule loaded: $(jq -c '[.data.groups[].rules[].name]' <<<"$rules")"
jq -e 'all(.data.groups[].rules[]; .health == "ok")' <<<"$rules" >/dev/null ||
  fail "rules with errors: $(jq -c '[.data.groups[].rules[] | select(.health != "ok") | {name, health, lastError}]' <<<"$rules")"
alerts=$(prom_get /api/v1/alerts | jq -c '.data.alerts')
[ "$alerts" = "[]" ] || fail "alerts on a healthy agent: $alerts"

step "promtool check metrics: a raw scrape is clean"
scrape="$prom_dir/scrape.txt"
in_node curl -sf -m 5 http://127.0.0.1:15020/metrics > "$scrape" || fail "scrape of /metrics failed"
rc=0
lint=$(promtool check metrics < "$scrape" 2>&1) || rc=$?
if [ "$rc" != 0 ] || [ -n "$lint" ]; then fail "promtool check metrics (exit $rc): $lint"; fi
echo "$(grep -c '^# TYPE' "$scrape") metric families, $(grep -vc '^#' "$scrape") samples, lint clean"

stop_prometheus
down_and_check "$name" "$before"
echo ok
