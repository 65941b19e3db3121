"""The example zoo: a model written in Rafiki's style for each task, trained, deployed and queried
through the Python client against the real admin and its workers (process backend).

The tabular models are in the style of Rafiki's XgbClf and XgbReg: pandas reads the CSV and each
query becomes a one-row DataFrame in the order of its keys, which scikit-learn checks against
the order it was trained with. Their queries are sent in the datasets' natural column order,
which is not alphabetical, so they only succeed when the client, the admin, the predictor, the
worker and the runtime all keep the key order; the same query with its keys sorted must fail in
the model, and the predictor must say so.

Every deployed model must answer exactly what the best trial's model, loaded locally from its
parameters with the client, answers for the same queries.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import time

import pytest
import requests
from conftest import EXAMPLE_MODELS
from live_admin import SUPERADMIN, admin_binary, client_for, new_user, wait_for

from rafiki.constants import TaskType, UserType
from rafiki.model import utils

TRIALS = 2


def _tabular_queries(path, count=3):
    """The first rows of a CSV as `{feature: value}` objects, in the file's column order."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))[:count]
    return [{k: float(v) for (k, v) in row.items() if k != "target"} for row in rows]


def _image_queries(path, count=3):
    dataset = utils.dataset.load_dataset_of_image_files(path, mode="L")
    return [dataset[i][0].tolist() for i in range(count)]


def _pos_queries(_path):
    return [["The", "dog", "sees", "a", "light", "park", "."], ["They", "run", "often", "!"]]


def _features(path):
    with open(path, newline="") as f:
        return [c for c in next(csv.reader(f)) if c != "target"]


# app -> (task, model file, class, queries from the val set, train_args from the val set)
ZOO = {
    "zoo-image": (
        TaskType.IMAGE_CLASSIFICATION,
        "image_classification/SkLogRegImage.py",
        "SkLogRegImage",
        _image_queries,
        lambda _path: None,
    ),
    "zoo-tabular-clf": (
        TaskType.TABULAR_CLASSIFICATION,
        "tabular_classification/PdForestClf.py",
        "PdForestClf",
        _tabular_queries,
        lambda path: {"features": _features(path), "target": "target"},
    ),
    "zoo-tabular-reg": (
        TaskType.TABULAR_REGRESSION,
        "tabular_regression/PdForestReg.py",
        "PdForestReg",
        _tabular_queries,
        lambda path: {"features": _features(path), "target": "target"},
    ),
    "zoo-pos": (
        TaskType.POS_TAGGING,
        "pos_tagging/BigramHmm.py",
        "BigramHmm",
        _pos_queries,
        lambda _path: None,
    ),
}


def _load_class(model_file, model_class):
    spec = importlib.util.spec_from_file_location(model_class, model_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, model_class)


def _close(got, want):
    """Equal, floats up to rounding (the predictor averages, which may reorder additions)."""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_close, got, want))
    if isinstance(want, float):
        return isinstance(got, (int, float)) and abs(got - want) <= 1e-9 * max(1.0, abs(want))
    return got == want


def _predict(host, queries):
    return requests.post(f"http://{host}/predict", json={"queries": queries}, timeout=60)


@pytest.fixture(scope="module")
def zoo(admin_url, example_datasets):
    """Every model of the zoo trained (all jobs at once) and deployed: app -> what it needs."""
    if not os.environ.get("RAFIKI_PYTHON"):
        pytest.skip("RAFIKI_PYTHON (the interpreter workers run models with) is not set")
    if not os.path.isfile(os.path.join(os.path.dirname(admin_binary()), "rafiki-predictor")):
        pytest.skip("the rafiki-predictor binary is not built next to the admin")
    superadmin = client_for(admin_url)
    superadmin.login(*SUPERADMIN)
    (dev, _) = new_user(superadmin, admin_url, UserType.MODEL_DEVELOPER)
    zoo = {}
    for app, (task, file, model_class, queries, train_args) in ZOO.items():
        paths = example_datasets[task]
        train = dev.create_dataset(f"{app}-train", task, paths["train"])
        val = dev.create_dataset(f"{app}-val", task, paths["val"])
        model_file = str(EXAMPLE_MODELS / file)
        model = dev.create_model(app, task, model_file, model_class)
        dev.create_train_job(
            app,
            task,
            train["id"],
            val["id"],
            budget={"MODEL_TRIAL_COUNT": TRIALS},
            models=[model["id"]],
            train_args=train_args(paths["val"]),
        )
        zoo[app] = {
            "class": _load_class(model_file, model_class),
            "queries": queries(paths["val"]),
        }
    for app in ZOO:
        job = wait_for(
            lambda app=app: dev.get_train_job(app),
            lambda j: j["status"] not in ("STARTED", "RUNNING"),
            timeout=600,
        )
        trials = dev.get_trials_of_train_job(app)
        assert job["status"] == "STOPPED", (job, trials)
        assert [t["status"] for t in trials] == ["COMPLETED"] * TRIALS, trials
        [best] = dev.get_best_trials_of_train_job(app, max_count=1)
        zoo[app]["local"] = dev.load_trial_model(best["id"], zoo[app]["class"])
        zoo[app]["host"] = dev.create_inference_job(app)["predictor_host"]
    for app in ZOO:
        wait_for(
            lambda app=app: dev.get_running_inference_job(app),
            lambda j: j["status"] == "RUNNING",
            timeout=300,
        )
    yield zoo
    for app in ZOO:
        dev.stop_inference_job(app)


@pytest.mark.parametrize("app", list(ZOO))
def test_each_task_trains_deploys_and_answers_like_its_best_trial(zoo, app):
    model = zoo[app]
    # A worker lists itself as ready just before the predictor's next poll picks it up.
    deadline = time.monotonic() + 30
    while (answer := _predict(model["host"], model["queries"])).status_code == 503:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    want = model["local"].predict(model["queries"])
    got = answer.json()["predictions"]
    assert _close(got, want), (got, want)


@pytest.mark.parametrize("app", ["zoo-tabular-clf", "zoo-tabular-reg"])
def test_tabular_queries_keep_their_key_order(zoo, app):
    model = zoo[app]
    [query] = model["queries"][:1]
    assert list(query) != sorted(query), "the test needs features that are not in sorted order"
    answer = _predict(model["host"], [query])
    assert answer.status_code == 200, answer.text
    # The same values with the keys sorted: scikit-learn refuses columns out of training order,
    # so the model fails, and the predictor names the model's error.
    answer = _predict(model["host"], [dict(sorted(query.items()))])
    assert answer.status_code == 500, answer.text
    body = answer.json()
    assert body["error"] == "InternalServerError", body
    assert app in body["message"] and "feature names" in body["message"], body
