#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each (default 60).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# New corpus entries go to fuzz/corpus/TARGET (git-ignored); fuzz/seeds/TARGET
# is the committed seed corpus. A crash leaves its input in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${SECONDS_PER_TARGET:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(check_zip versions module_paths escape_roundtrip)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t for ${seconds}s"
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
done
