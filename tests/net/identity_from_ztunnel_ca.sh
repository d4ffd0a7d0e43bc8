#!/usr/bin/env bash
# The cluster CA (ztunnel-ca, daemonset/ztunnel-ca.yaml applied to a real
# kube-apiserver; tools/cluster --cluster-ca) is the only holder of the CA
# key. Each agent authenticates with a token bound to its own agent pod
# (audience istio-ca) and gets certificates only for identities that have
# a pod on its node; traffic goes over HBONE with them. Refused, each with
# a gRPC status and a CA log line naming caller, node and identity: another
# node's identity, impersonation by a pod's token (its own identity is
# fine), an expired token (signed with the API server's own key), a token
# for another audience, a CSR naming another identity. A pod moved from n1
# to n2 moves its certificate rights. CA down: agents keep their
# certificates, a restarted agent retries with backoff and sends nothing in
# plaintext, then recovers when the CA is back. Root rotation (bundle
# first, then the signing key): pods with old and new certificates keep
# talking (the new root signing through an intermediate). No DaemonSet volume and no node file holds CA key material.
# A hostile pod cannot starve it: connections per address are capped and
# counted, failed authentications throttled, a request over 64 KiB, a fifth
# stream, a foreign ALPN and a trickled handshake are all refused.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
require_kube
name=$(unique_name zc)
before=$(host_links)
tool="$build/tests/cli/grpc_ca_tool"
work=$(mktemp -d /tmp/zt-zca-XXXXXX)
temp_files+=("$work")
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "client"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "server"},
          "n1-p2": {"namespace": "mesh", "serviceAccount": "mover"},
          "n2-p2": {"namespace": "mesh", "serviceAccount": "client"},
          "n1-p3": {"namespace": "legacy"}, "n2-p3": {"namespace": "legacy"}}}'
# The agents' flags come from the cluster CA (--identity-provider ca ...).
cluster_up_agents "$name" "$spec" --nodes 2 --pods-per-node 3 --kube --cluster-ca "$build/ztunnel/ztunnel-ca" \
  --agent-args ""
state=$(info "$name" | jq -r .stateDir)
ca_log="$state/ca/ca.log"
ul() { nsenter --net="/run/netns/zt-$name-ul" "$@"; }
ca_metric() { ul curl -s -m 2 "http://10.255.0.254:15014/metrics" | awk -v k="ztunnel_ca_requests_total{outcome=\"$1\"}" '$1 == k { print $2 }'; }
# ca_call TOKEN_FILE IDENTITY_IN_CSR ASKED: one CreateCertificate from n1's
# namespace (or $CA_FROM's); 0 and the chain (NUL-separated) in $work/out,
# else the error in $work/err.
ca_call() {
  "$tool" make-csr "$2" "$work/csr" "$work/key" || fail "make-csr failed"
  nsenter --net="/run/netns/${CA_FROM:-zt-$name-n1}" "$tool" call https://10.255.0.254:15012 "$state/ca/root-cert.pem" \
    "$(cat "$1")" Kubernetes "$work/csr" "$3" > "$work/out" 2> "$work/err"
}
token_for() { # SA POD_NAME POD_UID AUDIENCE SECONDS -> token on stdout
  kapi POST "/api/v1/namespaces/${NS:-mesh}/serviceaccounts/$1/token" "$(body "$(jq -n --arg pod "$2" --arg uid "$3" \
    --arg aud "$4" --argjson s "$5" '{apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest",
      spec: {audiences: [$aud], expirationSeconds: $s,
             boundObjectRef: {apiVersion: "v1", kind: "Pod", name: $pod, uid: $uid}}}')")" | jq -er .status.token
}
pod_uid() { kapi GET "/api/v1/namespaces/$1/pods/$2" | jq -er .metadata.uid; }
td=spiffe://cluster.local/ns/mesh/sa

step "the agents get their pods' certificates from ztunnel-ca, bound to their own node"
wait_log "$name" n1 "\"msg\":\"certificate issued\",\"identity\":\"$td/client\".*\"provider\":\"ca\"" 10
wait_log "$name" n2 "\"msg\":\"certificate issued\",\"identity\":\"$td/server\".*\"provider\":\"ca\"" 10
grep -q "\"msg\":\"certificate issued\",\"identity\":\"$td/client\",\"caller\":\"system:serviceaccount:ztunnel-system:ztunnel\",\"node\":\"n1\"" "$ca_log" ||
  fail "the CA did not log n1's request: $(grep issued "$ca_log")"
