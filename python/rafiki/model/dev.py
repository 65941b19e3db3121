"""Local testing of a model class: a short tuning and a prediction, with no server.

`test_model_class` walks a model through what Rafiki does with it — load the file, read the knob
config and send it as JSON, run a few trials with random knobs (train, evaluate, dump and encode
the parameters), reload the best trial from its encoded parameters as an inference worker would,
and predict — and stops at the first thing that breaks, with a `ModelTestError` that names the
step and the cause.
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import time
import traceback
from typing import Any

from rafiki.constants import BudgetOption, TaskType
from rafiki.params import ParamsError, decode_params, encode_params

from .checks import InvalidReturnError, check_knobs_result, check_predictions, check_score
from .knob import (
    InvalidKnobError,
    PolicyKnob,
    deserialize_knob_config,
    sample_knobs,
    serialize_knob_config,
)
from .model import BaseModel
from .utils import InvalidModelClassError, load_model_class

DEFAULT_TRIAL_COUNT = 2


class ModelTestError(Exception):
    """What `test_model_class` found wrong with a model; `step` names where it happened."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step


def inform_user(msg: str):
    print(f"\033[94m{msg}\033[0m", flush=True)


def warn_user(msg: str):
    print(f"\033[93mWARNING: {msg}\033[0m", flush=True)


def _header(msg: str):
    print(f"\n----- {msg} -----", flush=True)


