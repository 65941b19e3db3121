#!/usr/bin/env bash
# Benchmark of issue 17: the console's heaviest pages for a train job of N trials (job page with
# its tuning plots, live fragment, trial page), timed by scripts/bench_console.py against a
# release admin with the process backend on a fresh database.
# Usage: scripts/bench-console.sh [trials, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
trials=${1:-1000}
bench_admin_training "rafiki_bench_console_$$" 3902
.venv/bin/python scripts/bench_console.py "$ADMIN_PORT" "$trials"
