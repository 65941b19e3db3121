#!/usr/bin/env bash
# Benchmark of issue 19, item 4: early stopping of bad trials. Starts an admin with the process
# backend on a fresh database (scripts/lib/bench-admin.sh) and runs scripts/bench_pruning.py:
# for each of REPEATS seeds, a TRIALS-trial job of a model with noisy, crossing learning curves
# (27 epochs of SECONDS each) without pruning and one with ASHA; medians of the best final
# score and of the total training time (docs/benchmarks.md, "Pruning").
# Usage: scripts/bench-pruning.sh [trials=20] [repeats=5] [seconds-per-epoch=0.04]
#   [modes=none,asha,asha-min3] (also median-min3; see scripts/bench_pruning.py)
#   [crossing=late] (or early: how late the model's curves cross)
#   [score=exact] (or last: the model's score is its last logged, noisy value)
# RAFIKI_BENCH_PROFILE=dev uses a debug build of the admin and worker (release by default).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
bench_admin_training "rafiki_bench_pruning_$$" 3903
.venv/bin/python scripts/bench_pruning.py "$ADMIN_PORT" "${1:-20}" "${2:-5}" "${3:-0.04}" \
  "${4:-none,asha,asha-min3}" "${5:-late}" "${6:-exact}"
