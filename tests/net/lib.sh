# shellcheck shell=bash disable=SC2034
# Shared helpers for tests/net/*.sh (sourced). Each test makes its own
# cluster with a unique name and removes it on exit, failure included.
set -euo pipefail

src_root=${ZT_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cluster="$src_root/tools/cluster"
py=/usr/bin/python3
echo_py="$src_root/tests/net/tcp_echo.py"
clusters=()
started_pids=()
temp_files=()
temp_dirs=()

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

require_root() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
  command -v jq >/dev/null || skip "jq missing: run tools/bootstrap"
  [ -x /usr/lib/cni/ptp ] || skip "containernetworking-plugins missing: run tools/bootstrap"
}

# A cluster name unique to this test run (names prefix namespaces).
unique_name() { printf '%s%s' "$1" "$(( $$ % 100000 ))"; }

# The only EXIT trap: keeps the test's exit status (a failure stays one).
cleanup() {
  local rc=$? p c
  for p in "${started_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for c in "${clusters[@]}"; do "$cluster" down --name "$c" || rc=1; done
  rm -rf "${temp_files[@]}"
  # Directories rm cannot remove (cgroups), emptiest first.
  for c in "${temp_dirs[@]}"; do rmdir "$c" 2>/dev/null || rc=1; done
  exit "$rc"
}
trap cleanup EXIT

# new_spec JSON: sets $spec to a temporary cluster spec file removed at exit.
new_spec() {
  spec=$(mktemp /tmp/zt-spec-XXXXXX)
  temp_files+=("$spec")
  printf '%s\n' "$1" > "$spec"
}

cluster_up() {
  local name=$1
  shift
  clusters+=("$name")
  "$cluster" up --name "$name" "$@"
}

info() { "$cluster" info --name "$1"; }
pod_field() { info "$1" | jq -r --arg p "$2" ".pods[] | select(.name == \$p) | .$3"; }
pod_names() { info "$1" | jq -r '.pods[].name'; }

start_echo() {
  local name=$1 pod=$2 port=$3 ns
  ns=$(pod_field "$name" "$pod" netns)
  nsenter --net="/run/netns/$ns" "$py" "$echo_py" serve "$port" &
  started_pids+=("$!")
  for _ in $(seq 1 50); do
    nsenter --net="/run/netns/$ns" ss -Hltn "sport = :$port" | grep -q LISTEN && return 0
    sleep 0.1
  done
  fail "echo server in $pod did not start"
}

# check_tcp CLUSTER FROM_POD TO_POD PORT: a real TCP round trip, no NAT.
check_tcp() {
  local name=$1 from=$2 to=$3 port=$4
  nsenter --net="/run/netns/$(pod_field "$name" "$from" netns)" \
    "$py" "$echo_py" check "$(pod_field "$name" "$to" ip)" "$port" "$(pod_field "$name" "$from" ip)" ||
    fail "TCP $from -> $to:$port"
}

host_links() { ip -o link show | awk -F': ' '{print $2}' | sort; }

# Asserts nothing of cluster NAME survives: netns, host links, bpffs, state.
assert_gone() {
  local name=$1 links_before=$2 run_root=${ZT_CLUSTER_RUN_DIR:-/run/ztunnel-cluster}
  if ip netns list | grep -qE "^zt-$name-"; then fail "netns of $name left behind"; fi
  [ "$(host_links)" = "$links_before" ] || fail "host links changed: $(diff <(echo "$links_before") <(host_links) || true)"
  if findmnt -rn -o TARGET | grep -q "^$run_root/$name/"; then fail "bpffs of $name still mounted"; fi
  [ ! -e "$run_root/$name" ] || fail "state dir $run_root/$name left behind"
}

# --- clusters with a ztunnel agent per node (tools/cluster up --agent) ---
build=${ZT_BUILD:-$src_root/build/test}
ctl="$build/ztunnel/ztunnel-ctl"

cluster_up_agents() { # NAME SPEC_FILE [tools/cluster up args...]
  local name=$1 spec=$2
  shift 2
  # Plain relay unless the caller's --agent-args (later, so it wins) says otherwise.
  cluster_up "$name" --spec "$spec" --agent "$build/ztunnel/ztunnel" \
    --cni "$build/ztunnel/ztunnel-cni" --agent-args "--identity-provider insecure-plaintext" "$@"
  assert_fallback_modes "$name"
}

