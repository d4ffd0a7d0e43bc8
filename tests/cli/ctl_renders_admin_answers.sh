#!/usr/bin/env bash
# ztunnel-ctl against an admin API serving fixed answers (docs/admin.md
# shapes, tests/cli/fixtures/ctl): every live command's table names the
# right rows, -o json gives the agent's objects unchanged and -o yaml reads
# back to the same data; filters, --expiring-within, /logging round trips,
# check --admin agrees with check --snapshot (and takes the agent's trust
# domain), snapshot dump is byte for byte; the compliance report's numbers,
# plaintext reasons and requirements (mtls=100 fails with a plaintext series
# and passes without, also over an --interval window); a malformed /metrics,
# an unreachable admin and an HTTP error exit 2 naming the URL.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
fx="$src/tests/cli/fixtures/ctl"
command -v jq >/dev/null || { echo "SKIP: jq missing (tools/bootstrap)"; exit 77; }
"$py" -c 'import yaml' 2>/dev/null || { echo "SKIP: python3-yaml missing"; exit 77; }

srv="$work/admin"
mkdir "$srv"
cp "$fx/config_dump.json" "$fx/snapshot.json" "$fx/connections.json" "$srv/"
cp "$fx/metrics_plaintext.txt" "$srv/metrics.txt"
# ledger's certificate ends in two hours, web's in 2099.
soon=$(date -u -d '+2 hours' +%Y-%m-%dT%H:%M:%SZ)
jq --arg t "$soon" '(.certificates[] | select(.identity | endswith("/sa/ledger")) | .certChain[0].expirationTime) = $t' \
  "$fx/config_dump.json" > "$srv/config_dump.json"
"$py" "$fx/fake_admin.py" "$srv" "$work/port" &
pids+=("$!")
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || fail "the fake admin server did not start"
admin="http://127.0.0.1:$(cat "$work/port")"
export ZTUNNEL_ADMIN=$admin

# run WANT_RC ARGS...: ztunnel-ctl ARGS; stdout in $out, stderr in $err.
run() {
  local want=$1 rc=0
  shift
  "$ctl" "$@" > "$work/out" 2> "$work/err" || rc=$?
  out=$(cat "$work/out")
  err=$(cat "$work/err")
  [ "$rc" = "$want" ] || fail "ztunnel-ctl $*: exit $rc, want $want; stdout: $out; stderr: $err"
  # A leak report exits 1 too: an expected 1 must not hide one.
  if grep -q 'Sanitizer\|runtime error:' <<<"$err"; then fail "ztunnel-ctl $*: $err"; fi
}
has() { grep -qE -- "$1" <<<"$out" || fail "no /$1/ in: $out"; }
has_not() { if grep -qE -- "$1" <<<"$out"; then fail "/$1/ in: $out"; fi; }
err_has() { grep -qE -- "$1" <<<"$err" || fail "no /$1/ on stderr: $err"; }
rows() { [ "$(wc -l <<<"$out")" = "$1" ] || fail "want $1 lines (header included): $out"; }
# same_yaml JSON_FILE: $out is YAML holding the same data as the file.
same_yaml() {
  "$py" -c 'import json, sys, yaml; sys.exit(yaml.safe_load(sys.stdin) != json.load(open(sys.argv[1])))' "$1" <<<"$out" ||
    fail "YAML does not read back as $1: $out"
}
same_json() { [ "$(jq -S . <<<"$out")" = "$(jq -S "${2:-.}" "$1")" ] || fail "JSON differs from $1 ${2:-}: $out"; }

echo "--- help lists every command, each has --help with examples"
run 0 help
for c in workloads services policies certificates connections "log \[LEVEL\]" check "snapshot dump" \
  "report compliance" "snapshot lint FILE" "capture stats" "ca init\|mint" version; do has "^  $c "; done
for c in workloads services policies certificates connections log check "snapshot dump" "report compliance"; do
  # shellcheck disable=SC2086
  run 0 $c --help
  has "^Examples:"
done
run 2 report
err_has 'missing subcommand'

