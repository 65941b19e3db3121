#!/usr/bin/env bash
# Starts a PostgreSQL server for tests and local runs, from Debian's packages (installed when
# missing), in its own data directory so no system cluster is touched. Idempotent: a server
# already running there is reused. Prints the server URL on stdout, password included.
#
# The server requires a password (scram-sha-256) on every connection, TCP and Unix socket:
# the `postgres` role's password is generated at random when the cluster is created and kept
# in a file only the user running this script can read (mode 600), next to the data directory.
# A cluster made by an older version of this script, which trusted every local connection, is
# given a password and switched to scram-sha-256 in place (its data is kept).
#
#   RAFIKI_PG_DIR            data directory   (default /tmp/rafiki-pg)
#   RAFIKI_PG_PORT           port on 127.0.0.1 (default 55432)
#   RAFIKI_PG_PASSWORD_FILE  the password file (default: $RAFIKI_PG_DIR.password)
#
# scripts/postgres.sh --url-file DB creates database DB when missing, writes its URL (password
# included) to $RAFIKI_PG_DIR.DB.url (mode 600) and prints that file's path instead: the
# admin's DATABASE_URL_FILE, so the password never sits in its environment or command line.
#
# scripts/postgres.sh --docker prints instead the URL of the tests' Postgres container
# (rafiki-testing's rafiki-test-postgres: rafiki-rs/postgres:15, named rafiki-rs-test-postgres,
# on a free port of 127.0.0.1), started or reused: the server the Rust tests use when
# RAFIKI_TEST_DATABASE_URL is unset. It needs Docker and the image (scripts/build-images.sh).
set -euo pipefail

url_file_db=
if [ "${1:-}" = --docker ] && [ $# -eq 1 ]; then
  cd "$(dirname "$0")/.."
  exec cargo run -q --locked -p rafiki-testing --bin rafiki-test-postgres
elif [ "${1:-}" = --url-file ] && [ $# -eq 2 ] && [[ $2 =~ ^[a-z_][a-z0-9_]*$ ]]; then
  url_file_db=$2
elif [ $# -gt 0 ]; then
  echo "usage: scripts/postgres.sh [--docker | --url-file DATABASE]" >&2
  exit 2
fi

dir=${RAFIKI_PG_DIR:-/tmp/rafiki-pg}
dir=${dir%/}
port=${RAFIKI_PG_PORT:-55432}
password_file=${RAFIKI_PG_PASSWORD_FILE:-$dir.password}

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

# Writes stdin to a new file $1, readable by this user only. A file already there must be this
# user's and private (in a shared directory such as /tmp anything else may have been planted,
# a symbolic link above all); it is replaced, and the new one created exclusively.
write_private() {
  if [ -e "$1" ] || [ -L "$1" ]; then
    check_private "$1"
    rm -f "$1"
  fi
  (umask 077 && set -o noclobber && cat >"$1")
  check_private "$1"
}
check_private() {
  local owner mode
  read -r owner mode < <(stat -c '%u %a' "$1" 2>/dev/null || echo - -)
  if [ -L "$1" ] || [ ! -f "$1" ] || [ "$owner" != "$(id -u)" ] || [ "$mode" != 600 ]; then
    echo "postgres.sh: $1 must be a regular file of user $(id -un) with mode 600" >&2
    exit 1
  fi
}

new_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# What pg_hba.conf holds once the cluster requires passwords.
scram_hba() {
  printf '%s\n' \
    '# Written by scripts/postgres.sh: every connection needs the password.' \
    'local all all scram-sha-256' \
    'host all all 127.0.0.1/32 scram-sha-256' \
    'host all all ::1/128 scram-sha-256'
}

if [ ! -f "$dir/PG_VERSION" ]; then
  [ -e "$password_file" ] || new_password | write_private "$password_file"
  check_private "$password_file"
  mkdir -p "$dir"
  # initdb runs as `postgres` when this script runs as root, and cannot read our private
  # file: give it a copy of its own for the moment it needs it.
  pwfile_for_initdb=$password_file
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    pwfile_for_initdb=$(mktemp)
    trap 'rm -f "$pwfile_for_initdb"' EXIT
    cp "$password_file" "$pwfile_for_initdb"
    chown postgres: "$pwfile_for_initdb"
  fi
  as_pg "$bin/initdb" -D "$dir" -U postgres --auth=scram-sha-256 --pwfile="$pwfile_for_initdb" \
    -E UTF8 >/dev/null
  if [ "$pwfile_for_initdb" != "$password_file" ]; then rm -f "$pwfile_for_initdb"; fi
  # Test data is disposable: trade durability for speed.
  as_pg tee -a "$dir/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 500
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  scram_hba | as_pg tee "$dir/pg_hba.conf" >/dev/null
fi

if ! as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
fi

if as_pg grep -Eq '^[[:space:]]*(local|host)[^#]*[[:space:]]trust([[:space:]]|$)' "$dir/pg_hba.conf"; then
  # A cluster of an older version of this script: while it still trusts local connections,
  # set a password over its Unix socket, then require it everywhere. The password goes to psql
  # on stdin, never on a command line.
  echo "postgres.sh: $dir trusted every local connection; setting a password ($password_file) and switching to scram-sha-256" >&2
  [ -e "$password_file" ] || new_password | write_private "$password_file"
  check_private "$password_file"
  printf "SET password_encryption = 'scram-sha-256';\nALTER ROLE postgres PASSWORD '%s';\n" \
    "$(cat "$password_file")" |
    as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres >/dev/null
  scram_hba | as_pg tee "$dir/pg_hba.conf" >/dev/null
  as_pg "$bin/pg_ctl" -D "$dir" reload >/dev/null
elif [ ! -f "$password_file" ]; then
  echo "postgres.sh: the server in $dir requires a password, but $password_file is missing;" \
    "set RAFIKI_PG_PASSWORD_FILE to the file that holds it, or remove $dir to start afresh" >&2
  exit 1
fi
check_private "$password_file"
password=$(cat "$password_file")
server="postgres://postgres:$password@127.0.0.1:$port/postgres"

if [ -z "$url_file_db" ]; then
  echo "$server"
  exit 0
fi
# The password reaches psql through its environment, which only this user can read.
if ! PGPASSWORD=$password "$bin/psql" -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
  "select 1 from pg_database where datname = '$url_file_db'" | grep -q 1; then
  PGPASSWORD=$password "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "create database $url_file_db"
fi
url_file=$dir.$url_file_db.url
echo "${server%/*}/$url_file_db" | write_private "$url_file"
echo "$url_file"