# The fallback suite (ZT_CLUSTER_AGENT_ARGS="--attach clsact --listeners
# shared") must really run on the fallbacks, not pass on the defaults.
assert_fallback_modes() {
  local f
  [[ ${ZT_CLUSTER_AGENT_ARGS:-} == *"--attach clsact"* ]] || return 0
  for f in "$(info "$1" | jq -r .stateDir)"/nodes/*/agent.log; do
    [ -f "$f" ] || continue
    grep -q '"msg":"capture attached".*"mode":"clsact"' "$f" || fail "$f: capture not attached with clsact"
    grep -q '"msg":"data path listening".*"listeners":"shared"' "$f" || fail "$f: listeners not shared"
  done
}

# stat NAME NODE REASON: a capture counter from the node's pinned maps.
stat() {
  "$ctl" capture stats --bpf-pin-dir "$(info "$1" | jq -r .stateDir)/bpf/$2" |
    awk -v r="$3" '$1 == r { print $2 }'
}

agent_log() { echo "$(info "$1" | jq -r .stateDir)/nodes/$2/agent.log"; }

# wait_log NAME NODE PATTERN [SECONDS]: until the node's agent logged it.
wait_log() {
  local log _
  log=$(agent_log "$1" "$2")
  for _ in $(seq 1 $((${4:-5} * 10))); do grep -q -- "$3" "$log" && return 0; sleep 0.1; done
  tail -n 30 "$log" >&2
  fail "agent on $2 never logged: $3"
}

count_log() { grep -c -- "$3" "$(agent_log "$1" "$2")" || true; }

# access_lines NAME NODE JQ_CONDITION: the node's access-log lines (JSON,
# SPEC.md §6.2 fields) for which the jq condition holds, e.g.
#   '.msg == "connection complete" and ."dst.workload" == "n2-p1"'
access_lines() {
  jq -c -R "fromjson? | select(.msg == \"connection complete\" or .msg == \"connection denied\") | select($3)" \
    "$(agent_log "$1" "$2")" 2>/dev/null || true
}
count_access() { access_lines "$@" | grep -c . || true; }
# wait_access NAME NODE JQ_CONDITION [SECONDS]: until such a line exists.
wait_access() {
  local _
  for _ in $(seq 1 $((${4:-5} * 10))); do [ -n "$(access_lines "$1" "$2" "$3")" ] && return 0; sleep 0.1; done
  grep -E '"connection (complete|denied)"' "$(agent_log "$1" "$2")" | tail -n 10 >&2 || true
  fail "agent on $2 never logged an access line where: $3"
}

expect_blocked() { # NAME FROM_POD TO_POD PORT
  nsenter --net="/run/netns/$(pod_field "$1" "$2" netns)" \
    "$py" "$echo_py" expect-fail "$(pod_field "$1" "$3" ip)" "$4" 2 ||
    fail "$2 -> $3:$4 connected, expected it to fail"
}

# expect_no_uncertified NAME FROM TO PORT: FROM's agent has no certificate
# for it: the connection fails and nothing reaches TO, in plaintext or not.
expect_no_uncertified() {
  local to_node n
  to_node=$(pod_field "$1" "$3" node)
  n=$(count_access "$1" "$to_node" ".\"dst.workload\" == \"$3\"")
  if nsenter --net="/run/netns/$(pod_field "$1" "$2" netns)" "$py" "$echo_py" check \
    "$(pod_field "$1" "$3" ip)" "$4" "$(pod_field "$1" "$2" ip)" 2>/dev/null; then
    fail "$2, without a certificate, reached $3"
  fi
  sleep 0.5
  [ "$(count_access "$1" "$to_node" ".\"dst.workload\" == \"$3\"")" = "$n" ] ||
    fail "a connection from $2 reached $3 without mTLS"
}

check_tcp_bytes() { # NAME FROM TO PORT BYTES
  nsenter --net="/run/netns/$(pod_field "$1" "$2" netns)" \
    "$py" "$echo_py" check "$(pod_field "$1" "$3" ip)" "$4" "$(pod_field "$1" "$2" ip)" "$5" ||
    fail "TCP $2 -> $3:$4 ($5 bytes)"
}

# Fails if any agent of the cluster reported a sanitizer finding.
assert_agents_clean() {
  local f
  for f in "$(info "$1" | jq -r .stateDir)"/nodes/*/agent.log; do
    if grep -q 'AddressSanitizer\|runtime error:\|LeakSanitizer\|ThreadSanitizer' "$f"; then
      cat "$f" >&2
      fail "sanitizer finding in $f"
    fi
  done
}

