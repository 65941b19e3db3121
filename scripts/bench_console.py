"""Benchmark of issue 17: how long the console takes to answer its heaviest pages for a train
job of N trials (a job page with every trial's tuning plots, its live fragment, a trial page
with a plot of many points), seen from a client on the same machine.

Run by scripts/bench-console.sh against a running admin. It trains a real job of N trials
(the process backend, a quick model with four knobs that logs a loss curve per trial), logs in
through the console's form as a browser does, then times GET of each page `REQUESTS` times,
one request at a time, and prints one JSON line per page: median, p90, p99 and max in
milliseconds of the time to the answer's first byte (the server's time, plus a loopback round
trip: pages are rendered whole before they are sent) and to its last, and the page's size.
"""

import json
import os
import re
import statistics
import sys
import time

import requests
from bench_setup import superadmin_with_datasets

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
EPOCHS = int(os.environ.get("BENCH_EPOCHS", "20"))

MODEL = """
import random
from rafiki.model import BaseModel, FloatKnob, IntegerKnob, CategoricalKnob, logger

class Tuned(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "learning_rate": FloatKnob(1e-5, 1e-1, is_exp=True),
            "layers": IntegerKnob(1, 8),
            "dropout": FloatKnob(0.0, 0.5),
            "activation": CategoricalKnob(["relu", "tanh", "sigmoid"]),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.knobs = knobs

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.define_loss_plot()
        loss = 1.0
        for epoch in range(%(epochs)d):
            loss *= 0.9 + random.random() * 0.05
            logger.log_loss(loss, epoch)
        logger.log("trained with %%s" %% self.knobs)

    def evaluate(self, dataset_path):
        return random.random()

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"w": 1}

    def load_parameters(self, params):
        pass
"""


def stats(times):
    times = sorted(times)
    return {
        "median": round(statistics.median(times), 2),
        "p90": round(times[int(len(times) * 0.9) - 1], 2),
        "p99": round(times[int(len(times) * 0.99) - 1], 2),
        "max": round(times[-1], 2),
    }


def timed(session, url):
    """`REQUESTS` GETs of `url`, one at a time: the time to the answer's headers (the admin
    renders a page whole before it sends anything, so this is its server time plus a loopback
    round trip) and to its last byte, in ms."""
    first_byte = []
    whole = []
    size = 0
    for _ in range(REQUESTS):
        start = time.perf_counter()
        res = session.get(
            url, headers={"Accept": "text/html"}, allow_redirects=False, stream=True
        )
        first_byte.append((time.perf_counter() - start) * 1000)
        body = res.content
        whole.append((time.perf_counter() - start) * 1000)
        assert res.status_code == 200, (url, res.status_code, body[:500])
        size = len(body)
    return {"first_byte_ms": stats(first_byte), "whole_ms": stats(whole), "bytes": size}


def main():
    port = int(sys.argv[1])
    trials = int(sys.argv[2])
    base = f"http://127.0.0.1:{port}"
    password = os.environ["SUPERADMIN_PASSWORD"]
    client, work, train, val = superadmin_with_datasets(port, "BENCH")
    path = os.path.join(work, "Tuned.py")
    with open(path, "w") as f:
        f.write(MODEL % {"epochs": EPOCHS})
    model = client.create_model("tuned", "BENCH", path, "Tuned")
    client.create_train_job(
        "bench",
        "BENCH",
        train["id"],
        val["id"],
        budget={"MODEL_TRIAL_COUNT": trials, "TIME_HOURS": 1},
        models=[model["id"]],
    )
    started = time.monotonic()
    while client.get_train_job("bench")["status"] in ("STARTED", "RUNNING"):
        time.sleep(0.5)
    rows = client.get_trials_of_train_job("bench")
    print(
        json.dumps(
            {
                "trials": len(rows),
                "completed": sum(1 for t in rows if t["status"] == "COMPLETED"),
                "training_s": round(time.monotonic() - started, 1),
            }
        ),
        flush=True,
    )

    # Log in as a browser does: the form's CSRF token and nonce cookie, then the session.
    browser = requests.Session()
    form = browser.get(f"{base}/console/login").text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', form).group(1)
    res = browser.post(
        f"{base}/console/login",
        data={"email": "superadmin@rafiki", "password": password, "csrf": token},
        allow_redirects=False,
    )
    assert res.status_code == 303, res.text
    job = f"{base}/console/train_jobs/bench/1"
    trial = rows[0]["id"]
    for name, url in (
        ("job page", job),
        (
            "job page, last page of trials",
            f"{job}?page={max(1, (len(rows) + 99) // 100)}",
        ),
        ("live fragment", f"{job}/live"),
        ("trial page", f"{base}/console/trials/{trial}"),
        ("train jobs list", f"{base}/console/train_jobs"),
    ):
        print(
            json.dumps({"page": name, "trials": len(rows), **timed(browser, url)}),
            flush=True,
        )


if __name__ == "__main__":
    main()
