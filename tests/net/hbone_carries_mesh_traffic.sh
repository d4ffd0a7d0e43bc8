#!/usr/bin/env bash
# Mesh pod -> mesh pod travels in HBONE (mutual TLS 1.3 + HTTP/2 CONNECT to
# podIP:15008): across nodes, on the same node and through a Service VIP;
# the destination sees the source pod's IP, both agents log the SPIFFE
# identities, the underlay carries 15008 and never the plaintext, ss shows
# the pooled connection.
# Non-mesh destinations are passthrough, non-mesh clients reach mesh pods
# in plaintext. An independent HBONE client (Python ssl + h2) against the
# live 15008: the pod it connected for answers (200 with the destination's
# baggage, SPEC 2.4); another pod (local or not)
# is 400, ztunnel's own ports 503, an untrusted certificate fails TLS.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name hbn)
before=$(host_links)
other=$(mktemp -d /tmp/zt-ca-XXXXXX)
temp_files+=("$other")
"$ctl" ca init --dir "$other" --trust-domain cluster.local >/dev/null
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "web"},
          "n1-p2": {"namespace": "mesh", "serviceAccount": "db"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "api", "labels": {"app": "api"},
                    "ports": [{"name": "tcp-api", "containerPort": 7000}]},
          "n2-p2": {"namespace": "plain"}, "n1-p3": {"namespace": "plain"}},
 "services": [{"name": "api", "namespace": "mesh", "clusterIP": "10.96.0.20",
               "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": "tcp-api"}]}]}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 3
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/web"'
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/db"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/mesh/sa/api"'
for p in n1-p1 n1-p2 n2-p1 n2-p2 n1-p3; do start_echo "$name" "$p" 7000; done
ip_of() { pod_field "$name" "$1" ip; }
ul="/run/netns/zt-$name-ul"
web=spiffe://cluster.local/ns/mesh/sa/web

step "cross-node: 10 MB in HBONE, no plaintext on the underlay"
marker="zt-plaintext-marker-$$-must-never-cross-the-underlay"
sniff_out=$(mktemp /tmp/zt-sniff-XXXXXX)
temp_files+=("$sniff_out")
nsenter --net="$ul" "$py" "$echo_py" sniff any 6 "$marker" > "$sniff_out" &
sniffer=$!
started_pids+=("$sniffer")
sleep 0.5
h2=$(stat "$name" n2 captured_inbound_hbone)
ZT_MARKER=$marker check_tcp_bytes "$name" n1-p1 n2-p1 7000 10485760
[ "$(stat "$name" n2 captured_inbound_hbone)" -gt "$h2" ] || fail "n2 did not capture the HBONE SYN on 15008"
wait_access "$name" n1 '."dst.workload" == "n2-p1" and .direction == "outbound" and .bytes_sent == 10485760 and .protocol == "HBONE" and ."src.identity" == "'$web'" and ."dst.identity" == "spiffe://cluster.local/ns/mesh/sa/api" and ."dst.addr" == "'"$(ip_of n2-p1)"':15008" and ."dst.hbone_addr" == "'"$(ip_of n2-p1)"':7000" and ."tls.version" == "TLSv1.3"'
wait_access "$name" n2 '(."src.addr" | startswith("'"$(ip_of n1-p1)"':")) and ."src.workload" == "n1-p1" and ."src.namespace" == "mesh" and .direction == "inbound" and .bytes_recv == 10485760 and .protocol == "HBONE" and ."src.identity" == "'$web'" and .decision == "allow"'
wait_log "$name" n1 '"msg":"HBONE connection established","peer":"'"$(ip_of n2-p1)"':15008","peer.identity":"spiffe://cluster.local/ns/mesh/sa/api","tls":"TLSv1.3","cipher":"TLS13-AES256-GCM-SHA384"'
wait_log "$name" n2 '"msg":"HBONE connection accepted".*"peer.identity":"'$web'","tls":"TLSv1.3"'
sleep 1 # the pooled connection outlives its stream (idle release after 5 min)
est=$(ip netns exec "zt-$name-n1" ss -Htn state established dst "$(ip_of n2-p1)" dport = :15008)
if [ -z "$est" ]; then
  grep -h '"level":"warn"\|"level":"error"' "$(agent_log "$name" n1)" "$(agent_log "$name" n2)" | tail -n 5 >&2
  fail "no pooled HBONE connection to $(ip_of n2-p1):15008 in ss"
