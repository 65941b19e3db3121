#!/usr/bin/env bash
# What the request metrics cost the admin per authenticated `GET /users` (issue 18), counted in
# instructions rather than timed: the release admin runs under valgrind's callgrind, which
# counts every instruction it executes whatever else the machine is doing, so the difference
# between `RAFIKI_METRICS=off` and `on` does not drown in the noise of a shared machine (as
# wrk's requests per second do, scripts/bench-users.sh). Same table as bench-users.sh: 100
# users, one of them banned. Per run: start the admin under callgrind, send warm-up requests,
# zero the counts, send REQUESTS requests one after another on one keep-alive connection,
# dump the counts; the admin's instructions divided by REQUESTS is its cost per request. A
# database connection the pool happens to open during the window (SCRAM authentication costs
# some 30 million instructions, as much as 300 requests) is the pool's, not the requests': its
# instructions (`PgConnection::establish`, inclusive) are taken off the total, and shown.
# Alternates off and on, RUNS times each (default 2).
# With RAFIKI_BENCH_OUT=DIR the callgrind files are kept there, for callgrind_annotate.
# Usage: scripts/bench-metrics-cost.sh [REQUESTS, default 2000] [RUNS, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
requests=${1:-2000}
runs=${2:-2}

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
bench_admin_env "rafiki_bench_$$" 3901
RAFIKI_DATA_DIR=$(mktemp -d)
export RAFIKI_DATA_DIR
export RAFIKI_PYTHON=${RAFIKI_PYTHON:-$PWD/.venv/bin/python}
cargo build --release -q -p rafiki-admin
bin=${CARGO_TARGET_DIR:-target}/release/rafiki-admin
out=${RAFIKI_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
base="http://127.0.0.1:$ADMIN_PORT"

stop() {
  kill "$admin" 2>/dev/null || true
  wait "$admin" 2>/dev/null || true
}
finish() {
  stop
  psql "$server" -qc "drop database if exists $db" || true
  [ -n "${RAFIKI_BENCH_OUT:-}" ] || rm -rf "$out"
  rm -rf "$RAFIKI_DATA_DIR"
}
trap finish EXIT

populated=
for run in $(seq "$runs"); do
  for setting in off on; do
    RAFIKI_METRICS=$setting RUST_LOG=warn valgrind -q --tool=callgrind \
      --callgrind-out-file="$out/$setting-$run.%p" "$bin" 2>"$out/$setting-$run.stderr" &
    admin=$!
    for _ in $(seq 300); do
      curl -sf "$base/health" >/dev/null && break
      sleep 0.5
    done
    token=$(curl -sf "$base/tokens" -H 'content-type: application/json' \
      -d "{\"email\":\"superadmin@rafiki\",\"password\":\"$SUPERADMIN_PASSWORD\"}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    if [ -z "$populated" ]; then
      for i in $(seq 99); do
        curl -sf "$base/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
          -d "{\"email\":\"user$i@example.com\",\"password\":\"pw-of-a-user\",\"user_type\":\"APP_DEVELOPER\"}" >/dev/null
      done
      curl -sf -X DELETE "$base/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d '{"email":"user99@example.com"}' >/dev/null
      populated=yes
    fi
    python3 scripts/bench_requests.py "$ADMIN_PORT" "$token" 500 >/dev/null
    callgrind_control -z "$admin" >/dev/null
    python3 scripts/bench_requests.py "$ADMIN_PORT" "$token" "$requests"
    callgrind_control -d "$admin" >/dev/null
    stop
    # The dump made by -d is the one numbered .1; its totals are the counts since -z.
    dump=$(ls "$out/$setting-$run".*.1)
    ir=$(grep -h '^totals:' "$dump" | awk '{print $2}')
    connecting=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" |
      awk '/PgConnection>::establish::\{\{closure\}\}/ {gsub(",", "", $1); n += $1} END {print n + 0}')
    net=$((ir - connecting))
    echo "run $run metrics $setting: $ir instructions, $connecting of them opening database" \
      "connections; $((net / requests)) per request"
  done
done
