//! Model classes that tests of several features upload: sources written for what a test needs
//! a model to do (nothing, train slowly, fail to load).

/// A model class that loads but cannot train.
pub const TRIVIAL_MODEL: &str =
    "from rafiki.model import BaseModel\n\nclass Trivial(BaseModel):\n    pass\n";

/// A model that sleeps in `train` so a test can act while a trial runs.
pub const SLOW_MODEL: &str = r#"
import time
from rafiki.model import BaseModel, FloatKnob, logger

class Slow(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.x = knobs["x"]

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.log("training", x=self.x)
        time.sleep(float(train_args.get("seconds", 1.0)))

    def evaluate(self, dataset_path):
        return self.x

    def predict(self, queries):
        return [self.x for _ in queries]

    def dump_parameters(self):
        return {"x": self.x}

    def load_parameters(self, params):
        self.x = params["x"]
"#;

/// A model whose trained parameters cannot be loaded back.
pub const UNLOADABLE_MODEL: &str = r#"
from rafiki.model import BaseModel, FloatKnob

class Unloadable(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FloatKnob(0.0, 1.0)}

    def train(self, dataset_path, shared_params=None, **train_args):
        pass

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"w": 1}

    def load_parameters(self, params):
        raise ValueError("these parameters are from another world")
"#;