def _where(exc: BaseException) -> str:
    """The innermost frame of a traceback, as ` (at file:line in function)`."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno} in {last.name})"


def _call(step: str, fn, *args, **kwargs):
    """Calls a model method; any exception becomes a `ModelTestError` naming `step`."""
    try:
        return fn(*args, **kwargs)
    except ModelTestError:
        raise
    except Exception as e:
        raise ModelTestError(step, f"raised {type(e).__name__}: {e}{_where(e)}") from e


def _check_dependencies(dependencies: Any):
    if dependencies is None:
        return
    if not isinstance(dependencies, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for (k, v) in dependencies.items()
    ):
        raise ModelTestError(
            "dependencies", "`dependencies` must be a dict of package name to version (str)"
        )
    for dep, wanted in dependencies.items():
        try:
            installed = importlib.metadata.version(dep)
        except importlib.metadata.PackageNotFoundError:
            warn_user(f"dependency `{dep}` ({wanted}) is not installed here")
            continue
        if installed != wanted:
            warn_user(f"dependency `{dep}`: {installed} is installed, the model asks for {wanted}")


def _check_model_class(clazz: type[BaseModel]):
    name = clazz.__name__
    abstract = sorted(getattr(clazz, "__abstractmethods__", ()))
    if abstract:
        raise ModelTestError(
            "model class", f"`{name}` does not implement {', '.join(m + '()' for m in abstract)}"
        )
    raw = None
    for klass in clazz.__mro__:
        if "get_knob_config" in vars(klass):
            raw = vars(klass)["get_knob_config"]
            break
    if not isinstance(raw, staticmethod):
        raise ModelTestError(
            "model class",
            f"`{name}.get_knob_config` must be a @staticmethod (it is called on "
            "the class, before any instance exists)",
        )


def _check_prediction_format(task: str, queries: list[Any], predictions: list[Any]):
    """Checks predictions against the documented task formats (SDK.md "Task formats")."""

    def fail(i, msg):
        raise ModelTestError("predict()", f"prediction #{i} for task {task}: {msg}")

    def is_number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if task in (TaskType.IMAGE_CLASSIFICATION, TaskType.TABULAR_CLASSIFICATION):
        sizes = set()
        for i, p in enumerate(predictions):
            if not isinstance(p, list) or not p or not all(is_number(x) for x in p):
                fail(i, f"must be a list of class probabilities, got {p!r:.80}")
            if any(x < -1e-6 or x > 1 + 1e-6 for x in p):
                fail(i, "probabilities must lie in [0, 1]")
            if abs(sum(p) - 1) > 1e-3:
                warn_user(f"prediction #{i}: the class probabilities sum to {sum(p)}, not 1")
            sizes.add(len(p))
        if len(sizes) > 1:
            raise ModelTestError(
                "predict()", f"every prediction must have as many probabilities, got {sizes}"
            )
    elif task == TaskType.TABULAR_REGRESSION:
        for i, p in enumerate(predictions):
            if not is_number(p):
                fail(i, f"must be a number, got {p!r:.80}")
    elif task == TaskType.POS_TAGGING:
        for i, (q, p) in enumerate(zip(queries, predictions)):
            if not isinstance(p, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in p
            ):
                fail(i, f"must be a list of int tags, got {p!r:.80}")
            if isinstance(q, list) and len(p) != len(q):
                fail(i, f"has {len(p)} tags for {len(q)} tokens")
    elif task == TaskType.SPEECH_RECOGNITION:
        for i, p in enumerate(predictions):
            if not isinstance(p, str):
                fail(i, f"must be a transcript (str), got {type(p).__name__}")


def _trial_plan(budget: dict[str, Any] | None):
    budget = dict(budget or {})
    # GPU_COUNT and the admin's CPU_WORKERS_PER_MODEL (not Rafiki's, so not a BudgetOption) say
    # how many workers the admin runs; here trials run one at a time, so they are ignored.
    unknown = set(budget) - {
        BudgetOption.MODEL_TRIAL_COUNT,
        BudgetOption.TIME_HOURS,
        BudgetOption.GPU_COUNT,
        "CPU_WORKERS_PER_MODEL",
    }
    if unknown:
        raise ModelTestError("budget", f"unknown budget option(s) {', '.join(sorted(unknown))}")
    count = budget.get(BudgetOption.MODEL_TRIAL_COUNT, -1)
    hours = budget.get(BudgetOption.TIME_HOURS)
    if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != -1):
        raise ModelTestError("budget", "MODEL_TRIAL_COUNT must be a positive int or -1")
    if hours is not None and (not isinstance(hours, (int, float)) or hours <= 0):
        raise ModelTestError("budget", "TIME_HOURS must be a positive number")
    if count == -1 and hours is None:
        count = DEFAULT_TRIAL_COUNT
    return (count, hours)


def tune_model(
    py_model_class: type[BaseModel],
    train_dataset_path: str,
    val_dataset_path: str,
    test_dataset_path: str | None = None,
    budget: dict[str, Any] | None = None,
    train_args: dict[str, Any] | None = None,
    seed: int | None = None,
) -> tuple[dict[str, Any] | None, float | None, dict[str, Any] | None]:
    """Runs a few trials with random knobs; returns `(best knobs, best score, best params)`.

    The budget: `MODEL_TRIAL_COUNT` trials (default 2), or as many as fit in `TIME_HOURS` (soft:
    a trial that has started finishes). `best params` are the decoded parameters of the best
    trial, as an inference worker would receive them.
    """
    name = py_model_class.__name__
    (trial_count, hours) = _trial_plan(budget)
    train_args = dict(train_args or {})
    if not all(isinstance(k, str) for k in train_args):
        raise ModelTestError("train_args", "`train_args` keys must be strings")
    try:
        json.dumps(train_args, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ModelTestError("train_args", f"`train_args` must be JSON-serialisable: {e}") from e

    _header("Checking the knob config")
    knob_config = _call(f"{name}.get_knob_config()", py_model_class.get_knob_config)
    try:
        check_knobs_result(knob_config)
        wire = serialize_knob_config(knob_config)
        if deserialize_knob_config(wire) != knob_config:
            raise InvalidKnobError("the knob config changes in its JSON round trip")
    except (InvalidReturnError, InvalidKnobError) as e:
        raise ModelTestError(f"{name}.get_knob_config()", str(e)) from e
    print(f"Knob config (as sent to the server): {wire}")

    rng = random.Random(seed)
    started = time.time()
    deadline = started + hours * 3600 if hours else None
    best: tuple[float, dict[str, Any], dict[str, Any]] | None = None
    trial_no = 0
    while True:
        if trial_count != -1 and trial_no >= trial_count:
            break
        if deadline is not None and trial_no > 0 and time.time() >= deadline:
            inform_user("The time budget is spent")
            break
        trial_no += 1
        knobs = sample_knobs(knob_config, rng)
        if trial_no == 1:
            # The first trial runs with every policy off, as an advisor's first proposal does.
            knobs.update({k: False for (k, v) in knob_config.items() if isinstance(v, PolicyKnob)})
        # Proposals reach the worker as JSON.
        knobs = json.loads(json.dumps(knobs))
        _header(f"Trial #{trial_no}")
        print(f"Knobs: {knobs}")
        shares = any(
            isinstance(knob, PolicyKnob) and knob.policy == "SHARE_PARAMS" and knobs[k]
            for (k, knob) in knob_config.items()
        )
        shared_params = best[2] if (shares and best is not None) else None
        if shared_params is not None:
            print("Passing the best trial's parameters as `shared_params`")

        inst = _call(f"{name}(**knobs)", py_model_class, **knobs)
        _call(
            f"{name}.train()",
            inst.train,
            train_dataset_path,
            shared_params=shared_params,
            **train_args,
        )
        raw_score = _call(f"{name}.evaluate()", inst.evaluate, val_dataset_path)
        try:
            score = check_score(raw_score, f"{name}.evaluate()")
        except InvalidReturnError as e:
            raise ModelTestError(f"{name}.evaluate()", str(e)) from e
        print(f"Score on the validation dataset: {score}")
        raw_params = _call(f"{name}.dump_parameters()", inst.dump_parameters)
        try:
            encoded = encode_params(raw_params)
            params = decode_params(encoded)
        except ParamsError as e:
            raise ModelTestError(
                f"{name}.dump_parameters()", f"the parameters cannot be saved: {e}"
            ) from e
        print(f"Parameters: {len(params)} entries, {len(encoded)} bytes encoded")
        if best is None or score > best[0]:
            best = (score, knobs, params)
            inform_user(f"Best trial so far: #{trial_no} with score {score}")
        _call(f"{name}.destroy()", inst.destroy)

    print(f"Tuning took {time.time() - started:.1f}s for {trial_no} trial(s)")
    if best is None:
        return (None, None, None)
    (best_score, best_knobs, best_params) = best
    inform_user(f"Best knobs {best_knobs} with score {best_score}")
    return (best_knobs, best_score, best_params)


def make_predictions(
    queries: list[Any],
    task: str,
    py_model_class: type[BaseModel],
    knobs: dict[str, Any],
    params: dict[str, Any],
) -> tuple[list[Any], BaseModel]:
    """Loads a trained instance from `knobs` and `params` and predicts `queries`."""
    name = py_model_class.__name__
    inst = _call(f"{name}(**knobs)", py_model_class, **knobs)
    _call(f"{name}.load_parameters()", inst.load_parameters, params)
    if not isinstance(queries, list):
        raise ModelTestError("queries", "`queries` must be a list")
    raw = _call(f"{name}.predict()", inst.predict, queries)
    try:
        predictions = check_predictions(raw, len(queries))
    except InvalidReturnError as e:
        raise ModelTestError(f"{name}.predict()", str(e)) from e
    _check_prediction_format(task, queries, predictions)
    return (predictions, inst)


def test_model_class(
    model_file_path: str,
    model_class: str | type[BaseModel],
    task: str,
    dependencies: dict[str, str] | None,
    train_dataset_path: str,
    val_dataset_path: str,
    test_dataset_path: str | None = None,
    budget: dict[str, Any] | None = None,
    train_args: dict[str, Any] | None = None,
    queries: list[Any] | None = None,
) -> tuple[list[Any] | None, BaseModel | None]:
    """Tests a model class locally: a short tuning, then a prediction with the best trial.

    Returns `(predictions, model)`: the predictions for `queries` (None without queries) and the
    best trial's model, loaded from its encoded parameters. Raises `ModelTestError` at the first
    problem, naming the step (e.g. `MyModel.evaluate()`) and what is wrong.
    """
    _header("Checking the model's dependencies")
    _check_dependencies(dependencies)

    _header("Loading the model class")
    if isinstance(model_class, type):
        py_model_class = model_class
    else:
        try:
            py_model_class = load_model_class(model_file_path, model_class)
        except InvalidModelClassError as e:
            raise ModelTestError("loading the model class", str(e)) from e
    _check_model_class(py_model_class)
    name = py_model_class.__name__

    (best_knobs, best_score, best_params) = tune_model(
        py_model_class,
        train_dataset_path,
        val_dataset_path,
        budget=budget,
        train_args=train_args,
    )
    if best_knobs is None:
        raise ModelTestError("tuning", "no trial ran")

    _header("Reloading the best trial from its saved parameters")
    inst = _call(f"{name}(**knobs)", py_model_class, **best_knobs)
    _call(f"{name}.load_parameters()", inst.load_parameters, best_params)
    step = f"{name}.evaluate() after load_parameters()"
    raw_score = _call(step, inst.evaluate, val_dataset_path)
    try:
        reloaded_score = check_score(raw_score, f"{name}.evaluate()")
    except InvalidReturnError as e:
        raise ModelTestError(step, str(e)) from e
    if abs(reloaded_score - best_score) > 1e-6 * max(1.0, abs(best_score)):
        warn_user(
            f"after load_parameters() the score is {reloaded_score}, not {best_score}: "
            "dump_parameters() may not capture the whole trained state"
        )
    if test_dataset_path is not None:
        test_score = _call(f"{name}.evaluate()", inst.evaluate, test_dataset_path)
        inform_user(f"Score on the test dataset: {test_score}")

    predictions = None
    if queries is not None:
        _header("Predicting with the best trial")
        _call(f"{name}.destroy()", inst.destroy)
        (predictions, inst) = make_predictions(
            queries, task, py_model_class, best_knobs, best_params
        )
        print(f"Predictions: {json.dumps(predictions)[:500]}")

    _call(f"{name}.teardown()", py_model_class.teardown)
    inform_user("No errors encountered while testing the model!")
    return (predictions, inst)


# pytest would collect `test_model_class` from modules that import it; it is not a test.
test_model_class.__test__ = False  # type: ignore[attr-defined]
