#!/usr/bin/env bash
# Runs Rafiki on this machine: a local Postgres (Debian's packages, started by
# scripts/postgres.sh) unless DATABASE_URL or DATABASE_URL_FILE is set, and the admin on port
# 3000 (ADMIN_PORT). That Postgres requires a password, kept in a file only this user can read
# (next to its data directory); the admin gets its URL as DATABASE_URL_FILE.
# Without APP_SECRET and SUPERADMIN_PASSWORD (or their _FILE variants) it runs in dev mode:
# superadmin@rafiki / rafiki, listening on 127.0.0.1 only. Workers run models with RAFIKI_PYTHON,
# by default the repository's .venv, which this script makes and keeps up to date.
#
# `scripts/run.sh --docker` runs the container deployment instead: it builds the images
# (scripts/build-images.sh), writes `.env` with random secrets when there is none, and starts
# docker-compose.yml (Postgres and the admin with the docker backend) in the background.
# `scripts/run.sh --swarm` deploys docker-stack.yml (Postgres and the admin with the swarm
# backend) as the stack `rafiki`, on a one-node swarm it makes when the engine is in none, with
# Docker secrets it writes to ./secrets once (docs/swarm.md).
# `--monitoring` after either adds Prometheus scraping the admin and the predictors, with
# Rafiki's alerts (the compose file's `monitoring` profile, docker-stack.monitoring.yml; see
# docs/observability.md).
set -euo pipefail
cd "$(dirname "$0")/.."

# 24 random bytes in hex: generated secrets.
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Waits up to $1 seconds for the admin on port 3000 to answer GET /health; then says $2 and
# exits 0, or says $3 and exits 1.
wait_until_up() {
  for _ in $(seq "$1"); do
    if curl -fsS -o /dev/null http://127.0.0.1:3000/health 2>/dev/null; then
      echo "== Rafiki is up on http://127.0.0.1:3000 ($2)"
      exit 0
    fi
    sleep 1
  done
  echo "the admin did not become healthy; see $3" >&2
  exit 1
}

monitoring=false
case "${1:-}:${2:-}" in
  --docker:--monitoring | --swarm:--monitoring) monitoring=true ;;
  --docker: | --swarm:) ;;
  --docker:* | --swarm:*)
    echo "run.sh: $1 takes only --monitoring, not '${*:2}'" >&2
    exit 2 ;;
esac

if [ "${1:-}" = "--docker" ]; then
  scripts/build-images.sh
  if [ ! -f .env ]; then
    password=$(secret)
    { cat .env.example
      echo "APP_SECRET=$(secret)"
      echo "SUPERADMIN_PASSWORD=$password"
      echo "POSTGRES_PASSWORD=$(secret)"
    } | grep -v -E '^(APP_SECRET|SUPERADMIN_PASSWORD|POSTGRES_PASSWORD)=$' >.env
    chmod 600 .env
    echo "== wrote .env: log in as superadmin@rafiki with password $password"
  fi
  compose=(docker-compose)
  command -v docker-compose >/dev/null || compose=(docker compose)
  if $monitoring; then compose+=(--profile monitoring); fi
  "${compose[@]}" up -d
  if $monitoring; then echo "== Prometheus is on http://127.0.0.1:9090"; fi
  wait_until_up 120 "passwords in .env; stop: ${compose[*]} down" "${compose[*]} logs admin"
fi

if [ "${1:-}" = "--swarm" ]; then
  scripts/build-images.sh
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    echo "== made a one-node swarm (to leave it: docker stack rm rafiki; docker swarm leave --force)"
  fi
  # The stack's secrets (docker-stack.yml), made once, readable only by this user.
  if [ ! -f secrets/database_url ]; then
    mkdir -p secrets && chmod 700 secrets
    password=$(secret)
    postgres_password=$(secret)
    (umask 077
      printf '%s' "$postgres_password" >secrets/postgres_password
      printf 'postgres://postgres:%s@postgres:5432/rafiki' "$postgres_password" >secrets/database_url
      secret >secrets/app_secret
      printf '%s' "$password" >secrets/superadmin_password)
    echo "== wrote secrets/: log in as superadmin@rafiki with password $password"
  fi
  stack_files=(-c docker-stack.yml)
  if $monitoring; then stack_files+=(-c docker-stack.monitoring.yml); fi
  docker stack deploy "${stack_files[@]}" rafiki
  wait_until_up 180 "password in secrets/superadmin_password; stop: docker stack rm rafiki" \
    "docker service logs rafiki_admin"
fi

if [ -z "${DATABASE_URL:-}" ] && [ -z "${DATABASE_URL_FILE:-}" ]; then
  # Creates the database `rafiki` when missing; prints the file that holds its URL.
  DATABASE_URL_FILE=$(scripts/postgres.sh --url-file rafiki)
  export DATABASE_URL_FILE
fi
export RAFIKI_DATA_DIR=${RAFIKI_DATA_DIR:-$PWD/data}

# Installs Debian's package $1, updating the package lists when it is not found at first.
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2 ||
    { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2; }
}

# Workers run model code in a bubblewrap sandbox (docs/security.md); the admin refuses to start
# without it unless RAFIKI_SANDBOX=off.
if [ "${RAFIKI_SANDBOX:-auto}" != off ] && ! command -v bwrap >/dev/null; then
  echo "== installing bubblewrap (Debian's bubblewrap) for the model sandbox" >&2
  apt_install bubblewrap
fi

# Workers run models with the interpreter in RAFIKI_PYTHON, which needs the rafiki package (the
# admin refuses to start otherwise). Unless it is given, that is the repository's .venv with the
# package installed, as scripts/test.sh makes it; pip is quiet and quick when nothing changed.
if [ -z "${RAFIKI_PYTHON:-}" ]; then
  if [ ! -x .venv/bin/pip ]; then
    echo "== python: making .venv, the interpreter workers run models with" >&2
    # Debian's python3 makes virtual environments only with python3-venv.
    python3 -m venv --clear .venv ||
      { echo "== installing python3-venv (Debian's)" >&2 && apt_install python3-venv &&
        python3 -m venv --clear .venv; }
  fi
  .venv/bin/pip install -q --disable-pip-version-check -e './python[examples]' >&2
  export RAFIKI_PYTHON=$PWD/.venv/bin/python
fi

args=()
if [ -z "${APP_SECRET:-}${APP_SECRET_FILE:-}" ] ||
  [ -z "${SUPERADMIN_PASSWORD:-}${SUPERADMIN_PASSWORD_FILE:-}" ]; then
  args+=(--dev)
fi
# The admin launches the worker and predictor binaries that sit next to it.
cargo build --release --locked --workspace --bins
exec target/release/rafiki-admin "${args[@]}" "$@"
