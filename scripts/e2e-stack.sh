#!/usr/bin/env bash
# End-to-end test of the swarm deployment: `docker stack deploy` of docker-stack.yml and
# docker-stack.monitoring.yml (PostgreSQL, the admin with the swarm backend, Prometheus; secrets
# as Docker secrets) on a one-node swarm this script makes, then scripts/e2e_compose.py
# (E2E_BACKEND=swarm) trains, deploys, predicts and stops through Rafiki's Python client, with
# every worker and predictor a Swarm service, and checks that Prometheus scraped the admin and
# the predictor. Checks that no service of the admin's is left, then removes the stack, its volumes
# and the swarm. An engine already in a swarm is left alone: the test is skipped there.
# Needs the images of scripts/build-images.sh, port 3000 free, and the Python package in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

stack=rafiki-e2e-stack
export RAFIKI_DOCKER_PROJECT=$stack RAFIKI_SWARM_NETWORK=$stack-overlay
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != inactive ]; then
    echo "== e2e-stack skipped: the engine is in a swarm this test did not make"
    exit 0
fi
work=$(mktemp -d)
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
leftovers() { docker service ls -q --filter "label=rafiki-rs.project=$stack"; }
stack_containers() { docker ps -aq --filter "label=com.docker.stack.namespace=$stack"; }

cleanup() {
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "== e2e-stack failed; the admin's log:"
        docker service logs --no-task-ids --tail 200 "${stack}_admin" 2>&1 || true
    fi
    leftovers | xargs -r docker service rm >/dev/null 2>&1 || true
    docker stack rm "$stack" >/dev/null 2>&1 || true
    for _ in $(seq 60); do
        [ -z "$(stack_containers; docker ps -aq --filter "label=rafiki-rs.project=$stack")" ] && break
        sleep 1
    done
    docker swarm leave --force >/dev/null 2>&1 || true
    docker volume ls -q --filter "name=^${stack}_" | xargs -r docker volume rm >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=rafiki-rs.project=$stack" |
        xargs -r docker volume rm >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

docker swarm init --advertise-addr 127.0.0.1 >/dev/null
# The stack file reads its secrets from ./secrets next to it.
cp docker-stack.yml docker-stack.monitoring.yml "$work/"
mkdir -m 700 "$work/secrets"
postgres_password=$(secret)
superadmin_password=$(secret)
printf '%s' "$postgres_password" >"$work/secrets/postgres_password"
printf 'postgres://postgres:%s@postgres:5432/rafiki' "$postgres_password" >"$work/secrets/database_url"
secret >"$work/secrets/app_secret"
printf '%s' "$superadmin_password" >"$work/secrets/superadmin_password"

echo "== e2e-stack: docker stack deploy"
(cd "$work" && docker stack deploy -c docker-stack.yml -c docker-stack.monitoring.yml "$stack" >/dev/null)
for _ in $(seq 180); do
    curl -fsS -o /dev/null http://127.0.0.1:3000/health 2>/dev/null && break
    sleep 1
done
curl -fsS -o /dev/null http://127.0.0.1:3000/health

.venv/bin/python examples/datasets/build_datasets.py --out "$work/data" >/dev/null
# A container on the network of the admin's services reaches the admin's API but not its
# metrics, which listen on its monitoring network's address only.
probe='import socket, sys
socket.create_connection(("admin", 3000), timeout=5).close()
try:
    socket.create_connection(("admin", 9100), timeout=3).close()
    sys.exit("the admin'"'"'s metrics port answered on the services network")
except OSError:
    pass'
docker run --rm --network "$RAFIKI_SWARM_NETWORK" "${RAFIKI_IMAGE_PREFIX:-rafiki-rs}/worker:${RAFIKI_IMAGE_TAG:-latest}" \
    python3 -c "$probe" || { echo "FAILED: the metrics port is within the services' reach"; exit 1; }
echo "== the services' network reaches the admin's API, not its metrics"
for _ in $(seq 60); do
    prometheus=$(docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_prometheus")
    [ -n "$prometheus" ] && break
    sleep 1
done
[ -n "$prometheus" ] || { echo "FAILED: no container of ${stack}_prometheus"; exit 1; }
SUPERADMIN_PASSWORD=$superadmin_password E2E_BACKEND=swarm E2E_PROJECT=$stack \
    E2E_PROMETHEUS_CONTAINER=$prometheus \
    .venv/bin/python scripts/e2e_compose.py "$work/data"

left=$(leftovers)
if [ -n "$left" ]; then
    echo "FAILED: services of the admin's left behind: $left"
    exit 1
fi
echo "1 passed, 0 failed: e2e-stack"
