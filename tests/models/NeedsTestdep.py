"""A model that needs the test package `rafiki-testdep` (tests/deps/make_wheel.py builds its
wheels), which no worker interpreter has: it logs the version it imported in `train` and
answers it for every query."""

import rafiki_testdep
from rafiki.model import BaseModel, FixedKnob, logger


class NeedsDep(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k": FixedKnob(1)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.log(f"testdep {rafiki_testdep.VERSION}")

    def evaluate(self, dataset_path):
        return 1.0

    def predict(self, queries):
        return [rafiki_testdep.VERSION for _ in queries]

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
