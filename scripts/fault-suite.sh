#!/usr/bin/env bash
# The fault suite of issue 14, item 8 (crates/rafiki-admin/tests/api/faults.rs), run alone with
# its output shown: four faults, each during its own 40-trial train job, and a table of the
# recovery times measured (from the fault's end to the first 200 answer, and to the next
# completed trial). `cargo test --workspace` (scripts/test.sh, CI) runs the same tests.
# Usage: scripts/fault-suite.sh    (RAFIKI_TEST_DATABASE_URL and RAFIKI_PYTHON as for the tests;
#                                   by default Debian's Postgres of scripts/postgres.sh and .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
export RAFIKI_TEST_DATABASE_URL=${RAFIKI_TEST_DATABASE_URL:-$(scripts/postgres.sh)}
export RAFIKI_PYTHON=${RAFIKI_PYTHON:-$PWD/.venv/bin/python}
start=$(date +%s)
out=$(cargo test --locked -q -p rafiki-admin --test api faults:: -- --nocapture 2>&1) || {
  echo "$out"
  exit 1
}
echo "$out" | grep '^fault suite |' | sort
echo "fault suite: passed in $(($(date +%s) - start)) s (build included)"
