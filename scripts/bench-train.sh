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
trials=${1:-200}
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e './python[examples]'; }
server=$(scripts/postgres.sh)
db="rafiki_bench_train_$$"
psql "$server" -qc "create database $db"
export DATABASE_URL=${server%/*}/$db
export ADMIN_PORT=${ADMIN_PORT:-3901}
export APP_SECRET=bench-secret-bench-secret-bench-secret-42
export SUPERADMIN_PASSWORD=bench-password
export RAFIKI_DATA_DIR=$(mktemp -d)
export RAFIKI_PYTHON=$PWD/.venv/bin/python
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p rafiki-admin -p rafiki-worker
RUST_LOG=warn "$target/release/rafiki-admin" &
admin=$!
trap 'kill $admin 2>/dev/null; wait $admin 2>/dev/null; psql "$server" -qc "drop database if exists $db" || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/health" >/dev/null && break; sleep 0.2; done
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
