#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust tests, Python lint and tests.
#
# The integration tests create their databases on a Postgres server:
#   - RAFIKI_TEST_DATABASE_URL when it is set (a server the tests may create databases in);
#   - else, where Docker serves (`docker info` works), the tests' container of
#     rafiki-rs/postgres:15, which the Rust tests start or reuse themselves (crates/rafiki-testing)
#     and whose URL `scripts/postgres.sh --docker` gives the Python tests;
#   - else Debian's Postgres, started by scripts/postgres.sh.
# Where Docker serves, the images are built first (scripts/build-images.sh, debug profile, from
# the debug binaries built here, and the swarm-node image of the multi-node tests' swarm),
# RAFIKI_TEST_DOCKER=1 tells the tests that need Docker to run (the multi-node ones bring up
# and take down their swarm of engines in containers, scripts/swarm-nodes.sh),
# scripts/e2e-compose.sh runs the compose deployment end to end, and scripts/e2e-stack.sh
# the swarm one (`docker stack deploy`, on a swarm of its own). The Python package
# goes into .venv, whose interpreter the end-to-end tests give to the workers (RAFIKI_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

docker_serves=false
if docker info > /dev/null 2>&1; then
  docker_serves=true
  echo "== docker serves: images are built and the Docker tests run"
fi

if [ -n "${RAFIKI_TEST_DATABASE_URL:-}" ]; then
  echo "== tests use the Postgres server at $RAFIKI_TEST_DATABASE_URL (RAFIKI_TEST_DATABASE_URL)"
elif ! $docker_serves; then
  RAFIKI_TEST_DATABASE_URL=$(scripts/postgres.sh)
  export RAFIKI_TEST_DATABASE_URL
  echo "== tests use Debian's Postgres at $RAFIKI_TEST_DATABASE_URL (scripts/postgres.sh)"
fi

# The process backend sandboxes model code with bubblewrap; the tests prove it holds.
if ! command -v bwrap > /dev/null; then
  echo "== installing bubblewrap (Debian's bubblewrap) for the model sandbox"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap > /dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap > /dev/null; }
fi

# The console's browser tests drive Debian's headless Chromium through its WebDriver.
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
  echo "== installing chromium and chromium-driver (Debian's) for the console's browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null; }
fi
# They must run here, not skip.
export RAFIKI_TEST_BROWSER=1

# Debian's promtool (prometheus package) lints the admin's /metrics and checks the monitoring
# profile's configuration and rules (scripts/check-monitoring.sh).
if ! command -v promtool > /dev/null; then
  echo "== installing prometheus (Debian's, for promtool)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus > /dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus > /dev/null; }
fi
# The metrics lint test must run here, not skip.
export RAFIKI_TEST_PROMTOOL=1

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

# The Python tests' server: the one above, or the container's.
python_database_url=${RAFIKI_TEST_DATABASE_URL:-}
if $docker_serves; then
  echo "== docker: images from the debug binaries (scripts/build-images.sh)"
  # swarm-node: the engines of the multi-node tests' swarm (scripts/swarm-nodes.sh).
  RAFIKI_IMAGE_PROFILE=debug scripts/build-images.sh --no-cargo all swarm-node
  export RAFIKI_TEST_DOCKER=1
  if [ -z "$python_database_url" ]; then
    python_database_url=$(scripts/postgres.sh --docker)
    echo "== tests use the Postgres container rafiki-rs-test-postgres at $python_database_url"
    # The Python tests create their database with psql.
    if ! command -v psql > /dev/null; then
      echo "== installing psql (Debian's postgresql-client) for the Python tests"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client > /dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client > /dev/null; }
    fi
  fi
fi

# The Docker tests (the swarm ones among them, which make a swarm when the engine is in none)
# must leave the engine as they found it.
if $docker_serves; then
  swarm_before=$(docker info --format '{{.Swarm.LocalNodeState}}')
fi

echo "== cargo test"
cargo test --workspace --locked

echo "== prometheus: the monitoring profile's configuration and rules (scripts/check-monitoring.sh)"
scripts/check-monitoring.sh

if $docker_serves; then
  echo "== docker: the tests left no swarm, service, container or network behind, nor swarm nodes"
  swarm_after=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$swarm_before" != "$swarm_after" ]; then
    echo "the engine's swarm state was $swarm_before before the tests, $swarm_after after" >&2
    exit 1
  fi
  # The tests' projects are named rafiki-test-*, and so are their objects; a deployment's own
  # are left alone.
  left=$(
    { docker ps -a --filter label=rafiki-rs.project --format 'container {{.Names}}'
      docker network ls --filter label=rafiki-rs.project --format 'network {{.Name}}'
      if [ "$swarm_after" = active ]; then
        docker service ls --filter label=rafiki-rs.project --format 'service {{.Name}}'
      fi
    } | awk '$2 ~ /^rafiki-test-/'
    # The multi-node tests' swarm (scripts/swarm-nodes.sh), taken down by the last of them.
    docker ps -a --filter name=rafiki-swarm-node --format 'container {{.Names}}'
    docker network ls --filter name=rafiki-swarm-nodes --format 'network {{.Name}}'
    docker volume ls --filter label=rafiki-rs.swarm-nodes --format 'volume {{.Name}}'
  )
  if [ -n "$left" ]; then
    echo "the tests left these behind:" >&2
    echo "$left" >&2
    exit 1
  fi
fi

if $docker_serves; then
  echo "== docker: the whole deployment in containers (scripts/e2e-compose.sh)"
  scripts/e2e-compose.sh
  echo "== docker: the whole deployment on a swarm, with docker stack deploy (scripts/e2e-stack.sh)"
  scripts/e2e-stack.sh
fi

echo "== python: ruff"
.venv/bin/ruff check python examples scripts tests
.venv/bin/ruff format --check python examples scripts tests
echo "== python: pytest"
# The client tests start the admin binary built above.
RAFIKI_TEST_DATABASE_URL=$python_database_url \
  RAFIKI_ADMIN_BIN=${RAFIKI_ADMIN_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/rafiki-admin} \
  .venv/bin/pytest -q python/tests
