#!/usr/bin/env bash
# Benchmark of issue 2: authenticated `GET /users` with 100 users in the table, 64 concurrent
# connections, wrk on the same machine, the banned-token rule on (as always).
# Usage: scripts/bench-users.sh [seconds, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
duration=${1:-20}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
bench_admin_env "rafiki_bench_$$" 3900
RAFIKI_DATA_DIR=$(mktemp -d)
export RAFIKI_DATA_DIR
# The admin checks its workers' interpreter at start-up, though this benchmark runs no model.
export RAFIKI_PYTHON=${RAFIKI_PYTHON:-$PWD/.venv/bin/python}
cargo build --release -q -p rafiki-admin
bench_admin_start "${CARGO_TARGET_DIR:-target}/release/rafiki-admin"

base="http://127.0.0.1:$ADMIN_PORT"
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
