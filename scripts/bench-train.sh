#!/usr/bin/env bash
# Benchmark of issue 5 (a) and (b): starts a release admin with the process backend on a fresh
# database and runs scripts/bench_train.py against it (a no-op model, N trials per advisor).
# Usage: scripts/bench-train.sh [trials, default 200]
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
