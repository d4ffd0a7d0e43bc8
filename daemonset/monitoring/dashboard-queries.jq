# Every query of grafana-dashboard.json, one JSON object a line, with
# Grafana's variables replaced so that Prometheus accepts it as it is:
#   jq -c -f dashboard-queries.jq [--arg rate_interval 1m] [--arg job ztunnel] grafana-dashboard.json
# prints {"panel": "<title>", "refId": "A", "expr": "<PromQL>"}.
# $__rate_interval, $__interval and $__range become --arg rate_interval
# (default 5m); $job, $node, $namespace become their --arg, or ".*" (the
# dashboard's "All"). The tests use it to parse and run every panel's query.
def grafana_vars:
  gsub("\\$(__rate_interval|__interval|__range)\\b"; $ARGS.named.rate_interval // "5m")
  | gsub("\\$\\{?(?<v>[A-Za-z_][A-Za-z0-9_]*)\\}?"; $ARGS.named[.v] // ".*");

.. | objects | select(.type != "row" and has("targets")) as $p
| $p.targets[] | {panel: $p.title, refId, expr: (.expr | grafana_vars)}
