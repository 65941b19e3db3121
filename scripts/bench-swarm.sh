#!/usr/bin/env bash
# Benchmark of issue 16 on the swarm backend: scripts/bench-train.sh (POST /train_jobs to the
# first trial RUNNING, and the per-trial overhead over N no-op trials per advisor) with
# RAFIKI_BACKEND=swarm on a one-node swarm, each worker a Swarm service of the images of
# scripts/build-images.sh. Makes the swarm when the engine is in none (and leaves it after);
# removes the benchmark's services and their dependency-environment volumes either way.
# Usage: scripts/bench-swarm.sh [trials, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
project=bench-swarm
made_swarm=false
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = inactive ]; then
  docker swarm init --advertise-addr 127.0.0.1 > /dev/null
  made_swarm=true
fi
clean_up() {
  docker service ls -q --filter "label=rafiki-rs.project=$project" | xargs -r docker service rm > /dev/null
  # Swarm removes the services' containers in the background; their volumes go after them.
  for _ in $(seq 60); do
    [ -z "$(docker ps -aq --filter "label=rafiki-rs.project=$project")" ] && break
    sleep 0.5
  done
  docker volume ls -q --filter "label=rafiki-rs.project=$project" | xargs -r docker volume rm > /dev/null || true
  if $made_swarm; then docker swarm leave --force > /dev/null; fi
}
trap clean_up EXIT
# Workers reach the admin on the node's host (host.docker.internal): it must listen there.
RAFIKI_BACKEND=swarm RAFIKI_DOCKER_PROJECT=$project RAFIKI_BIND_HOST=0.0.0.0 \
  scripts/bench-train.sh "${1:-200}"
