#!/usr/bin/env bash
# Insert throughput of the scale-out store, with its baselines in the same script:
#   1. SQLite, one `ingest --local` process (the embedded store);
#   2. ClickHouse + PostgreSQL, one process;
#   3. ClickHouse + PostgreSQL, two processes in parallel on the two halves of the same files
#      (two workers sharing one store).
# Every run starts from a fresh store. On a 2-core machine the servers share the cores with
# the workers, so (3) measures contention as much as scaling: read the ratio with that in mind.
#
# With TABLE=1, `trailwatch bench store` then measures what the SQLite store and the one-worker
# scale-out store (the same events) answer: the scale table's figures for both, same run.
#
# With CLUSTER=1, one worker also ingests the same files into a store on the replicated
# cluster (2 shards x 2 replicas, TRAILWATCH_TEST_CLUSTER_URL from services.sh's
# start_cluster, all on the same machine), and TABLE=1 measures that store too.
#
# Needs the servers: TRAILWATCH_TEST_CLICKHOUSE_URL and TRAILWATCH_TEST_POSTGRES_URL (as
# scripts/services.sh exports them), psql, and a release build.
#   EVENTS=1000000 scripts/bench_scaleout.sh
#   TABLE=1 ACCOUNTS=20 HOURS=168 REGIONS=us-east-1,eu-west-1,us-west-2,ap-southeast-2 scripts/bench_scaleout.sh
#   TABLE=1 TWO=0 RUNS=2 EVENTS=10000000 scripts/bench_scaleout.sh   (10 M: ~16 GB of disk)
#   TABLE=1 ONE=0 CLUSTER=1 RUNS=2 EVENTS=10000000 scripts/bench_scaleout.sh   (~25 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TRAILWATCH_BIN:-target/release/trailwatch}
EVENTS=${EVENTS:-1000000}
: "${TRAILWATCH_TEST_CLICKHOUSE_URL:?start the servers first (source scripts/services.sh; start_services DIR)}"
: "${TRAILWATCH_TEST_POSTGRES_URL:?start the servers first}"
work=$(mktemp -d /tmp/tw-bench-scaleout.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$BIN" simulate --out "$work/bucket" --profile "${PROFILE:-realistic}" --events "$EVENTS" --accounts "${ACCOUNTS:-5}" \
  --hours "${HOURS:-72}" --regions "${REGIONS:-us-east-1,eu-west-1}" --seed 11 >/dev/null
# Two halves of the files, same layout (hard links).
(cd "$work/bucket" && find . -name '*.json.gz' | sort) > "$work/files"
awk 'NR % 2 == 1' "$work/files" > "$work/odd.list"
awk 'NR % 2 == 0' "$work/files" > "$work/even.list"
for half in odd even; do
  mkdir -p "$work/$half"
  (cd "$work/bucket" && xargs -a "$work/$half.list" cp --parents -l -t "$work/$half")
done
records=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$work/bucket/manifest.json")

fresh() { # a config file for a fresh scale-out store named $1
  local name=$1 url="${TRAILWATCH_TEST_CLICKHOUSE_URL%/}/$1"
  if [ "${2:-}" = cluster ]; then url="${TRAILWATCH_TEST_CLUSTER_URL%/}/$name?cluster=trailwatch"; fi
  psql "$TRAILWATCH_TEST_POSTGRES_URL" -qc "CREATE DATABASE $name" >/dev/null
  cat > "$work/$name.toml" <<CONF
[store]
kind = "clickhouse"
url = "$url"
[state]
kind = "postgres"
url = "${TRAILWATCH_TEST_POSTGRES_URL%/*}/$name"
CONF
  # Migrate now, so the runs below measure ingest only.
  "$BIN" search --config "$work/$name.toml" --limit 1 >/dev/null 2>&1
  echo "$work/$name.toml"
}

seconds() { python3 -c 'import time; print(time.time())'; }
rate() { python3 -c "import sys; n, a, b = map(float, sys.argv[1:]); print(f'{n / (b - a):,.0f}')" "$@"; }

t0=$(seconds); "$BIN" ingest --db "$work/sqlite.db" --local "$work/bucket" >/dev/null; t1=$(seconds)
sqlite_rate=$(rate "$records" "$t0" "$t1")

echo "$records events ($(wc -l < "$work/files") files), $(nproc) cores"
echo "  SQLite, 1 process:                 $sqlite_rate events/s"
# ONE=0 skips the single server (with CLUSTER=1: the cluster against SQLite alone).
if [ "${ONE:-1}" = 1 ]; then
  one=$(fresh "tw_bench_one_$$")
  t0=$(seconds); "$BIN" ingest --config "$one" --local "$work/bucket" >/dev/null; t1=$(seconds)
  one_rate=$(rate "$records" "$t0" "$t1")
  echo "  ClickHouse+PostgreSQL, 1 worker:   $one_rate events/s"
  python3 -c "import sys; s, o = (float(x.replace(',', '')) for x in sys.argv[1:]); print(f'  ratio: 1 worker / SQLite = {o / s:.2f}')" "$sqlite_rate" "$one_rate"
fi
# TWO=0 skips the two-worker run (a second copy of the events: at 10 M, 9 GB and a quarter hour).
if [ "${ONE:-1}" = 1 ] && [ "${TWO:-1}" = 1 ]; then
  two=$(fresh "tw_bench_two_$$")
  t0=$(seconds)
  "$BIN" ingest --config "$two" --local "$work/odd" >/dev/null &
  "$BIN" ingest --config "$two" --local "$work/even" >/dev/null &
  wait
  t1=$(seconds)
  two_rate=$(rate "$records" "$t0" "$t1")
  stored=$("$BIN" search --config "$two" --limit 0 --format tsv | wc -l)
  echo "  ClickHouse+PostgreSQL, 2 workers:  $two_rate events/s (stored: $stored)"
  python3 -c "import sys; o, t = (float(x.replace(',', '')) for x in sys.argv[1:]); print(f'  ratio: 2 workers / 1 worker = {t / o:.2f}')" "$one_rate" "$two_rate"
fi
if [ "${CLUSTER:-0}" = 1 ]; then
  : "${TRAILWATCH_TEST_CLUSTER_URL:?start the cluster first (source scripts/services.sh; start_cluster DIR)}"
  clustered=$(fresh "tw_bench_cluster_$$" cluster)
  t0=$(seconds); "$BIN" ingest --config "$clustered" --local "$work/bucket" >/dev/null; t1=$(seconds)
  cluster_rate=$(rate "$records" "$t0" "$t1")
  echo "  ClickHouse cluster 2x2, 1 worker:  $cluster_rate events/s"
  python3 -c "import sys; s, o = (float(x.replace(',', '')) for x in sys.argv[1:]); print(f'  ratio: cluster / SQLite = {o / s:.2f}')" "$sqlite_rate" "$cluster_rate"
fi
if [ "${TABLE:-0}" = 1 ]; then
  echo "== bench store, SQLite"
  "$BIN" bench store --db "$work/sqlite.db" --runs "${RUNS:-3}"
  if [ "${ONE:-1}" = 1 ]; then
    echo "== bench store, ClickHouse+PostgreSQL (the one-worker store)"
    "$BIN" bench store --config "$one" --runs "${RUNS:-3}"
  fi
  if [ "${CLUSTER:-0}" = 1 ]; then
    echo "== bench store, ClickHouse cluster 2x2 (bytes: every replica's)"
    "$BIN" bench store --config "$clustered" --runs "${RUNS:-3}"
  fi
fi
