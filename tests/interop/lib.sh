# shellcheck shell=bash disable=SC2034
# Shared setup of the interop tests: a CA with workload certificates for
# both ends, an untrusted CA, and a helper that starts a server which
# prints "port N". Sourced by tests/interop/*.sh.
set -euo pipefail
build=${ZT_BUILD:?}
src=${ZT_SRC:?}
peer="$build/tests/interop/hbone-peer"
ctl="$build/ztunnel/ztunnel-ctl"
work=$(mktemp -d /tmp/zt-interop-XXXXXX)
pids=()
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $(date +%T) $*"; }

"$ctl" ca init --dir "$work/ca" >/dev/null
"$ctl" ca init --dir "$work/evil" >/dev/null
"$ctl" ca mint --dir "$work/ca" --identity spiffe://cluster.local/ns/shop/sa/web --out "$work/web" >/dev/null
"$ctl" ca mint --dir "$work/ca" --identity spiffe://cluster.local/ns/shop/sa/client --out "$work/client" >/dev/null
"$ctl" ca mint --dir "$work/evil" --identity spiffe://cluster.local/ns/shop/sa/client --out "$work/evil-client" >/dev/null
root="$work/ca/root-cert.pem"
web_id=spiffe://cluster.local/ns/shop/sa/web
client_id=spiffe://cluster.local/ns/shop/sa/client

# start_server CMD...: runs a server that prints "port N"; sets $port and
# $server_pid; its stderr goes to $work/server.err.
start_server() {
  # Emptied here, not by the background job's redirection: that may run
  # after the loop below has read the previous server's port.
  : > "$work/server.out"
  "$@" >> "$work/server.out" 2> "$work/server.err" &
  pids+=("$!")
  server_pid=$!
  local _
  for _ in $(seq 1 50); do
    port=$(awk '/^port / {print $2}' "$work/server.out")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  cat "$work/server.err" >&2
  fail "server did not start: $*"
}
