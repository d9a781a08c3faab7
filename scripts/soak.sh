#!/usr/bin/env bash
# Soak test (not part of CI): `serve` under a steady moto feed for MINUTES (default 30), its
# RSS and open files sampled every minute; fails if either drifts more than 10 % after the
# warm-up. Loopback only. Uses the AWS suite's virtualenv and a release build.
#   scripts/soak.sh [MINUTES] [-- extra soak.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
shift || true
[ "${1:-}" = -- ] && shift  # the documented separator before soak.py's own options
venv=target/pyenv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/aws/requirements.txt
fi
cargo build --release --locked -p trailwatch
TRAILWATCH_BIN="$PWD/target/release/trailwatch" "$venv/bin/python" scripts/soak.py --minutes "$minutes" "$@"
