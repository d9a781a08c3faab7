#!/usr/bin/env bash
# Sigma evaluation benchmark, whole process, on one JSON Lines file of CloudTrail records:
#   trailwatch rules test --rules ../shared/data/sigma (the SigmaHQ CloudTrail pack)
# next to, in the same run on the same file:
#   * trailwatch with no rules (reading and parsing alone), and
#   * rsigma 0.23 (`rsigma engine eval`), the fastest public Sigma CLI we know, when installed
#     (cargo install rsigma@0.23.0 --locked --root DIR; RSIGMA=DIR/bin/rsigma).
# Usage: scripts/bench_rules.sh [RECORDS] [WORKDIR]   (default 1,000,000 records)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
work=${2:-$(mktemp -d)}
shared=${TRAILWATCH_SHARED_DIR:-$(cd .. && pwd)/shared}
cargo build --release --quiet -p trailwatch
tw=target/release/trailwatch
events="$work/records-$records.jsonl"
if [ ! -f "$events" ]; then
  "$tw" simulate --out "$work/tree" --profile classic --accounts 3 --hours 48 --events "$records" --scenario all >/dev/null
  python3 - "$work/tree" "$events" "$records" <<'PY'
import gzip, json, pathlib, sys
tree, out, want = pathlib.Path(sys.argv[1]), open(sys.argv[2], "w"), int(sys.argv[3])
n = 0
for p in sorted(tree.rglob("*.json.gz")):
    if "Digest" in p.name:
        continue
    for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]:
        if n < want:
            out.write(json.dumps(r, separators=(",", ":")) + "\n")
            n += 1
print(f"{n} records, {out.tell() / 1e6:.0f} MB", file=sys.stderr)
PY
fi
mkdir -p "$work/norules"
secs() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
n=$(wc -l < "$events")
runs=3
tw_all=(); tw_none=(); rs=()
for i in $(seq $runs); do
  tw_all+=("$(secs "$tw" rules test --rules "$shared/data/sigma" --events "$events" --format tsv)")
  tw_none+=("$(secs "$tw" rules test --rules "$work/norules" --events "$events" --format tsv)")
  if [ -n "${RSIGMA:-}" ]; then
    rs+=("$(secs "$RSIGMA" engine eval --rules "$shared/data/sigma/rules" --event "@$events" --no-stats)")
  fi
done
matches=$("$tw" rules test --rules "$shared/data/sigma" --events "$events" --format tsv | wc -l)
if [ -n "${RSIGMA:-}" ]; then
  # Both engines must agree on how many (rule, event) matches there are.
  rs_matches=$("$RSIGMA" engine eval --rules "$shared/data/sigma/rules" --event "@$events" --no-stats 2>/dev/null | wc -l)
  echo "matches: trailwatch $matches, rsigma $rs_matches"
fi
python3 - "$n" "$matches" "$(median "${tw_all[@]}")" "$(median "${tw_none[@]}")" "${rs[@]:+$(median "${rs[@]}")}" <<'PY'
import sys
n, matches, tw, none = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"{n:,} records, SigmaHQ CloudTrail pack (57 rules), {matches:,} matches; median of 3 runs, whole process")
print(f"  trailwatch rules test          : {n / tw:>10,.0f} events/s  ({tw:.2f} s)")
print(f"  trailwatch, no rules (read+JSON): {n / none:>10,.0f} events/s  ({none:.2f} s)")
if len(sys.argv) > 5 and sys.argv[5]:
    rs = float(sys.argv[5])
    print(f"  rsigma 0.23 engine eval        : {n / rs:>10,.0f} events/s  ({rs:.2f} s)")
    print(f"  trailwatch / rsigma            : {rs / tw:>10.1f}x  (target >= 2x, aim 4x)")
else:
    print("  rsigma: not measured (set RSIGMA to its binary)")
PY
