#!/usr/bin/env bash
# ztunnel-ctl against a running agent's admin API, from inside node n1's
# netns as an operator on the node would (127.0.0.1:15000): workloads,
# services and policies list the cluster's; certificates shows the local
# identity's certificate (the PEM it serves holds that SPIFFE id and
# serial); a connection held open is in `connections` with both
# identities; `log debug` is what `log` then reports; check live agrees
# with check --snapshot on the snapshot `snapshot dump` wrote, which is the
# published one byte for byte; the compliance report names the plaintext
# path a non-mesh client used and the denial, `--require mtls=100` exits 1,
# over an --interval of only mTLS traffic 0, and in a cluster that only
# ever carried mTLS traffic 0.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
name=$(unique_name ctl)
before=$(host_links)
web=spiffe://cluster.local/ns/shop/sa/web
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}, "legacy": {}, "istio-system": {}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n1-p2": {"namespace": "shop", "serviceAccount": "api", "labels": {"app": "api"},
                    "ports": [{"name": "tcp-api", "containerPort": 7000}]},
          "n2-p1": {"namespace": "shop", "serviceAccount": "db"},
          "n2-p2": {"namespace": "legacy"}},
 "services": [{"name": "api", "namespace": "shop", "clusterIP": "10.96.0.20",
               "selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": "tcp-api"}]}],
 "objects": [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": {"name": "allow-web", "namespace": "shop"},
              "spec": {"selector": {"matchLabels": {"app": "api"}},
                       "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/web"]}}]}]}}]}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 2
wait_log "$name" n1 '"msg":"certificate issued","identity":"'$web'"'
wait_log "$name" n1 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/db"'
for p in n1-p1 n1-p2 n2-p1; do start_echo "$name" "$p" 7000; done
ip_of() { pod_field "$name" "$1" ip; }

# ctl_n1 ARGS...: ztunnel-ctl on node n1, where the agent's admin listens.
node_ns() { info "$1" | jq -r --arg n "$2" '.nodes[] | select(.name == $n) | .netns'; }
n1ns=$(node_ns "$name" n1)
ctl_n1() { nsenter --net="/run/netns/$n1ns" "$ctl" "$@"; }
# expect WANT_RC ARGS...: $out holds stdout and stderr.
expect() {
  local want=$1 rc=0
  shift
  out=$(ctl_n1 "$@" 2>&1) || rc=$?
  [ "$rc" = "$want" ] || fail "ztunnel-ctl $*: exit $rc, want $want: $out"
  # A leak report exits 1 too: an expected 1 must not hide one.
  if grep -q 'Sanitizer\|runtime error:' <<<"$out"; then fail "ztunnel-ctl $*: $out"; fi
}
has() { grep -qE -- "$1" <<<"$out" || fail "no /$1/ in: $out"; }
for _ in $(seq 1 50); do ctl_n1 workloads >/dev/null 2>&1 && break; sleep 0.1; done

step "workloads, services, policies: the cluster's"
expect 0 workloads
echo "$out"
has "^shop +n1-p1 +n1 +$(ip_of n1-p1) +$web +yes +HBONE$"
has "^shop +n2-p1 +n2 +$(ip_of n2-p1) +spiffe://cluster\.local/ns/shop/sa/db +yes +HBONE$"
has "^legacy +n2-p2 +n2 +$(ip_of n2-p2) +[^ ]+ +no +TCP$"
expect 0 workloads --local -o json
[ "$(jq -c '[.[] | .name] | sort' <<<"$out")" = '["n1-p1","n1-p2"]' ] || fail "workloads --local: $out"
expect 0 services
has '^shop +api +10\.96\.0\.20 +80->tcp-api +1/1$'
expect 0 policies
has '^AuthorizationPolicy +shop +allow-web +ALLOW +workload$'

step "certificates: the local identity's, as the agent serves it"
expect 0 certificates
echo "$out"
has "^$web +Available +[0-9a-fA-F]+ +[0-9TZ:-]+ +[0-9TZ:-]+$"
if grep -q 'sa/db' <<<"$out"; then fail "n1 lists n2's identity: $out"; fi
serial=$(awk -v id="$web" '$1 == id { print $3 }' <<<"$out")
expect 0 certificates -o json
pem=$(jq -r --arg id "$web" '.[] | select(.identity == $id) | .certChain[0].pem' <<<"$out" | base64 -d)
openssl x509 -noout -ext subjectAltName <<<"$pem" | grep -q "URI:$web" || fail "the served certificate is not $web's"
hex() { tr 'A-F' 'a-f' | sed 's/^serial=//; s/^0*//'; }
served=$(openssl x509 -noout -serial <<<"$pem" | hex)
[ "$served" = "$(hex <<<"$serial")" ] || fail "SERIAL $serial, the certificate's $served"
expect 0 certificates --expiring-within 1
expect 1 certificates --expiring-within 48 # local-ca certificates live 24 h
has "expiring within 48 h: $web"

step "connections: one held open"
hold_out=$(mktemp /tmp/zt-hold-XXXXXX)
temp_files+=("$hold_out")
nsenter --net="/run/netns/$(pod_field "$name" n1-p1 netns)" "$py" "$echo_py" hold "$(ip_of n2-p1)" 7000 20 > "$hold_out" &
holder=$!
started_pids+=("$holder")
for _ in $(seq 1 50); do grep -q open "$hold_out" && break; sleep 0.1; done
grep -q open "$hold_out" || fail "the long-lived connection did not open"
expect 0 connections
echo "$out"
has "^outbound +HBONE +$(ip_of n1-p1):[0-9]+ +$(ip_of n2-p1):7000 +$web +spiffe://cluster\.local/ns/shop/sa/db +[0-9]+ +[0-9]+ +[0-9.hms]+$"
if grep -q '^warning' <<<"$out"; then fail "a worker did not answer: $out"; fi
kill "$holder"