grep -q "\"identity\":\"$td/server\",\"caller\":\"system:serviceaccount:ztunnel-system:ztunnel\",\"node\":\"n2\"" "$ca_log" ||
  fail "the CA did not log n2's request"
if grep -q "\"identity\":\"$td/server\".*\"node\":\"n1\"" "$ca_log"; then fail "n1 got n2's identity"; fi
start_echo "$name" n2-p1 7000
start_echo "$name" n1-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n2 ".protocol == \"HBONE\" and .direction == \"inbound\" and .\"src.identity\" == \"$td/client\" and .\"dst.identity\" == \"$td/server\""

step "n1's agent asking for an identity whose pods all run on n2: refused"
ca_call "$state/nodes/n1/ca.token" "$td/server" "$td/server" && fail "n1 got a certificate for $td/server"
grep -q "grpc-status 7: identity has no pod on the caller's node n1" "$work/err" || fail "refusal: $(cat "$work/err")"
grep -q "\"msg\":\"certificate refused\",\"reason\":\"not_on_node\".*\"identity\":\"$td/server\",\"caller\":\"system:serviceaccount:ztunnel-system:ztunnel\",\"node\":\"n1\"" "$ca_log" ||
  fail "no refusal line naming caller, node and identity: $(grep refused "$ca_log")"
[ "$(ca_metric not_on_node)" -ge 1 ] || fail "ztunnel_ca_requests_total{outcome=\"not_on_node\"} did not move"

step "a CSR naming another identity than the one asked for: refused"
ca_call "$state/nodes/n1/ca.token" "$td/server" "$td/mover" && fail "a CSR for server was signed as mover"
grep -q "grpc-status 3: the CSR names another identity" "$work/err" || fail "refusal: $(cat "$work/err")"

step "a pod's own token: its own identity only, never another's"
token_for client n1-p1 "$(pod_uid mesh n1-p1)" istio-ca 600 > "$work/client.token"
ca_call "$work/client.token" "$td/server" "$td/server" && fail "a pod's token impersonated $td/server"
grep -q "grpc-status 7: only node agents may ask on behalf of others, not mesh/client" "$work/err" ||
  fail "refusal: $(cat "$work/err")"
ca_call "$work/client.token" "$td/client" "" || fail "a pod's token could not get its own identity: $(cat "$work/err")"
tr '\0' '\n' < "$work/out" | openssl x509 -noout -ext subjectAltName 2>/dev/null | grep -q "URI:$td/client" ||
  fail "the pod's own certificate is not for $td/client"

step "tokens for another audience, expired, or not from this API server: refused"
uid1=$(pod_uid ztunnel-system ztunnel-n1)
NS=ztunnel-system token_for ztunnel ztunnel-n1 "$uid1" other-audience 600 > "$work/aud.token"
ca_call "$work/aud.token" "$td/client" "$td/client" && fail "a token for another audience was accepted"
grep -q "grpc-status 16: token not authenticated" "$work/err" || fail "refusal: $(cat "$work/err")"
ca_call "$state/nodes/n1/agent.token" "$td/client" "$td/client" && fail "the agent's API token (default audience) was accepted"
# The same claims as n1's CA token, expired a minute ago, signed with the
# API server's own service-account key: only the expiry is wrong.
/usr/bin/python3 - "$state/nodes/n1/ca.token" "$state/kube/sa.key" > "$work/expired.token" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
b64d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
b64e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head, claims, _ = open(sys.argv[1]).read().strip().split(".")
c = json.loads(b64d(claims))
now = int(time.time())
c.update(iat=now - 3600, nbf=now - 3600, exp=now - 60)
signing = head + "." + b64e(json.dumps(c).encode())
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
print(signing + "." + b64e(key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())))
PY
ca_call "$work/expired.token" "$td/client" "$td/client" && fail "an expired token was accepted"
grep -q "grpc-status 16: token not authenticated" "$work/err" || fail "refusal: $(cat "$work/err")"
printf 'not-a-token\n' > "$work/junk.token"
ca_call "$work/junk.token" "$td/client" "$td/client" && fail "a made-up token was accepted"
[ "$(ca_metric unauthenticated)" -ge 4 ] || fail "unauthenticated refusals: $(ca_metric unauthenticated)"

