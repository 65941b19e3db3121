# rafiki-rs/postgres:15: Debian's PostgreSQL 15 with an entrypoint that initialises an empty
# data directory on first start (see docker/postgres/entrypoint.sh for the variables).
# Built by scripts/build-images.sh from docker/postgres/.
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}

# postgresql-common first, told not to create Debian's own "main" cluster when the server
# package is installed: the entrypoint makes the one cluster, in $PGDATA. The JIT compiler
# (llvmjit with LLVM and Z3, 150 MB of the image's 370) is left out: without it the server
# runs every query interpreted, as with `jit = off`, which the entrypoint also sets.
RUN printf '%s\n' 'path-exclude /usr/lib/*/libLLVM-*' 'path-exclude /usr/lib/*/libz3.so*' \
        'path-exclude /usr/lib/postgresql/*/lib/llvmjit*' \
        'path-exclude /usr/lib/postgresql/*/lib/bitcode/*' > /etc/dpkg/dpkg.cfg.d/rafiki-no-jit \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/^#?\s*(create_main_cluster)\s*=.*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && test ! -e /var/lib/postgresql/15/main

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
RUN mkdir -p "$PGDATA" /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 "$PGDATA" \
 && chmod 2775 /var/run/postgresql

COPY entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# Fast shutdown on `docker stop` (SIGINT): open connections are closed rather than waited
# for, so the server is down well within docker's 10 s grace period.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=5 \
    CMD pg_isready -q -h 127.0.0.1 -p 5432 -U "${POSTGRES_USER:-postgres}" || exit 1
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]
