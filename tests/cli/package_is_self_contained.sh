#!/usr/bin/env bash
# The release tarball (tools/package) holds binaries that run on their own:
# they start from the unpacked folder, need only libraries Debian packages
# provide (listed in DEPENDENCIES, one package per line), embed wolfSSL
# (no libwolfssl) and the eBPF program, and carry the manifests the
# DaemonSet install needs.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

tarball=$("$src/tools/package" --out "$work/out" 2>/dev/null | tail -n 1)
[ -f "$tarball" ] || fail "tools/package made no tarball"
tar -xzf "$tarball" -C "$work"
root=$(find "$work" -maxdepth 1 -type d -name 'ztunnel-*' | head -n 1)
[ -n "$root" ] || fail "the tarball has no ztunnel-VERSION folder"
for f in bin/ztunnel bin/ztunnel-ctl bin/ztunnel-cni bin/ztunnel-ca daemonset/ztunnel.yaml daemonset/ztunnel-ca.yaml \
  daemonset/seccomp/ztunnel.json \
  daemonset/istio-security-crds.yaml \
  docs/operations.md Containerfile DEPENDENCIES; do
  [ -s "$root/$f" ] || fail "missing from the tarball: $f"
done
"$root/bin/ztunnel" --version | grep -q '^ztunnel ' || fail "ztunnel does not run from the tarball"
"$root/bin/ztunnel-ctl" version | grep -q '^ztunnel-ctl ' || fail "ztunnel-ctl does not run from the tarball"
"$root/bin/ztunnel-cni" --help >/dev/null 2>&1 || "$root/bin/ztunnel-cni" --version >/dev/null 2>&1 ||
  fail "ztunnel-cni does not run from the tarball"
"$root/bin/ztunnel-ca" --version | grep -q '^ztunnel-ca ' || fail "ztunnel-ca does not run from the tarball"
for b in "$root"/bin/*; do
  ! ldd "$b" | grep -q 'not found' || fail "$b needs a library that is missing: $(ldd "$b" | grep 'not found')"
  ! ldd "$b" | grep -qi wolfssl || fail "$b links a shared wolfSSL (Debian's has no AES-NI)"
  ! ldd "$b" | grep -q "$src" || fail "$b links a library from the build tree"
done
while read -r pkg; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
    fail "DEPENDENCIES names $pkg, which is not an installed Debian package"
done < "$root/DEPENDENCIES"
grep -qx 'liburing2' "$root/DEPENDENCIES" || fail "DEPENDENCIES misses liburing2: $(tr '\n' ' ' < "$root/DEPENDENCIES")"
[ "$(/usr/bin/python3 -c 'import sys, yaml; print(sorted(d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1])) if d))' \
  "$root/daemonset/istio-security-crds.yaml")" = "['authorizationpolicies.security.istio.io', 'peerauthentications.security.istio.io']" ] ||
  fail "istio-security-crds.yaml does not hold exactly Istio's two security CRDs"
echo "ok: $(basename "$tarball"), $(wc -l < "$root/DEPENDENCIES") Debian packages"
