#!/usr/bin/env bash
# Readiness (SPEC.md §7, docs/admin.md) says whether the node's traffic is
# really handled: an agent that starts with only an unusable snapshot is
# not ready (500, "snapshot" pending) while it keeps its HTTP servers up;
# a good snapshot makes it ready (200 "ready"); detaching the capture
# program from the uplink by hand makes it unready again at once, and the
# metric ztunnel_ready follows. The other agent stays ready throughout.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name rd)
before=$(host_links)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
state=$(info "$name" | jq -r .stateDir)
node_ns() { info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns'; }
http() { # NODE URL: "<status> <first line of the body>"
  nsenter --net="/run/netns/$(node_ns "$1")" curl -s -m 2 -o "$state/body" -w '%{http_code}' "$2" >"$state/code" || true
  echo "$(cat "$state/code") $(head -n 1 "$state/body" 2>/dev/null)"
}
ready() { http "$1" http://127.0.0.1:15021/healthz/ready; }
expect_ready() { # NODE WANT_PREFIX [SECONDS]
  local got _
  for _ in $(seq 1 $((${3:-5} * 10))); do
    got=$(ready "$1")
    [[ $got == "$2"* ]] && return 0
    sleep 0.1
  done
  fail "$1 readiness: got \"$got\", want \"$2...\""
}
ready_metric() {
  nsenter --net="/run/netns/$(node_ns "$1")" curl -sf http://127.0.0.1:15020/metrics | awk '$1 == "ztunnel_ready" { print $2 }'
}

step "both agents ready once up (tools/cluster waited for it)"
expect_ready n1 "200 ready" 1
expect_ready n2 "200 ready" 1
[ "$(ready_metric n1)" = 1 ] || fail "ztunnel_ready is not 1 on a ready agent"

step "restart n1's agent with only an unusable snapshot: up, but not ready"
"$cluster" agent --name "$name" --node n1 stop
good=$(mktemp /tmp/zt-snap-XXXXXX)
temp_files+=("$good")
cp "$state/configmap/snapshot.json" "$good"
cm="$state/configmap"
publish() { # FILE: the way kubelet swaps a ConfigMap
  local v="..$(date +%s%N)"
  mkdir -p "$cm/$v"
  cp "$1" "$cm/$v/snapshot.json"
  ln -sfn "$v" "$cm/..data_tmp"
  mv -T "$cm/..data_tmp" "$cm/..data"
}
printf '{"kind": "List", "items": [' > "$state/bad.json"
publish "$state/bad.json"
"$cluster" agent --name "$name" --node n1 start
expect_ready n1 "500 not ready, pending: snapshot"
[ "$(ready_metric n1)" = 0 ] || fail "ztunnel_ready is not 0 on an unready agent"
[ "$(wc -l < "$state/body")" = 1 ] || fail "15021 says more than the blockers: $(cat "$state/body")"
http n1 http://127.0.0.1:15000/healthz/ready >/dev/null
grep -q "no valid snapshot applied yet" "$state/body" || fail "admin readiness does not say why: $(cat "$state/body")"
[ "$(http n1 http://127.0.0.1:15021/other)" = "404 not found (try /healthz/ready)" ] || fail "other paths are not 404"
[ "$(nsenter --net="/run/netns/$(node_ns n1)" curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:15021/healthz/ready)" = 405 ] ||
  fail "POST to readiness is not 405"
expect_ready n2 "200 ready" 1

step "a good snapshot: ready"
publish "$good"
expect_ready n1 "200 ready"
expect_ready n2 "200 ready" 1

step "the capture program detached from the uplink by hand: not ready at once"
uplink=$(ip -n "$(node_ns n1)" -o link show eth0 | cut -d: -f1)
pin="$state/bpf/n1/links/if$uplink"
if [[ ${ZT_CLUSTER_AGENT_ARGS:-} == *"--attach clsact"* ]]; then
  # clsact: our filter (handle 0x2a, priority 1) on the uplink's ingress.
  ip netns exec "$(node_ns n1)" tc filter del dev eth0 ingress handle 0x2a prio 1 bpf ||
    fail "no clsact filter of ours on the uplink"
else
  [ -e "$pin" ] || fail "no pinned capture link for the uplink ($pin)"
  rm -f "$pin" # the pin holds the TCX link: removing it detaches the program
fi
expect_ready n1 "500 not ready, pending: capture"
http n1 http://127.0.0.1:15000/healthz/ready >/dev/null
grep -q "capture program not attached to eth0" "$state/body" || fail "admin readiness body: $(cat "$state/body")"
[ "$(ready_metric n1)" = 0 ] || fail "ztunnel_ready is not 0 after the capture was detached"
expect_ready n2 "200 ready" 1

step "a restarted agent attaches again and is ready"
"$cluster" agent --name "$name" --node n1 stop
"$cluster" agent --name "$name" --node n1 start
"$cluster" agent --name "$name" --node n1 ready
expect_ready n1 "200 ready" 1

down_and_check "$name" "$before"
echo "PASS"
