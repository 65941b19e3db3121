"""Benchmark of issue 5: (a) time from `POST /train_jobs` to the first trial RUNNING, and (b) the
per-trial overhead of the whole loop (proposal, trial rows, runtime round trips, parameters
upload, logs, result) with a no-op model, over N trials.

Run by scripts/bench-train.sh against a running admin; prints one JSON line per advisor.
"""

import json
import os
import sys
import time

from bench_setup import superadmin_with_datasets

NOOP = """
from rafiki.model import BaseModel, {knob_import}

class NoOp(BaseModel):
    @staticmethod
    def get_knob_config():
        return {{"k": {knob}}}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        pass

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {{"w": 1}}

    def load_parameters(self, params):
        pass
"""

ADVISORS = {
    # An arch knob gets the RANDOM advisor; a float knob gets BAYES_OPT (a GP fit per trial).
    "RANDOM": ("ArchKnob", "ArchKnob([[1, 2, 3], [4, 5, 6], [7, 8, 9]])"),
    "BAYES_OPT": ("FloatKnob", "FloatKnob(0.0, 1.0)"),
}


def main():
    port = int(sys.argv[1])
    trials = int(sys.argv[2])
    client, work, train, val = superadmin_with_datasets(port, "NOOP")
    for advisor, (knob_import, knob) in ADVISORS.items():
        path = os.path.join(work, f"{advisor}.py")
        with open(path, "w") as f:
            f.write(NOOP.format(knob_import=knob_import, knob=knob))
        model = client.create_model(f"noop-{advisor}", "NOOP", path, "NoOp")
        app = f"bench-{advisor.lower()}"
        posted = time.monotonic()
        client.create_train_job(
            app,
            "NOOP",
            train["id"],
            val["id"],
            budget={"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 1},
            models=[model["id"]],
        )
        while not client.get_trials_of_train_job(app):
            time.sleep(0.005)
        first = time.monotonic()
        while client.get_train_job(app)["status"] in ("STARTED", "RUNNING"):
            time.sleep(0.05)
        done = time.monotonic()
        rows = client.get_trials_of_train_job(app)
        completed = sum(1 for t in rows if t["status"] == "COMPLETED")
        print(
            json.dumps(
                {
                    "advisor": advisor,
                    "trials": len(rows),
                    "completed": completed,
                    "post_to_first_trial_s": round(first - posted, 3),
                    "loop_s": round(done - first, 3),
                    "per_trial_ms": round(1000 * (done - first) / max(len(rows), 1), 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
