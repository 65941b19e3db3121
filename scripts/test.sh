#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests, Python lint and tests.
# Needs a Postgres server for the integration tests: RAFIKI_TEST_DATABASE_URL, or one is
# started with scripts/postgres.sh. The Python package goes into .venv, whose interpreter the
# end-to-end tests give to the workers (RAFIKI_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

export RAFIKI_TEST_DATABASE_URL=${RAFIKI_TEST_DATABASE_URL:-$(scripts/postgres.sh)}
echo "== tests use the Postgres server at $RAFIKI_TEST_DATABASE_URL"

echo "== python: install into .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e './python[test,examples]'
export RAFIKI_PYTHON=$PWD/.venv/bin/python

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries the tests launch)"
cargo build --workspace --bins --locked
echo "== cargo test"
cargo test --workspace --locked

echo "== python: ruff"
.venv/bin/ruff check python examples
.venv/bin/ruff format --check python examples
echo "== python: pytest"
# The client tests start the admin binary built above.
RAFIKI_ADMIN_BIN=${RAFIKI_ADMIN_BIN:-$PWD/target/debug/rafiki-admin} .venv/bin/pytest -q python/tests
