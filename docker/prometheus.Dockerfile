# rafiki-rs/prometheus: Debian's Prometheus with Rafiki-rs's scrape configuration and rules
# (docker/prometheus/), for the `monitoring` profile of docker-compose.yml and
# docker-stack.monitoring.yml. Built by scripts/build-images.sh. See docs/observability.md.
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}
# Without recommends: the node exporter is not wanted in a container. The package makes the
# `prometheus` user; the storage directory is the image's volume, owned by it. The web UI loads
# moment-timezone's one-file builds; the package's per-zone data tree (210 MB of the image's
# 400) is left out.
RUN echo 'path-exclude /usr/share/javascript/moment-timezone/data/*' > /etc/dpkg/dpkg.cfg.d/rafiki-no-tz-tree \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus \
 && chown prometheus:prometheus /prometheus
COPY prometheus.yml rules.yml /etc/rafiki-prometheus/
USER prometheus
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus", "--config.file=/etc/rafiki-prometheus/prometheus.yml", \
    "--storage.tsdb.path=/prometheus", "--web.listen-address=:9090"]
CMD ["--storage.tsdb.retention.time=15d"]
