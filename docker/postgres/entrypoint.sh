#!/bin/bash
# Entrypoint of rafiki-rs/postgres:15.
#
# On first start (no PG_VERSION in $PGDATA) it creates the cluster with `initdb` and configures
# it through files; the only server it ever starts is the final one, in the foreground, so the
# first "database system is ready to accept connections" line in the logs means ready (no
# temporary server prints one earlier). POSTGRES_DB is created in single-user mode, which opens
# no socket.
#
#   POSTGRES_PASSWORD  password of POSTGRES_USER. Set: connections over TCP need it
#                      (scram-sha-256). Unset or empty: every connection is trusted, for
#                      throwaway test databases only.
#   POSTGRES_PASSWORD_FILE  a file holding that password instead (Docker secrets); not both
#   POSTGRES_USER      the superuser (default postgres)
#   POSTGRES_DB        a database to create besides `postgres` (default: none)
#   POSTGRES_INITDB_ARGS  extra arguments for initdb
#
# Arguments are passed to `postgres` (e.g. `-c fsync=off`); any other command runs as given.
set -Eeuo pipefail

PGDATA=${PGDATA:-/var/lib/postgresql/data}
export PGDATA

log() { echo "postgres-entrypoint: $*" >&2; }

if [[ $# -eq 0 || ${1:0:1} == - ]]; then
    set -- postgres "$@"
fi
if [[ $1 != postgres ]]; then
    exec "$@"
fi

# As root: make the data and socket directories the postgres user's, then continue as it.
if [[ $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

init_cluster() {
    local user=${POSTGRES_USER:-postgres}
    local password=${POSTGRES_PASSWORD:-}
    if [[ -n ${POSTGRES_PASSWORD_FILE:-} ]]; then
        if [[ -n $password ]]; then
            log "set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE, not both"
            exit 1
        fi
        password=$(< "$POSTGRES_PASSWORD_FILE")
    fi
    local pwfile='' initdb_args=()
    if [[ -n $password ]]; then
        pwfile=$(mktemp)
        printf '%s\n' "$password" > "$pwfile"
        initdb_args+=(--pwfile="$pwfile")
    fi
    # shellcheck disable=SC2206 # POSTGRES_INITDB_ARGS is split on purpose
    initdb_args+=(${POSTGRES_INITDB_ARGS:-})
    log "initialising a new cluster in $PGDATA"
    initdb --username="$user" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust \
        --auth-host="$([[ -n $password ]] && echo scram-sha-256 || echo trust)" \
        "${initdb_args[@]}" > /dev/null
    [[ -z $pwfile ]] || rm -f "$pwfile"

    local method=trust
    if [[ -n $password ]]; then
        method=scram-sha-256
    else
        log "WARNING: POSTGRES_PASSWORD is not set: every connection is trusted, without a password"
    fi
    {
        echo
        echo "# rafiki-rs/postgres: connections from other hosts (containers)"
        echo "host all all all $method"
    } >> "$PGDATA/pg_hba.conf"
    {
        echo
        echo "# rafiki-rs/postgres"
        echo "listen_addresses = '*'"
        echo "jit = off # the image has no JIT provider"
    } >> "$PGDATA/postgresql.conf"

    if [[ -n ${POSTGRES_DB:-} && ${POSTGRES_DB} != postgres ]]; then
        if [[ $POSTGRES_DB == *$'\n'* ]]; then
            log "POSTGRES_DB must be one line"
            exit 1
        fi
        local quoted=${POSTGRES_DB//\"/\"\"}
        log "creating database \"$POSTGRES_DB\""
        local out
        if ! out=$(echo "CREATE DATABASE \"$quoted\";" |
            postgres --single -j -D "$PGDATA" -c listen_addresses='' postgres 2>&1) ||
            grep -q 'ERROR:' <<< "$out"; then
            echo "$out" >&2
            log "could not create database \"$POSTGRES_DB\""
            exit 1
        fi
    fi
    log "initialisation done; starting the server"
}

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    if [[ -n $(ls -A "$PGDATA") ]]; then
        log "$PGDATA is not empty and holds no cluster (no PG_VERSION); refusing to initialise it"
        exit 1
    fi
    init_cluster
fi

exec "$@"
