#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine, for tests (docs/swarm.md, "Multi-node
# tests"): Docker engines in containers of rafiki-rs/swarm-node:latest on a private bridge
# network, each a swarm node with its own address (../shared/recipes/multinode-swarm.md).
#
#   rafiki-swarm-node1   172.31.250.11   manager; engine API on tcp://172.31.250.11:2375
#   rafiki-swarm-node2   172.31.250.12   worker
#   rafiki-swarm-node3   172.31.250.13   worker
#
# on the network rafiki-swarm-nodes (172.31.250.0/24; the host is its gateway, 172.31.250.1),
# with a dispatcher heartbeat of 1 s so that a stopped node is Down within seconds. Each node's
# /var/lib/docker is a volume of its own (rafiki-swarm-nodeN). Everything made here carries the
# label rafiki-rs.swarm-nodes; the host engine's own swarm and other containers are never
# touched.
#
# Usage: scripts/swarm-nodes.sh up|down|status|load IMAGE...
#   up          make (or restart) the nodes and the swarm, wait until every node is Ready, and
#               print the manager's engine URL (tcp://172.31.250.11:2375) on standard output;
#               running it on a swarm that is up changes nothing
#   load IMAGE  copy images from the host's engine into every node (docker save | docker load),
#               skipping nodes that have them already
#   status      the node containers and the swarm's nodes as the manager lists them
#   down        remove the nodes, their volumes and the network (only those made here)
#
# Environment:
#   RAFIKI_SWARM_NODE_IMAGE  the node image (default rafiki-rs/swarm-node:latest, made by
#                            `scripts/build-images.sh swarm-node`)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

image=${RAFIKI_SWARM_NODE_IMAGE:-rafiki-rs/swarm-node:latest}
network=rafiki-swarm-nodes
subnet_prefix=172.31.250
subnet=$subnet_prefix.0/24
label=rafiki-rs.swarm-nodes
count=3
manager_addr=$subnet_prefix.11
manager_url=tcp://$manager_addr:2375

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
say() { echo "swarm-nodes: $*" >&2; }
die() { say "$*"; exit 1; }

node_name() { echo "rafiki-swarm-node$1"; }
node_addr() { echo "$subnet_prefix.1$1"; }
# Runs the docker CLI of node $1 (its engine, through the unix socket inside it).
in_node() { local n=$1; shift; docker exec "$(node_name "$n")" docker "$@"; }

# One run at a time on this machine: tests of several processes may bring the swarm up or
# down together.
lock_file=${TMPDIR:-/tmp}/rafiki-swarm-nodes.lock
exec 9> "$lock_file"
flock 9

# Waits up to $1 seconds until the command after $2 (what is awaited) succeeds.
wait_for() { # seconds what command...
    local seconds=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@" > /dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what: not within $seconds s"
        sleep 0.3
    done
}

ensure_network() {
    if docker network inspect "$network" > /dev/null 2>&1; then
        [[ $(docker network inspect -f "{{index .Labels \"$label\"}}" "$network") == 1 ]] ||
            die "a network $network exists that this script did not make; not touching it"
        return
    fi
    docker network create --driver bridge --subnet "$subnet" --gateway "$subnet_prefix.1" \
        --label "$label=1" "$network" > /dev/null
}

# Starts node $1's container: made when missing, started when stopped.
ensure_node() {
    local n=$1 name state
    name=$(node_name "$n")
    if state=$(docker inspect -f '{{.State.Status}}' "$name" 2> /dev/null); then
        [[ $(docker inspect -f "{{index .Config.Labels \"$label\"}}" "$name") == 1 ]] ||
            die "a container $name exists that this script did not make; not touching it"
        [[ $state == running ]] || docker start "$name" > /dev/null
        return
    fi
    docker volume create --label "$label=1" "$name" > /dev/null
    # Not --privileged, which fails where the host's bounding set lacks CAP_SYS_RESOURCE:
    # every other capability, no seccomp or AppArmor profile, /proc and /sys unmasked, every
    # device. The entrypoint remounts /sys and the cgroups read-write.
    docker run -d --name "$name" --hostname "$name" --label "$label=1" \
        --network "$network" --ip "$(node_addr "$n")" \
        --cap-add ALL --cap-drop SYS_RESOURCE \
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
        --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' \
        -v "$name:/var/lib/docker" \
        "$image" > /dev/null
}