# new_ca: a local CA in a temporary directory ($cadir), removed at exit.
new_ca() {
  cadir=$(mktemp -d /tmp/zt-ca-XXXXXX)
  temp_files+=("$cadir")
  "$ctl" ca init --dir "$cadir" --trust-domain cluster.local >/dev/null
}

# mesh_cluster_up NAME SPEC_FILE [tools/cluster up args...]: agents issuing
# identities from a new local CA ($cadir), so mesh traffic is HBONE; more
# agent flags in $agent_extra.
mesh_cluster_up() {
  local name=$1 spec=$2
  shift 2
  new_ca
  cluster_up_agents "$name" "$spec" "$@" \
    --agent-args "--identity-provider local-ca --ca-dir $cadir${agent_extra:+ $agent_extra}"
}

# wait_count_log NAME NODE PATTERN N: until the node logged PATTERN N times
# (then exactly N).
wait_count_log() {
  for _ in $(seq 1 50); do
    [ "$(count_log "$1" "$2" "$3")" -ge "$4" ] && break
    sleep 0.1
  done
  [ "$(count_log "$1" "$2" "$3")" = "$4" ] || fail "$2 logged \"$3\" $(count_log "$1" "$2" "$3") times, want $4"
}

# down_and_check NAME HOST_LINKS_BEFORE: sanitizer-clean agents, then the
# cluster goes and leaves nothing behind.
down_and_check() {
  assert_agents_clean "$1"
  step "down"
  "$cluster" down --name "$1"
  clusters=()
  assert_gone "$1" "$2"
}

# hide_pod NAME NODE POD: publishes, the way kubelet swaps a ConfigMap, the
# snapshot of $spec without POD (a pod newer than the snapshot); waits
# until NODE's agent applied it. publish_spec NAME NODE: all of $spec again.
hide_pod() {
  local name=$1 node=$2 pod=$3 cm v n
  cm="$(info "$name" | jq -r .stateDir)/configmap"
  n=$(count_log "$name" "$node" '"msg":"snapshot applied"')
  v="..$(date +%s%N)"
  mkdir -p "$cm/$v"
  "$cluster" snapshot --name "$name" --spec "$spec" |
    jq --arg p "$pod" 'del(.items[] | select(.kind == "Pod" and .metadata.name == $p))' > "$cm/$v/snapshot.json"
  ln -sfn "$v" "$cm/..data_tmp"
  mv -T "$cm/..data_tmp" "$cm/..data"
  wait_count_log "$name" "$node" '"msg":"snapshot applied"' $((n + 1))
}
publish_spec() {
  local n
  n=$(count_log "$1" "$2" '"msg":"snapshot applied"')
  "$cluster" publish --name "$1" --spec "$spec" >/dev/null
  wait_count_log "$1" "$2" '"msg":"snapshot applied"' $((n + 1))
}

# With --kube clusters: the real control plane must have been built.
require_kube() {
  [ -x "$src_root/.deps/kube/kube-apiserver" ] || skip "no kube-apiserver: run tools/bootstrap --kube"
}
# kapi ARGS...: tools/kube api against the cluster's API server (as admin;
# needs $state, the cluster's state directory).
# shellcheck disable=SC2154 # state: set by the test once its cluster is up
kapi() { "$src_root/tools/kube" api --dir "$state/kube" "$@"; }
# body JSON: a temporary file holding JSON (removed at exit).
body() { local f; f=$(mktemp /tmp/zt-kube-body-XXXXXX); temp_files+=("$f"); printf '%s\n' "$1" > "$f"; echo "$f"; }
