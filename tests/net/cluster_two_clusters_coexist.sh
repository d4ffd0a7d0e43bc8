#!/usr/bin/env bash
# Two clusters with the same shape run side by side (same pod IPs, separate
# namespaces); tearing one down leaves the other working.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
a=$(unique_name cia)
b=$(unique_name cib)
before=$(host_links)
cluster_up "$a" --nodes 2 --pods-per-node 1
cluster_up "$b" --nodes 2 --pods-per-node 1
start_echo "$a" n2-p1 7002
start_echo "$b" n2-p1 7002
check_tcp "$a" n1-p1 n2-p1 7002
check_tcp "$b" n1-p1 n2-p1 7002
"$cluster" down --name "$a"
ip netns list | grep -q "^zt-$b-n1-p1" || fail "down of $a removed $b's namespaces"
check_tcp "$b" n1-p1 n2-p1 7002
"$cluster" down --name "$b"
clusters=()
assert_gone "$a" "$before"
assert_gone "$b" "$before"
echo "ok"
