"""Checks on what a model's methods return, shared by the runtime and `rafiki.model.dev`.

Each raises `InvalidReturnError` with a message that names the method and says what is wrong.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


class InvalidReturnError(Exception):
    """A model method returned a value that breaks the SDK contract."""


def check_score(value: Any, method: str = "evaluate()") -> float:
    """A score must be a finite real number (numpy scalars are accepted)."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidReturnError(f"{method} must return a float score, got a bool ({value!r})")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if not isinstance(value, numbers.Real):
        raise InvalidReturnError(
            f"{method} must return a float score, got {type(value).__name__} ({_short(value)})"
        )
    score = float(value)
    if not math.isfinite(score):
        raise InvalidReturnError(f"{method} must return a finite score, got {score}")
    return score


def to_json_value(value: Any, where: str = "value") -> Any:
    """`value` as plain JSON data (dict, list, str, int, float, bool, None).

    numpy arrays and scalars and tuples are turned into their list/number equivalents; anything
    else that JSON cannot hold (objects, sets, bytes, NaN, non-str keys, ...) is an error.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return to_json_value(value.item(), where)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidReturnError(f"{where} is {value}, which JSON cannot hold")
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OV":
            return [to_json_value(x, f"{where}[{i}]") for (i, x) in enumerate(value.tolist())]
        return to_json_value(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [to_json_value(x, f"{where}[{i}]") for (i, x) in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidReturnError(f"{where} has a non-string key {k!r}")
            out[k] = to_json_value(v, f"{where}[{k!r}]")
        return out
    raise InvalidReturnError(
        f"{where} is a {type(value).__name__} ({_short(value)}), which is not JSON-serialisable"
    )


def check_predictions(predictions: Any, num_queries: int) -> list[Any]:
    """`predict()` must return a list with one JSON-serialisable prediction per query."""
    if isinstance(predictions, np.ndarray):
        predictions = list(predictions)
    if isinstance(predictions, tuple):
        predictions = list(predictions)
    if not isinstance(predictions, list):
        raise InvalidReturnError(
            f"predict() must return a list, got {type(predictions).__name__} "
            f"({_short(predictions)})"
        )
    if len(predictions) != num_queries:
        raise InvalidReturnError(
            f"predict() must return one prediction per query: got {len(predictions)} "
            f"predictions for {num_queries} queries"
        )
    return [to_json_value(p, f"prediction #{i}") for (i, p) in enumerate(predictions)]


def check_knobs_result(knob_config: Any):
    """`get_knob_config()` must return `{name: Knob}`."""
    from .knob import InvalidKnobError, check_knob_config

    try:
        return check_knob_config(knob_config)
    except InvalidKnobError as e:
        raise InvalidReturnError(f"get_knob_config() returned a bad knob config: {e}") from None


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
