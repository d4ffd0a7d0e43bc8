#!/usr/bin/env bash
# --identity-provider ca against a CA on another gRPC stack (grpcio,
# tests/cli/fixtures/ca/ca_server.py in "sign" mode: it checks the bearer
# token and signs each CSR with a root the nodes never hold): each agent
# makes its pods' keys itself, gets their certificates over Istio's
# certificate RPC, and mesh traffic between the nodes goes over HBONE with
# those identities, verified against the roots the CA sent. A CA that
# refuses gives no certificate and the agent says why; nothing goes out in
# plaintext meanwhile. No CA key is on any node.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
proto="$src_root/.deps/kube/istio-ca.proto"
[ -s "$proto" ] || skip "Istio's ca.proto missing: run tools/bootstrap --kube"
/usr/bin/python3 -c 'import grpc, google.protobuf, cryptography' 2>/dev/null ||
  skip "python3-grpcio/protobuf/cryptography missing: run tools/bootstrap"
name=$(unique_name gc)
before=$(host_links)
work=$(mktemp -d /tmp/zt-grpcca-XXXXXX)
temp_files+=("$work")
mkdir -p "$work/py/security/v1alpha1"
cp "$proto" "$work/py/security/v1alpha1/ca.proto"
protoc -I"$work/py" -I/usr/include --python_out="$work/py" "$work/py/security/v1alpha1/ca.proto"
# The workload root (only the CA server has its key) and the CA's TLS identity.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=mesh-root \
  -keyout "$work/root.key" -out "$work/root.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=tls-root \
  -keyout "$work/tls-root.key" -out "$work/tls-root.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ca -keyout "$work/ca.key" 2>/dev/null |
  openssl x509 -req -days 1 -CA "$work/tls-root.pem" -CAkey "$work/tls-root.key" -CAcreateserial \
    -extfile <(printf 'subjectAltName=DNS:10.255.0.1,IP:10.255.0.1\n') -out "$work/ca.pem" 2>/dev/null
printf 'agent-token-7\n' > "$work/token"
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "client"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "server"}}}'
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 1 --agent-args \
  "--identity-provider ca --ca-address https://10.255.0.1:15012 --ca-root-cert $work/tls-root.pem --ca-token-file $work/token"
n1ns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')
ca_pid=""
ca_server() { # MODE
  [ -z "$ca_pid" ] || { kill "$ca_pid"; wait "$ca_pid" 2>/dev/null || true; }
  PYTHONPATH="$work/py" nsenter --net="/run/netns/$n1ns" /usr/bin/python3 "$src_root/tests/cli/fixtures/ca/ca_server.py" \
    15012 "$work/ca.pem" "$work/ca.key" "$work/record" "$1" "$work/root.pem" "$work/root.key" agent-token-7 \
    10.255.0.1 > "$work/ca.out" 2>&1 &
  ca_pid=$!
  started_pids+=("$ca_pid")
  for _ in $(seq 1 50); do grep -q serving "$work/ca.out" 2>/dev/null && return 0; sleep 0.1; done
  fail "the CA did not start: $(cat "$work/ca.out")"
}

step "the CA comes up: the agents get their pods' certificates from it"
ca_server sign
for n in n1 n2; do
  "$cluster" agent --name "$name" --node "$n" stop
  "$cluster" agent --name "$name" --node "$n" start
  "$cluster" agent --name "$name" --node "$n" ready ||
    fail "$n not ready: $(grep -h '"msg":"certificate' "$(agent_log "$name" "$n")" | tail -n 3) $(cat "$work/ca.out")"
done
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/client".*"provider":"ca"' 10
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/server".*"provider":"ca"' 10
jq -se 'map(.impersonated) | sort == ["spiffe://cluster.local/ns/mesh/sa/client", "spiffe://cluster.local/ns/mesh/sa/server"]' \
  "$work/record" >/dev/null || fail "the CA was asked for: $(jq -c .impersonated "$work/record")"
jq -se 'all(.authorization == "Bearer agent-token-7" and .clusterid == "Kubernetes" and .validity == 86400)' \
  "$work/record" >/dev/null || fail "requests as the CA saw them: $(cat "$work/record")"

step "mesh traffic between the nodes over HBONE with those identities"
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n1 '.protocol == "HBONE" and ."src.identity" == "spiffe://cluster.local/ns/mesh/sa/client" and ."dst.identity" == "spiffe://cluster.local/ns/mesh/sa/server"'
wait_access "$name" n2 '.protocol == "HBONE" and .direction == "inbound" and ."src.identity" == "spiffe://cluster.local/ns/mesh/sa/client"'
state=$(info "$name" | jq -r .stateDir)
if grep -rl -- "$(sed -n 2p "$work/root.key")" "$state" 2>/dev/null; then fail "the CA key is on a node"; fi

step "a CA that refuses: no certificate, the agent says why, nothing in plaintext"
ca_server deny
"$cluster" agent --name "$name" --node n1 stop
"$cluster" agent --name "$name" --node n1 start
wait_log "$name" n1 '"msg":"certificate renewal failed".*grpc-status 7: identity has no pod on the caller' 10
expect_no_uncertified "$name" n1-p1 n2-p1 7000
[ "$(count_access "$name" n2 '."dst.workload" == "n2-p1" and .protocol != "HBONE"')" = 0 ] ||
  fail "traffic reached n2-p1 in plaintext"
kill "$ca_pid"
down_and_check "$name" "$before"
echo "PASS"
