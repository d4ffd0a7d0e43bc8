#!/usr/bin/env bash
# tools/bench hbone [SECONDS]: see tools/bench --help (ZT_BENCH_AGENT_ARGS adds
# agent flags, e.g. "--worker-threads 1"). Every figure of a run
# comes from the same cluster, the same pods and the same client/server
# programs; only the path differs. Also: the memory an idle tunnelled
# connection costs each agent (RSS with 1,000 held open).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
secs=${1:-5}
rel="$top/build/release"
cluster="$top/tools/cluster"
tcp="$rel/tools/ztunnel-bench-tcp"
name="zb$(( $$ % 100000 ))"
[ "$(id -u)" -eq 0 ] || { echo "bench hbone: needs root (network namespaces)" >&2; exit 1; }
for t in iperf3 stunnel4 jq; do
  command -v "$t" >/dev/null || { echo "bench hbone: $t missing: run tools/bootstrap" >&2; exit 1; }
done
work=$(mktemp -d /tmp/zt-bench-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$cluster" down --name "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ctl="$rel/ztunnel/ztunnel-ctl"
"$ctl" ca init --dir "$work/ca" --trust-domain cluster.local >/dev/null
cat > "$work/spec.json" <<'JSON'
{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "client"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "server"},
          "n1-p2": {"namespace": "plain"}, "n2-p2": {"namespace": "plain"}}}
JSON
"$cluster" up --name "$name" --spec "$work/spec.json" --nodes 2 --pods-per-node 2 \
  --agent "$rel/ztunnel/ztunnel" --cni "$rel/ztunnel/ztunnel-cni" \
  --agent-args "--identity-provider local-ca --ca-dir $work/ca --log-level warn ${ZT_BENCH_AGENT_ARGS:-}" >/dev/null
info=$("$cluster" info --name "$name")
ns_of() { jq -r --arg p "$1" '.pods[] | select(.name == $p) | .netns' <<<"$info"; }
ip_of() { jq -r --arg p "$1" '.pods[] | select(.name == $p) | .ip' <<<"$info"; }
node_ns() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns' <<<"$info"; }
node_ip() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .ip' <<<"$info"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
bg() { "$@" >/dev/null 2>&1 & pids+=("$!"); }

# Servers on both destination pods.
for p in n2-p1 n2-p2; do
  bg in_ns "$(ns_of $p)" "$tcp" serve 7000
  bg in_ns "$(ns_of $p)" iperf3 -s -p 5201
done

# stunnel pair between the nodes, mutual TLS with certificates of the same CA.
for side in client server; do
  "$ctl" ca mint --dir "$work/ca" --identity "spiffe://cluster.local/ns/bench/sa/stunnel-$side" \
    --out "$work/$side" >/dev/null
done
stunnel_conf() { # SIDE ACCEPT CONNECT...
  local side=$1
  shift
  printf 'foreground = yes\npid =\nsyslog = no\noutput = %s/stunnel-%s.log\n' "$work" "$side"
  [ "$side" = client ] && printf 'client = yes\n'
  local i=0
  while [ $# -gt 0 ]; do
    printf '[s%d]\naccept = %s\nconnect = %s\ncert = %s\nkey = %s\nCAfile = %s\nverifyChain = yes\nrequireCert = yes\nsslVersionMin = TLSv1.3\n' \
      "$i" "$1" "$2" "$work/$side/cert-chain.pem" "$work/$side/key.pem" "$work/ca/root-cert.pem"
    shift 2
    i=$((i + 1))
  done
}
n1=$(node_ip n1) n2=$(node_ip n2)
stunnel_conf server "$n2:8700" "$(ip_of n2-p2):7000" "$n2:8701" "$(ip_of n2-p2):5201" > "$work/server.conf"
stunnel_conf client "$n1:9700" "$n2:8700" "$n1:9701" "$n2:8701" > "$work/client.conf"
bg in_ns "$(node_ns n2)" stunnel4 "$work/server.conf"
bg in_ns "$(node_ns n1)" stunnel4 "$work/client.conf"

# Agents have their certificates and every listener is up.
for _ in $(seq 1 100); do
  grep -q '"sa/server"\|sa/server' "$(jq -r .stateDir <<<"$info")/nodes/n2/agent.log" 2>/dev/null && break
  sleep 0.1
done
sleep 1
in_ns "$(ns_of n1-p1)" "$tcp" rr "$(ip_of n2-p1)" 7000 100 64 >/dev/null ||
  { echo "bench hbone: the mesh path does not work" >&2; exit 1; }

# CPU time (clock ticks, user + system) of the processes carrying a path.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$t"
}
measure() { # LABEL SRC_POD IP PORT_ECHO PORT_IPERF [PID...]: the path's own processes
  local label=$1 ns ip=$3 port=$4 iport=$5 json gbps lat cps c0 c1 cpu_gb
  ns=$(ns_of "$2")
  shift 5
  c0=$(cpu_ticks "$@")
  json=$(in_ns "$ns" iperf3 -c "$ip" -p "$iport" -t "$secs" -J)
  c1=$(cpu_ticks "$@")
  gbps=$(jq '.end.sum_received.bits_per_second / 1e9' <<<"$json")
  # CPU seconds the path's middle boxes spent per GB carried (0: none).
  cpu_gb=$(jq --argjson t "$((c1 - c0))" --argjson hz "$(getconf CLK_TCK)" \
    '($t / $hz) / (.end.sum_received.bytes / 1e9)' <<<"$json")
  sleep 0.5
  lat=$(in_ns "$ns" "$tcp" rr "$ip" "$port" 20000 64 | awk '{print $2}')
  cps=$(in_ns "$ns" "$tcp" cps "$ip" "$port" "$secs" | awk '{print $2}')
  printf '%s %s %s %s %s\n' "$label" "$gbps" "$lat" "$cps" "$cpu_gb"
}
state=$(jq -r .stateDir <<<"$info")
mapfile -t stunnels < <(pgrep -f "stunnel4 $work/")
agents=("$(cat "$state/nodes/n1/agent.pid")" "$(cat "$state/nodes/n2/agent.pid")")
{
  measure direct n1-p2 "$(ip_of n2-p2)" 7000 5201
  measure stunnel n1-p2 "$n1" 9700 9701 "${stunnels[@]}"
  measure ztunnel n1-p1 "$(ip_of n2-p1)" 7000 5201 "${agents[@]}"
} > "$work/results"

