"""A test model that reports the order of the keys of every JSON object it is given.

Its knobs are declared out of alphabetical order; `train` logs the order of its knobs and
train_args, and metrics logged out of alphabetical order; `predict` answers each query with
the list of the query's keys, in the order received, inside an object whose own keys are out
of alphabetical order. The admin's API tests and the Python client's end-to-end test run it to
show that key order survives every hop (docs/runtime-protocol.md, "Key order").
"""

import json

from rafiki.model import BaseModel, FixedKnob, FloatKnob, IntegerKnob, logger


class KeyOrder(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "zeta": FloatKnob(0.0, 1.0),
            "alpha": FixedKnob("a"),
            "mid": IntegerKnob(1, 3),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.knob_order = list(knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.log("knobs " + json.dumps(self.knob_order))
        logger.log("train_args " + json.dumps(list(train_args)))
        logger.log(zz=1.0, aa=2.0, mm=3.0)

    def evaluate(self, dataset_path):
        return 1.0

    def predict(self, queries):
        return [
            {
                "keys": list(q),
                "knobs": self.knob_order,
                "zebra": 1,
                "apple": 2,
                "mango": 3,
            }
            for q in queries
        ]

    def dump_parameters(self):
        return {"n": 1}

    def load_parameters(self, params):
        pass
