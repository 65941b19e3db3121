#!/usr/bin/env bash
# Builds Rafiki-rs's container images (docs/docker.md):
#
#   <prefix>/base:bookworm     Debian bookworm: `docker pull debian:bookworm-slim`, or made from
#                              Debian's packages with debootstrap when no registry answers
#   <prefix>/postgres:15       PostgreSQL 15 from Debian, first-start initialisation
#   <prefix>/prometheus:<tag>  Prometheus from Debian with docker/prometheus/ (the compose and
#                              stack files' `monitoring` profile)
#   <prefix>/worker:<tag>      rafiki-worker + Python 3 with numpy, scikit-learn, Pillow + `rafiki`
#   <prefix>/predictor:<tag>   rafiki-predictor
#   <prefix>/admin:<tag>       rafiki-admin + the `rafiki` CLI
#   <prefix>/swarm-node:latest a Docker engine in a container, a node of the multi-node test
#                              swarm (scripts/swarm-nodes.sh); only when named
#
# The Rust binaries are built on this host with cargo (Debian bookworm, like the images) and
# copied, stripped of debug information, into target/docker-context/<profile>/. Running it again with
# nothing changed reuses everything (cargo and docker caches) and takes seconds.
#
# Usage: scripts/build-images.sh [--rebuild-base] [--no-cargo] [IMAGE...]
#   IMAGE           worker, predictor, admin, postgres, prometheus (default: these five, `all`),
#                   swarm-node
#                   (only when named); the base is always made when missing
#   --rebuild-base  make the base image again (pull or debootstrap) even when it exists
#   --no-cargo      do not run cargo: use the binaries already in the target directory
#
# Environment:
#   RAFIKI_IMAGE_PREFIX     repository prefix of the images (default rafiki-rs)
#   RAFIKI_IMAGE_TAG        tag of worker, predictor and admin (default latest)
#   RAFIKI_IMAGE_PROFILE    release (default: cargo build --release) or debug (cargo build)
#   RAFIKI_BASE_UPSTREAM    image pulled for the base (default debian:bookworm-slim);
#                           set it to `none` to skip the pull and always use debootstrap
#   DEBIAN_MIRROR           default http://deb.debian.org/debian
#   DEBIAN_SECURITY_MIRROR  default http://deb.debian.org/debian-security
#   CARGO_TARGET_DIR        as for cargo (default ./target)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=${RAFIKI_IMAGE_PREFIX:-rafiki-rs}
tag=${RAFIKI_IMAGE_TAG:-latest}
profile=${RAFIKI_IMAGE_PROFILE:-release}
upstream=${RAFIKI_BASE_UPSTREAM:-debian:bookworm-slim}
export DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
export DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
target_dir=${CARGO_TARGET_DIR:-target}
context=$target_dir/docker-context
base_image=$prefix/base:bookworm

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

rebuild_base=0
run_cargo=1
selected=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --rebuild-base) rebuild_base=1 ;;
        --no-cargo) run_cargo=0 ;;
        -h | --help) usage; exit 0 ;;
        worker | predictor | admin | postgres | prometheus | swarm-node) selected+=("$1") ;;
        all) selected+=(worker predictor admin postgres prometheus) ;;
        *) echo "build-images: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ ${#selected[@]} -gt 0 ]] || selected=(worker predictor admin postgres prometheus)
wants() { [[ " ${selected[*]} " == *" $1 "* ]]; }

case $profile in
    release) cargo_args=(build --release --locked --bins -p rafiki-admin -p rafiki-worker
        -p rafiki-predictor -p rafiki-client)
        bin_dir=$target_dir/release ;;
    debug) cargo_args=(build --locked --bins)
        bin_dir=$target_dir/debug ;;
    *) echo "build-images: RAFIKI_IMAGE_PROFILE must be release or debug, not '$profile'" >&2
        exit 2 ;;
esac

sudo=()
[[ $(id -u) == 0 ]] || sudo=(sudo)

# ---------------------------------------------------------------------------------------------
# Timing and reporting

report=()
now_us() { echo "${EPOCHREALTIME/./}"; }
script_start=$(now_us)
seconds_since() { # start_us -> "12.3"
    local us=$(($(now_us) - $1))
    printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}
say() { echo "==> $*"; }
record() { report+=("$(printf '%-32s %8ss  %s' "$1" "$2" "${3:-}")"); }

