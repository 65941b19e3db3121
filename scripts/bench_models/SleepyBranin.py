"""A model for scripts/bench-parallel.sh: each trial sleeps a fixed time (`train_args`
`seconds`, default 1) and scores -branin(x0, x1), so that tuning it is the Branin problem
(best score -0.397887) and a trial's cost is the sleep, not the CPU: parallel workers can be
measured on a small, busy machine.
"""

import math
import time

from rafiki.model import BaseModel, FloatKnob


def branin(x0, x1):
    """Branin-Hoo on [-5, 10] x [0, 15]; its three global minima are 0.397887."""
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x1 - b * x0**2 + c * x0 - 6) ** 2 + 10 * (1 - t) * math.cos(x0) + 10


class SleepyBranin(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x0": FloatKnob(-5.0, 10.0), "x1": FloatKnob(0.0, 15.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.x0 = knobs["x0"]
        self.x1 = knobs["x1"]

    def train(self, dataset_path, shared_params=None, **train_args):
        time.sleep(float(train_args.get("seconds", 1.0)))

    def evaluate(self, dataset_path):
        return -branin(self.x0, self.x1)

    def predict(self, queries):
        return [-branin(self.x0, self.x1) for _ in queries]

    def dump_parameters(self):
        return {"x0": self.x0, "x1": self.x1}

    def load_parameters(self, params):
        self.x0 = params["x0"]
        self.x1 = params["x1"]
