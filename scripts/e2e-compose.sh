#!/usr/bin/env bash
# End-to-end test of the container deployment: `docker-compose --profile monitoring up`
# (PostgreSQL, the admin with the docker backend, and Prometheus), then scripts/e2e_compose.py
# trains, deploys, predicts and stops through Rafiki's Python client, checking on the way that
# Prometheus scraped the admin and the predictor, and this script checks that no service
# container and no live service (so no GPU allocation) and no job network is left. Tears the
# stack down, volumes included, on exit.
# Needs the images of scripts/build-images.sh, port 3000 free, and the Python package in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

compose=(docker-compose)
if ! command -v docker-compose >/dev/null; then compose=(docker compose); fi
project=rafiki-e2e
work=$(mktemp -d)
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
cat >"$work/env" <<ENV
COMPOSE_PROJECT_NAME=$project
APP_SECRET=$(secret)
SUPERADMIN_PASSWORD=$(secret)
POSTGRES_PASSWORD=$(secret)
# Asked from its container; published where a Prometheus of the host's is unlikely to be.
RAFIKI_PROMETHEUS_PORT=19090
ENV
dc() { "${compose[@]}" -p "$project" --env-file "$work/env" "$@"; }
leftovers() { docker ps -aq --filter "label=rafiki-rs.project=$project"; }
leftover_networks() { docker network ls -q --filter "label=rafiki-rs.project=$project"; }

cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "== e2e failed; the admin's log:"
        dc logs --no-color --tail 200 admin || true
    fi
    leftovers | xargs -r docker rm -f -v >/dev/null || true
    leftover_networks | xargs -r docker network rm >/dev/null || true
    dc --profile monitoring down -v --remove-orphans >/dev/null 2>&1 || true
    # The workers' dependency environment volumes are the admin's, not compose's.
    docker volume ls -q --filter "label=rafiki-rs.project=$project" |
        xargs -r docker volume rm >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

echo "== e2e: docker-compose --profile monitoring up"
dc --profile monitoring up -d
for _ in $(seq 120); do
    curl -fsS -o /dev/null http://127.0.0.1:3000/health 2>/dev/null && break
    sleep 1
done
curl -fsS -o /dev/null http://127.0.0.1:3000/health

.venv/bin/python examples/datasets/build_datasets.py --out "$work/data" >/dev/null
set -a
# shellcheck source=/dev/null
. "$work/env"
set +a
E2E_PROJECT=$project E2E_PROMETHEUS_CONTAINER=$(dc --profile monitoring ps -q prometheus) \
    .venv/bin/python scripts/e2e_compose.py "$work/data"

left=$(leftovers)
if [ -n "$left" ]; then
    echo "FAILED: service containers left behind: $left"
    exit 1
fi
left=$(leftover_networks)
if [ -n "$left" ]; then
    echo "FAILED: job networks left behind: $left"
    exit 1
fi
live=$(dc exec -T postgres psql -U postgres -d rafiki -tAc \
    "select count(*) from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')")
if [ "$live" != "0" ]; then
    echo "FAILED: $live services still live (holding GPUs)"
    exit 1
fi
echo "1 passed, 0 failed: e2e-compose"
