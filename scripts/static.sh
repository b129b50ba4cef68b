#!/usr/bin/env bash
# Builds athens as a fully static x86_64 Linux executable: glibc linked in
# (`+crt-static`), no program interpreter, no shared libraries. Names are
# resolved by hickory (reqwest's `hickory-dns`), and what still goes through
# getaddrinfo uses glibc's built-in files/dns lookups, so no NSS module is
# loaded at run time (see "Static binary" in README.md).
#
#   scripts/static.sh            # release: profile `static` (LTO, no debug info)
#   ATHENS_STATIC_PROFILE=image-test scripts/static.sh   # quick, unoptimised
#
# Prints the path of the binary on its last line. `--target` is given so that
# build scripts and proc macros stay ordinary dynamic host programs; only the
# athens binary and its dependencies get the static flag.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
profile="${ATHENS_STATIC_PROFILE:-static}"
target="x86_64-unknown-linux-gnu"

fail() {
    echo "scripts/static.sh: $*" >&2
    exit 1
}

command -v readelf >/dev/null 2>&1 || fail "readelf (binutils) is needed to check the binary"

# jemalloc (the binary's allocator, built from source by tikv-jemalloc-sys)
# needs make besides the C compiler that linking already needs.
if ! command -v make >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || fail "make is needed to build jemalloc and apt-get is not available"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends make >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq --no-install-recommends make >/dev/null; } \
        || fail "apt-get install make failed"
fi

RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --profile "$profile" --target "$target" --bin athens >&2 \
    || fail "cargo build --profile $profile --target $target failed"

binary="target/$target/$profile/athens"
[ -x "$binary" ] || fail "$binary was not built"
if readelf -lW "$binary" | grep -q 'INTERP'; then
    fail "$binary has a program interpreter: it is not static"
fi
if readelf -dW "$binary" | grep -q '(NEEDED)'; then
    fail "$binary needs shared libraries: $(readelf -dW "$binary" | grep '(NEEDED)')"
fi
echo "$binary"
