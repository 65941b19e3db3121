# rafiki-rs/swarm-node: a Docker engine in a container, one node of the multi-node test swarm
# that scripts/swarm-nodes.sh brings up (docs/swarm.md, "Multi-node tests";
# ../shared/recipes/multinode-swarm.md). Built by `scripts/build-images.sh swarm-node`, which
# `scripts/test.sh` runs where Docker serves; it is not in the default set of images. Only for
# tests: the engine it runs answers unauthenticated on TCP port 2375.
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}

# Debian's engine (20.10, as on the hosts this was made on) and what it needs in a container:
# iptables for its networks, fuse-overlayfs in reserve, iproute2 and procps to look around,
# curl for its API.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        docker.io iptables procps iproute2 fuse-overlayfs curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY entrypoint.sh /usr/local/bin/swarm-node-entrypoint
# The engine's state (images, containers, swarm membership) lives on a volume: overlay2 works
# on the host's ext4 under it, not on the container's own overlay root.
VOLUME /var/lib/docker
EXPOSE 2375 2377 7946 4789/udp
ENTRYPOINT ["/usr/local/bin/swarm-node-entrypoint"]