# Memory an idle tunnelled connection costs each agent: 1,000 connections
# opened and held, RSS read before and during.
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$state/nodes/$1/agent.pid")/status"; }
idle=1000
r1=$(rss_kb n1) r2=$(rss_kb n2)
echo_py="$top/tests/net/tcp_echo.py"
bg in_ns "$(ns_of n2-p1)" python3 "$echo_py" serve 7300
sleep 0.5
in_ns "$(ns_of n1-p1)" python3 "$echo_py" parallel "$(ip_of n2-p1)" 7300 "$idle" 4 > "$work/idle" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do grep -q "connections open" "$work/idle" && break; sleep 0.1; done
sleep 0.5
printf 'idle %s %s\n' "$(( ($(rss_kb n1) - r1) * 1024 / idle ))" "$(( ($(rss_kb n2) - r2) * 1024 / idle ))" >> "$work/results"

awk -v secs="$secs" '
  $1 == "idle" { idle1 = $2; idle2 = $3; next }
  { gbps[$1] = $2; lat[$1] = $3; cps[$1] = $4; cpu[$1] = $5 }
  END {
    printf "cross-node pod -> pod, %s s per figure, %s\n\n", secs, "release build"
    printf "%-9s %12s %14s %12s %16s\n", "path", "Gbit/s", "p50 RR (us)", "conn/s", "proxy CPU s/GB"
    split("direct stunnel ztunnel", order, " ")
    for (i = 1; i <= 3; i++) { p = order[i]; printf "%-9s %12.2f %14.1f %12.0f %16.3f\n", p, gbps[p], lat[p], cps[p], cpu[p] }
    added_z = lat["ztunnel"] - lat["direct"]; added_s = lat["stunnel"] - lat["direct"]
    printf "\n%-48s %8s %8s\n", "target", "measured", "goal"
    printf "%-48s %8.2f %8s\n", "throughput ztunnel / stunnel", gbps["ztunnel"] / gbps["stunnel"], ">= 2.5"
    printf "%-48s %8.2f %8s\n", "throughput ztunnel / direct", gbps["ztunnel"] / gbps["direct"], ">= 0.5"
    printf "%-48s %8.2f %8s\n", "added p50 latency ztunnel / stunnel", (added_s > 0 ? added_z / added_s : 0), "<= 0.6"
    printf "%-48s %8.2f %8s\n", "new connections/s ztunnel / stunnel", cps["ztunnel"] / cps["stunnel"], ">= 10"
    printf "%-48s %8.2f %8s\n", "proxy CPU per GB ztunnel / stunnel (both pairs)", cpu["ztunnel"] / cpu["stunnel"], "(lower)"
    printf "\nidle tunnelled connection (1,000 held): %d bytes in the source agent, %d in the destination agent\n", idle1, idle2
  }' "$work/results"
