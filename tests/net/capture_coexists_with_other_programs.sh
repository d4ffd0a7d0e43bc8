#!/usr/bin/env bash
# The capture program shares pod interfaces with the primary network's own
# programs: it passes on (TCX_NEXT, or the next tc filter) everything that
# is not ours, so a program after it still sees that traffic and decides.
# Here a stand-in (fixtures/drop_udp9.bpf.c, a clsact filter that drops UDP
# to port 9 and passes the rest on) sits on a plain pod's and an enrolled
# pod's veth next to ours: its drop must take effect behind ours, and the
# pods' TCP (plain, and captured into HBONE) must still flow.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
command -v clang >/dev/null || skip "clang missing: run tools/bootstrap"
name=$(unique_name co)
before=$(host_links)
new_spec '{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "a"},
          "n1-p2": {"namespace": "plain"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "b"},
          "n2-p2": {"namespace": "plain"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
work=$(mktemp -d /tmp/zt-coexist-XXXXXX)
temp_files+=("$work")
clang -g -O2 -target bpf -I/usr/include/"$(gcc -dumpmachine)" -c "$src_root/tests/net/fixtures/drop_udp9.bpf.c" \
  -o "$work/drop_udp9.o"
node_ns=$(info "$name" | jq -r '.nodes[] | select(.name == "n1") | .netns')
veth_of() { pod_field "$name" "$1" hostVeth; }
in_pod() { nsenter --net="/run/netns/$(pod_field "$name" "$1" netns)" "${@:2}"; }
# udp_reaches FROM TO: whether one UDP datagram to TO:9 arrives.
udp_reaches() {
  local got
  got=$(in_pod "$2" "$py" -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9)); s.settimeout(2)
print("ready", flush=True)
try: print(s.recv(64).decode())
except socket.timeout: print("nothing")' & pid=$!
    sleep 0.5
    in_pod "$1" "$py" -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello", (sys.argv[1], 9))' \
      "$(pod_field "$name" "$2" ip)"
    wait "$pid")
  [[ $got == *hello* ]]
}
[ -n "$(veth_of n1-p2)" ] && [ "$(veth_of n1-p2)" != null ] || fail "cluster info lacks the pods' veths"

step "before: UDP to port 9 arrives"
udp_reaches n1-p2 n2-p2 || fail "UDP did not arrive before the other program"

step "another program on the plain and the enrolled pod's veth, behind ours"
for p in n1-p2 n1-p1; do
  ip netns exec "$node_ns" tc qdisc replace dev "$(veth_of "$p")" clsact
  ip netns exec "$node_ns" tc filter add dev "$(veth_of "$p")" ingress prio 5 handle 0x99 bpf direct-action \
    obj "$work/drop_udp9.o" sec tc
done
if udp_reaches n1-p2 n2-p2; then fail "the other program never saw the plain pod's UDP: ours did not pass it on"; fi
if udp_reaches n1-p1 n2-p2; then fail "the other program never saw the enrolled pod's UDP: ours did not pass it on"; fi
start_echo "$name" n2-p2 7000
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p2 n2-p2 7000
check_tcp "$name" n1-p1 n2-p1 7000
wait_access "$name" n1 '.protocol == "HBONE" and ."src.workload" == "n1-p1" and ."dst.workload" == "n2-p1"'

step "the other program removed: UDP flows again"
for p in n1-p2 n1-p1; do
  ip netns exec "$node_ns" tc filter del dev "$(veth_of "$p")" ingress prio 5 handle 0x99 bpf
done
udp_reaches n1-p2 n2-p2 || fail "UDP did not arrive after the other program went"
down_and_check "$name" "$before"
echo "PASS"
