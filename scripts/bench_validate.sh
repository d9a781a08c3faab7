#!/usr/bin/env bash
# Integrity validation benchmark, whole process, on a simulated trail of over 10,000 log files
# with signed digests:
#   trailwatch validate --local TREE --public-keys TREE/list-public-keys.json
# next to, in the same run on the same files:
#   * sha256sum of every log file as stored (one process, then two in parallel): reading and
#     hashing alone, the floor for any validator; trailwatch must also inflate each file
#     (digests list the SHA-256 of the inflated content), verify the RSA signature of every
#     digest and walk the chains;
#   * `cat | gzip -dc | sha256sum` of all log files as one stream: the same inflate-and-hash
#     work with the standard tools (one hash over everything, so a lower bound for them).
# Figures are medians of 3 warm-cache runs. Usage: scripts/bench_validate.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
cargo build --release --quiet -p trailwatch
tw=target/release/trailwatch
tree="$work/tree"
if [ ! -d "$tree" ]; then
  "$tw" simulate --out "$tree" --profile classic --accounts 5 --regions us-east-1,eu-west-1,us-west-2,ap-southeast-2 \
    --hours 48 --events 400000 --digests >/dev/null
fi
find "$tree" -path '*/CloudTrail/*' -name '*.json.gz' | sort > "$work/logs.txt"
files=$(wc -l < "$work/logs.txt")
bytes=$(xargs -a "$work/logs.txt" stat -c %s | awk '{s+=$1} END {print s}')
digests=$(find "$tree" -path '*/CloudTrail-Digest/*' -name '*.json.gz' | wc -l)
echo "tree: $files log files ($((bytes / 1000000)) MB stored), $digests digests"

secs() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
cat $(cat "$work/logs.txt") > /dev/null # warm the page cache once
tw_s=(); sum1=(); sum2=(); zsum=()
for i in 1 2 3; do
  tw_s+=("$(secs "$tw" validate --local "$tree" --public-keys "$tree/list-public-keys.json")")
  sum1+=("$(secs xargs -a "$work/logs.txt" sha256sum)")
  sum2+=("$(secs xargs -a "$work/logs.txt" -P 2 -n 500 sha256sum)")
  zsum+=("$(secs sh -c "xargs -a '$work/logs.txt' cat | gzip -dc | sha256sum")")
done
checked=$("$tw" validate --local "$tree" --public-keys "$tree/list-public-keys.json" | tail -1)
echo "trailwatch: $checked"
t=$(median "${tw_s[@]}"); a=$(median "${sum1[@]}"); b=$(median "${sum2[@]}"); z=$(median "${zsum[@]}")
report() { awk -v n="$files" -v b="$bytes" -v s="$2" -v name="$1" \
  'BEGIN { printf "%-34s %6.2fs  %8.0f files/s  %7.1f MB/s (stored)\n", name, s, n / s, b / 1e6 / s }'; }
report "trailwatch validate (2 threads)" "$t"
report "sha256sum (1 process)" "$a"
report "sha256sum (2 processes)" "$b"
report "cat | gzip -dc | sha256sum" "$z"
awk -v t="$t" -v a="$a" -v b="$b" -v z="$z" 'BEGIN {
  printf "trailwatch time / sha256sum time: %.2f (1 process), %.2f (2 processes); / gzip -dc | sha256sum: %.2f\n", t / a, t / b, t / z }'