# Whether every node's hostname is listed Ready by the manager (a node that joined again
# after losing its state is also listed Down under its old id).
all_ready() {
    local listed n
    listed=$(in_node 1 node ls --format '{{.Hostname}} {{.Status}}') || return 1
    for n in $(seq 1 "$count"); do
        grep -qx "$(node_name "$n") Ready" <<< "$listed" || return 1
    done
}

swarm_state() { in_node "$1" info --format '{{.Swarm.LocalNodeState}}' 2> /dev/null || true; }

up() {
    docker image inspect "$image" > /dev/null 2>&1 ||
        die "no image $image: make it with scripts/build-images.sh swarm-node"
    ensure_network
    local n
    for n in $(seq 1 "$count"); do ensure_node "$n"; done
    for n in $(seq 1 "$count"); do
        wait_for 60 "the engine of $(node_name "$n") answering" in_node "$n" info
    done
    if [[ $(swarm_state 1) != active ]]; then
        in_node 1 swarm init --advertise-addr "$manager_addr" --listen-addr "$manager_addr:2377" \
            --dispatcher-heartbeat 1s > /dev/null
    fi
    local token
    token=$(in_node 1 swarm join-token -q worker)
    for n in $(seq 2 "$count"); do
        # A node restarted after `down` of the others, or whose swarm is gone, joins again.
        if [[ $(swarm_state "$n") != active ]]; then
            [[ $(swarm_state "$n") == inactive ]] || in_node "$n" swarm leave --force > /dev/null
            in_node "$n" swarm join --token "$token" --advertise-addr "$(node_addr "$n")" \
                "$manager_addr:2377" > /dev/null
        fi
    done
    wait_for 60 "every node Ready" all_ready
    echo "$manager_url"
}

load() {
    [[ $# -gt 0 ]] || die "load: name the images"
    local tmp n image_ref id lacking missing=() wanting=() pids=() pid
    for image_ref in "$@"; do
        id=$(docker image inspect -f '{{.Id}}' "$image_ref") || die "no image $image_ref here"
        lacking=0
        for n in $(seq 1 "$count"); do
            if [[ $(in_node "$n" image inspect -f '{{.Id}}' "$image_ref" 2> /dev/null) != "$id" ]]
            then
                lacking=1
                [[ " ${wanting[*]} " == *" $n "* ]] || wanting+=("$n")
            fi
        done
        ((lacking == 0)) || missing+=("$image_ref")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    say "loading ${missing[*]} into ${#wanting[@]} node(s)"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/rafiki-swarm-images.XXXXXX")
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    # One archive: layers the images share are saved and loaded once.
    docker save -o "$tmp/images.tar" "${missing[@]}"
    for n in "${wanting[@]}"; do
        docker exec -i "$(node_name "$n")" docker load -q < "$tmp/images.tar" > /dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || die "docker load of ${missing[*]} failed"; done
}

status() {
    docker ps -a --filter "label=$label" --format '{{.Names}}\t{{.Status}}'
    if docker inspect "$(node_name 1)" > /dev/null 2>&1; then
        in_node 1 node ls 2> /dev/null || true
    fi
    echo "manager: $manager_url"
}

down() {
    local ids id pids=()
    mapfile -t ids < <(docker ps -aq --filter "label=$label")
    [[ ${#ids[@]} -eq 0 ]] || docker rm -f -v "${ids[@]}" > /dev/null
    # Each volume holds a node's images (several seconds to delete): all at once.
    mapfile -t ids < <(docker volume ls -q --filter "label=$label")
    for id in "${ids[@]}"; do
        docker volume rm "$id" > /dev/null &
        pids+=($!)
    done
    for id in "${pids[@]}"; do wait "$id" || die "a volume was not removed"; done
    mapfile -t ids < <(docker network ls -q --filter "label=$label")
    [[ ${#ids[@]} -eq 0 ]] || docker network rm "${ids[@]}" > /dev/null
}

case ${1:-} in
    up) up ;;
    down) down ;;
    status) status ;;
    load) shift; load "$@" ;;
    -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
