"""`BaseModel`: the class every Rafiki model subclasses (SDK.md "BaseModel")."""

from __future__ import annotations

import abc
from typing import Any, Union

import numpy as np

from .knob import BaseKnob

KnobConfig = dict[str, BaseKnob]
Knobs = dict[str, Any]
Params = dict[str, Union[str, int, float, np.ndarray]]


class BaseModel(abc.ABC):
    """The base of a Rafiki model.

    Rafiki creates one instance per trial with concrete knob values (`Model(**knobs)`), trains it
    on the train dataset, scores it on the validation dataset and saves what `dump_parameters()`
    returns. To serve predictions it creates an instance with the best trial's knobs, calls
    `load_parameters()` and then `predict()` with batches of queries.
    """

    def __init__(self, **knobs: Any):  # noqa: B027 - optional to override
        pass

    @staticmethod
    @abc.abstractmethod
    def get_knob_config() -> KnobConfig:
        """Returns the search space: `{knob name: knob}`."""
        raise NotImplementedError()

    @abc.abstractmethod
    def train(self, dataset_path: str, shared_params: Params | None = None, **train_args):
        """Trains this instance on the dataset at `dataset_path` (a local file)."""
        raise NotImplementedError()

    @abc.abstractmethod
    def evaluate(self, dataset_path: str) -> float:
        """Scores this trained instance on a validation dataset; higher is better."""
        raise NotImplementedError()

    @abc.abstractmethod
    def predict(self, queries: list[Any]) -> list[Any]:
        """Returns one JSON-serialisable prediction per query, in the same order."""
        raise NotImplementedError()

    @abc.abstractmethod
    def dump_parameters(self) -> Params:
        """Returns everything needed to restore this trained instance.

        Values are `str`, `int`, `float` or `numpy.ndarray` (see docs/parameters.md).
        """
        raise NotImplementedError()

    @abc.abstractmethod
    def load_parameters(self, params: Params):
        """Restores a trained instance from what `dump_parameters()` returned."""
        raise NotImplementedError()

    def destroy(self):  # noqa: B027 - optional to override
        """Frees this instance's resources; no other method is called afterwards."""

    @staticmethod  # noqa: B027 - optional to override
    def teardown():
        """Class-wide clean-up, after the last instance is destroyed."""