echo "--- workloads"
run 0 workloads
has '^NAMESPACE +NAME +NODE +IP +IDENTITY +ENROLLED +PROTOCOL$'
has '^shop +web-1 +n1 +10\.1\.1\.2 +spiffe://cluster\.local/ns/shop/sa/web +yes +HBONE$'
has '^legacy +old-1 +n1 +10\.1\.1\.9 +spiffe://cluster\.local/ns/legacy/sa/default +no +TCP$'
rows 6
run 0 workloads --local
has_not 'api-7c9f8'
rows 5
run 0 workloads -n shop
rows 3
run 0 workloads --node n2 --admin "$admin/"
has '^shop +api-7c9f8-x2x4q +n2 '
rows 2
run 0 workloads -o json
same_json "$srv/config_dump.json" .workloads
run 0 workloads -o yaml
jq .workloads "$srv/config_dump.json" > "$work/want.json"
same_yaml "$work/want.json"
run 2 workloads --bogus
run 2 workloads extra
err_has 'unexpected argument "extra"'
run 2 workloads -o xml
err_has 'table\|json\|yaml'

echo "--- services, policies"
run 0 services
has '^NAMESPACE +NAME +VIPS +PORTS +ENDPOINTS$'
has '^shop +api +10\.96\.0\.10 +80->8080,9090->metrics +1/1$'
run 0 policies
has '^KIND +NAMESPACE +NAME +ACTION/MODE +SCOPE$'
has '^AuthorizationPolicy +shop +deny-all +ALLOW +namespace$'
has '^PeerAuthentication +payments +ledger-legacy-port +STRICT 9000:PERMISSIVE +workload$'
rows 7
run 0 policies -n payments -o json
[ "$(jq -r '[.[].name] | join(",")' <<<"$out")" = "allow-web-to-ledger,strict,ledger-legacy-port" ] || fail "policies -n payments: $out"

echo "--- certificates"
run 0 certificates
has '^IDENTITY +STATE +SERIAL +NOT-BEFORE +NOT-AFTER$'
has '^spiffe://cluster\.local/ns/shop/sa/web +Available +1a2b +2026-12-07T10:00:00Z +2099-12-31T00:00:00Z$'
has "^spiffe://cluster\.local/ns/payments/sa/ledger +Available +5e +2026-12-07T08:00:00Z +$soon$"
run 1 certificates --expiring-within 24
err_has "ledger \($soon\)"
if grep -q 'sa/web' <<<"$err"; then fail "web's 2099 certificate reported as expiring: $err"; fi
run 0 certificates --expiring-within 1
run 0 certificates -o yaml
jq .certificates "$srv/config_dump.json" > "$work/want.json"
same_yaml "$work/want.json" # serials "01" and RFC 3339 times stay strings
has "serialNumber: '01'"
run 2 certificates --cert-dir "$work" -o json
run 2 certificates --expiring-within soon

echo "--- connections"
run 0 connections
has '^DIRECTION +PROTOCOL +SRC +DST +SRC-IDENTITY +DST-IDENTITY +BYTES-SENT +BYTES-RECV +AGE$'
has '^outbound +HBONE +10\.1\.1\.2:40000 +10\.1\.2\.3:8080 +spiffe://cluster\.local/ns/shop/sa/web +spiffe://cluster\.local/ns/shop/sa/api +10 +20 +1\.2s$'
has '^inbound +TCP +10\.1\.1\.9:51000 +10\.1\.1\.5:9000 +- +- +4096 +512 +1h2m$'
[ -z "$err" ] || fail "warning with every worker answering: $err"
run 0 connections -o json
same_json "$srv/connections.json"
jq '.answered = 1' "$fx/connections.json" > "$srv/connections.json"
run 0 connections
err_has 'only 1 of 2 workers answered'
cp "$fx/connections.json" "$srv/connections.json"

echo "--- log"
run 0 log
[ "$out" = "current log level is info" ] || fail "log: $out"
run 0 log debug
[ "$out" = "current log level is debug" ] || fail "log debug: $out"
run 0 log
[ "$out" = "current log level is debug" ] || fail "log after log debug: $out"
run 0 log info,access:debug -o json
[ "$(jq -c .levels <<<"$out")" = '{"default":"info","access":"debug"}' ] || fail "log -o json: $out"
grep -q '^POST /logging?level=info%2Caccess%3Adebug$' "$srv/requests.log" || fail "level not sent as one query value"
run 2 log loud
err_has 'answered 400: bad level'
run 0 log --reset
[ "$out" = "current log level is info" ] || fail "log --reset: $out"
run 2 log debug --reset