# Runs a command with its output in a log file; on failure shows the end of the log.
logged() { # log_file command...
    local log=$1
    shift
    if ! "$@" > "$log" 2>&1; then
        echo "build-images: failed: $*" >&2
        echo "---- last lines of $log ----" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

image_exists() { docker image inspect "$1" > /dev/null 2>&1; }
image_id() { { docker image inspect -f '{{.Id}}' "$1" 2> /dev/null || true; } | cut -c8-19; }

logs=$context/logs
mkdir -p "$logs"
# One run at a time per target directory: runs share the build contexts and logs.
exec 9> "$context/.lock"
if ! flock -n 9; then
    echo "build-images: waiting for another build-images.sh run to finish" >&2
    flock 9
fi
# One set of build contexts per profile, so switching profiles rebuilds nothing needlessly.
context=$context/$profile

# ---------------------------------------------------------------------------------------------
# Base image

rootfs=''
finalize_ctr=''
stage_image=''
cleanup() {
    if [[ -n $finalize_ctr ]]; then docker rm -f "$finalize_ctr" > /dev/null 2>&1 || true; fi
    if [[ -n $stage_image ]]; then docker rmi "$stage_image" > /dev/null 2>&1 || true; fi
    if [[ -n $rootfs && -d $rootfs ]]; then "${sudo[@]}" rm -rf --one-file-system "$rootfs"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# debootstrap's minimal bookworm, finalized in a container (docker/base/finalize.sh: sources,
# security updates, no docs or caches) and squashed into one layer by export and import.
debootstrap_base() {
    if ! command -v debootstrap > /dev/null && [[ ! -x /usr/sbin/debootstrap ]]; then
        say "installing debootstrap (apt-get)"
        logged "$logs/apt-debootstrap.log" "${sudo[@]}" sh -c \
            'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap'
    fi
    local debootstrap
    debootstrap=$(command -v debootstrap || echo /usr/sbin/debootstrap)
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/rafiki-rootfs.XXXXXX")
    say "debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (log: $logs/debootstrap.log)"
    logged "$logs/debootstrap.log" "${sudo[@]}" "$debootstrap" --variant=minbase bookworm \
        "$rootfs" "$DEBIAN_MIRROR"
    # Device nodes and the host's name and resolver are the engine's to provide.
    "${sudo[@]}" sh -c "rm -rf '$rootfs'/dev/* && : > '$rootfs/etc/resolv.conf' && : > '$rootfs/etc/hostname'"
    stage_image=$prefix/base-stage:bookworm-$$
    say "importing the tree as $stage_image"
    "${sudo[@]}" tar --numeric-owner -C "$rootfs" -c . | docker import - "$stage_image" > /dev/null
    "${sudo[@]}" rm -rf --one-file-system "$rootfs"
    rootfs=''
    finalize_ctr=rafiki-base-finalize-$$
    say "finalizing in a container (log: $logs/base-finalize.log)"
    logged "$logs/base-finalize.log" docker run -i --name "$finalize_ctr" \
        -e DEBIAN_MIRROR -e DEBIAN_SECURITY_MIRROR "$stage_image" bash -s \
        < docker/base/finalize.sh
    docker export "$finalize_ctr" | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' \
        -c 'LABEL rafiki-rs.image=base' \
        -c 'LABEL org.opencontainers.image.description="Debian bookworm, debootstrap minbase"' \
        - "$base_image" > /dev/null
    docker rm "$finalize_ctr" > /dev/null
    finalize_ctr=''
    docker rmi "$stage_image" > /dev/null
    stage_image=''
}

ensure_base() {
    local t0
    t0=$(now_us)
    if [[ $rebuild_base == 0 ]] && image_exists "$base_image"; then
        say "base: reusing $base_image (--rebuild-base makes it again)"
        record "$base_image" "$(seconds_since "$t0")" "reused"
        return
    fi
    if [[ $upstream != none ]] && docker pull -q "$upstream" > "$logs/pull.log" 2>&1; then
        say "base: pulled $upstream"
        printf 'FROM %s\nLABEL rafiki-rs.image=base\n' "$upstream" |
            docker build -q -t "$base_image" - > /dev/null
        record "$base_image" "$(seconds_since "$t0")" "pulled $upstream"
        return
    fi
    [[ $upstream == none ]] ||
        say "base: cannot pull $upstream ($(tail -n 1 "$logs/pull.log" | cut -c1-100)); making it from Debian packages"
    debootstrap_base
    record "$base_image" "$(seconds_since "$t0")" "debootstrap"
}

# ---------------------------------------------------------------------------------------------
# Build contexts: only what each image needs, files rewritten only when their content changed.

replace_if_changed() { # new_file dest
    if cmp -s "$1" "$2"; then
        rm -f "$1"
    else
        mv -f "$1" "$2"
    fi
}

stage_binary() { # binary_name context_dir
    local src=$bin_dir/$1 dest=$2/$1
    if [[ ! -x $src ]]; then
        echo "build-images: $src is missing (run without --no-cargo)" >&2
        exit 1
    fi
    mkdir -p "$2"
    objcopy --strip-debug "$src" "$dest.new"
    replace_if_changed "$dest.new" "$dest"
}

stage_python() { # context_dir
    local dest=$1/python new=$1/python.new
    rm -rf "$new"
    mkdir -p "$new"
    tar -C python --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
        -c pyproject.toml README.md rafiki | tar -C "$new" -x
    if [[ -d $dest ]] && diff -r -q "$new" "$dest" > /dev/null; then
        rm -rf "$new"
    else
        rm -rf "$dest"
        mv "$new" "$dest"
    fi
}

build_image() { # name ref
    local name=$1 ref=$2 t0 before after how
    t0=$(now_us)
    before=$(image_id "$ref")
    say "$name: building $ref (log: $logs/$name.log)"
    logged "$logs/$name.log" docker build \
        --build-arg "BASE_IMAGE=$base_image" \
        --label "rafiki-rs.image=$name" \
        -t "$ref" -f "docker/$name.Dockerfile" "$context/$name"
    after=$(image_id "$ref")
    if [[ -n $before && $before == "$after" ]]; then how="unchanged $after"; else how="built $after"; fi
    record "$ref" "$(seconds_since "$t0")" "$how"
}

# ---------------------------------------------------------------------------------------------

ensure_base

if wants postgres; then
    mkdir -p "$context/postgres"
    cp docker/postgres/entrypoint.sh "$context/postgres/entrypoint.sh.new"
    chmod 755 "$context/postgres/entrypoint.sh.new"
    replace_if_changed "$context/postgres/entrypoint.sh.new" "$context/postgres/entrypoint.sh"
    build_image postgres "$prefix/postgres:15"
fi

if wants prometheus; then
    mkdir -p "$context/prometheus"
    for file in prometheus.yml rules.yml; do
        cp "docker/prometheus/$file" "$context/prometheus/$file.new"
        replace_if_changed "$context/prometheus/$file.new" "$context/prometheus/$file"
    done
    build_image prometheus "$prefix/prometheus:$tag"
fi

if wants swarm-node; then
    mkdir -p "$context/swarm-node"
    cp docker/swarm-node/entrypoint.sh "$context/swarm-node/entrypoint.sh.new"
    chmod 755 "$context/swarm-node/entrypoint.sh.new"
    replace_if_changed "$context/swarm-node/entrypoint.sh.new" "$context/swarm-node/entrypoint.sh"
    build_image swarm-node "$prefix/swarm-node:latest"
fi

if wants worker || wants predictor || wants admin; then
    if [[ $run_cargo == 1 ]]; then
        t0=$(now_us)
        say "cargo ${cargo_args[*]} (log: $logs/cargo.log)"
        logged "$logs/cargo.log" cargo "${cargo_args[@]}"
        record "cargo ($profile)" "$(seconds_since "$t0")" "$bin_dir"
    fi
    if wants worker; then
        stage_binary rafiki-worker "$context/worker"
        stage_python "$context/worker"
        build_image worker "$prefix/worker:$tag"
    fi
    if wants predictor; then
        stage_binary rafiki-predictor "$context/predictor"
        build_image predictor "$prefix/predictor:$tag"
    fi
    if wants admin; then
        stage_binary rafiki-admin "$context/admin"
        stage_binary rafiki "$context/admin"
        build_image admin "$prefix/admin:$tag"
    fi
fi

# Images of ours that a rebuild left without a tag.
docker image prune -f --filter label=rafiki-rs.image > /dev/null || true

echo
echo "Built in $(seconds_since "$script_start")s:"
printf '  %s\n' "${report[@]}"
echo
docker image ls --filter "label=rafiki-rs.image" --filter "reference=$prefix/*" \
    --format '{{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}' | sort | sed 's/^/  /'
