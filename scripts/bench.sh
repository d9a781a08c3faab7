#!/usr/bin/env bash
# Ingest benchmarks, reported as ratios against baselines measured in the same run:
#   1. trailwatch full ingest vs. gunzip+parse alone (`trailwatch bench ingest`)
#   2. trailwatch full ingest vs. a naive Python loader (scripts/naive_loader.py)
#   3. peak RSS while ingesting one 100 MB (inflated) log file
# Usage: scripts/bench.sh [WORKDIR]   (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cargo build --release --quiet
tw=target/release/trailwatch

tree="$work/tree-150k"
if [ ! -f "$tree/manifest.json" ]; then
  "$tw" simulate --out "$tree" --profile classic --events 150000 --scenario all >/dev/null
fi

echo "== 1. full ingest vs. gunzip+parse alone (same files, alternating, median of 5)"
"$tw" bench ingest --local "$tree" --runs 5 | tee "$work/bench.txt"

echo
echo "== 2. full ingest vs. a naive Python loader (same files, 3 interleaved rounds, medians)"
rounds=()
for round in 1 2 3; do
  tw_json=$("$tw" bench ingest --local "$tree" --runs 3 --format json)
  py_json=$(python3 scripts/naive_loader.py "$tree")
  rounds+=("$tw_json" "$py_json")
done
python3 - "${rounds[@]}" <<'PY'
import json, statistics, sys
vals = [json.loads(a) for a in sys.argv[1:]]
tw = [v["ingest"]["events_per_sec"] for v in vals[0::2]]
py = [v["events_per_sec"] for v in vals[1::2]]
for i, (t, p) in enumerate(zip(tw, py), 1):
    print(f"round {i}: trailwatch {t:>9,.0f}/s  python {p:>8,.0f}/s  = {t / p:4.1f}x")
print(f"median: trailwatch {statistics.median(tw):>9,.0f}/s  python {statistics.median(py):>8,.0f}/s"
      f"  = {statistics.median(t / p for t, p in zip(tw, py)):.1f}x  (target >= 5x, aim 10x)")
PY
echo
echo "== 3. peak RSS ingesting one 100 MB (inflated) log file"
big="$work/one-big-file"
if [ ! -d "$big" ]; then
  python3 scripts/make_big_log.py "$big" 100
fi
rm -f "$work/big.db"*
TRAILWATCH_REPORT_PEAK_RSS=1 "$tw" ingest --local "$big" --db "$work/big.db"