step "log: set, read back, reset"
expect 0 log debug
has '^current log level is debug'
expect 0 log
has '^current log level is debug'
expect 2 log loud
has 'answered 400'
expect 0 log --reset
has '^current log level is info'

step "snapshot dump is the published snapshot; check live agrees with check --snapshot"
dump=$(mktemp /tmp/zt-dump-XXXXXX)
temp_files+=("$dump")
expect 0 snapshot dump -f "$dump"
cmp -s "$dump" "$(info "$name" | jq -r .configmap)/snapshot.json" || fail "snapshot dump differs from the published snapshot"
lint=$("$ctl" snapshot lint "$dump" 2>&1) || fail "snapshot lint of the live agent's snapshot: $lint"
for args in "--from shop/n1-p1 --to shop/n1-p2:7000" "--from shop/n2-p1 --to shop/n1-p2:7000" \
  "--from legacy/n2-p2 --to shop/n1-p1:7000"; do
  rc_live=0 rc_file=0
  # shellcheck disable=SC2086
  live=$(ctl_n1 check $args 2>&1) || rc_live=$?
  # shellcheck disable=SC2086
  file=$("$ctl" check --snapshot "$dump" $args 2>&1) || rc_file=$?
  echo "$live"
  if [ "$live" != "$file" ] || [ "$rc_live" != "$rc_file" ]; then
    fail "check $args: live ($rc_live) $live; file ($rc_file) $file"
  fi
done
expect 0 check --from shop/n1-p1 --to shop/n1-p2:7000
has '^ALLOWED: allowed by shop/allow-web rule 0$'
expect 1 check --from shop/n2-p1 --to shop/n1-p2:7000
has '^DENIED: allow policies exist, but none allowed'

step "report compliance: a plaintext path and a denial were counted"
check_tcp_bytes "$name" n1-p1 n2-p1 7000 65536 # mTLS, cross-node
check_tcp "$name" n1-p1 n1-p2 7000            # mTLS, same node, allowed
expect_blocked "$name" n2-p1 n1-p2 7000       # mTLS, denied by allow-web at n1
check_tcp "$name" n2-p2 n1-p1 7000            # plaintext: a non-mesh client
expect 1 report compliance --require mtls=100
echo "$out"
# n1 counted five mTLS connections or more (held, 64 KiB, same node twice,
# denied) and exactly one plaintext: the non-mesh client's.
has '^requirement not met: mtls=100: 1 of ([5-9]|[1-9][0-9]+) connections plaintext'
has '^  destination +legacy/n2-p2 +shop/n1-p1 +non-mesh client +- +1 +[1-9][0-9]*$'
expect 1 report compliance --require mtls=100 -o json
json=$(sed -n '/^{/,/^}/p' <<<"$out")
paths=$(jq -c '[.plaintextPaths[] | [.reporter, .source, .destination, .reason]]' <<<"$json")
[ "$paths" = '[["destination","legacy/n2-p2","shop/n1-p1","non-mesh client"]]' ] ||
  fail "plaintext paths other than the non-mesh client's: $paths"
jq -e '(.denials | any(.policy == "-" and .denials >= 1))
  and (.namespacesWithoutDenyByDefault | any(.namespace == "shop" and .allowPolicies == "workload-scoped only"))
  and .mtlsCoverage.workloads == {"what": "pods enrolled in the mesh (hostNetwork excluded)",
                                  "covered": 3, "total": 4, "percent": 75}
  and .requirements[0].met == false' <<<"$json" >/dev/null || fail "report -o json: $json"

step "report compliance --interval: only mTLS traffic in the window"
window=$(mktemp /tmp/zt-window-XXXXXX)
temp_files+=("$window")
ctl_n1 report compliance --interval 3 --require mtls=100 -o json > "$window" &
reporter=$!
started_pids+=("$reporter")
sleep 1
check_tcp "$name" n1-p1 n2-p1 7000
wait "$reporter" || fail "mtls=100 over a window of only mTLS traffic: $(cat "$window")"
jq -e '.trafficWindowSeconds == 3 and .mtlsCoverage.connections.total >= 1
  and .mtlsCoverage.connections.covered == .mtlsCoverage.connections.total' "$window" >/dev/null ||
  fail "--interval: $(cat "$window")"
down_and_check "$name" "$before"

step "a cluster that only ever carried mTLS traffic"
name=$(unique_name ctm)
new_spec '{"namespaces": {"shop": {"istio.io/dataplane-mode": "ambient"}},
 "pods": {"n1-p1": {"namespace": "shop", "serviceAccount": "web"},
          "n2-p1": {"namespace": "shop", "serviceAccount": "api"}}}'
mesh_cluster_up "$name" "$spec" --nodes 2 --pods-per-node 1
wait_log "$name" n1 '"msg":"certificate issued","identity":"'$web'"'
wait_log "$name" n2 '"msg":"certificate issued","identity":"spiffe://cluster.local/ns/shop/sa/api"'
start_echo "$name" n2-p1 7000
check_tcp "$name" n1-p1 n2-p1 7000
n1ns=$(node_ns "$name" n1)
expect 1 report compliance --require deny-by-default=shop # no ALLOW policy in shop
expect 0 report compliance --require mtls=100
echo "$out"
has '^  connections over mutual TLS +([1-9][0-9]*) +\1 +100%$'
down_and_check "$name" "$before"
echo ok
