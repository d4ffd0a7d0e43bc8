#!/usr/bin/env bash
# Runs one libFuzzer harness for a bounded time on a scratch copy of its
# corpus (the seeds are never modified). Exits 0 when nothing was found,
# 1 on a crash, leak, sanitizer report, timeout or out-of-memory (never 77:
# a finding must not count as a skip); the input that did it is kept in
# ARTIFACTS. ZT_FUZZ_SKIP_KNOWN=1 leaves out the corpus's crash-* inputs
# (bugs already found and not fixed yet).
#
#   run.sh BINARY CORPUS SECONDS ARTIFACTS [LIBFUZZER_FLAG...]
set -euo pipefail

if [ $# -lt 4 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
bin=$1 corpus=$2 seconds=$3 artifacts=$4
shift 4

scratch=$(mktemp -d "${TMPDIR:-/tmp}/zt-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/corpus" "$artifacts"
for f in "$corpus"/*; do
  [ -f "$f" ] || continue
  if [ "${ZT_FUZZ_SKIP_KNOWN:-0}" = 1 ] && [[ $(basename "$f") == crash-* ]]; then
    continue
  fi
  cp "$f" "$scratch/corpus/"
done

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
rc=0
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$artifacts/" "$@" \
  "$scratch/corpus" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "fuzz: $(basename "$bin") failed (exit $rc); reproducer in $artifacts/" >&2
  exit 1
fi
