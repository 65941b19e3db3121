#!/bin/sh
# Entrypoint of rafiki-rs/swarm-node (docker/swarm-node.Dockerfile): prepares the container for
# a Docker engine of its own and execs dockerd. Arguments are passed on to dockerd.
#
# The container runs unprivileged but with nearly every capability (scripts/swarm-nodes.sh:
# `--privileged` fails where the host's bounding set lacks CAP_SYS_RESOURCE), so what
# `--privileged` would give is done here: /sys and the cgroup v1 hierarchies are mounted
# read-only by the engine that runs the node, and are remounted read-write.
set -eu

mount -o remount,rw /sys
# cgroup v1: a tmpfs holding one mount per hierarchy (and links between them).
if [ -d /sys/fs/cgroup ] && ! [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mount -o remount,rw /sys/fs/cgroup 2> /dev/null || true
    for hierarchy in /sys/fs/cgroup/*/; do
        [ -L "${hierarchy%/}" ] && continue
        mount -o remount,bind,rw "$hierarchy"
    done
fi

# Swarm's overlay networks and the engine's mounts need mount propagation.
mount --make-rshared /

# A node that was stopped (tests stop nodes to make them go Down) restarts with the pid files
# of the engine that ran before: dockerd and containerd refuse to start over them.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid /run/docker.pid

# The TCP API is how the admin under test and scripts/swarm-nodes.sh reach the node's engine.
# It has no TLS and no authentication: it listens only on the node's address on the tests'
# private bridge network (rafiki-swarm-nodes), which nothing publishes outside this machine.
# `--tls=false` says so explicitly; without it, dockerd 20.10 waits 15 s at every start to show
# its warning about it.
exec dockerd --storage-driver=overlay2 --tls=false \
    -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2375 "$@"
