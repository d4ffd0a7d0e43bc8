#!/usr/bin/env bash
# tools/bench hbone [SECONDS] [--runs N] [--quick] [--istio-ztunnel PATH] [--out DIR]
#
# Cross-node pod -> pod in one netns cluster, every path side by side in
# the same run, with the same client and server programs (only the path
# differs), each figure from --runs runs (default 3; median and spread):
#   direct   plain pods, no proxy: the ceiling
#   stunnel  a node-level stunnel mTLS pair
#   ours     our agents (release build, HBONE), mesh pods
#   istio    with --istio-ztunnel PATH: Istio's ztunnel binary (built by you,
#            ../shared/ISTIO-ZTUNNEL.md; FAKE_CA needs --features testing) in
#            dedicated mode inside two plain pods, a REDIRECT rule in the
#            client pod, its own server ports (TIME_WAIT sockets of the other
#            paths stay out of its figures), 2 worker threads
# Figures: iperf3 Gbit/s with 1 and 4 streams and the proxies' CPU seconds
# per GB carried (both ends, from /proc), 64 B request/response p50/p99,
# new connections/s (pooled HBONE: stream setup; and unpooled: a new HBONE
# connection, so a TLS handshake, per connection), and the memory an idle
# tunnelled connection costs each side: connections opened paced, each
# proven end to end, counted (a short count fails the figure), the
# proxies' RSS with all of them held (per connection: from the second half
# of them, the first soaking up what allocators kept from earlier traffic). Prints a Markdown table with ratios
# against Istio's ztunnel (else stunnel); writes results.json and
# results.md into --out (default build/bench/hbone). --quick: one run of
# 2 s figures and 500 held connections (under 2 minutes). Never a timed
# assertion: figures only. ZT_BENCH_AGENT_ARGS adds agent flags. (Our agents
# run with --max-streams-per-peer 100000: the default 1,000 would refuse
# the 10,000 connections one client pod holds; Istio has no such limit.)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
secs=10 runs=3 held=10000 rate=1000 rr_count=20000 istio="" out="$top/build/bench/hbone"
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --quick) secs=2 runs=1 held=500 rate=500 rr_count=2000; shift ;;
    --istio-ztunnel) istio=$(realpath "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    [0-9]*) secs=$1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench hbone: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "bench hbone: --runs must be a positive number" >&2; exit 2; }
[ -z "$istio" ] || [ -x "$istio" ] || { echo "bench hbone: $istio is not an executable" >&2; exit 2; }
rel="$top/build/release"
cluster="$top/tools/cluster"
tcp="$rel/tools/ztunnel-bench-tcp"
name="zb$(( $$ % 100000 ))"
[ "$(id -u)" -eq 0 ] || { echo "bench hbone: needs root (network namespaces)" >&2; exit 1; }
for t in iperf3 stunnel4 jq python3 ${istio:+iptables}; do
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
log() { printf 'bench hbone: %s\n' "$*" >&2; }

ctl="$rel/ztunnel/ztunnel-ctl"
"$ctl" ca init --dir "$work/ca" --trust-domain cluster.local >/dev/null
per_node=$([ -n "$istio" ] && echo 3 || echo 2)
cat > "$work/spec.json" <<'JSON'
{"namespaces": {"mesh": {"istio.io/dataplane-mode": "ambient"}, "plain": {}},
 "pods": {"n1-p1": {"namespace": "mesh", "serviceAccount": "client"},
          "n2-p1": {"namespace": "mesh", "serviceAccount": "server"},
          "n1-p2": {"namespace": "plain"}, "n2-p2": {"namespace": "plain"},
          "n1-p3": {"namespace": "plain", "serviceAccount": "istio-client"},
          "n2-p3": {"namespace": "plain", "serviceAccount": "istio-server"}}}
JSON
if [ -z "$istio" ]; then
  jq 'del(.pods["n1-p3"], .pods["n2-p3"])' "$work/spec.json" > "$work/spec2.json" && mv "$work/spec2.json" "$work/spec.json"
fi
log "cluster: 2 nodes x $per_node pods, $runs run(s) of ${secs} s figures"
"$cluster" up --name "$name" --spec "$work/spec.json" --nodes 2 --pods-per-node "$per_node" \
  --agent "$rel/ztunnel/ztunnel" --cni "$rel/ztunnel/ztunnel-cni" \
  --agent-args "--identity-provider local-ca --ca-dir $work/ca --log-level warn --max-streams-per-peer 100000 ${ZT_BENCH_AGENT_ARGS:-}" >/dev/null
info=$("$cluster" info --name "$name")
state=$(jq -r .stateDir <<<"$info")
ns_of() { jq -r --arg p "$1" '.pods[] | select(.name == $p) | .netns' <<<"$info"; }
ip_of() { jq -r --arg p "$1" '.pods[] | select(.name == $p) | .ip' <<<"$info"; }
node_ns() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .netns' <<<"$info"; }
node_ip() { jq -r --arg n "$1" '.nodes[] | select(.name == $n) | .ip' <<<"$info"; }
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" "$@"; }
bg() { "$@" >/dev/null 2>&1 & pids+=("$!"); }
# Connection rates must measure the proxies, not TIME_WAIT: whoever closes
# first keeps the 4-tuple for a minute, and with the default settings one
# source address can then open only ~470 connections/s to one port (28,232
# ports / 60 s). So wherever connections to one destination are opened
# (the client pods, the nodes where our agents dial, the server pods where
# Istio's ztunnel does) TIME_WAIT tuples may be reused (with timestamps,
# as RFC 6191) and the whole port range is used.
for p in n1-p1 n1-p2 n1-p3 n2-p1 n2-p2 n2-p3; do
  [ -n "$(ns_of "$p")" ] || continue
  in_ns "$(ns_of "$p")" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
done
for n in n1 n2; do
  in_ns "$(node_ns "$n")" sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
done

# Servers: each path its own destination pod (and Istio its own ports).
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

# Istio's ztunnel, dedicated mode, one per pod (../shared/ISTIO-ZTUNNEL.md §4).
istio_pids=()
if [ -n "$istio" ]; then
  bg in_ns "$(ns_of n2-p3)" "$tcp" serve 7100
  bg in_ns "$(ns_of n2-p3)" iperf3 -s -p 5301
  mkdir -p "$work/istio"
  workload() { # POD SA
    printf -- '- uid: cluster1//v1/Pod/plain/%s\n  name: %s\n  namespace: plain\n  serviceAccount: %s\n' "$1" "$1" "$2"
    printf '  trustDomain: cluster.local\n  workloadIps: ["%s"]\n  protocol: HBONE\n  network: ""\n  services: {}\n' "$(ip_of "$1")"
  }
  { echo "workloads:"; workload n1-p3 istio-client; workload n2-p3 istio-server
    echo "services: []"; echo "policies: []"; } > "$work/istio/mesh.yaml"
  # istio_start POD [VAR=VALUE...]: its ztunnel, found by its working
  # directory (not the shells that started it); waits for readiness.
  # Istio's pods: n1-p3 is the client (istio_pids[0]), n2-p3 the server.
  istio_slot() { if [ "$1" = n1-p3 ]; then echo 0; else echo 1; fi; }
  istio_start() {
    local p=$1 pid="" c old=" ${istio_pids[*]:-} " role=(istio-client istio-server)
    shift
    mkdir -p "$work/istio/$p"
    in_ns "$(ns_of "$p")" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin FAKE_CA=true XDS_ADDRESS= \
      LOCAL_XDS_PATH="$work/istio/mesh.yaml" PROXY_MODE=dedicated PROXY_WORKLOAD_INFO="plain/$p/${role[$(istio_slot "$p")]}" \
      ENABLE_ORIG_SRC=false PACKET_MARK=1337 ZTUNNEL_WORKER_THREADS=2 RUST_LOG=warn ISTIO_META_DNS_CAPTURE=false "$@" \
      bash -c "cd '$work/istio/$p' && exec '$istio' proxy" >> "$work/istio/$p.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 50); do
      for c in $(pgrep -f "$istio proxy" || true); do
        # (not one that is still exiting: istio_stop waited for it, but be sure)
        [[ $old == *" $c "* ]] && continue
        if [ "$(readlink "/proc/$c/cwd")" = "$work/istio/$p" ] && [ "$(readlink "/proc/$c/exe")" = "$istio" ]; then pid=$c; fi
      done
      [ -n "$pid" ] && break
      sleep 0.1
    done
    [ -n "$pid" ] || { log "Istio's ztunnel did not start in $p: $(tail -n 5 "$work/istio/$p.log")"; exit 1; }
    local ready=""
    for _ in $(seq 1 100); do
      [ "$(in_ns "$(ns_of "$p")" curl -s -m 1 -o /dev/null -w '%{http_code}' "http://$(ip_of "$p"):15021/healthz/ready")" = 200 ] && ready=1 && break
      sleep 0.1
    done
    [ -n "$ready" ] || { log "Istio's ztunnel in $p never became ready: $(tail -n 5 "$work/istio/$p.log")"; exit 1; }
    istio_pids[$(istio_slot "$p")]=$pid
  }
  istio_stop() { # POD
    local i
    i=$(istio_slot "$1")
    kill "${istio_pids[$i]}" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "${istio_pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${istio_pids[$i]}" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "${istio_pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  }
  istio_start n1-p3
  istio_start n2-p3
  # The client pod's connections to the server pod go to its ztunnel's 15001
  # (its own connections carry mark 0x539).
  in_ns "$(ns_of n1-p3)" iptables -w -t nat -A OUTPUT -p tcp -d "$(ip_of n2-p3)" -m mark ! --mark 0x539/0xfff \
    -j REDIRECT --to-ports 15001
  in_ns "$(ns_of n1-p3)" "$tcp" rr "$(ip_of n2-p3)" 7100 100 64 >/dev/null ||
    { log "Istio's path does not work: $(tail -n 5 "$work/istio/n1-p3.log")"; exit 1; }
fi

# Agents have their certificates and every listener is up.
for _ in $(seq 1 100); do
  grep -q 'sa/server' "$state/nodes/n2/agent.log" 2>/dev/null && break
  sleep 0.1
done
sleep 1
in_ns "$(ns_of n1-p1)" "$tcp" rr "$(ip_of n2-p1)" 7000 100 64 >/dev/null || { log "the mesh path does not work"; exit 1; }

# CPU time (clock ticks, user + system) of the processes carrying a path.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done
  echo "$t"
}
iperf() { # NS IP PORT STREAMS PID... -> "Gbit/s CPU_s_per_GB"
  local ns=$1 ip=$2 port=$3 streams=$4 c0 c1 json
  shift 4
  c0=$(cpu_ticks "$@")
  json=$(in_ns "$ns" iperf3 -c "$ip" -p "$port" -P "$streams" -t "$secs" -J || true)
  c1=$(cpu_ticks "$@")
  if ! jq -e '.end.sum_received.bytes > 0' <<<"$json" >/dev/null 2>&1; then
    log "iperf3 to $ip:$port ($streams streams) failed: $(jq -r '.error // "no result"' <<<"$json" 2>/dev/null)"
    echo "0 0"
    return
  fi
  jq -r --argjson t "$((c1 - c0))" --argjson hz "$(getconf CLK_TCK)" \
    '"\(.end.sum_received.bits_per_second / 1e9) \(($t / $hz) / (.end.sum_received.bytes / 1e9))"' <<<"$json"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# hold_half NS IP PORT TAG: held/2 more connections, paced, each proven end
# to end; returns once all were tried (open_of TAG: how many opened).
hold_pids=()
hold_half() {
  # nsenter itself (it execs the client), so that killing it closes them.
  nsenter --net="/run/netns/$1" "$tcp" hold "$2" "$3" "$((held / 2))" "$rate" > "$work/hold-$4" 2>&1 &
  hold_pids+=("$!")
  for _ in $(seq 1 $((held / 2 / rate * 20 + 300))); do grep -q '^open' "$work/hold-$4" && break; sleep 0.1; done
  sleep 1
}
open_of() { awk '/^open/ { print $2 }' "$work/hold-$1" | grep . || echo 0; }
# conn_rate PATH NS IP PORT: new connections/s, null (and a log line) when a
# connection failed or stalled: left out of the median, shown as failed.
conn_rate() {
  local rate
  rate=$(in_ns "$2" "$tcp" cps "$3" "$4" "$secs" 8 | awk '{print $2}') || true
  [ -n "$rate" ] || { log "$1: connection rate failed"; rate=null; }
  echo "$rate"
}
# measure RUN PATH SRC_POD IP PORT_ECHO PORT_IPERF CLIENT_PID SERVER_PID [PID...]: one JSON line.
measure() {
  local run=$1 path=$2 ns ip=$4 port=$5 iport=$6 cpid=$7 spid=$8 g1 g4 lat cps r1 r2
  ns=$(ns_of "$3")
  shift 8
  local procs=("$@")
  # Idle connections first (no bulk traffic just before: allocators have
  # settled), in two halves: the first half soaks up memory the
  # allocators kept from the traffic before; the second shows what a held
  # connection costs.
  local mem='null' held=$held
  # stunnel runs a thread per connection: 1,000 are enough to price one.
  [ "$path" != stunnel ] || [ "$held" -le 1000 ] || held=1000
  if [ "$cpid" != - ]; then
    hold_half "$ns" "$ip" "$port" a
    r1=$(rss_kb "$cpid") r2=$(rss_kb "$spid")
    hold_half "$ns" "$ip" "$port" b
    mem=$(jq -n --argjson a "$(open_of a)" --argjson b "$(open_of b)" --argjson half "$((held / 2))" \
      --argjson c0 "$r1" --argjson s0 "$r2" --argjson c1 "$(rss_kb "$cpid")" --argjson s1 "$(rss_kb "$spid")" \
      '{open: ($a + $b), want: (2 * $half), rss_client_kb: $c1, rss_server_kb: $s1,
        client_bytes: (($c1 - $c0) * 1024 / $half), server_bytes: (($s1 - $s0) * 1024 / $half)}')
    kill "${hold_pids[@]}" 2>/dev/null || true
    wait "${hold_pids[@]}" 2>/dev/null || true
    hold_pids=()
    sleep 1
  fi
  g1=$(iperf "$ns" "$ip" "$iport" 1 "${procs[@]}")
  sleep 0.5
  g4=$(iperf "$ns" "$ip" "$iport" 4 "${procs[@]}")
  sleep 0.5
  lat=$(in_ns "$ns" "$tcp" rr "$ip" "$port" "$rr_count" 64) || { log "$path: request/response failed"; lat="p50_us 0 p99_us 0"; }
  cps=$(conn_rate "$path" "$ns" "$ip" "$port")
  jq -cn --argjson run "$run" --arg path "$path" --arg g1 "$g1" --arg g4 "$g4" --arg lat "$lat" --arg cps "$cps" \
    --argjson mem "$mem" '($g1 | split(" ")) as $a | ($g4 | split(" ")) as $b | ($lat | split(" ")) as $l |
    {run: $run, path: $path, gbps1: ($a[0] | tonumber), cpu_gb1: ($a[1] | tonumber),
     gbps4: ($b[0] | tonumber), cpu_gb4: ($b[1] | tonumber), p50_us: ($l[1] | tonumber), p99_us: ($l[3] | tonumber),
     cps: (if $cps == "null" then null else ($cps | tonumber) end), idle: $mem}'
}
# New connections/s when each needs a new HBONE connection (a TLS
# handshake each): the client side carries one stream per connection
# (ours: --pool-max-streams-per-connection 1, Istio's ztunnel:
# POOL_MAX_STREAMS_PER_CONNECTION=1; each restarted with the setting and
# back). stunnel and direct TCP need no setting: stunnel
# handshakes per connection anyway, direct is the ceiling.
unpooled_row() { # RUN PATH CPS
  jq -cn --argjson run "$1" --arg path "$2" --argjson cps "$3" '{run: $run, path: $path, cps_unpooled: $cps}'
}
inherited_agent_args=${ZT_CLUSTER_AGENT_ARGS:-}
restart_client_agent() { # [AGENT ARGS]   (not a roll: the agents log warnings only)
  "$cluster" agent --name "$name" --node n1 stop
  ZT_CLUSTER_AGENT_ARGS="${inherited_agent_args}${1:+ $1}" "$cluster" agent --name "$name" --node n1 start
  "$cluster" agent --name "$name" --node n1 ready
  agents[0]=$(cat "$state/nodes/n1/agent.pid")
  in_ns "$(ns_of n1-p1)" "$tcp" rr "$(ip_of n2-p1)" 7000 100 64 >/dev/null || { log "the mesh path does not work after a restart"; exit 1; }
}
unpooled() { # RUN
  restart_client_agent "--pool-max-streams-per-connection 1"
  unpooled_row "$1" ours "$(conn_rate "ours, unpooled" "$(ns_of n1-p1)" "$(ip_of n2-p1)" 7000)"
  restart_client_agent
  if [ -n "$istio" ]; then
    istio_stop n1-p3
    istio_start n1-p3 POOL_MAX_STREAMS_PER_CONNECTION=1
    unpooled_row "$1" istio "$(conn_rate "istio, unpooled" "$(ns_of n1-p3)" "$(ip_of n2-p3)" 7100)"
    istio_stop n1-p3
    istio_start n1-p3
  fi
}
st_client=$(pgrep -f "stunnel4 $work/client.conf" | head -n 1)
st_server=$(pgrep -f "stunnel4 $work/server.conf" | head -n 1)
agents=("$(cat "$state/nodes/n1/agent.pid")" "$(cat "$state/nodes/n2/agent.pid")")
: > "$work/results.jsonl"
for ((run = 1; run <= runs; run++)); do
  log "run $run of $runs"
  {
    measure "$run" direct n1-p2 "$(ip_of n2-p2)" 7000 5201 - -
    measure "$run" stunnel n1-p2 "$n1" 9700 9701 "$st_client" "$st_server" "$st_client" "$st_server"
    measure "$run" ours n1-p1 "$(ip_of n2-p1)" 7000 5201 "${agents[0]}" "${agents[1]}" "${agents[@]}"
    [ -z "$istio" ] || measure "$run" istio n1-p3 "$(ip_of n2-p3)" 7100 5301 "${istio_pids[0]}" "${istio_pids[1]}" "${istio_pids[@]}"
    unpooled "$run"
  } >> "$work/results.jsonl"
done
mkdir -p "$out"
settings=$(jq -n --argjson secs "$secs" --argjson runs "$runs" --argjson held "$held" --arg cpus "$(nproc)" \
  --arg agent_args "${ZT_BENCH_AGENT_ARGS:-}" --arg istio "${istio:+$("$istio" version 2>/dev/null | head -n 1 || echo "$istio")}" \
  '{seconds: $secs, runs: $runs, held_connections: $held, cpus: ($cpus | tonumber), agent_args: $agent_args, istio: $istio}')
python3 "$top/tools/benchsrc/hbone_report.py" "$work/results.jsonl" "$settings" "$out"