fi
echo "ss: $est"
wait "$sniffer"
started_pids=("${started_pids[@]/$sniffer}")
cat "$sniff_out"
[ "$(jq .hbone "$sniff_out")" -gt 100 ] || fail "the underlay saw no HBONE traffic"
[ "$(jq .marker "$sniff_out")" = 0 ] || fail "plaintext crossed the underlay"

step "same node: HBONE through the agent's own 15008 side"
check_tcp_bytes "$name" n1-p1 n1-p2 7000 1048576
wait_access "$name" n1 '."dst.workload" == "n1-p2" and .direction == "inbound" and .bytes_recv == 1048576 and .protocol == "HBONE" and ."src.identity" == "'$web'"'

step "mesh -> service VIP: the agent picks the endpoint and its named port, then HBONE"
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" check 10.96.0.20 80 "$(ip_of n1-p1)" ||
  fail "n1-p1 -> 10.96.0.20:80"
wait_access "$name" n1 '."dst.hbone_addr" == "'"$(ip_of n2-p1)"':7000" and ."dst.workload" == "n2-p1" and ."dst.service" == "api.mesh.svc.cluster.local" and .direction == "outbound" and .protocol == "HBONE"'

step "mesh -> non-mesh: passthrough (the sniffer does see plaintext); non-mesh -> mesh: plaintext inbound"
nsenter --net="$ul" "$py" "$echo_py" sniff any 3 "$marker" > "$sniff_out" &
sniffer=$!
started_pids+=("$sniffer")
sleep 0.5
ZT_MARKER=$marker check_tcp "$name" n1-p1 n2-p2 7000
wait "$sniffer"
[ "$(jq .marker "$sniff_out")" -gt 0 ] || fail "the sniffer cannot see plaintext: $(cat "$sniff_out")"
wait_access "$name" n1 '."dst.workload" == "n2-p2" and ."dst.namespace" == "plain" and .direction == "outbound" and .protocol == "TCP"'
check_tcp "$name" n2-p2 n1-p1 7000
wait_access "$name" n1 '."src.workload" == "n2-p2" and ."src.namespace" == "plain" and .direction == "inbound" and .protocol == "TCP"'

step "an independent HBONE client against the live 15008"
client="$cadir/client"
"$ctl" ca mint --dir "$cadir" --identity spiffe://cluster.local/ns/plain/sa/tester --out "$client" >/dev/null
"$ctl" ca mint --dir "$other" --identity spiffe://cluster.local/ns/plain/sa/tester --out "$other/client" >/dev/null
cp "$cadir/root-cert.pem" "$other/client/root-cert.pem" # it trusts us; we must not trust it
h2peer() { # FROM_POD TO_POD CERT_DIR AUTHORITY
  nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" "$py" "$src_root/tests/interop/h2_peer.py" \
    connect "$(ip_of "$2")" 15008 "$3" "$3/root-cert.pem" "$4" || true
}
out=$(h2peer n2-p2 n1-p1 "$client" "$(ip_of n1-p1):7000")
[ "$out" = "status 200
baggage k8s.namespace.name=mesh,k8s.pod.name=n1-p1,service.name=n1-p1,service.version=latest
from=$(ip_of n2-p2)" ] || fail "CONNECT to the pod itself (200, response baggage, the pod sees the client): $out"
out=$(h2peer n2-p2 n1-p1 "$client" "$(ip_of n1-p2):7000")
[ "$out" = "status 400" ] || fail "CONNECT to another local pod: $out"
out=$(h2peer n2-p2 n1-p1 "$client" "$(ip_of n2-p2):7000")
[ "$out" = "status 400" ] || fail "CONNECT to a non-local IP (open relay): $out"
out=$(h2peer n2-p2 n1-p1 "$client" "$(ip_of n1-p1):15001")
[ "$out" = "status 503" ] || fail "CONNECT to ztunnel's own port: $out"
wait_log "$name" n1 '"msg":"HBONE request refused".*"status":400,"error":"ip mismatch'
out=$(h2peer n2-p2 n1-p1 "$other/client" "$(ip_of n1-p1):7000")
case $out in "tls failed"*) ;; *) fail "a certificate from an untrusted CA was accepted: $out" ;; esac
wait_log "$name" n1 '"msg":"inbound HBONE connection failed".*"error":"TLS handshake failed'

down_and_check "$name" "$before"
echo ok
