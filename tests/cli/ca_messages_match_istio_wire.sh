#!/usr/bin/env bash
# Our certificate-RPC messages (ztunnel/grpc/istio_ca.proto, protobuf-c)
# against Istio's own definition (istio.io/api security/v1alpha1/ca.proto,
# fetched by tools/bootstrap --kube) and Google's google.protobuf.Struct,
# compiled by protoc for Python's protobuf: the request we frame is read by
# Istio's IstioCertificateRequest with csr, validity_duration and
# metadata["ImpersonatedIdentity"] as we meant them; the response Istio's
# IstioCertificateResponse writes is read by us, chain order kept.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
proto="$src/.deps/kube/istio-ca.proto"
[ -s "$proto" ] || skip "Istio's ca.proto missing: run tools/bootstrap --kube"
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null || skip "python3-protobuf missing: run tools/bootstrap"
[ -s /usr/include/google/protobuf/struct.proto ] || skip "google/protobuf/struct.proto missing (libprotobuf-dev)"
tool="$build/tests/cli/grpc_ca_tool"
mkdir -p "$work/py/security/v1alpha1"
cp "$proto" "$work/py/security/v1alpha1/ca.proto"
protoc -I"$work/py" -I/usr/include --python_out="$work/py" "$work/py/security/v1alpha1/ca.proto"
printf -- '-----BEGIN CERTIFICATE REQUEST-----\nMIIBtest\n-----END CERTIFICATE REQUEST-----\n' > "$work/csr.pem"
id=spiffe://cluster.local/ns/shop/sa/web

"$tool" encode-request "$work/csr.pem" 86400 "$id" > "$work/request"
PYTHONPATH="$work/py" /usr/bin/python3 - "$work/request" "$work/csr.pem" "$id" <<'PY' || fail "Istio's message does not read our request"
import struct, sys
from security.v1alpha1 import ca_pb2
data = open(sys.argv[1], "rb").read()
assert data[0] == 0, "compressed flag set"
(n,) = struct.unpack(">I", data[1:5])
assert n == len(data) - 5, f"frame length {n} vs {len(data) - 5}"
req = ca_pb2.IstioCertificateRequest.FromString(data[5:])
assert req.csr == open(sys.argv[2]).read(), req.csr
assert req.validity_duration == 86400, req.validity_duration
assert req.metadata.fields["ImpersonatedIdentity"].string_value == sys.argv[3], req.metadata
print("Istio's IstioCertificateRequest reads our request:", req.metadata.fields["ImpersonatedIdentity"].string_value)
PY

PYTHONPATH="$work/py" /usr/bin/python3 - "$work/response" <<'PY'
import struct, sys
from security.v1alpha1 import ca_pb2
msg = ca_pb2.IstioCertificateResponse(cert_chain=["leaf-pem", "intermediate-pem", "root-a\nroot-b"]).SerializeToString()
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
PY
got=$("$tool" decode-response < "$work/response" | tr '\0' '|')
[ "$got" = "leaf-pem|intermediate-pem|root-a
root-b|" ] || fail "our decoder read Istio's response as \"$got\""
echo "our decoder reads Istio's IstioCertificateResponse: chain order kept"
echo ok