echo "--- check: live agrees with --snapshot"
for args in "--from shop/web-1 --to payments/ledger-1" "--from legacy/old-1 --to payments/ledger-1:9001" \
  "--from-ip 10.1.1.9 --to payments/ledger-1:9000" "--from shop/web-1 --to shop/web-1:9090"; do
  rc_live=0 rc_file=0
  # shellcheck disable=SC2086
  live=$("$ctl" check $args 2>&1) || rc_live=$?
  # shellcheck disable=SC2086
  file=$("$ctl" check --snapshot "$fx/snapshot.json" $args 2>&1) || rc_file=$?
  if [ "$live" != "$file" ] || [ "$rc_live" != "$rc_file" ]; then
    fail "check $args: live ($rc_live) $live; file ($rc_file) $file"
  fi
done
run 0 check --from shop/web-1 --to payments/ledger-1
has '^ALLOWED: allowed by payments/allow-web-to-ledger rule 0$'
run 1 check --from legacy/old-1 --to payments/ledger-1:9001 --admin "$admin"
has 'PeerAuthentication mode STRICT \(payments/ledger-legacy-port\)'
# The agent's trust domain, not the default: web's identity then no longer
# matches allow-web's principal cluster.local/ns/shop/sa/web.
run 0 check --from shop/web-1 --to shop/web-1:8080
jq '.config.trustDomain = "example.org"' "$fx/config_dump.json" > "$srv/config_dump.json"
run 1 check --from shop/web-1 --to shop/web-1:8080
has 'spiffe://example\.org/ns/shop/sa/web'
jq --arg t "$soon" '(.certificates[] | select(.identity | endswith("/sa/ledger")) | .certChain[0].expirationTime) = $t' \
  "$fx/config_dump.json" > "$srv/config_dump.json"
run 2 check --snapshot "$fx/snapshot.json" --admin "$admin" --from shop/web-1 --to shop/web-1
run 2 check --trust-domain x --from shop/web-1 --to shop/web-1

echo "--- snapshot dump"
run 0 snapshot dump
cmp -s "$work/out" "$fx/snapshot.json" || fail "snapshot dump is not the agent's bytes"
run 0 snapshot dump -f "$work/dump.json"
cmp -s "$work/dump.json" "$fx/snapshot.json" || fail "snapshot dump -f wrote other bytes"
[ ! -e "$work/dump.json.tmp" ] || fail "snapshot dump -f left its temporary file"
run 0 snapshot dump -o yaml
same_yaml "$fx/snapshot.json"
run 2 snapshot dump -o table
run 2 snapshot dump -f /nonexistent-dir/snap.json
err_has '/nonexistent-dir/snap.json'

echo "--- report compliance: numbers, paths and reasons"
run 0 report compliance
has '^Compliance report of node n1 \(trust domain cluster\.local\)'
has '^  pods enrolled in the mesh \(hostNetwork excluded\) +3 +4 +75%$'
has '^  connections over mutual TLS +54 +60 +90%$'
has '^  destination +legacy/old-1 +payments/ledger-1 +PERMISSIVE port +payments/ledger-legacy-port +3 +900$'
has '^  destination +legacy/old-1 +shop/web-1 +non-mesh client +- +2 +0$'
has '^  source +shop/web-1 +legacy/old-1 +non-mesh destination +- +1 +300$'
has '^  node +the node \(kubelet probes, host processes\) +enrolled pods of this node +node-originated +- +7 +-$'
has '^  payments +1 +1 +workload-scoped only$'
has '^  legacy +1 +0 +none$'
has_not '^  shop +[0-9]'
has '^  payments +ledger-legacy-port +workload +STRICT +9000:PERMISSIVE$'
has "^  spiffe://cluster\.local/ns/payments/sa/ledger +Available +$soon$"
has '^  shop/no-9090 +policy_denied +4$'
has '^  - +policy_denied +2$'
has_not '^Requirements'
run 0 report compliance -o json
jq -e '.mtlsCoverage.connections == {"what": "connections over mutual TLS", "covered": 54, "total": 60, "percent": 90}
  and .mtlsCoverage.bytes.covered == 126880 and .mtlsCoverage.bytes.total == 128080
  and ([.plaintextPaths[].reason] == ["PERMISSIVE port", "non-mesh client", "non-mesh destination", "node-originated"])
  and ([.namespacesWithoutDenyByDefault[].namespace] | sort == ["legacy", "monitoring", "payments"])
  and ([.expiringCertificates[].identity] == ["spiffe://cluster.local/ns/payments/sa/ledger"])
  and .trafficWindowSeconds == 0 and .expiryHours == 24' <<<"$out" >/dev/null || fail "report -o json: $out"
