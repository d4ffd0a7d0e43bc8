#!/usr/bin/env bash
# tools/bench hbone --quick runs from a clean checkout and reports sane,
# non-zero figures for every path (direct, stunnel, ours; ours also with a
# new HBONE connection per connection) in Markdown and
# JSON, with every idle connection it meant to hold opened. Figures only:
# nothing here asserts a timing or a ratio.
# shellcheck source=tests/net/lib.sh
source "$(dirname "$0")/lib.sh"
require_root
command -v iperf3 >/dev/null && command -v stunnel4 >/dev/null || skip "iperf3/stunnel4 missing: run tools/bootstrap"
before=$(host_links)
out=$(mktemp -d /tmp/zt-bench-out-XXXXXX)
temp_files+=("$out")
step "tools/bench hbone --quick"
"$src_root/tools/bench" hbone --quick --out "$out" > "$out/stdout" 2>&1 || { cat "$out/stdout"; fail "the bench failed"; }
json="$out/results.json"
[ -s "$json" ] && [ -s "$out/results.md" ] || fail "no results.json / results.md"
for p in direct stunnel ours; do
  jq -e --arg p "$p" '[.runs[] | select(.path == $p and has("gbps1"))] | length == 1 and
    all(.gbps1 > 0 and .gbps4 > 0 and .p50_us > 0 and .p99_us >= .p50_us and .cps > 0)' "$json" >/dev/null ||
    fail "$p: figures missing or not positive: $(jq -c --arg p "$p" '.runs[] | select(.path == $p)' "$json")"
done
for p in stunnel ours; do
  jq -e --arg p "$p" '.runs[] | select(.path == $p and has("gbps1")) | .cpu_gb1 > 0 and .idle.open == .idle.want and .idle.want > 0 and
    .idle.rss_client_kb > 0 and .idle.rss_server_kb > 0' "$json" >/dev/null ||
    fail "$p: CPU or idle-memory figure missing: $(jq -c --arg p "$p" '.runs[] | select(.path == $p)' "$json")"
done
# Unpooled: our client agent restarted to carry one stream per HBONE connection.
jq -e '[.runs[] | select(.path == "ours" and has("cps_unpooled"))] | length == 1 and all(.cps_unpooled > 0)' "$json" >/dev/null ||
  fail "ours: no unpooled connection rate: $(jq -c '.runs' "$json")"
grep -q '^| new connections/s (unpooled' "$out/results.md" || fail "results.md has no unpooled connection rate"
grep -q '^| Gbit/s, 1 stream |' "$out/results.md" || fail "results.md has no table"
grep -q "Ours against stunnel" "$out/stdout" || fail "no comparison printed"
# The bench's cluster is gone.
[ "$(host_links)" = "$before" ] || fail "the bench left links behind"
[ -z "$(ls /run/netns 2>/dev/null | grep '^zt-zb' || true)" ] || fail "the bench left namespaces behind"
echo "PASS"
