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

# A CA on grpcio (fixtures/ca/ca_server.py) needs Istio's ca.proto compiled
# for Python into $work/py, grpcio and openssl: skips without them.
ca_server_prepare() {
  local proto="$src/.deps/kube/istio-ca.proto"
  [ -s "$proto" ] || skip "Istio's ca.proto missing: run tools/bootstrap --kube"
  /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null ||
    skip "python3-grpcio/python3-protobuf missing: run tools/bootstrap"
  command -v openssl >/dev/null || skip "openssl missing"
  mkdir -p "$work/py/security/v1alpha1"
  cp "$proto" "$work/py/security/v1alpha1/ca.proto"
  protoc -I"$work/py" -I/usr/include --python_out="$work/py" "$work/py/security/v1alpha1/ca.proto"
}

# ca_server_cert ROOT: $work/server.pem and .key, a TLS certificate for
# localhost signed by $work/ROOT.pem (and .key).
ca_server_cert() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=ca-server -keyout "$work/server.key" 2>/dev/null |
    openssl x509 -req -days 1 -CA "$work/$1.pem" -CAkey "$work/$1.key" -CAcreateserial \
      -extfile <(printf 'subjectAltName=DNS:localhost\n') -out "$work/server.pem" 2>/dev/null
}

# ca_server_start CERT KEY MODE [ROOT_CERT ROOT_KEY TOKEN]: the CA on a free
# port of 127.0.0.1 (sets $port), recording each call in $work/record.
ca_server_start() {
  port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  PYTHONPATH="$work/py" /usr/bin/python3 "$src/tests/cli/fixtures/ca/ca_server.py" "$port" "$1" "$2" \
    "$work/record" "${@:3}" > "$work/server.out" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 50); do grep -q serving "$work/server.out" 2>/dev/null && return 0; sleep 0.1; done
  fail "the CA server did not start: $(cat "$work/server.out")"
}
