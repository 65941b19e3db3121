#!/usr/bin/env bash
# Benchmark of issue 17: the console's heaviest pages for a train job of N trials (job page with
# its tuning plots, live fragment, trial page), timed by scripts/bench_console.py against a
# release admin with the process backend on a fresh database.
# Usage: scripts/bench-console.sh [trials, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-1000}
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e './python[examples]'; }
server=$(scripts/postgres.sh)
db="rafiki_bench_console_$$"
psql "$server" -qc "create database $db"
export DATABASE_URL=${server%/*}/$db
export ADMIN_PORT=${ADMIN_PORT:-3902}
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
.venv/bin/python scripts/bench_console.py "$ADMIN_PORT" "$trials"
