# rafiki-rs/worker: runs the train and inference workers of models written in Python.
# Built by scripts/build-images.sh from target/docker-context/worker (the stripped
# rafiki-worker binary and a copy of python/). Extend it for a model's own dependencies:
#   FROM rafiki-rs/worker:latest
#   RUN pip install torch==2.3.1
ARG BASE_IMAGE=rafiki-rs/base:bookworm
FROM ${BASE_IMAGE}

# Debian's Python 3.11 with the model environment (docs/model-environment.md): what Rafiki's
# worker image gave models (numpy, pandas, scikit-learn, Pillow, requests, tqdm, msgpack), from
# bookworm's packages (numpy 1.24, pandas 1.5, scikit-learn 1.2). python3-venv lets the
# worker build a virtual environment for a model's pinned dependencies; python3-pip lets images
# that extend this one `RUN pip install ...`.
#
# bookworm's python3-scipy depends on python3-pythran, a compiler that scipy needs only when it
# is built; through it come gcc, g++, Boost and the Python headers, 500 MB of the image. A
# local package that provides python3-pythran stands in for it (scipy's pythran-compiled
# modules are shipped built and import without it). An image that needs a C compiler installs
# build-essential and python3-dev itself.
RUN set -eux; \
    d=$(mktemp -d); mkdir "$d/DEBIAN"; \
    printf '%s\n' 'Package: rafiki-no-pythran' 'Version: 1.0' 'Architecture: all' \
        'Maintainer: Rafiki-rs <rafiki-rs@localhost>' 'Provides: python3-pythran' \
        'Description: stands in for python3-pythran in rafiki-rs/worker' \
        ' python3-scipy needs python3-pythran only to be built; see docs/docker.md.' \
        > "$d/DEBIAN/control"; \
    dpkg-deb --build "$d" /tmp/rafiki-no-pythran.deb; \
    dpkg -i /tmp/rafiki-no-pythran.deb; \
    rm -rf "$d" /tmp/rafiki-no-pythran.deb
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-numpy python3-pandas python3-sklearn python3-pil \
        python3-requests python3-tqdm python3-msgpack \
        python3-pip python3-venv python3-setuptools python3-wheel \
 && rm -rf /var/lib/apt/lists/*

# pip may install into the system interpreter: this image exists to run models (PEP 668 would
# otherwise refuse `pip install` outside a virtual environment).
ENV LANG=C.UTF-8 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project's `rafiki` package (model SDK, worker runtime, client), installed so that pip
# knows it; its dependencies come from the Debian packages above.
COPY python/ /tmp/rafiki-python/
RUN pip install --no-deps --no-build-isolation --no-index --no-cache-dir /tmp/rafiki-python \
 && rm -rf /tmp/rafiki-python \
 && python3 -c 'import rafiki, numpy, pandas, sklearn, PIL, requests, tqdm, msgpack'

COPY rafiki-worker /usr/local/bin/rafiki-worker

# Services run as an unprivileged user (uid and gid 10001; the docker backend forces them too)
# that owns only /var/lib/rafiki. The backend mounts a fresh volume there, which the engine
# fills with these directories, and keeps the rest of the file system read-only: the work
# directory, the dependency environments (venvs), the user's home (pip's cache) and the
# temporary files of pip and models (TMPDIR) are its only writable places. Images that extend
# this one keep the user and the directories.
RUN groupadd --gid 10001 rafiki \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/rafiki/home \
        --shell /usr/sbin/nologin rafiki \
 && mkdir -p /var/lib/rafiki/work /var/lib/rafiki/venvs /var/lib/rafiki/home /var/lib/rafiki/tmp \
 && chown -R 10001:10001 /var/lib/rafiki \
 && chmod 0700 /var/lib/rafiki/work /var/lib/rafiki/venvs /var/lib/rafiki/home /var/lib/rafiki/tmp
ENV RAFIKI_PYTHON=python3 \
    RAFIKI_WORK_DIR=/var/lib/rafiki/work \
    HOME=/var/lib/rafiki/home \
    TMPDIR=/var/lib/rafiki/tmp
WORKDIR /var/lib/rafiki/work
USER 10001:10001
# The mode comes from RAFIKI_SERVICE_TYPE (TRAIN or INFERENCE), which the admin sets on every
# service; `rafiki-worker train` / `rafiki-worker inference` choose it explicitly.
CMD ["rafiki-worker"]
