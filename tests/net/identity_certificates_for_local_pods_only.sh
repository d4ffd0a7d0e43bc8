#!/usr/bin/env bash
# With the local CA, each agent issues certificates for the identities of
# the enrolled pods on its own node and never for another node's pods; a
# garbled CA key fails issuance with a clear error while the agent keeps
# running, and issuance resumes once the key is good again.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name idt)
new_ca
new_spec '{"namespaces": {"default": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"serviceAccount": "web"}, "n1-p2": {"serviceAccount": "db"},
          "n2-p1": {"serviceAccount": "api"}, "n2-p2": {"serviceAccount": "batch", "labels": {"istio.io/dataplane-mode": "none"}}}}'
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 2 \
  --agent-args "--identity-provider local-ca --ca-dir $cadir --cert-lifetime 3600"

issued() { grep '"msg":"certificate issued"' "$(agent_log "$name" "$1")" | jq -r '.identity' | sort -u | tr '\n' ' '; }
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/db"'
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/web"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/api"'
sleep 0.5
[ "$(issued n1)" = "spiffe://cluster.local/ns/default/sa/db spiffe://cluster.local/ns/default/sa/web " ] ||
  fail "n1 issued: $(issued n1)"
[ "$(issued n2)" = "spiffe://cluster.local/ns/default/sa/api " ] ||
  fail "n2 issued: $(issued n2) (batch opted out; n1's identities are not n2's)"

step "garbled CA key: issuance fails clearly, the agent keeps running"
cp "$cadir/ca-key.pem" "$cadir/ca-key.good"
printf '%s\n' '-----BEGIN EC PRIVATE KEY-----' 'bm90IGEga2V5' '-----END EC PRIVATE KEY-----' > "$cadir/ca-key.pem"
jq '.pods["n1-p1"].serviceAccount = "web2"' "$spec" > "$spec.new" && mv "$spec.new" "$spec"
"$cluster" publish --name "$name" --spec "$spec"
wait_log "$name" n1 '"msg":"certificate renewal failed","identity":"spiffe://cluster.local/ns/default/sa/web2","error":"CA key'
kill -0 "$(cat "$(info "$name" | jq -r .stateDir)/nodes/n1/agent.pid")" || fail "agent died"
wait_log "$name" n1 '"msg":"certificate no longer needed","identity":"spiffe://cluster.local/ns/default/sa/web"'

step "good key back: issuance resumes"
mv "$cadir/ca-key.good" "$cadir/ca-key.pem"
touch "$cadir/ca-key.pem"
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/default/sa/web2"' 10
assert_agents_clean "$name"
echo ok
