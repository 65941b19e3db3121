#!/usr/bin/env bash
# Benchmark of issue 3: upload a 1 GiB dataset (`POST /datasets`, multipart, curl on the same
# machine) to a release admin whose data directory is on local disk; report the throughput and
# the admin's resident memory during the upload above its idle level. Each run checks that the
# stored dataset has the exact size and SHA-256, then deletes it.
# Usage: scripts/bench-upload.sh [runs, default 3] [size in MiB, default 1024]
#        (RAFIKI_ADMIN_BIN=path/to/rafiki-admin to skip the release build)
# Targets: >= 300 MB/s, < 64 MiB peak RSS above idle.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/bench-admin.sh
runs=${1:-3}
mib=${2:-1024}

bench_admin_env "rafiki_bench_upload_$$" 3901
# Under target/, so on the same local disk as the build, not a tmpfs.
mkdir -p target
work=$(mktemp -d -p "$PWD/target" bench-upload.XXXXXX)
export RAFIKI_DATA_DIR=$work/data
# RAFIKI_ADMIN_BIN runs an admin binary built beforehand instead of building one.
bin=${RAFIKI_ADMIN_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --locked -q -p rafiki-admin
  bin=target/release/rafiki-admin
fi
sampler=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  bench_admin_stop
  rm -rf "$work"
}
bench_admin_start "$bin" cleanup

base="http://127.0.0.1:$ADMIN_PORT"
token=$(curl -sf "$base/tokens" -H 'content-type: application/json' \
  -d "{\"email\":\"superadmin@rafiki\",\"password\":\"$SUPERADMIN_PASSWORD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

file=$work/dataset.bin
head -c $((mib * 1024 * 1024)) /dev/urandom >"$file"
size=$(stat -c %s "$file")
sha=$(sha256sum "$file" | cut -d' ' -f1)
# Read once so every run reads the source from the page cache alike.
cat "$file" >/dev/null

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$admin/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$admin/status"; }

echo "uploading $mib MiB ($size bytes), $runs runs; data directory $RAFIKI_DATA_DIR"
for run in $(seq "$runs"); do
  idle=$(rss_kib)
  peak_file=$work/peak
  echo "$idle" >"$peak_file"
  # Samples VmRSS every 20 ms and keeps the largest.
  (
    peak=$idle
    while sleep 0.02; do
      now=$(rss_kib) || break
      if [ "$now" -gt "$peak" ]; then peak=$now; echo "$peak" >"$peak_file"; fi
    done
  ) &
  sampler=$!
  out=$(curl -sS -o "$work/response" -w '%{http_code} %{time_total}' \
    -H "authorization: Bearer $token" \
    -F name=bench -F task=IMAGE_CLASSIFICATION -F "dataset=@$file" "$base/datasets")
  kill "$sampler"; wait "$sampler" 2>/dev/null || true; sampler=
  read -r code seconds <<<"$out"
  [ "$code" = 200 ] || { echo "upload failed: HTTP $code $(cat "$work/response")"; exit 1; }
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/response")
  stored=$(curl -sf "$base/datasets/$id" -H "authorization: Bearer $token")
  python3 - "$stored" "$size" "$sha" <<'PY'
import json, sys
d = json.loads(sys.argv[1])
assert d["size_bytes"] == int(sys.argv[2]), d
assert d["sha256"] == sys.argv[3], d
PY
  peak=$(cat "$peak_file")
  python3 - "$run" "$size" "$seconds" "$idle" "$peak" "$(hwm_kib)" <<'PY'
import sys
run, size, seconds, idle, peak, hwm = sys.argv[1:]
size, seconds, idle, peak, hwm = int(size), float(seconds), int(idle), int(peak), int(hwm)
print(f"run {run}: {seconds:.2f} s, {size / seconds / 1e6:.0f} MB/s ({size / seconds / 2**20:.0f} MiB/s); "
      f"RSS idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
      f"peak above idle {(peak - idle) / 1024:.1f} MiB; VmHWM {hwm / 1024:.1f} MiB")
PY
  curl -sf -X DELETE "$base/datasets/$id" -H "authorization: Bearer $token" >/dev/null
done
