#!/usr/bin/env bash
# The agent follows a ConfigMap-style snapshot directory (kubelet's ..data
# symlink swap), rejects a bad version while keeping the last good model,
# applies the next good one, and exits cleanly on SIGTERM.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

dir="$work/config"
mkdir -p "$dir/..v1"
cp "$fixtures/cluster.json" "$dir/..v1/snapshot.json"
ln -s ..v1 "$dir/..data"
ln -s ..data/snapshot.json "$dir/snapshot.json"

swap() { # swap VERSION FILE: publish FILE the way kubelet does
  mkdir -p "$dir/..$1"
  cp "$2" "$dir/..$1/snapshot.json"
  ln -s "..$1" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
}
wait_log() { # wait_log PATTERN: until the agent logged it (5 s)
  local _
  for _ in $(seq 1 50); do grep -q "$1" "$work/agent.log" && return 0; sleep 0.1; done
  cat "$work/agent.log" >&2
  fail "agent never logged: $1"
}

# Its HTTP servers on loopback, on free ports: never on the host's addresses.
"$agent" --snapshot "$dir" --node-name n1 --capture false --log-format json --admin-addr 127.0.0.1:0 \
  --metrics-addr 127.0.0.1:0 --readiness-addr off 2> "$work/agent.log" &
pids+=("$!")
agent_pid=$!
wait_log '"msg":"snapshot applied".*"generation":1'

printf '{"kind": "List", "items": [' > "$work/bad.json"
swap v2 "$work/bad.json"
wait_log '"msg":"snapshot rejected, keeping the previous one".*"kept_generation":1'
kill -0 "$agent_pid" || fail "agent died on a bad snapshot"

jq '.items |= map(select(.kind != "AuthorizationPolicy"))' "$fixtures/cluster.json" > "$work/v3.json"
swap v3 "$work/v3.json"
wait_log '"msg":"snapshot applied".*"generation":2.*"authorization_policies":0'

kill -HUP "$agent_pid"
wait_log '"msg":"snapshot applied".*"generation":3'

kill -TERM "$agent_pid"
rc=0
wait "$agent_pid" || rc=$?
pids=()
[ "$rc" = 0 ] || fail "agent exit status $rc after SIGTERM"
grep -q '"msg":"shutting down"' "$work/agent.log" || fail "no shutdown log"
if grep -q 'AddressSanitizer\|runtime error' "$work/agent.log"; then fail "sanitizer report"; fi
echo ok
