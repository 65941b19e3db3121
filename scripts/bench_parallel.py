"""Benchmark of issue 19, item 5: parallel CPU train workers (`CPU_WORKERS_PER_MODEL`) against
one worker, on Branin with a model whose trials sleep (scripts/bench_models/SleepyBranin.py).

For each repeat, and for each worker count in turn (interleaved, so that the machine's noise
falls on both alike), one train job of MODEL_TRIAL_COUNT trials: its wall-clock time from
`POST /train_jobs` until it reads ended (worker start-up included), and its regret, the best
Branin value found minus the global minimum 0.397887. Each job's sub-job gets a new id, hence
a new advisor seed: the repeats are the seeds. Prints one JSON line per job, then one per
worker count with the medians, and the speed-up of each count against the first.

Run by scripts/bench-parallel.sh against a running admin:
    bench_parallel.py PORT TRIALS REPEATS WORKERS(comma-separated) SECONDS
"""

import json
import os
import statistics
import sys
import time

from bench_setup import superadmin_with_datasets

BRANIN_MIN = 0.397887
MODEL = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "bench_models", "SleepyBranin.py"
)


def run_job(client, app, train, val, model, trials, workers, seconds):
    """One job to its end; its measures as a dict."""
    posted = time.monotonic()
    client.create_train_job(
        app,
        "BRANIN",
        train["id"],
        val["id"],
        budget={
            "MODEL_TRIAL_COUNT": trials,
            "TIME_HOURS": 1,
            "CPU_WORKERS_PER_MODEL": workers,
        },
        models=[model["id"]],
        train_args={"seconds": seconds},
    )
    while (job := client.get_train_job(app))["status"] in ("STARTED", "RUNNING"):
        time.sleep(0.1)
    wall = time.monotonic() - posted
    rows = client.get_trials_of_train_job(app)
    scores = [t["score"] for t in rows if t["status"] == "COMPLETED"]
    knobs = {json.dumps(t["proposal"]["knobs"], sort_keys=True) for t in rows}
    return {
        "app": app,
        "workers": workers,
        "status": job["status"],
        "trials": len(rows),
        "completed": len(scores),
        "distinct_knobs": len(knobs),
        "workers_used": len({t["worker_id"] for t in rows}),
        "wall_s": round(wall, 2),
        "regret": round(-max(scores) - BRANIN_MIN, 4) if scores else None,
        "error": job.get("error"),
    }


def main():
    port, trials, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    counts = [int(n) for n in sys.argv[4].split(",")]
    seconds = float(sys.argv[5])
    client, _, train, val = superadmin_with_datasets(port, "BRANIN")
    model = client.create_model("sleepy-branin", "BRANIN", MODEL, "SleepyBranin")
    runs = {n: [] for n in counts}
    for repeat in range(repeats):
        for n in counts:
            run = run_job(
                client, f"par-{n}-{repeat}", train, val, model, trials, n, seconds
            )
            runs[n].append(run)
            print(json.dumps(run), flush=True)
    base = statistics.median(r["wall_s"] for r in runs[counts[0]])
    for n in counts:
        walls = [r["wall_s"] for r in runs[n]]
        regrets = [r["regret"] for r in runs[n] if r["regret"] is not None]
        summary = {
            "workers": n,
            "jobs": len(runs[n]),
            "median_wall_s": round(statistics.median(walls), 2),
            "wall_s": walls,
            "speedup": round(base / statistics.median(walls), 2),
            "median_regret": round(statistics.median(regrets), 4) if regrets else None,
            "regrets": regrets,
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
