#!/usr/bin/env bash
# Benchmark of issue 17: the console's heaviest pages for a train job of N trials (job page with
# its tuning plots, live fragment, trial page), timed by scripts/bench_console.py against a
# release admin with the process backend on a fresh database.
# Usage: scripts/bench-console.sh [trials, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
trials=${1:-1000}
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e './python[examples]'; }
bench_admin_env "rafiki_bench_console_$$" 3902
RAFIKI_DATA_DIR=$(mktemp -d)
export RAFIKI_DATA_DIR
export RAFIKI_PYTHON=$PWD/.venv/bin/python
cargo build --release -q -p rafiki-admin -p rafiki-worker
bench_admin_start "${CARGO_TARGET_DIR:-target}/release/rafiki-admin"
.venv/bin/python scripts/bench_console.py "$ADMIN_PORT" "$trials"