step "a pod moved from n1 to n2 (delete + create): its certificate rights move with it"
NS=ztunnel-system token_for ztunnel ztunnel-n2 "$(pod_uid ztunnel-system ztunnel-n2)" istio-ca 600 > "$work/n2.token"
ca_call "$state/nodes/n1/ca.token" "$td/mover" "$td/mover" || fail "n1 could not get mover: $(cat "$work/err")"
ca_call "$work/n2.token" "$td/mover" "$td/mover" && fail "n2 got mover while it runs on n1"
kapi GET /api/v1/namespaces/mesh/pods/n1-p2 | jq 'del(.metadata.uid, .metadata.resourceVersion, .metadata.creationTimestamp,
  .metadata.managedFields, .status) | .metadata.name = "mover-on-n2" | .spec.nodeName = "n2"' > "$work/moved.json"
kapi DELETE "/api/v1/namespaces/mesh/pods/n1-p2?gracePeriodSeconds=0" >/dev/null
kapi POST /api/v1/namespaces/mesh/pods "$work/moved.json" >/dev/null
for _ in $(seq 1 50); do ca_call "$work/n2.token" "$td/mover" "$td/mover" && break; sleep 0.1; done
ca_call "$work/n2.token" "$td/mover" "$td/mover" || fail "n2 cannot get mover after the move: $(cat "$work/err")"
ca_call "$state/nodes/n1/ca.token" "$td/mover" "$td/mover" && fail "n1 still gets mover after the move"
grep -q "identity has no pod on the caller's node n1" "$work/err" || fail "refusal: $(cat "$work/err")"

step "no rights from a mirror pod (no ServiceAccount: never read as default), nor from a token bound to a Node"
jq -n '{apiVersion: "v1", kind: "Pod", metadata: {name: "static-web-n1", namespace: "mesh",
  annotations: {"kubernetes.io/config.mirror": "static"}},
  spec: {nodeName: "n1", containers: [{name: "web", image: "ztunnel-test/app"}]}}' > "$work/mirror.json"
kapi POST /api/v1/namespaces/mesh/pods "$work/mirror.json" | jq -e '.spec.serviceAccountName // "" | . == ""' >/dev/null ||
  fail "the API server gave the mirror pod a ServiceAccount"
sleep 1.5 # the CA's watch sees it
ca_call "$state/nodes/n1/ca.token" "$td/default" "$td/default" && fail "a mirror pod gave n1 the identity $td/default"
grep -q "identity has no pod on the caller's node n1" "$work/err" || fail "refusal: $(cat "$work/err")"
node_uid=$(kapi GET /api/v1/nodes/n2 | jq -r .metadata.uid)
if kapi POST /api/v1/namespaces/ztunnel-system/serviceaccounts/ztunnel/token "$(body "$(jq -n --arg uid "$node_uid" \
  '{apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {audiences: ["istio-ca"], expirationSeconds: 600,
    boundObjectRef: {apiVersion: "v1", kind: "Node", name: "n2", uid: $uid}}}')")" 2>/dev/null |
  jq -er .status.token > "$work/node.token"; then
  ca_call "$work/node.token" "$td/server" "$td/server" && fail "a token bound to Node n2 got n2's identity"
  grep -q "grpc-status 7: the token is not bound to an agent pod" "$work/err" || fail "refusal: $(cat "$work/err")"
else
  echo "(this API server does not bind tokens to Nodes: that case cannot arise here)"
fi

step "a hostile pod cannot starve the CA: idle connections and failed authentications are bounded per address"
attacker=$(pod_field "$name" n1-p3 netns) # a pod outside the mesh
nsenter --net="/run/netns/$attacker" "$py" -c 'import socket, sys, time
held = []
for i in range(100):
    try:
        held.append(socket.create_connection(("10.255.0.254", 15012), timeout=2))
    except OSError:
        pass
