"""Benchmark of issue 19, item 4: early stopping of bad trials. ASHA (`PRUNER=ASHA`) against
no pruning, on a model with noisy, crossing learning curves that sleeps per epoch
(scripts/bench_models/NoisyCurves.py, 27 epochs).

For each repeat, one train job of TRIALS trials without pruning and two with ASHA
(`PRUNE_METRIC=val_acc`, `PRUNE_STEP_METRIC=epoch`, eta 3): rungs at epochs 1, 3, 9, 27
(`asha`), and at 3, 9, 27 (`asha-min3`, `PRUNE_MIN_STEP=3`), interleaved so that the machine's
noise falls on all alike. Each job's sub-job gets a new id, hence a new advisor seed: the
repeats are the seeds. A mode written `MODE*K` runs K times TRIALS trials. Measured per job:
the best final score (the best COMPLETED trial's score), the noiseless final value of that
trial (what its user would deploy; the model's curve at epoch 27, computed here from the
trial's knobs), and the total training time, the sum of its trials' durations (start to
finish, as the admin recorded them, read from its database, `DATABASE_URL`, with psql: the API
shows whole seconds). Prints one JSON line per job, then one per mode with the medians and the
time ratio against the first mode.

`median-min3` (the median stopping rule from epoch 3, 4 warm-up trials) runs when named in
MODES, a comma-separated list of the modes above (default: none, asha, asha-min3). CROSSING
(`late`, the default, or `early`) and SCORE (`exact`, the default, or `last`) are the model's
train arguments of those names: how late its curves cross, and whether `evaluate` returns the
noiseless value or the last logged one.

Run by scripts/bench-pruning.sh against a running admin:
    bench_pruning.py PORT TRIALS REPEATS SECONDS_PER_EPOCH [MODES] [CROSSING] [SCORE]
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time

from bench_setup import superadmin_with_datasets

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_models")
)
from NoisyCurves import EPOCHS, curve

MODEL = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "bench_models", "NoisyCurves.py"
)
MODES = {
    "none": {},
    "asha": {"PRUNER": "ASHA", "PRUNE_METRIC": "val_acc", "PRUNE_STEP_METRIC": "epoch"},
    "asha-min3": {
        "PRUNER": "ASHA",
        "PRUNE_METRIC": "val_acc",
        "PRUNE_STEP_METRIC": "epoch",
        "PRUNE_MIN_STEP": 3,
    },
    "median-min3": {
        "PRUNER": "MEDIAN",
        "PRUNE_METRIC": "val_acc",
        "PRUNE_STEP_METRIC": "epoch",
        "PRUNE_MIN_STEP": 3,
    },
}


def training_seconds(app):
    """The sum of the durations of the trials of `app`'s job, from the admin's database."""
    query = (
        "select coalesce(sum(extract(epoch from t.datetime_stopped - t.datetime_started)), 0) "
        "from trials t join train_jobs j on j.id = t.train_job_id where j.app = '"
        + app
        + "'"
    )
    out = subprocess.run(
        ["psql", os.environ["DATABASE_URL"], "-Atc", query],
        check=True,
        capture_output=True,
    )
    return float(out.stdout)


def run_job(client, app, train, val, model, trials, mode, train_args):
    """One job to its end; its measures as a dict. `mode` may end with `*K`: K times the
    trials."""
    name, _, times = mode.partition("*")
    trials *= int(times or 1)
    posted = time.monotonic()
    client.create_train_job(
        app,
        "CURVES",
        train["id"],
        val["id"],
        budget={"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 1, **MODES[name]},
        models=[model["id"]],
        train_args=train_args,
    )
    while (job := client.get_train_job(app))["status"] in ("STARTED", "RUNNING"):
        time.sleep(0.2)
    wall = time.monotonic() - posted
    rows = client.get_trials_of_train_job(app)
    done = [t for t in rows if t["status"] == "COMPLETED" and t["score"] is not None]
    scores = [t["score"] for t in done]
    best = max(done, key=lambda t: t["score"], default=None)
    if best is not None:
        knobs = best["proposal"]["knobs"]
        lr = math.log10(knobs["lr"])
        value = curve(lr, knobs["width"], EPOCHS, train_args["crossing"])
    return {
        "app": app,
        "mode": mode,
        "status": job["status"],
        "trials": len(rows),
        "completed": len(scores),
        "pruned": sum(t["status"] == "PRUNED" for t in rows),
        "errored": sum(t["status"] == "ERRORED" for t in rows),
        "train_s": round(training_seconds(app), 2),
        "wall_s": round(wall, 2),
        "best": round(max(scores), 4) if scores else None,
        "best_value": round(value, 4) if best is not None else None,
        "error": job.get("error"),
    }


def main():
    port, trials, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    per_epoch = float(sys.argv[4])
    modes = (
        sys.argv[5].split(",") if len(sys.argv) > 5 else ["none", "asha", "asha-min3"]
    )
    crossing = sys.argv[6] if len(sys.argv) > 6 else "late"
    score = sys.argv[7] if len(sys.argv) > 7 else "exact"
    train_args = {"seconds_per_epoch": per_epoch, "crossing": crossing, "score": score}
    client, _, train, val = superadmin_with_datasets(port, "CURVES")
    model = client.create_model("noisy-curves", "CURVES", MODEL, "NoisyCurves")
    runs = {mode: [] for mode in modes}
    for repeat in range(repeats):
        for mode in modes:
            run = run_job(
                client,
                f"prune-{mode.replace('*', 'x')}-{repeat}",
                train,
                val,
                model,
                trials,
                mode,
                train_args,
            )
            runs[mode].append(run)
            print(json.dumps(run), flush=True)
    base = statistics.median(r["train_s"] for r in runs[modes[0]])
    for mode, done in runs.items():
        times = [r["train_s"] for r in done]
        bests = [r["best"] for r in done if r["best"] is not None]
        summary = {
            "mode": mode,
            "crossing": crossing,
            "score": score,
            "jobs": len(done),
            "median_train_s": round(statistics.median(times), 2),
            "train_s": times,
            "time_saved_x": round(base / statistics.median(times), 2),
            "median_best": round(statistics.median(bests), 4) if bests else None,
            "bests": bests,
            "median_best_value": round(
                statistics.median(
                    r["best_value"] for r in done if r["best"] is not None
                ),
                4,
            )
            if bests
            else None,
            "best_values": [r["best_value"] for r in done],
            "median_wall_s": round(statistics.median(r["wall_s"] for r in done), 2),
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
