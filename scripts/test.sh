#!/usr/bin/env bash
# Runs every test trailwatch has, from a clean checkout on a fresh machine.
#
# It installs and starts what the tests need itself: the Rust toolchain the machine already
# has; for the AWS suite (tests/aws), a Python virtualenv under target/ with the pinned
# versions of moto (server mode), boto3 and pytest from PyPI. Each AWS test starts moto on a
# free loopback port itself and stops it afterwards. For the browser suite (tests/browser):
# Debian's chromium (installed with apt-get when missing) and playwright-core from npm
# (pinned by package-lock.json); the suite starts `trailwatch demo` itself. cargo-deny and
# cargo-fuzz (for the dependency policy and the bounded fuzzing) are installed from crates.io
# under target/tools when missing.
#
# The published sample data is read from ../shared (beside this repository) unless
# TRAILWATCH_SHARED_DIR says otherwise; it is only ever read.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-always}
export TRAILWATCH_SHARED_DIR=${TRAILWATCH_SHARED_DIR:-$(cd .. && pwd)/shared}
if [ ! -d "$TRAILWATCH_SHARED_DIR/data/cloudtrail" ]; then
  echo "test.sh: shared data not found at $TRAILWATCH_SHARED_DIR (set TRAILWATCH_SHARED_DIR)" >&2
  exit 2
fi

step() { printf '\n== %s\n' "$*"; }

# The debug build of every test, the fuzz targets' build and the tools under target/ take
# several GB. A disk that fills up halfway fails in rustc with "No space left on device"
# minutes in; say so before starting instead. What target/ already holds counts as room.
need_mb=$(( ${TRAILWATCH_TEST_DISK_GB:-16} * 1024 ))
have_mb=$(df -Pm . | awk 'NR == 2 { print $4 }')
built_mb=$(du -sm target 2>/dev/null | cut -f1 || echo 0)
if [ -n "$have_mb" ] && [ $(( have_mb + ${built_mb:-0} )) -lt "$need_mb" ]; then
  echo "test.sh: $(( have_mb / 1024 )) GB free on $(df -P . | awk 'NR == 2 { print $6 }') (target/ holds $(( ${built_mb:-0} / 1024 )) GB);" \
    "the tests need about $(( need_mb / 1024 )) GB for target/ (TRAILWATCH_TEST_DISK_GB overrides)" >&2
  exit 2
fi

step "toolchain"
cargo --version
# fmt and clippy come with the usual rustup profile; add them if this machine lacks them.
have() { cargo "$1" --version >/dev/null 2>&1; }
for tool in fmt clippy; do
  have "$tool" || rustup component add "$( [ "$tool" = fmt ] && echo rustfmt || echo clippy )" || true
done

step "format"
if have fmt; then cargo fmt --all -- --check; else echo "test.sh: rustfmt unavailable here; format not checked" >&2; fi

step "lint"
if have clippy; then
  cargo clippy --workspace --all-targets --locked -- -D warnings
else
  echo "test.sh: clippy unavailable here; lints not checked" >&2
fi

step "dependency policy (cargo-deny: licenses, bans, sources)"
# Offline: it reads Cargo.lock and the crates' manifests (deny.toml has the policy). The
# RustSec advisories need their database from GitHub: checked when it can be fetched.
# cargo-deny reads the manifests of every crate in Cargo.lock, for every platform, from the
# local registry; a build fetches only the host's. Fetch them all first (a fresh machine has
# none of the others: Windows and wasm crates are in the lock file too).
cargo fetch --locked
tools="$PWD/target/tools"
if ! "$tools/bin/cargo-deny" --version >/dev/null 2>&1; then
  cargo install --quiet --locked --root "$tools" cargo-deny --version 0.20.2
fi
"$tools/bin/cargo-deny" --offline check bans licenses sources
if timeout 60 "$tools/bin/cargo-deny" fetch db >/dev/null 2>&1; then
  "$tools/bin/cargo-deny" check --disable-fetch advisories
else
  echo "test.sh: the RustSec advisory database cannot be fetched here; advisories not checked" >&2
fi

step "cargo install"
# What the README tells users to run, into a scratch root (the dev profile reuses this build).
CARGO_TARGET_DIR="$PWD/target" cargo install --quiet --debug --locked --path crates/trailwatch --root target/install
target/install/bin/trailwatch --version

step "services (ClickHouse, PostgreSQL, a 2x2 ClickHouse cluster)"
# The scale-out backend's servers: the store, web and CLI tests run against them as well
# as against SQLite (TRAILWATCH_TEST_SCALEOUT=require makes their absence an error). The
# cluster (ZooKeeper and four servers: 2 shards x 2 replicas) takes the store's suite
# again and the AWS suite's three-worker test with a server killed.
# shellcheck source=scripts/services.sh
source scripts/services.sh
services_dir=$(mktemp -d /tmp/tw-services.XXXXXX)
chmod 755 "$services_dir"
trap 'stop_services; rm -rf "$services_dir"' EXIT
start_services "$services_dir"
start_cluster "$services_dir/cluster"

step "tests"
cargo test --workspace --locked

step "store tests on the ClickHouse cluster"
TRAILWATCH_TEST_CLICKHOUSE_URL=$TRAILWATCH_TEST_CLUSTER_URL TRAILWATCH_TEST_CLICKHOUSE_CLUSTER=trailwatch \
  cargo test --locked -p trailwatch-store --test store

step "AWS suite (moto)"
# A virtualenv of pinned versions, rebuilt only when requirements.txt changes.
venv=target/pyenv
stamp="$venv/.requirements"
if ! cmp -s tests/aws/requirements.txt "$stamp" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/aws/requirements.txt
  cp tests/aws/requirements.txt "$stamp"
fi
cargo build --locked -p trailwatch
TRAILWATCH_BIN="$PWD/target/debug/trailwatch" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/aws

step "browser suite (Chromium)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)
chromium --version
if ! (cd tests/browser && TRAILWATCH_BIN="$PWD/../../target/debug/trailwatch" CHROMIUM="$(command -v chromium)" npm test --silent); then
  # What a failure on another machine needs to be understood from its log alone.
  echo "test.sh: the browser suite failed; this machine:" >&2
  { uname -a; nproc; free -m; ulimit -a; grep -m1 'model name' /proc/cpuinfo; df -h /tmp /dev/shm; } >&2 || true
  echo "test.sh: a bare headless start of chromium:" >&2
  timeout 60 chromium --headless --no-sandbox --disable-gpu --user-data-dir="$(mktemp -d)" --dump-dom about:blank 2>&1 | tail -n 30 >&2 || true
  exit 1
fi

step "fuzzing (bounded)"
# Every fuzz target for TRAILWATCH_FUZZ_SECONDS (default 30) each; a crash fails the run.
scripts/fuzz.sh

step "scripts"
python3 -m py_compile scripts/naive_loader.py scripts/make_big_log.py scripts/bench_sqs.py scripts/soak.py scripts/bench_login.py \
  scripts/pack_published.py scripts/bench_compare_report.py scripts/bench_growth.py scripts/bench_profiles.py
bash -n scripts/bench.sh
bash -n scripts/bench_rules.sh
bash -n scripts/bench_web.sh
bash -n scripts/bench_scaleout.sh
bash -n scripts/services.sh
bash -n scripts/fuzz.sh
bash -n scripts/soak.sh
bash -n scripts/bench_compare.sh

step "all tests passed"
