#!/usr/bin/env bash
# ztunnel-cni against the CNI 1.0.0 contract: VERSION; errors as JSON with
# a code; ADD returns prevResult unchanged; CHECK; DEL idempotent and
# successful without an agent; without an agent ADD fails closed for a pod
# that would join the mesh (per the agent's enrollment cache) and succeeds
# for the others (kube-system included); no cache or a namespace the cache
# does not know: fail closed.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name cni)
new_spec '{}'
echo '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}}}' > "$spec"
cluster_up_agents "$name" "$spec" --nodes 1 --pods-per-node 1
plugin="$build/ztunnel/ztunnel-cni"
state=$(info "$name" | jq -r .stateDir)
pod="$state/pods/n1-p1.json"
sock=$(info "$name" | jq -r '.nodes[0].cniSocket')

# cni CMD CONF_JSON [ghost]: runs the plugin in the node netns for pod
# n1-p1 (or for a pod the agent never saw); prints stdout, returns its status.
cni() {
  local id args
  id=$(jq -r .containerId "$pod")
  args=$(jq -r .cniArgs "$pod")
  if [[ ${3:-} == ghost* ]]; then # ghost or ghost:NAMESPACE
    local gns=default
    [[ $3 == ghost:* ]] && gns=${3#ghost:}
    id=ghost-container
    args="K8S_POD_NAMESPACE=$gns;K8S_POD_NAME=ghost;K8S_POD_UID=ghost-uid"
  fi
  nsenter --net="/run/netns/$(info "$name" | jq -r '.nodes[0].netns')" env CNI_COMMAND="$1" \
    CNI_CONTAINERID="$id" CNI_NETNS="$(jq -r .netnsPath "$pod")" \
    CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni CNI_ARGS="$args" "$plugin" <<<"$2"
}
conf() { # conf [extra jq filter]: the plugin's network config with prevResult
  jq -c --arg sock "$sock" --slurpfile p "$pod" \
    "{cniVersion: \"1.0.0\", name: \"zt\", type: \"ztunnel-cni\", agentSocket: \$sock,
      prevResult: \$p[0].cniResult} ${1:-}" <<<'{}'
}
# cni_fails CODE CMD CONF [ghost]: the plugin must exit 1 and print
# a CNI error with CODE; the error JSON is left in $out.
cni_fails() {
  local code=$1 rc=0
  shift
  out=$(cni "$@") || rc=$?
  [ "$rc" = 1 ] || fail "$1: expected exit 1, got $rc: $out"
  jq -e --argjson c "$code" '.code == $c and (.msg | length > 0)' <<<"$out" >/dev/null ||
    fail "$1: expected CNI error code $code, got: $out"
}

step "VERSION"
out=$(CNI_COMMAND=VERSION "$plugin" </dev/null)
jq -e '.supportedVersions | index("1.0.0") and index("0.4.0")' <<<"$out" >/dev/null || fail "VERSION: $out"

step "ADD is idempotent and passes prevResult through unchanged"
out=$(cni ADD "$(conf)") || fail "ADD failed: $out"
[ "$(jq -cS . <<<"$out")" = "$(jq -cS .cniResult "$pod")" ] || fail "ADD changed prevResult: $out"

step "CHECK"
cni CHECK "$(conf)" >/dev/null || fail "CHECK of a known pod failed"
cni_fails 100 CHECK "$(conf)" ghost

step "errors"
cni_fails 1 ADD "$(conf '| .cniVersion = "9.9.9"')"
cni_fails 7 ADD "$(conf '| del(.prevResult)')"
cni_fails 6 ADD "not json"
cni_fails 100 ADD "$(conf '| .prevResult.interfaces[0].name = "nosuchveth0"')"
grep -q 'nosuchveth0' <<<"$out" || fail "refusal does not say why: $out"

step "agent down: ADD fails closed for mesh pods only, CHECK fails, DEL succeeds"
cache="$(dirname "$sock")/enrollment.json"
jq -e '.namespaces.default == "ambient" and .namespaces.legacy == "none"' "$cache" >/dev/null ||
  fail "enrollment cache: $(cat "$cache")"
"$cluster" agent --name "$name" --node n1 stop
cni_fails 11 ADD "$(conf)"
grep -q 'unreachable.*namespace default is in the ambient mesh' <<<"$out" || fail "ADD error does not name the cause: $out"
# A pod that would not join the mesh, and kube-system, start without the agent.
out=$(cni ADD "$(conf)" ghost:legacy) || fail "non-mesh pod refused while the agent is down: $out"
[ "$(jq -cS . <<<"$out")" = "$(jq -cS .cniResult "$pod")" ] || fail "ADD changed prevResult: $out"
cni ADD "$(conf)" ghost:kube-system >/dev/null || fail "kube-system pod refused while the agent is down"
# A namespace newer than the cache: unknown, fail closed.
cni_fails 11 ADD "$(conf)" ghost:brandnew
grep -q 'namespace \\"brandnew\\" is not in the enrollment cache' <<<"$out" || fail "unknown namespace: $out"
# Without the cache nothing is known: fail closed.
mv "$cache" "$cache.away"
cni_fails 11 ADD "$(conf)" ghost:legacy
grep -q 'no readable enrollment cache' <<<"$out" || fail "no reason without the cache: $out"
mv "$cache.away" "$cache"
cni_fails 11 CHECK "$(conf)"
out=$(cni DEL "$(conf)") || fail "DEL without agent failed: $out"
[ -z "$out" ] || fail "DEL printed: $out"

step "DEL with the agent: idempotent"
"$cluster" agent --name "$name" --node n1 start
cni DEL "$(conf)" >/dev/null || fail "DEL failed"
cni DEL "$(conf)" >/dev/null || fail "second DEL failed"
cni_fails 100 CHECK "$(conf)"
step "install / uninstall on the cluster's conflist"
confdir=$(mktemp -d /tmp/zt-cni-conf-XXXXXX)
temp_files+=("$confdir")
cp "$state/cni/n1/10-zt.conflist" "$confdir/"
"$plugin" uninstall --conf-dir "$confdir"
jq -e '[.plugins[].type] == ["ptp"]' "$confdir/10-zt.conflist" >/dev/null || fail "uninstall left: $(cat "$confdir/10-zt.conflist")"
"$plugin" install --conf-dir "$confdir" --agent-socket /run/zt/cni.sock
"$plugin" install --conf-dir "$confdir" --agent-socket /run/zt/cni.sock
jq -e '[.plugins[].type] == ["ptp", "ztunnel-cni"] and .plugins[1].agentSocket == "/run/zt/cni.sock"
       and .plugins[0].ipam.type == "host-local"' "$confdir/10-zt.conflist" >/dev/null ||
  fail "install is not idempotent or changed other plugins: $(cat "$confdir/10-zt.conflist")"
jq '.plugins[0] + {cniVersion, name}' "$state/cni/n1/10-zt.conflist" > "$confdir/05-single.conf"
"$plugin" install --conf-dir "$confdir"
[ ! -e "$confdir/05-single.conf" ] || fail ".conf not converted"
jq -e '[.plugins[].type] == ["ptp", "ztunnel-cni"]' "$confdir/05-single.conflist" >/dev/null ||
  fail "converted conflist wrong: $(cat "$confdir/05-single.conflist")"
rc=0; "$plugin" install --conf-dir /nonexistent/zt 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "install into a missing directory: exit $rc"

assert_agents_clean "$name"
echo ok
