#!/usr/bin/env bash
# Benchmark of issue 6: the predictor in front of two inference workers (release builds, real
# Python runtime) of a trivial TABULAR_CLASSIFICATION model, so the predictor averages their
# probability vectors. wrk on the same machine, 64 connections:
#  1. throughput: one query per request, as fast as wrk can, then 100 queries per request;
#  2. latency at a fixed load of about 3,000 requests/s (each connection waits 16 ms between
#     requests; wrk's latency excludes the wait): through the predictor with both workers, with
#     one worker, and straight to that worker, so the last two differ only by the predictor;
#  3. the same three at one connection.
# A stand-in admin (Python, stdlib) serves the internal calls of docs/internal-api.md that the
# three services make; no database is needed.
# Usage: scripts/bench-predict.sh [seconds per run, default 10]
# Environment: RAFIKI_PYTHON (default .venv/bin/python), RAFIKI_MAX_BATCH_WAIT_MS and
# RAFIKI_MAX_BATCH_SIZE (passed to the workers), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
python=${RAFIKI_PYTHON:-$PWD/.venv/bin/python}
target=${CARGO_TARGET_DIR:-target}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
"$python" -c 'import rafiki' || { echo "$python cannot import rafiki (set RAFIKI_PYTHON)"; exit 1; }
cargo build --release -q -p rafiki-worker -p rafiki-predictor

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
admin_port=$(free_port)
worker_ports=("$(free_port)" "$(free_port)")
predictor_port=$(free_port)

cat >"$work/model.py" <<'EOF'
from rafiki.model import BaseModel, FloatKnob


