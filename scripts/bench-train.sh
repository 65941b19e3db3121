#!/usr/bin/env bash
# Benchmark of issue 5 (a) and (b): starts a release admin with the process backend on a fresh
# database and runs scripts/bench_train.py against it (a no-op model, N trials per advisor).
# Usage: scripts/bench-train.sh [trials, default 200]
# Prints per advisor (a) and (b) as bench_train.py measures them (b: until the job reads ended),
# then (b) from the trials' own times, without the job's end (trial_span_ms, end_s).
# With the docker backend (workers in containers of the images of scripts/build-images.sh):
#   RAFIKI_BACKEND=docker RAFIKI_DOCKER_PROJECT=bench \
#     scripts/bench-train.sh 200
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
trials=${1:-200}
bench_admin_training "rafiki_bench_train_$$" 3901
.venv/bin/python scripts/bench_train.py "$ADMIN_PORT" "$trials"
# The loop without the job's end (the worker's exit seen, its service removed), from the trials'
# own times in the database, which the API gives to the second only: first start to last stop,
# per trial, and how long after its last trial each job read ended.
psql "$DATABASE_URL" -qAt -F ' ' -c "
  select j.app,
         round(extract(epoch from max(t.datetime_stopped) - min(t.datetime_started))::numeric
               * 1000 / count(*), 2) as trial_span_ms,
         round(extract(epoch from j.datetime_stopped - max(t.datetime_stopped))::numeric, 2)
           as end_s
  from trials t join train_jobs j on j.id = t.train_job_id
  group by j.app, j.datetime_stopped order by j.app" |
  while read -r app span end; do
    echo "{\"app\": \"$app\", \"trial_span_ms\": $span, \"end_s\": $end}"
  done
