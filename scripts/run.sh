#!/usr/bin/env bash
# Runs Rafiki on this machine: a local Postgres (Debian's packages, started by
# scripts/postgres.sh) unless DATABASE_URL is set, and the admin on port 3000 (ADMIN_PORT).
# Without APP_SECRET and SUPERADMIN_PASSWORD it runs in dev mode: superadmin@rafiki / rafiki.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  server=$(scripts/postgres.sh)
  if ! psql "$server" -tAc "select 1 from pg_database where datname = 'rafiki'" | grep -q 1; then
    psql "$server" -qc 'create database rafiki'
  fi
  export DATABASE_URL=${server%/*}/rafiki
fi
export RAFIKI_DATA_DIR=${RAFIKI_DATA_DIR:-$PWD/data}

args=()
if [ -z "${APP_SECRET:-}" ] || [ -z "${SUPERADMIN_PASSWORD:-}" ]; then
  args+=(--dev)
fi
# The admin launches the worker and predictor binaries that sit next to it.
cargo build --release --locked --workspace --bins
exec target/release/rafiki-admin "${args[@]}" "$@"