class Constant(BaseModel):
    """Answers every query with the two-class vector [p, 1 - p], p from its parameters."""

    @staticmethod
    def get_knob_config():
        return {"unused": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        self.p = 0.5

    def evaluate(self, dataset_path):
        return 0.5

    def dump_parameters(self):
        return {"p": self.p}

    def load_parameters(self, params):
        self.p = float(params["p"])

    def predict(self, queries):
        return [[self.p, 1.0 - self.p] for _ in queries]
EOF

cat >"$work/admin.py" <<'EOF'
"""A stand-in admin: the internal calls of two inference workers and one predictor."""
import hashlib
import json
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rafiki.params import encode_params

port, model_path = int(sys.argv[1]), sys.argv[2]
worker_ports = [int(p) for p in sys.argv[3:]]
model = open(model_path, "rb").read()
job_id = str(uuid.uuid4())
model_id = str(uuid.uuid4())
PREDICTOR = "predictor-token"


def blob(id_, data):
    return {"id": id_, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


# How many workers the predictor is told about (POST /bench/serve/N changes it).
listed = len(worker_ports)
workers = {}
for i, (wport, p, score) in enumerate(zip(worker_ports, [0.2, 0.4], [0.8, 0.9])):
    params = encode_params({"p": p})
    trial_id = str(uuid.uuid4())
    workers[f"worker-{i}"] = {
        "params": params,
        "ready": False,
        "url": f"http://127.0.0.1:{wport}",
        "score": score,
        "job": {
            "service_id": str(uuid.uuid4()),
            "inference_job_id": job_id,
            "trial_id": trial_id,
            "task": "TABULAR_CLASSIFICATION",
            "model": {
                "id": model_id,
                "name": "constant",
                "model_class": "Constant",
                "dependencies": {},
                "file": blob(model_id, model),
            },
            "knobs": {"unused": 0.5},
            "parameters": blob(trial_id, params),
        },
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def caller(self):
        token = self.headers.get("authorization", "").removeprefix("Bearer ")
        return token if token == PREDICTOR or token in workers else None

    def answer(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        who = self.caller()
        if self.path == "/bench/ready":
            return self.answer(200, {"ready": sum(w["ready"] for w in workers.values())})
        if who is None:
            return self.answer(401, {"error": "UnauthorizedError", "message": "token"})
        if self.path == "/internal/predictor/job" and who == PREDICTOR:
            serving = [
                {"service_id": w["job"]["service_id"], "trial_id": w["job"]["trial_id"],
                 "score": w["score"], "url": w["url"]}
                for w in list(workers.values())[:listed] if w["ready"]
            ]
            return self.answer(200, {"inference_job_id": job_id,
                                     "task": "TABULAR_CLASSIFICATION", "workers": serving})
        worker = workers.get(who)
        if worker is None:
            return self.answer(403, {"error": "UnauthorizedError", "message": "predictor"})
        if self.path == "/internal/inference/job":
            return self.answer(200, worker["job"])
        if self.path == f"/internal/models/{model_id}/file":
            return self.answer(200, model, "application/octet-stream")
        if self.path == f"/internal/trials/{worker['job']['trial_id']}/parameters":
            return self.answer(200, worker["params"], "application/octet-stream")
        return self.answer(404, {"error": "NotFoundError", "message": self.path})

    def do_POST(self):
        global listed
        who = self.caller()
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/bench/serve/"):
            listed = int(self.path.rsplit("/", 1)[1])
            return self.answer(200, {"listed": listed})
        if who not in workers:
            return self.answer(401, {"error": "UnauthorizedError", "message": "token"})
        if self.path == "/internal/inference/ready":
            workers[who]["ready"] = True
            return self.answer(200, {})
        if self.path == "/internal/inference/fail":
            print(f"{who} failed: {body.decode()}", file=sys.stderr, flush=True)
            return self.answer(200, {})
        return self.answer(404, {"error": "NotFoundError", "message": self.path})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
EOF

"$python" "$work/admin.py" "$admin_port" "$work/model.py" "${worker_ports[@]}" 2>"$work/admin.log" &
pids+=($!)
admin="http://127.0.0.1:$admin_port"
for _ in $(seq 100); do curl -sf "$admin/bench/ready" >/dev/null && break; sleep 0.1; done

for i in 0 1; do
  RUST_LOG=warn RAFIKI_ADMIN_URL=$admin RAFIKI_SERVICE_TOKEN=worker-$i RAFIKI_SERVICE_TYPE=INFERENCE \
    RAFIKI_WORK_DIR=$work/worker-$i RAFIKI_PYTHON=$python RAFIKI_BIND_HOST=127.0.0.1 \
    RAFIKI_PORT=${worker_ports[$i]} "$target/release/rafiki-worker" inference 2>"$work/worker-$i.log" &
  pids+=($!)
done
for _ in $(seq 300); do
  [ "$(curl -sf "$admin/bench/ready")" = '{"ready": 2}' ] && break
  sleep 0.1
done
[ "$(curl -sf "$admin/bench/ready")" = '{"ready": 2}' ] || { cat "$work"/*.log; echo "workers not ready"; exit 1; }

RUST_LOG=warn RAFIKI_ADMIN_URL=$admin RAFIKI_SERVICE_TOKEN=predictor-token RAFIKI_SERVICE_TYPE=PREDICT \
  RAFIKI_BIND_HOST=127.0.0.1 RAFIKI_PORT=$predictor_port "$target/release/rafiki-predictor" \
  2>"$work/predictor.log" &
predictor_pid=$!
pids+=("$predictor_pid")
predictor="http://127.0.0.1:$predictor_port"
query='[5.1, 3.5, 1.4, 0.2]'
for _ in $(seq 100); do
  answer=$(curl -s "$predictor/predict" -d "{\"query\": $query}" || true)
  case $answer in *'"prediction":['*) break ;; esac
  sleep 0.1
done
echo "one prediction: $answer (expected the mean of [0.2, 0.8] and [0.4, 0.6])"

cat >"$work/one.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"query": $query}'
EOF
cat >"$work/hundred.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local queries = {}
for i = 1, 100 do queries[i] = '$query' end
wrk.body = '{"queries": [' .. table.concat(queries, ", ") .. ']}'
EOF
cat >"$work/direct.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"queries": [$query]}'
EOF
for name in one direct; do
  { cat "$work/$name.lua"; echo 'function delay() return 16 end'; } >"$work/$name-paced.lua"
done

# Makes the predictor list the first $1 workers only, and waits until it follows.
serve() {
  curl -sf -X POST "$admin/bench/serve/$1" >/dev/null
  sleep 2.5
}

run() {
  local label=$1
  shift
  echo
  echo "== $label"
  wrk "$@" | tee "$work/wrk.out"
  if grep -q "Non-2xx" "$work/wrk.out"; then echo "FAILED: non-2xx answers"; exit 1; fi
}
worker="http://127.0.0.1:${worker_ports[0]}/predict"
run "1a. predictor, 2 workers, 1 query per request, 64 connections, flat out" \
  -t2 -c64 -d"${duration}s" --latency -s "$work/one.lua" "$predictor/predict"
run "1b. predictor, 2 workers, 100 queries per request, 64 connections, flat out" \
  -t2 -c64 -d"${duration}s" --latency -s "$work/hundred.lua" "$predictor/predict"
run "2a. predictor, 2 workers, 1 query per request, 64 connections, ~3,000 requests/s" \
  -t2 -c64 -d"${duration}s" --latency -s "$work/one-paced.lua" "$predictor/predict"
run "3a. predictor, 2 workers, 1 query per request, 1 connection" \
  -t1 -c1 -d"${duration}s" --latency -s "$work/one.lua" "$predictor/predict"
serve 1
run "2b. predictor, 1 worker, 1 query per request, 64 connections, ~3,000 requests/s" \
  -t2 -c64 -d"${duration}s" --latency -s "$work/one-paced.lua" "$predictor/predict"
run "2c. that worker directly, 1 query per request, 64 connections, ~3,000 requests/s" \
  -t2 -c64 -d"${duration}s" --latency -s "$work/direct-paced.lua" "$worker"
run "3b. predictor, 1 worker, 1 query per request, 1 connection" \
  -t1 -c1 -d"${duration}s" --latency -s "$work/one.lua" "$predictor/predict"
run "3c. that worker directly, 1 query per request, 1 connection" \
  -t1 -c1 -d"${duration}s" --latency -s "$work/direct.lua" "$worker"
echo
echo "predictor peak RSS: $(grep VmHWM "/proc/$predictor_pid/status")"
echo "CPU time of all runs (the Python children are the workers' model runtimes):"
children=$(for pid in "${pids[@]}"; do pgrep -P "$pid" || true; done | tr '\n' ',')
ps -o pid,ppid,cputime,args -p "$(IFS=,; echo "${pids[*]}"),${children%,}" | cut -c1-110
