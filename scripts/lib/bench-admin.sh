# shellcheck shell=bash
# Sourced by the scripts/bench-*.sh benchmarks (from the repository root): a release admin on
# a fresh database of the local PostgreSQL (scripts/postgres.sh), stopped and its database
# dropped on exit. Sets `server`, `db` and `admin` (the admin's pid) for the script.

# bench_admin_env DB PORT: creates the database DB and points the admin at it, on ADMIN_PORT
# (PORT unless set), with the benchmarks' fixed secret and superadmin password.
bench_admin_env() {
  server=$(scripts/postgres.sh)
  db=$1
  psql "$server" -qc "create database $db"
  export DATABASE_URL=${server%/*}/$db
  export ADMIN_PORT=${ADMIN_PORT:-$2}
  export APP_SECRET=bench-secret-bench-secret-bench-secret-42
  export SUPERADMIN_PASSWORD=bench-password
}

# bench_admin_stop: stops the admin and drops its database.
bench_admin_stop() {
  kill "$admin" 2>/dev/null || true
  wait "$admin" 2>/dev/null || true
  psql "$server" -qc "drop database if exists $db" || true
}

# bench_admin_start BIN [CLEANUP]: runs the admin binary BIN in the background, with CLEANUP
# (bench_admin_stop unless given; a script's own should call it) as the EXIT trap, and waits
# up to 20 s for it to answer /health.
bench_admin_start() {
  RUST_LOG=warn "$1" &
  admin=$!
  # shellcheck disable=SC2064 # the trap is the function named now.
  trap "${2:-bench_admin_stop}" EXIT
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/health" >/dev/null && break
    sleep 0.2
  done
}

# bench_admin_training DB PORT: an admin that trains with the process backend, started as
# above on database DB: the repository's .venv (made, with the client and its examples, when
# missing) as its workers' Python, a temporary data directory, the admin and the worker built
# for release (RAFIKI_BENCH_PROFILE=dev: a debug build, where a release one would take too long
# to build, for benchmarks whose trials cost far more than the admin's work).
bench_admin_training() {
  [ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -e './python[examples]'; }
  bench_admin_env "$1" "$2"
  RAFIKI_DATA_DIR=$(mktemp -d)
  export RAFIKI_DATA_DIR
  export RAFIKI_PYTHON=$PWD/.venv/bin/python
  local profile=${RAFIKI_BENCH_PROFILE:-release}
  cargo build --profile "$profile" -q -p rafiki-admin -p rafiki-worker
  local dir=$profile
  [ "$profile" = dev ] && dir=debug
  bench_admin_start "${CARGO_TARGET_DIR:-target}/$dir/rafiki-admin"
}
