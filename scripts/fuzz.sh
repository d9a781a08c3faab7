#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz + libFuzzer) for a bounded time, from seeds and
# the published sample data, and fails on the first crash (its input is left under
# fuzz/artifacts/<target>/). Used by scripts/test.sh; alone:
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default: $TRAILWATCH_FUZZ_SECONDS or 30)
# cargo-fuzz is installed under target/tools when missing. It needs nightly compiler flags:
# on the stable toolchain RUSTC_BOOTSTRAP=1 allows them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${TRAILWATCH_FUZZ_SECONDS:-30}}
shared=${TRAILWATCH_SHARED_DIR:-$(cd .. && pwd)/shared}
tools="$PWD/target/tools"
export PATH="$tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --quiet --locked --root "$tools" cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
# Working corpora (ignored by git) grow from the committed seeds and the sample data.
mkdir -p corpus/logfile corpus/notification corpus/digest corpus/sigma corpus/key
cp -n seeds/logfile/* corpus/logfile/ 2>/dev/null || true
find "$shared/data/cloudtrail/s3" -name '*.json.gz' -exec cp -n {} corpus/logfile/ \; 2>/dev/null || true
cp -n "$shared"/data/notifications/*.json corpus/notification/ 2>/dev/null || true
cp -n seeds/digest/* corpus/digest/ 2>/dev/null || true
cp -n seeds/sigma/* corpus/sigma/ 2>/dev/null || true
cargo fuzz build
log=$(mktemp)
for target in logfile key notification digest sigma; do
  echo "fuzz: $target for ${seconds}s"
  if ! cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=4096 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target failed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" | tr '\n' ' '
  echo
done
rm -f "$log"
echo "fuzz: no crashes"