print(len(held), flush=True)
time.sleep(60)' > "$work/flood.out" 2>&1 &
flood=$!
started_pids+=("$flood")
for _ in $(seq 1 50); do [ -s "$work/flood.out" ] && break; sleep 0.1; done
conns=$(ul curl -s -m 2 http://10.255.0.254:15014/metrics | awk '$1 == "ztunnel_ca_connections" { print $2 }')
[ "${conns:-999}" -le 32 ] || fail "one address holds $conns connections to the CA"
[ "${conns:-0}" -ge 16 ] || fail "the flood did not reach the CA ($conns connections; $(cat "$work/flood.out"))"
refused=$(ul curl -s -m 2 http://10.255.0.254:15014/metrics |
  awk '$1 == "ztunnel_ca_connections_refused_total{reason=\"per_address\"}" { print $2 }')
[ "${refused:-0}" -ge $((100 - 32 - 8)) ] || fail "the per-address refusals are not counted (${refused:-none})"
restart_agent_plain() { "$cluster" agent --name "$name" --node "$1" stop; "$cluster" agent --name "$name" --node "$1" start; }
restart_agent_plain n2
"$cluster" agent --name "$name" --node n2 ready || fail "n2 got no certificate while a pod held connections to the CA"
kill "$flood" 2>/dev/null || true
for _ in $(seq 1 50); do # the CA sees them close
  [ "$(ul curl -s -m 2 http://10.255.0.254:15014/metrics | awk '$1 == "ztunnel_ca_connections" { print $2 }')" = 0 ] && break
  sleep 0.1
done
for _ in $(seq 1 12); do CA_FROM=$attacker ca_call "$work/junk.token" "$td/client" "$td/client" || true; done
grep -q "grpc-status 8: too many failed authentications" "$work/err" || fail "junk tokens were not throttled: $(cat "$work/err")"
ca_call "$state/nodes/n1/ca.token" "$td/client" "$td/client" || fail "n1 was throttled for the pod's failures: $(cat "$work/err")"

step "a hostile client: a request over 64 KiB, more than 4 streams, a foreign ALPN, a trickled handshake"
hostile() { nsenter --net="/run/netns/$attacker" "$py" "$src_root/tests/net/ca_hostile.py" "$@"; }
out=$(hostile big 10.255.0.254 15012 "$state/ca/root-cert.pem")
[[ $out == "grpc-status 8" || $out == reset ]] || fail "an 80 KiB request was not refused: $out"
out=$(hostile settings 10.255.0.254 15012 "$state/ca/root-cert.pem")
[ "$out" = "max_concurrent_streams 4" ] || fail "the CA advertises $out"
out=$(hostile streams 10.255.0.254 15012 "$state/ca/root-cert.pem" 12)
# Past its acknowledged SETTINGS the peer breaks the protocol: GOAWAY (nghttp2).
[[ $out == "goaway "* ]] || { [[ $out == "refused "* ]] && [ "${out#refused }" -ge 8 ]; } ||
  fail "12 streams at once on one connection: $out"
out=$(hostile alpn 10.255.0.254 15012 "$state/ca/root-cert.pem" http/1.1)
[ "$out" = "handshake failed" ] || fail "ALPN http/1.1 was served: $out"
out=$(hostile trickle 10.255.0.254 15012 20)
[[ $out == "closed after "* ]] && [ "${out#closed after }" -le 12 ] ||
  fail "a ClientHello trickled a byte a second held its connection: $out"
ca_call "$state/nodes/n1/ca.token" "$td/client" "$td/client" || fail "the CA stopped serving after the hostile client: $(cat "$work/err")"

step "CA down: agents keep their certificates; a restarted agent retries with backoff, nothing in plaintext"
"$cluster" ca --name "$name" stop
check_tcp "$name" n1-p1 n2-p1 7000 # n1 and n2 still hold valid certificates
"$cluster" agent --name "$name" --node n1 stop
"$cluster" agent --name "$name" --node n1 start
wait_log "$name" n1 "\"msg\":\"certificate renewal failed\",\"identity\":\"$td/client\".*cannot connect to the CA.*\"retry_in_s\":2" 10
expect_no_uncertified "$name" n1-p1 n2-p1 7000
failures=$("$cluster" exec --name "$name" --node n1 -- curl -s -m 2 http://127.0.0.1:15020/metrics |
  awk '$1 == "ztunnel_certificate_failures_total" { print $2 }')
[ "${failures:-0}" -ge 1 ] || fail "the agent's certificate failure metric did not move"
"$cluster" ca --name "$name" start
wait_log "$name" n1 "\"msg\":\"certificate issued\",\"identity\":\"$td/client\".*\"provider\":\"ca\"" 20
"$cluster" agent --name "$name" --node n1 ready || fail "n1 not ready after the CA came back"
check_tcp "$name" n1-p1 n2-p1 7000

step "root rotation: the new root joins the bundle, then signs; old and new certificates keep talking"
serial_of() { openssl x509 -noout -serial -in "$1" | sed 's/serial=//' | tr 'A-F' 'a-f' | sed 's/^0*//'; }
signer_of() { # NODE IDENTITY -> serial of the CA that signed its certificate now
  "$cluster" exec --name "$name" --node "$1" -- curl -s -m 2 http://127.0.0.1:15000/config_dump |
    jq -r --arg id "$2" '.certificates[] | select(.identity == $id) | .certChain[1].serialNumber' | sed 's/^0*//'
}
roots_of() {
  "$cluster" exec --name "$name" --node "$1" -- curl -s -m 2 http://127.0.0.1:15000/config_dump |
    jq -r --arg id "$2" '.certificates[] | select(.identity == $id) | .rootCerts | length'
}
# wait_signer NODE IDENTITY SERIAL: its certificate comes from that CA (10 s).
wait_signer() {
  for _ in $(seq 1 100); do [ "$(signer_of "$1" "$2")" = "$3" ] && return 0; sleep 0.1; done
  fail "$1's certificate for $2 is signed by $(signer_of "$1" "$2"), not $3"
}
restart_agent() {
  "$cluster" agent --name "$name" --node "$1" stop
  "$cluster" agent --name "$name" --node "$1" start
  "$cluster" agent --name "$name" --node "$1" ready || fail "$1 not ready after restart"
}
secret="$state/ca/secret"
old=$(serial_of "$secret/ca-cert.pem")
# The new root signs through an intermediate: ca-cert.pem is then a chain.
mkdir -p "$work/newroot" "$work/new"
"$build/ztunnel/ztunnel-ctl" ca init --dir "$work/newroot" --trust-domain cluster.local >/dev/null
"$build/ztunnel/ztunnel-ctl" ca init --dir "$work/new" --parent "$work/newroot" --trust-domain cluster.local >/dev/null
new=$(serial_of "$work/new/ca-cert.pem")
cat "$secret/root-cert.pem" "$work/newroot/root-cert.pem" > "$work/bundle.pem"
cp "$work/bundle.pem" "$state/ca/root-cert.pem" # the public root ConfigMap first
mkdir -p "$work/phase1" "$work/phase2"
cp "$secret/ca-cert.pem" "$secret/ca-key.pem" "$work/phase1/"
cp "$work/bundle.pem" "$work/phase1/root-cert.pem"
"$cluster" ca --name "$name" update "$work/phase1"
restart_agent n1
restart_agent n2
[ "$(roots_of n1 "$td/client")" = 2 ] && [ "$(roots_of n2 "$td/server")" = 2 ] || fail "the agents did not take the two-root bundle"
# The new key signs from now on (the Secret swapped as kubelet swaps it).
cp "$work/new/ca-cert.pem" "$work/new/ca-key.pem" "$work/phase2/"
cp "$work/bundle.pem" "$work/phase2/root-cert.pem"
"$cluster" ca --name "$name" update "$work/phase2"
restart_agent n2
wait_signer n2 "$td/server" "$new"
wait_signer n1 "$td/client" "$old"
check_tcp "$name" n1-p1 n2-p1 7000
check_tcp "$name" n2-p1 n1-p1 7000
wait_access "$name" n1 '.protocol == "HBONE" and .direction == "inbound" and ."src.workload" == "n2-p1"'
restart_agent n1
wait_signer n1 "$td/client" "$new"
check_tcp "$name" n1-p1 n2-p1 7000
"$cluster" exec --name "$name" --node n1 -- curl -s -m 2 http://127.0.0.1:15000/config_dump |
  jq -e --arg id "$td/client" '.certificates[] | select(.identity == $id) | .certChain | length == 3' >/dev/null ||
  fail "n1's chain is not leaf, intermediate, root"

step "no CA key on any node: no DaemonSet volume, no agent argument or file holds it"
kapi GET /apis/apps/v1/namespaces/ztunnel-system/daemonsets/ztunnel |
  jq -e '[.spec.template.spec.volumes[] | select(.secret)] | length == 0' >/dev/null ||
  fail "the DaemonSet mounts a Secret: $(kapi GET /apis/apps/v1/namespaces/ztunnel-system/daemonsets/ztunnel | jq -c '.spec.template.spec.volumes')"
for key in "$work/phase1/ca-key.pem" "$work/new/ca-key.pem" "$work/newroot/ca-key.pem"; do
  line=$(sed -n 2p "$key")
  if grep -rlF -- "$line" "$state/nodes" "$state/bpf" 2>/dev/null; then fail "CA key material in a node's files"; fi
done
for n in n1 n2; do
  pid=$(cat "$state/nodes/$n/agent.pid")
  if tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$secret\|ca-key\|--ca-dir"; then fail "$n's agent is given the CA files"; fi
  if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q -- "$secret"; then fail "$n's agent holds a CA file open"; fi
done
down_and_check "$name" "$before"
echo "PASS"
