# rafiki-rs/admin: the admin server (REST API, advisors, orchestration) and the `rafiki` CLI.
# Built by scripts/build-images.sh. Migrations are compiled into the binary.
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}

# ca-certificates for `dataset_url` downloads over https, curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

COPY rafiki /usr/local/bin/rafiki
COPY rafiki-admin /usr/local/bin/rafiki-admin

ENV RAFIKI_DATA_DIR=/var/lib/rafiki/data
RUN mkdir -p /var/lib/rafiki/data
VOLUME /var/lib/rafiki/data
WORKDIR /var/lib/rafiki
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${ADMIN_PORT:-3000}/health" || exit 1
CMD ["rafiki-admin"]
