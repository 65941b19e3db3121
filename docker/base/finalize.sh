#!/bin/bash
# Turns a fresh `debootstrap --variant=minbase bookworm` tree into a small container base, the
# way Debian's official `debian:bookworm-slim` is made (debuerreotype's "slimify" and
# "minimizing config"). scripts/build-images.sh runs it inside a container of the imported tree
# (`docker run -i ... bash -s < finalize.sh`), then exports and re-imports the result as one
# layer. Variables: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default: deb.debian.org).
set -euo pipefail

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
export DEBIAN_FRONTEND=noninteractive

# Sources: the release, its updates and security fixes (as in debian:bookworm-slim).
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

# No documentation, manual pages or translations in packages installed later.
cat > /etc/dpkg/dpkg.cfg.d/docker <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG

# apt keeps no downloaded packages or binary caches, fetches no translations.
cat > /etc/apt/apt.conf.d/docker-clean <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::Languages "none";' > /etc/apt/apt.conf.d/docker-no-languages
echo 'Acquire::GzipIndexes "true";' > /etc/apt/apt.conf.d/docker-gzip-indexes
echo 'Apt::AutoRemove::SuggestsImportant "false";' > /etc/apt/apt.conf.d/docker-autoremove-suggests

# Packages never start services while an image is built.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d

# Security and point-release updates published since the release.
apt-get update
apt-get -y -o Dpkg::Options::=--force-confold upgrade
apt-get clean

# What the excludes above keep out of later installs, removed from what is already there.
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -rf /usr/share/man/* /usr/share/groff/* /usr/share/info/* /usr/share/lintian/* \
    /usr/share/linda/* /usr/share/locale/*

# Caches, logs and machine identity.
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
    /var/cache/ldconfig/aux-cache /tmp/* /var/tmp/* /root/.bash_history /.dockerenv
find /var/log -type f -delete
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
echo "base image finalized: $(du -sxh / 2>/dev/null | cut -f1)"
