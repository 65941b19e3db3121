#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for tests and local runs, from Debian's packages
# (installed when missing), in its own data directory so no system cluster is touched.
# Idempotent: a server already running there is reused. Prints the server URL on stdout.
#
#   RAFIKI_PG_DIR   data directory   (default /tmp/rafiki-pg)
#   RAFIKI_PG_PORT  port on 127.0.0.1 (default 55432)
#
# scripts/postgres.sh --docker prints instead the URL of the tests' Postgres container
# (rafiki-testing's rafiki-test-postgres: rafiki-rs/postgres:15, named rafiki-rs-test-postgres,
# on a free port of 127.0.0.1), started or reused: the server the Rust tests use when
# RAFIKI_TEST_DATABASE_URL is unset. It needs Docker and the image (scripts/build-images.sh).
set -euo pipefail

if [ "${1:-}" = --docker ]; then
  cd "$(dirname "$0")/.."
  exec cargo run -q --locked -p rafiki-testing --bin rafiki-test-postgres
elif [ $# -gt 0 ]; then
  echo "usage: scripts/postgres.sh [--docker]" >&2
  exit 2
fi

dir=${RAFIKI_PG_DIR:-/tmp/rafiki-pg}
port=${RAFIKI_PG_PORT:-55432}

pg_bin() {
  find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1
}

if [ -z "$(pg_bin)" ]; then
  echo "postgres.sh: installing PostgreSQL from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(pg_bin)

# Postgres refuses to run as root; run it as the `postgres` user the package creates.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
  # Test data is disposable: trade durability for speed.
  cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 500
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
fi

if ! as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
fi

echo "postgres://postgres@127.0.0.1:$port/postgres"
