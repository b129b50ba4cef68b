#!/usr/bin/env bash
# Builds the athens container image, FROM scratch and without a Docker
# daemon, as an OCI image layout in target/image (or $ATHENS_IMAGE_DIR):
#
#   scripts/image.sh
#   skopeo copy oci:target/image:latest docker-daemon:athens:latest   # e.g.
#
# The binary is scripts/static.sh's (profile `static`; set
# ATHENS_STATIC_PROFILE=image-test for a quick unoptimised one). The CA
# certificates are the build machine's (Debian's ca-certificates).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${ATHENS_IMAGE_DIR:-target/image}"
ca_bundle="${ATHENS_IMAGE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

fail() {
    echo "scripts/image.sh: $*" >&2
    exit 1
}

command -v python3 >/dev/null 2>&1 || fail "python3 is needed to write the layout"
[ -s "$ca_bundle" ] || fail "no CA certificates at $ca_bundle (apt-get install ca-certificates)"
# Only a previous layout is replaced, never some other directory.
if [ -e "$out" ]; then
    [ -f "$out/oci-layout" ] || fail "$out exists and is not an OCI image layout; not replacing it"
    rm -rf "$out"
fi

binary="$(scripts/static.sh | tail -n 1)"
mkdir -p "$(dirname "$out")"
python3 scripts/oci_layout.py "$out" "$binary" deploy/image/config.toml "$ca_bundle"
