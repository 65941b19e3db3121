# rafiki-rs/predictor: the predictor of an inference job (fan-out to its inference workers,
# ensemble of their answers). Built by scripts/build-images.sh. It runs as an unprivileged user
# (uid 10001, as in the worker image) and writes nothing; the docker backend runs it on a
# read-only root file system with the same writable /var/lib/rafiki volume as workers.
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}
RUN groupadd --gid 10001 rafiki \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/rafiki/home \
        --shell /usr/sbin/nologin rafiki \
 && mkdir -p /var/lib/rafiki/work /var/lib/rafiki/home \
 && chown -R 10001:10001 /var/lib/rafiki \
 && chmod 0700 /var/lib/rafiki/work /var/lib/rafiki/home
COPY rafiki-predictor /usr/local/bin/rafiki-predictor
ENV HOME=/var/lib/rafiki/home
WORKDIR /var/lib/rafiki/work
USER 10001:10001
CMD ["rafiki-predictor"]
