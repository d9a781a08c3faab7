#!/usr/bin/env bash
# Two builds of trailwatch on the same data in one run, interleaved: `bench ingest` (full
# ingest and the gunzip+parse baseline), `bench web` (the dashboard's queries) and
# `rules test` (the built-in packs over published records). For refactors that must not
# be slower: report NEW/OLD ratios of the medians over 5 rounds.
# Usage: scripts/bench_compare.sh OLD_BINARY NEW_BINARY [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1"); new=$(realpath "$2")
work=${3:-$(mktemp -d)}
mkdir -p "$work"

# Data nobody here shaped: the published records of ../shared (every field as real trails
# write it), given fresh eventIDs and spread over 400 files; plus the simulator's
# multi-account tree for volume.
published="$work/published"
if [ ! -d "$published" ]; then
  python3 scripts/pack_published.py "${TRAILWATCH_SHARED_DIR:-../shared}/data/cloudtrail" "$published" 400 200
fi
tree="$work/tree-150k"
if [ ! -f "$tree/manifest.json" ]; then
  "$old" simulate --out "$tree" --events 150000 --scenario all >/dev/null
fi
for bin in old new; do
  rm -f "$work/$bin.db"*
  "${!bin}" ingest --local "$tree" --db "$work/$bin.db" >/dev/null 2>&1
done

results="$work/results.jsonl"
: > "$results"
for round in 1 2 3 4 5; do
  for bin in old new; do
    b=${!bin}
    for data in tree published; do
      echo "{\"round\":$round,\"bin\":\"$bin\",\"what\":\"ingest-$data\",\"r\":$("$b" bench ingest --local "$work/${data/tree/tree-150k}" --runs 3 --format json)}" >> "$results"
    done
    echo "{\"round\":$round,\"bin\":\"$bin\",\"what\":\"web\",\"r\":$("$b" bench web --db "$work/$bin.db" --runs 5 --format json)}" >> "$results"
    seconds=$(python3 -c 'import subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(f"{time.perf_counter() - t:.4f}")' "$b" rules test --rules rules --events "$work/published.jsonl")
    echo "{\"round\":$round,\"bin\":\"$bin\",\"what\":\"rules-test\",\"r\":{\"seconds\":$seconds}}" >> "$results"
  done
done
python3 scripts/bench_compare_report.py "$results"
