#!/usr/bin/env bash
# Known traffic gives exact metrics (docs/metrics.md, SPEC.md §6.1): three
# mTLS connections of known size, two denied by an AuthorizationPolicy and
# one plaintext path, counted by both agents with Istio's labels; the
# access log says the same; `promtool check metrics` accepts the scrape.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
command -v promtool >/dev/null || skip "promtool (Debian package prometheus) not installed"
name=$(unique_name mt)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web", "labels": {"app": "web", "version": "v1"}},
          "n1-p2": {"namespace": "plain"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api", "labels": {"app": "api", "version": "v2"}},
          "n2-p2": {"namespace": "plain"}},
 "services": [{"name": "api", "namespace": "shop", "clusterIP": "10.96.0.30",
               "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 7000}]}],
 "objects": [
  {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
   "metadata": {"name": "no-7100", "namespace": "shop"},
   "spec": {"action": "DENY", "rules": [{"to": [{"operation": {"ports": ["7100"]}}]}]}}]}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
for port in 7000 7100; do start_echo "$name" n2-p1 "$port"; done
ip_of() { pod_field "$name" "$1" ip; }
scrape() { nsenter --net="/run/netns/$(info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns')" \
  curl -sf http://127.0.0.1:15020/metrics; }
# value NODE SELECTOR: the one sample matching a PromQL-like selector
# (metric{label="v",...}); 0 when absent, failure when several match.
value() {
  local node=$1 metric=${2%%\{*} want=${2#*\{} out
  want=${want%\}}
  out=$(scrape "$node" | awk -v m="$metric" -v want="$want" '
    BEGIN { n = split(want, w, "\",") }
    $1 ~ ("^" m "\\{") || $1 == m {
      ok = 1
      for (i = 1; i <= n; i++) { c = w[i]; if (c !~ /"$/) c = c "\""; if (index($0, c) == 0) ok = 0 }
      if (ok) { print $NF; hits++ }
    }
    END { if (hits > 1) exit 3 }') || fail "$2 matches several series on $node"
  echo "${out:-0}"
}
expect() { # NODE SELECTOR VALUE
  local got
  got=$(value "$1" "$2")
  [ "$got" = "$3" ] || { scrape "$1" | grep -F "${2%%\{*}" >&2; fail "$1: $2 = $got, want $3"; }
}

step "3 mTLS connections of 65536 bytes, 2 denied, 1 plaintext path"
M=65536
for _ in 1 2 3; do check_tcp_bytes "$name" n1-p1 n2-p1 7000 $M; done
for _ in 1 2; do expect_blocked "$name" n1-p1 n2-p1 7100; done
check_tcp_bytes "$name" n1-p2 n2-p1 7000 $M
greeting=$(printf 'from=%s\n' "$(ip_of n1-p1)" | wc -c)
plain_greeting=$(printf 'from=%s\n' "$(ip_of n1-p2)" | wc -c)
wait_count_log "$name" n2 '"msg":"connection complete"' 4
wait_count_log "$name" n2 '"msg":"connection denied"' 2

web='source_workload="n1-p1",source_canonical_service="web",source_canonical_revision="v1",source_workload_namespace="shop",source_principal="spiffe://cluster.local/ns/shop/sa/web",source_app="web",source_version="v1",source_cluster="Kubernetes"'
api='destination_workload="n2-p1",destination_canonical_service="api",destination_canonical_revision="v2",destination_workload_namespace="shop",destination_principal="spiffe://cluster.local/ns/shop/sa/api",destination_app="api",destination_version="v2",destination_cluster="Kubernetes"'
mtls='request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"'
deny='request_protocol="tcp",response_flags="DENY",connection_security_policy="mutual_tls"'
for node in n1 n2; do
  reporter=$([ $node = n1 ] && echo source || echo destination)
  step "$node reports as $reporter"
  expect $node "istio_tcp_connections_opened_total{reporter=\"$reporter\",$web,$api,$mtls}" 5
  expect $node "istio_tcp_connections_closed_total{reporter=\"$reporter\",$web,$api,$mtls}" 3
  expect $node "istio_tcp_connections_closed_total{reporter=\"$reporter\",$web,$api,$deny}" 2
  expect $node "istio_tcp_connections_failed_total{reporter=\"$reporter\",$web,$api,$deny}" 2
  expect $node "istio_tcp_connections_failed_total{reporter=\"$reporter\",$web,$api,$mtls}" 0
  expect $node "istio_tcp_received_bytes_total{reporter=\"$reporter\",$web,$api,$mtls}" $((3 * M))
  expect $node "istio_tcp_sent_bytes_total{reporter=\"$reporter\",$web,$api,$mtls}" $((3 * (M + greeting)))
  expect $node "istio_tcp_sockets_open{reporter=\"$reporter\"}" 0
done
expect n2 'ztunnel_authorization_decisions_total{direction="inbound",action="deny",policy="shop/no-7100",reason="denied_by_policy"}' 2
expect n2 'ztunnel_authorization_decisions_total{direction="inbound",action="allow",policy="-",reason="no_allow_policies"}' 4
expect n2 'ztunnel_hbone_requests_refused_total{status="401"}' 2

step "the plaintext path is counted as such, with no principal"
plain='reporter="destination",source_workload="n1-p2",source_canonical_service="n1-p2",source_canonical_revision="latest",source_workload_namespace="plain",source_principal="unknown"'
expect n2 "istio_tcp_connections_opened_total{$plain,destination_workload=\"n2-p1\",request_protocol=\"tcp\",response_flags=\"-\",connection_security_policy=\"unknown\"}" 1
expect n2 "istio_tcp_received_bytes_total{$plain,destination_workload=\"n2-p1\",connection_security_policy=\"unknown\"}" $M
expect n2 "istio_tcp_sent_bytes_total{$plain,destination_workload=\"n2-p1\",connection_security_policy=\"unknown\"}" $((M + plain_greeting))
[ "$(scrape n1 | grep -c 'connection_security_policy="unknown"')" = 0 ] ||
  fail "n1 counted a plaintext path it never carried"

step "the access log agrees"
[ "$(count_access "$name" n2 '.msg == "connection complete" and .direction == "inbound" and .protocol == "HBONE" and .bytes_recv == '$M' and ."src.identity" == "spiffe://cluster.local/ns/shop/sa/web" and ."tls.version" == "TLSv1.3" and .reason == "ok" and .response_flags == "-"')" = 3 ] ||
  fail "n2 did not log the three mTLS connections"
[ "$(count_access "$name" n2 '.msg == "connection denied" and .policy == "shop/no-7100" and .reason == "policy_denied" and .response_flags == "DENY" and .decision == "deny"')" = 2 ] ||
  fail "n2 did not log the two denials"
[ "$(count_access "$name" n1 '.msg == "connection complete" and .direction == "outbound" and .response_flags == "DENY" and .status == 0')" = 2 ] ||
  fail "n1 did not log the denied outbound connections with DENY"
wait_access "$name" n2 '.protocol == "TCP" and ."src.workload" == "n1-p2" and ."src.identity" == "" and .bytes_recv == '$M

step "promtool accepts both scrapes"
for node in n1 n2; do
  problems=$(scrape $node | promtool check metrics 2>&1) || fail "promtool check metrics on $node: $problems"
  [ -z "$problems" ] || fail "promtool check metrics on $node: $problems"
done

down_and_check "$name" "$(host_links)"
echo "PASS"
