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
  "$tw" simulate --out "$tree" --events 150000 --scenario all >/dev/null
fi

echo "== 1. full ingest vs. gunzip+parse alone (same files, alternating, median of 5)"
"$tw" bench ingest --local "$tree" --runs 5 | tee "$work/bench.txt"
tw_json=$("$tw" bench ingest --local "$tree" --runs 3 --format json)

echo
echo "== 2. full ingest vs. a naive Python loader (same files)"
py_json=$(python3 scripts/naive_loader.py "$tree")
python3 - "$tw_json" "$py_json" <<'PY'
import json, sys
tw, py = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rate = tw["ingest"]["events_per_sec"]
print(f"trailwatch ingest  {rate:>10,.0f} events/s")
print(f"naive python       {py['events_per_sec']:>10,.0f} events/s")
print(f"ratio              {rate / py['events_per_sec']:>10.1f}x  (target >= 5x, aim 10x)")
PY

echo
echo "== 3. peak RSS ingesting one 100 MB (inflated) log file"
big="$work/one-big-file"
if [ ! -d "$big" ]; then
  python3 scripts/make_big_log.py "$big" 100
fi
rm -f "$work/big.db"*
TRAILWATCH_REPORT_PEAK_RSS=1 "$tw" ingest --local "$big" --db "$work/big.db"
