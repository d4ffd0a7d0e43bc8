#!/usr/bin/env bash
# The monitoring bundle (daemonset/monitoring/) stays valid and in sync with
# the agent. promtool accepts the alerting rules, and their unit tests pass:
# every alert fires on one input and stays quiet on another. Every alert has
# a severity, a summary and a description. The Grafana dashboard is JSON,
# takes its data source from a template variable, and Prometheus's parser
# accepts every panel query. Every metric that the dashboard, the rules and
# the rule tests name appears in docs/metrics.md. Every capture verdict
# they name is one that the eBPF program counts, and every fail-closed
# verdict is on the dashboard. Every `limit` they match is a documented
# limit.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || { echo "SKIP: promtool missing (Debian package prometheus)"; exit 77; }
mon="$src/daemonset/monitoring"
rules="$mon/prometheus-rules.yaml"
dashboard="$mon/grafana-dashboard.json"
docs="$src/docs/metrics.md"

echo "--- promtool check rules, test rules"
promtool check rules --lint=all --lint-fatal "$rules" || fail "promtool check rules"
(cd "$mon" && promtool test rules prometheus-rules.test.yaml) || fail "promtool test rules"

echo "--- every alert: severity, summary, description; a test where it fires and one where it does not"
mapfile -t alerts < <(sed -n 's/^ *- alert: *//p' "$rules")
[ "${#alerts[@]}" -gt 0 ] || fail "no alerts in $rules"
# One alert's block of the rules file: from its "- alert:" line to the next.
alert_block() { awk -v a="$1" '/^ *- alert:/ { on = ($3 == a) } on' "$rules"; }
# "fires" and "quiet" per alertname, from the test file's alert_rule_test entries.
verdicts=$(awk '/alertname:/ { a = $2 } /exp_alerts: *\[\]/ { print a, "quiet" } /exp_labels:/ { print a, "fires" }' \
  "$mon/prometheus-rules.test.yaml" | sort -u)
for a in "${alerts[@]}"; do
  block=$(alert_block "$a")
  grep -qE '^ +severity: (critical|warning|info)$' <<<"$block" || fail "$a: no severity label"
  grep -qE '^ +summary: ' <<<"$block" || fail "$a: no summary annotation"
  grep -qE '^ +description: ' <<<"$block" || fail "$a: no description annotation"
  grep -qx "$a fires" <<<"$verdicts" || fail "$a: no test where it fires"
  grep -qx "$a quiet" <<<"$verdicts" || fail "$a: no test where it stays quiet"
done
echo "${#alerts[@]} alerts: ${alerts[*]}"

echo "--- the dashboard parses; every panel query is valid PromQL"
jq -e '.schemaVersion >= 36 and (.panels | length > 0)' "$dashboard" >/dev/null || fail "dashboard: not JSON, or no panels"
jq -e '.templating.list[] | select(.name == "datasource" and .type == "datasource" and .query == "prometheus")' \
  "$dashboard" >/dev/null || fail "dashboard: no \${datasource} variable of type prometheus"
# Every panel and query uses that variable, not a data source of the author's Grafana.
bad=$(jq -r '.. | objects | select(has("datasource") and (.type? != "datasource")) | .datasource
  | select(type == "object" and .uid != "${datasource}" and .uid != "-- Grafana --") | .uid' "$dashboard")
[ -z "$bad" ] || fail "dashboard: data sources other than \${datasource}: $bad"
queries="$work/queries.json"
jq -c -f "$mon/dashboard-queries.jq" --arg rate_interval 1m "$dashboard" > "$queries"
n=$(wc -l < "$queries")
[ "$n" -gt 0 ] || fail "dashboard: no queries"
jq -e 'select(.expr == "" or .expr == null)' "$queries" >/dev/null && fail "dashboard: a target without expr"
# Prometheus's own parser: each query as a recording rule (JSON is YAML).
jq -s '{groups: [{name: "dashboard", rules: [to_entries[] | {record: "dashboard:query_\(.key)", expr: .value.expr}]}]}' \
  "$queries" > "$work/dashboard-rules.yaml"
promtool check rules "$work/dashboard-rules.yaml" ||
  { jq -r '"\(.panel) \(.refId): \(.expr)"' "$queries" >&2; fail "dashboard: a query Prometheus does not accept"; }
echo "$n queries in $(jq '[.. | objects | select(has("targets"))] | length' "$dashboard") panels"

echo "--- every metric named is documented in docs/metrics.md"
used=$(jq -r '.expr' "$queries" | cat - "$rules" "$mon/prometheus-rules.test.yaml" <(jq -r '.. | strings' "$dashboard") |
  grep -oE '\b(istio|ztunnel|process)_[a-z0-9_]+' | sort -u)
[ -n "$used" ] || fail "no metric names found"
for m in $used; do
  grep -qE "\`$m(\`|\{)" "$docs" || fail "$m is used by daemonset/monitoring but not in docs/metrics.md"
done
echo "$(wc -w <<<"$used") metrics, all documented"

echo "--- capture verdicts are the eBPF program's; every fail-closed one is on the dashboard"
known=$(sed -n 's/^\t\[ZT_STAT_[A-Z0-9_]*\] = "\([a-z0-9_]*\)",$/\1/p' "$src/ztunnel/capture/bpf_load.c")
[ -n "$known" ] || fail "no verdict names in ztunnel/capture/bpf_load.c"
# The values of every verdict="..." or verdict=~"a|b" matcher.
label_values() { # LABEL FILES...
  local label=$1
  shift
  cat "$@" | grep -oE "\b$label=~?\\\\?\"[^\"\\\\]*" | sed -E 's/^[^"]*"//' | tr '|' '\n' | sort -u
}
named=$(label_values verdict "$queries" "$rules")
[ -n "$named" ] || fail "the dashboard names no capture verdict"
for v in $named; do grep -qx "$v" <<<"$known" || fail "verdict $v: not one of capture_stat_name()'s"; done
while read -r v; do
  grep -qx "$v" <<<"$named" || fail "fail-closed verdict $v is missing from the dashboard's capture drops"
done < <(grep -E '_(dropped|refused)$' <<<"$known")
echo "verdicts: $(echo "$named" | tr '\n' ' ')"

echo "--- every limit matcher matches a documented limit"
tick='`'
limits=$(grep -F "${tick}ztunnel_limit_hits_total$tick" "$docs" | grep -oE "${tick}[a-z_]+$tick" | tr -d "$tick" |
  grep -v '^limit$\|^ztunnel_')
[ -n "$limits" ] || fail "no limit names in docs/metrics.md"
for l in $(label_values limit "$queries" "$rules"); do
  grep -qxE "$l" <<<"$limits" || fail "limit matcher \"$l\" matches no documented limit"
done
echo ok
