# shellcheck shell=bash disable=SC2034
# Shared helpers for tests/cli/*.sh: run the built binaries on files.
set -euo pipefail
build=${ZT_BUILD:?ZT_BUILD must point at the meson build directory}
src=${ZT_SRC:?ZT_SRC must point at the source tree}
ctl="$build/ztunnel/ztunnel-ctl"
agent="$build/ztunnel/ztunnel"
fixtures="$src/tests/unit/state/fixtures"
work=$(mktemp -d /tmp/zt-cli-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
