#!/usr/bin/env bash
# A long fuzz run of the admin's API (the soak version of CI's python/tests/test_api_fuzz.py):
# schemathesis, every check and phase, EXAMPLES cases per operation and phase (default 1000),
# a fresh seed unless RAFIKI_FUZZ_SEED is set. The full output goes to FUZZ_OUTPUT
# (default target/fuzz-api.txt); the run fails like the CI one, on any 5xx, undocumented status
# or schema mismatch.
#
#   scripts/fuzz-api.sh [EXAMPLES]
#
# Needs what the Python tests need: the debug admin binary (cargo build --workspace --bins), a
# Postgres server (RAFIKI_TEST_DATABASE_URL, else scripts/postgres.sh starts Debian's) and
# .venv with the `test` extra (scripts/test.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."

examples=${1:-1000}
output=${FUZZ_OUTPUT:-$PWD/target/fuzz-api.txt}
mkdir -p "$(dirname "$output")"
if [ -z "${RAFIKI_TEST_DATABASE_URL:-}" ]; then
  RAFIKI_TEST_DATABASE_URL=$(scripts/postgres.sh)
fi
export RAFIKI_TEST_DATABASE_URL
export RAFIKI_PYTHON=${RAFIKI_PYTHON:-$PWD/.venv/bin/python}
export RAFIKI_FUZZ_EXAMPLES=$examples
export RAFIKI_FUZZ_SEED=${RAFIKI_FUZZ_SEED:-$RANDOM$RANDOM}
export RAFIKI_FUZZ_OUTPUT=$output
echo "== fuzzing with $examples examples per operation and phase, seed $RAFIKI_FUZZ_SEED"
start=$(date +%s)
status=0
.venv/bin/pytest -q python/tests/test_api_fuzz.py || status=$?
echo "== $(( $(date +%s) - start )) s; schemathesis' report: $output"
grep -E '^  [0-9]+ generated' "$output" || true
exit $status
