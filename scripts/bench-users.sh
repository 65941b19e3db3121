#!/usr/bin/env bash
# Benchmark of issue 2: authenticated `GET /users` with 100 users in the table, 64 concurrent
# connections, wrk on the same machine, the banned-token rule on (as always).
# Usage: scripts/bench-users.sh [seconds, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-20}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
server=$(scripts/postgres.sh)
db="rafiki_bench_$$"
psql "$server" -qc "create database $db"
export DATABASE_URL=${server%/*}/$db
export ADMIN_PORT=${ADMIN_PORT:-3900}
export APP_SECRET=bench-secret-bench-secret-bench-secret-42
export SUPERADMIN_PASSWORD=bench-password
export RAFIKI_DATA_DIR=$(mktemp -d)
# The admin checks its workers' interpreter at start-up, though this benchmark runs no model.
export RAFIKI_PYTHON=${RAFIKI_PYTHON:-$PWD/.venv/bin/python}
cargo build --release -q -p rafiki-admin
RUST_LOG=warn "${CARGO_TARGET_DIR:-target}/release/rafiki-admin" &
admin=$!
trap 'kill $admin 2>/dev/null; wait $admin 2>/dev/null; psql "$server" -qc "drop database if exists $db" || true' EXIT

base="http://127.0.0.1:$ADMIN_PORT"
for _ in $(seq 100); do curl -sf "$base/health" >/dev/null && break; sleep 0.2; done
token=$(curl -sf "$base/tokens" -H 'content-type: application/json' \
  -d "{\"email\":\"superadmin@rafiki\",\"password\":\"$SUPERADMIN_PASSWORD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
for i in $(seq 99); do
  curl -sf "$base/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"email\":\"user$i@example.com\",\"password\":\"pw-of-a-user\",\"user_type\":\"APP_DEVELOPER\"}" >/dev/null
done
count=$(curl -sf "$base/users" -H "authorization: Bearer $token" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "users in the table: $count"
# A banned user exists too, so the ban list is not empty.
curl -sf -X DELETE "$base/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"email":"user99@example.com"}' >/dev/null

wrk -t2 -c64 -d"${duration}s" --latency -H "Authorization: Bearer $token" "$base/users"
echo "server peak RSS: $(grep VmHWM /proc/$admin/status)"
