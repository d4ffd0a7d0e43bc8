#!/usr/bin/env bash
# `ztunnel --kubeconfig` against the real kube-apiserver: the current
# context of a hand-written YAML kubeconfig (other contexts beside it) is
# followed with an inline CA and token; a relative CA file and tokenFile
# are read from the kubeconfig's folder; a client certificate and key
# (inline) authenticate too. Fail closed: a CA that did not sign the API
# server's certificate gives a logged TLS error and no model, never an
# unverified connection; insecure-skip-tls-verify, credential plugins and
# a certificate without its key stop the agent at start with the reason.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_kube
name=$(unique_name kc)
before=$(host_links)
new_spec '{"namespaces": {"shop": {}}, "pods": {"n1-p1": {"namespace": "shop"}}}'
cluster_up "$name" --spec "$spec" --nodes 1 --pods-per-node 1 --kube
state=$(info "$name" | jq -r .stateDir)
kdir="$state/kube"
ul=$(info "$name" | jq -r .underlayNetns)
work=$(mktemp -d /tmp/zt-kubeconfig-XXXXXX)
temp_files+=("$work")
agent_pids=()
b64() { base64 -w0 < "$1"; }

# run_agent KUBECONFIG LOG: an agent without capture following the API.
run_agent() {
  nsenter --net="/run/netns/$ul" "$build/ztunnel/ztunnel" --kubeconfig "$1" --node-name n1 --capture false \
    --log-format json --admin-addr 127.0.0.1:0 --metrics-addr off --readiness-addr off > "$2" 2>&1 9>&- &
  agent_pids+=("$!")
  started_pids+=("$!")
}
# stop_agents: SIGTERM, then each must have exited cleanly (sanitizers).
stop_agents() {
  local p rc
  for p in "${agent_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${agent_pids[@]}"; do rc=0; wait "$p" || rc=$?; [ "$rc" = 0 ] || fail "an agent exited with $rc"; done
  agent_pids=()
  if grep -l 'Sanitizer\|runtime error:' "$work"/*.log; then fail "sanitizer findings above"; fi
}
admin_port() { jq -rR 'fromjson? | select(.msg == "admin listening" and .server == "admin") | .port' "$1" | head -n 1; }
# follows LOG: the agent of LOG has the cluster's pod in its model.
follows() {
  local port _
  for _ in $(seq 1 100); do
    port=$(admin_port "$1")
    if [ -n "$port" ] && nsenter --net="/run/netns/$ul" curl -s "http://127.0.0.1:$port/config_dump" |
      jq -e '[.workloads[].name] == ["n1-p1"]' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  tail -n 5 "$1" >&2
  fail "the agent of $1 did not follow the API server"
}
# refused_at_start KUBECONFIG REASON: exits non-zero, saying REASON.
refused_at_start() {
  local log="$work/refused.log" rc=0
  timeout 10 nsenter --net="/run/netns/$ul" "$build/ztunnel/ztunnel" --kubeconfig "$1" --node-name n1 \
    --capture false --log-format json --admin-addr 127.0.0.1:0 --metrics-addr off --readiness-addr off \
    > "$log" 2>&1 9>&- || rc=$?
  [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "the agent did not refuse $1 at start (exit $rc)"
  grep -q "$2" "$log" || fail "refusal of $1 does not say \"$2\": $(cat "$log")"
  if grep -q 'Sanitizer\|runtime error:' "$log"; then fail "$(cat "$log")"; fi
}

step "YAML kubeconfig: current context chosen among others, inline CA and token"
cat > "$work/inline.yaml" <<EOF
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: other
  cluster:
    server: https://192.0.2.1:6443
    insecure-skip-tls-verify: true
- name: test
  cluster:
    server: https://10.255.0.254:6443
    certificate-authority-data: $(b64 "$kdir/ca.crt")
contexts:
- name: plugin
  context: {cluster: test, user: plugin}
- name: test
  context:
    cluster: test
    user: agent
users:
- name: plugin
  user:
    exec: {command: /bin/false, apiVersion: client.authentication.k8s.io/v1}
- name: agent
  user:
    token: $(cat "$kdir/users/ztunnel-agent-n1.token")
EOF
run_agent "$work/inline.yaml" "$work/inline.log"
follows "$work/inline.log"

step "relative certificate-authority and tokenFile: read from the kubeconfig's folder"
mkdir -p "$work/rel/creds"
cp "$kdir/ca.crt" "$work/rel/creds/ca.crt"
cp "$kdir/users/ztunnel-agent-n1.token" "$work/rel/creds/token"
cat > "$work/rel/config" <<EOF
apiVersion: v1
kind: Config
current-context: c
clusters: [{name: k, cluster: {server: "https://10.255.0.254:6443", certificate-authority: creds/ca.crt}}]
users: [{name: u, user: {tokenFile: creds/token}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
EOF
run_agent "$work/rel/config" "$work/rel.log"
follows "$work/rel.log"

step "client certificate and key, inline"
cat > "$work/cert.yaml" <<EOF
apiVersion: v1
kind: Config
current-context: c
clusters: [{name: k, cluster: {server: "https://10.255.0.254:6443", certificate-authority-data: $(b64 "$kdir/ca.crt")}}]
users:
- name: u
  user:
    client-certificate-data: $(b64 "$kdir/users/ztunnel-agent-n1.crt")
    client-key-data: $(b64 "$kdir/users/ztunnel-agent-n1.key")
contexts: [{name: c, context: {cluster: k, user: u}}]
EOF
run_agent "$work/cert.yaml" "$work/cert.log"
follows "$work/cert.log"
stop_agents

step "a CA that did not sign the API server's certificate: TLS refused, no model"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=not-the-api-ca \
  -keyout "$work/wrong.key" -out "$work/wrong.crt" 2>/dev/null
sed "s|certificate-authority-data: .*|certificate-authority-data: $(b64 "$work/wrong.crt")|" "$work/inline.yaml" > "$work/wrong.yaml"
run_agent "$work/wrong.yaml" "$work/wrong.log"
for _ in $(seq 1 50); do grep -q '"msg":"Kubernetes list failed"' "$work/wrong.log" && break; sleep 0.1; done
grep '"msg":"Kubernetes list failed"' "$work/wrong.log" | grep -qi 'SSL\|certificate' ||
  fail "no TLS verification error logged: $(tail -n 5 "$work/wrong.log")"
port=$(admin_port "$work/wrong.log")
gen=$(nsenter --net="/run/netns/$ul" curl -s "http://127.0.0.1:$port/config_dump" | jq '.snapshot.generation')
[ "$gen" = 0 ] || fail "a model was applied from an unverified API server (generation $gen)"
stop_agents

step "refused at start, with the reason"
sed 's/^current-context: test/current-context: plugin/' "$work/inline.yaml" > "$work/plugin.yaml"
refused_at_start "$work/plugin.yaml" "credential plugin"
cat > "$work/insecure.yaml" <<EOF
current-context: c
clusters: [{name: k, cluster: {server: "https://10.255.0.254:6443", insecure-skip-tls-verify: "true"}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
EOF
refused_at_start "$work/insecure.yaml" "insecure-skip-tls-verify"
grep -v 'client-key-data' "$work/cert.yaml" > "$work/nokey.yaml"
refused_at_start "$work/nokey.yaml" "without its key"
printf 'clusters: [unclosed\n' > "$work/broken.yaml"
refused_at_start "$work/broken.yaml" "unusable --kubeconfig"
refused_at_start "$work/absent.yaml" "cannot read"

"$cluster" down --name "$name"
clusters=()
assert_gone "$name" "$before"
echo "PASS"
