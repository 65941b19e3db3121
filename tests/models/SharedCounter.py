"""A model for the parameter-sharing tests, which checks what it receives.

Its parameters are a lineage: `generation` (one more than that of the parameters it started
from, 1 from scratch), `origin` (a fresh id per trained instance), `score` and `weights`
(a float32 array of three `generation`s, so an array's dtype and shape cross too). `train`
checks the shared parameters are such a lineage and logs them as
`shared: {"generation": ..., "origin": ..., "score": ...}` (or `shared: null`), then its own
`origin`.

Knobs a test may set (the advisor leaves them at their defaults):
- `expect_generation`: train raises unless the shared generation is this (0: none expected);
  -1 checks nothing.
- `forbid_eval`: evaluate raises when called.
The score is `x / 10`.
"""

import json
import uuid

import numpy as np
from rafiki.model import BaseModel, FixedKnob, IntegerKnob, PolicyKnob, logger


class SharedCounter(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "x": IntegerKnob(1, 9),
            "expect_generation": FixedKnob(-1),
            "forbid_eval": FixedKnob(False),
            "share": PolicyKnob("SHARE_PARAMS"),
            "quick": PolicyKnob("EARLY_STOP"),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.x = knobs["x"]
        self.expect = knobs.get("expect_generation", -1)
        self.forbid_eval = knobs.get("forbid_eval", False)
        self.generation = 0
        self.origin = uuid.uuid4().hex

    def train(self, dataset_path, shared_params=None, **train_args):
        received = 0
        summary = None
        if shared_params is not None:
            received = shared_params["generation"]
            weights = shared_params["weights"]
            if not (
                isinstance(received, int)
                and isinstance(shared_params["origin"], str)
                and isinstance(weights, np.ndarray)
                and weights.dtype == np.float32
                and weights.shape == (3,)
                and np.all(weights == received)
            ):
                raise ValueError(f"not a lineage: {shared_params!r}")
            summary = {
                "generation": received,
                "origin": shared_params["origin"],
                "score": shared_params["score"],
            }
        logger.log(f"shared: {json.dumps(summary)}")
        if self.expect >= 0 and received != self.expect:
            raise ValueError(
                f"expected shared generation {self.expect}, got {received}"
            )
        self.generation = received + 1
        logger.log(f"origin: {self.origin}")

    def evaluate(self, dataset_path):
        if self.forbid_eval:
            raise RuntimeError("evaluate() must not be called for this trial")
        return self.x / 10

    def predict(self, queries):
        return [self.generation for _ in queries]

    def dump_parameters(self):
        return {
            "generation": self.generation,
            "origin": self.origin,
            "score": self.x / 10,
            "weights": np.full(3, self.generation, dtype=np.float32),
        }

    def load_parameters(self, params):
        self.generation = params["generation"]
        self.origin = params["origin"]
