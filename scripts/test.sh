#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests, Python lint and tests.
# Needs a Postgres server for the integration tests: RAFIKI_TEST_DATABASE_URL, or one is
# started with scripts/postgres.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

export RAFIKI_TEST_DATABASE_URL=${RAFIKI_TEST_DATABASE_URL:-$(scripts/postgres.sh)}
echo "== tests use the Postgres server at $RAFIKI_TEST_DATABASE_URL"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked

if [ -d python ]; then
  echo "== python: install"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e './python[test,examples]'
  echo "== python: ruff"
  .venv/bin/ruff check python examples
  .venv/bin/ruff format --check python examples
  echo "== python: pytest"
  # The client tests start the admin binary that `cargo test` just built.
  RAFIKI_ADMIN_BIN=${RAFIKI_ADMIN_BIN:-$PWD/target/debug/rafiki-admin} .venv/bin/pytest -q python/tests
fi
