#!/usr/bin/env bash
# Benchmark of issue 19, item 5: parallel CPU train workers. Starts an admin with the process
# backend on a fresh database (scripts/lib/bench-admin.sh) and runs scripts/bench_parallel.py:
# TRIALS-trial jobs of a model whose trials sleep SECONDS and score -branin, with each worker
# count of WORKERS (CPU_WORKERS_PER_MODEL), REPEATS times each, interleaved.
# Usage: scripts/bench-parallel.sh [trials=30] [repeats=5] [workers=1,4] [seconds=1]
# RAFIKI_BENCH_PROFILE=dev uses a debug build of the admin and worker (release by default).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
bench_admin_training "rafiki_bench_parallel_$$" 3902
.venv/bin/python scripts/bench_parallel.py "$ADMIN_PORT" "${1:-30}" "${2:-5}" "${3:-1,4}" \
  "${4:-1}"
