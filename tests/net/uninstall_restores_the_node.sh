#!/usr/bin/env bash
# `ztunnel uninstall` leaves each node as it was before the agents: with
# the agents stopped (pods still running), it detaches every link the
# agents pinned (veths, uplink) so their programs are gone, removes the
# pinned maps and the directory, the policy-routing rule and route,
# ztunnel-cni from the CNI configuration and the sockets; the pods' traffic
# then flows plainly. Installing again and uninstalling again gives exactly
# the same node state (ip rule, every routing table, the conflist, bpffs).
# It refuses to run while an agent runs, and a second run finds nothing.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name un)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "a"},
          "n1-p2": {"namespace": "mesh", "serviceAccount": "b"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "c"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
state=$(info "$name" | jq -r .stateDir)
start_echo "$name" n2-p1 7000
start_echo "$name" n1-p2 7000
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n1 '.protocol == "HBONE" and ."dst.workload" == "n2-p1"'
node_ns() { info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns'; }
conf_dir() { info "$name" | jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .cniConfDir'; }
in_node() { nsenter --net="/run/netns/$(node_ns "$1")" "${@:2}"; }
uninstall() { # NODE: ztunnel uninstall on the node, as an operator runs it
  in_node "$1" "$build/ztunnel/ztunnel" uninstall --bpf-pin-dir "$state/bpf/$1" \
    --cni-conf-dir "$(conf_dir "$1")" --cni-socket "$state/nodes/$1/cni.sock"
}
# node_state NODE: what install may change, in a comparable form.
node_state() {
  echo "== rules"; in_node "$1" ip rule
  echo "== routes"; in_node "$1" ip route show table all
  echo "== conflist"; jq -S . "$(conf_dir "$1")"/*.conflist
  echo "== bpffs"; (cd "$state/bpf" && find . -path "./$1*" | sort)
}
clsact=0
[[ ${ZT_CLUSTER_AGENT_ARGS:-} != *"--attach clsact"* ]] || clsact=1
# pinned_bpf NODE: the link and program ids behind the node's pinned links
# (TCX), or the programs of our clsact filters (the fallback suite).
pinned_bpf() {
  local f dev
  if [ "$clsact" = 1 ]; then
    for dev in $(in_node "$1" ip -o link show | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      in_node "$1" tc filter show dev "$dev" ingress 2>/dev/null | grep -o 'zt_ingress.* id [0-9]*' |
        sed 's/.* id /prog /'
    done | sort -u
    return
  fi
  for f in "$state/bpf/$1"/links/*; do
    bpftool link show pinned "$f" -j | jq -r '"link \(.id)", "prog \(.prog_id)"'
  done | sort -u
}
without_ztunnel_cni() { jq -S '.plugins |= map(select(.type != "ztunnel-cni"))' "$(conf_dir "$1")"/*.conflist; }

step "refused while an agent runs"
rc=0
out=$(uninstall n1 2>&1) || rc=$?
[ "$rc" = 1 ] && [[ $out == *"an agent runs on this node"* ]] || fail "uninstall beside a running agent: exit $rc: $out"
[ -d "$state/bpf/n1/links" ] || fail "a refused uninstall removed pins"

step "agents stopped, pods running: uninstall removes everything"
declare -A ids expected
for n in n1 n2; do
  ids[$n]=$(pinned_bpf "$n")
  [ -n "${ids[$n]}" ] || fail "no pinned links on $n before uninstall"
  expected[$n]=$(without_ztunnel_cni "$n")
  "$cluster" agent --name "$name" --node "$n" stop
done
for n in n1 n2; do
  out=$(uninstall "$n") || fail "uninstall on $n failed: $out"
  echo "$out"
  if [ "$clsact" = 1 ]; then
    grep -Eq ', [1-9][0-9]* clsact filters removed' <<<"$out" || fail "no clsact filters removed on $n: $out"
  else
    grep -Eq '^capture: [1-9][0-9]* links detached' <<<"$out" || fail "no links detached on $n: $out"
  fi
  while read -r kind id; do
    # The kernel frees an object once its last reference went (deferred).
    for _ in $(seq 1 30); do bpftool "$kind" show id "$id" >/dev/null 2>&1 || break; sleep 0.1; done
    if bpftool "$kind" show id "$id" >/dev/null 2>&1; then fail "$kind $id of $n still exists after uninstall"; fi
  done <<<"${ids[$n]}"
  [ ! -e "$state/bpf/$n" ] || fail "pins left on $n: $(find "$state/bpf/$n")"
  if in_node "$n" ip rule | grep -q 'fwmark 0x400/0xf00'; then fail "policy rule left on $n"; fi
  [ -z "$(in_node "$n" ip route show table 100)" ] || fail "routes left in table 100 on $n"
  [ "$(jq -S . "$(conf_dir "$n")"/*.conflist)" = "${expected[$n]}" ] ||
    fail "conflist of $n is not the primary's alone: $(cat "$(conf_dir "$n")"/*.conflist)"
  [ ! -e "$state/nodes/$n/cni.sock" ] || fail "CNI socket left on $n"
done
clean1=$(node_state n1)

step "pods talk plainly with no agent anywhere"
check_tcp "$name" n1-p1 n2-p1 7000
check_tcp "$name" n2-p1 n1-p2 7000
check_tcp "$name" n1-p1 n1-p2 7000

step "a second uninstall finds nothing"
out=$(uninstall n1) || fail "second uninstall failed: $out"
grep -q '^capture: 0 links detached, 0 clsact filters removed, 0 pinned' <<<"$out" || fail "second uninstall: $out"

step "install again (CNI chain, agents), then uninstall: the node is exactly as after the first"
for n in n1 n2; do
  in_node "$n" "$build/ztunnel/ztunnel-cni" install --conf-dir "$(conf_dir "$n")" \
    --agent-socket "$state/nodes/$n/cni.sock" >/dev/null
  "$cluster" agent --name "$name" --node "$n" start
  "$cluster" agent --name "$name" --node "$n" ready
done
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n2 '.protocol == "HBONE" and ."dst.workload" == "n2-p1"'
assert_agents_clean "$name"
"$cluster" agent --name "$name" --node n1 stop
"$cluster" agent --name "$name" --node n2 stop
uninstall n1 >/dev/null || fail "uninstall after reinstall failed"
uninstall n2 >/dev/null || fail "uninstall after reinstall failed on n2"
diff <(echo "$clean1") <(node_state n1) || fail "n1 differs from its state after the first uninstall"
check_tcp "$name" n1-p1 n2-p1 7000

"$cluster" down --name "$name"
clusters=()
assert_gone "$name" "$before"
echo "PASS"