jq 'del(.generatedAt)' <<<"$out" > "$work/report.json"
run 0 report compliance -o yaml
out=$("$py" -c 'import json, sys, yaml; d = yaml.safe_load(sys.stdin); d.pop("generatedAt"); print(json.dumps(d))' <<<"$out")
same_json "$work/report.json"
run 0 report compliance --expiry-hours 1 -o json
[ "$(jq '.expiringCertificates | length' <<<"$out")" = 0 ] || fail "--expiry-hours 1: $out"

echo "--- report compliance: requirements"
run 1 report compliance --require mtls=100
err_has '^requirement not met: mtls=100: 6 of 60 connections plaintext \(90% mutual TLS, need 100%\)$'
has '^  mtls=100 +no +6 of 60'
run 0 report compliance --require mtls=90
run 1 report compliance --require deny-by-default=shop,payments,ghost --require cert-expiry=24 --require mtls=50
err_has 'deny-by-default=shop,payments,ghost: shop: deny-by-default; payments: no namespace-wide ALLOW policy or deny-all; ghost: not in the agent.s snapshot'
err_has "cert-expiry=24: spiffe://cluster\.local/ns/payments/sa/ledger: $soon"
if grep -q 'not met: mtls=50' <<<"$err"; then fail "mtls=50 reported missed: $err"; fi
run 0 report compliance --require deny-by-default=shop --require cert-expiry=1 -o json
jq -e '[.requirements[].met] == [true, true]' <<<"$out" >/dev/null || fail "requirements: $out"
run 2 report compliance --require mtls=101
run 2 report compliance --require tls=100
cp "$fx/metrics_mtls.txt" "$srv/metrics.txt"
run 0 report compliance --require mtls=100
has '^  connections over mutual TLS +54 +54 +100%$'
echo "--- report compliance: --interval counts the increase between two scrapes"
cp "$fx/metrics_plaintext.txt" "$srv/metrics.txt"
cp "$fx/metrics_plaintext.txt" "$srv/metrics-$(($(grep -c 'GET /metrics' "$srv/requests.log") + 1)).txt"
cp "$fx/metrics_plaintext_later.txt" "$srv/metrics-$(($(grep -c 'GET /metrics' "$srv/requests.log") + 2)).txt"
run 0 report compliance --interval 1 --require mtls=100 -o json
jq -e '.trafficWindowSeconds == 1 and .mtlsCoverage.connections.total == 22
  and .denials == [{"policy": "shop/no-9090", "reason": "policy_denied", "denials": 2}]
  and .plaintextPaths == []' <<<"$out" >/dev/null || fail "--interval: $out"

echo "--- errors: malformed metrics, HTTP errors, unreachable admin"
{ echo '# TYPE x counter'; echo 'x{a="1"} 1'; echo 'x{a="1} 2'; } > "$srv/metrics.txt"
run 2 report compliance
err_has 'line 3: label value without its closing quote'
run 2 workloads --admin "$admin/v0"
err_has "GET $admin/v0/config_dump: the agent answered 404: no such endpoint"
dead=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for cmd in workloads "report compliance" "log debug" "snapshot dump" "check --from a/b --to c/d"; do
  # shellcheck disable=SC2086
  run 2 $cmd --admin "http://127.0.0.1:$dead"
  err_has "cannot reach the agent's admin API at http://127\.0\.0\.1:$dead .*: .*(connect|refused)"
done
echo ok
