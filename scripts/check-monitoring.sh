#!/usr/bin/env bash
# Checks the `monitoring` profile's Prometheus files (docker/prometheus/) with Debian's promtool:
# the configuration and its rules are valid, the rules' unit tests (rules.test.yml) pass, and
# every Rafiki metric the rules read is one docs/observability.md documents (so a renamed metric
# cannot leave an alert that silently never fires). Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v promtool > /dev/null || {
    echo "check-monitoring: promtool is missing (Debian's prometheus package)" >&2
    exit 1
}
promtool check config docker/prometheus/prometheus.yml
(cd docker/prometheus && promtool test rules rules.test.yml)

missing=0
for metric in $(grep -oE '\brafiki_[a-z_]+' docker/prometheus/rules.yml |
    sed -E 's/_(bucket|count|sum)$//' | sort -u); do
    if ! grep -q "\`$metric\`" docs/observability.md; then
        echo "check-monitoring: rules.yml reads $metric, which docs/observability.md does not document" >&2
        missing=1
    fi
done
exit "$missing"
