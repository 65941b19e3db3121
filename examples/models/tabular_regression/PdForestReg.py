"""TABULAR_REGRESSION in the style of Rafiki's XgbReg: pandas in, a pickled estimator out.

Like PdForestClf: train_args `features` and `target`, text columns label-encoded, and each
query made into a one-row DataFrame in the query's key order, which scikit-learn checks against
the order it was trained with. The score is the R^2 on the validation set.
"""

import argparse
import base64
import json
import pickle

import pandas as pd
from sklearn.ensemble import RandomForestRegressor

from rafiki.model import BaseModel, FloatKnob, IntegerKnob, logger
from rafiki.model.dev import test_model_class


class PdForestReg(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "n_estimators": IntegerKnob(5, 40),
            "max_depth": IntegerKnob(2, 8),
            "max_features": FloatKnob(0.3, 1.0),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.__dict__.update(knobs)

    def train(self, dataset_path, shared_params=None, features=None, target=None, **train_args):
        self._features = features
        self._target = target
        (x, y) = self._extract_xy(pd.read_csv(dataset_path))
        self._reg = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            max_features=self.max_features,
            random_state=0,
        )
        self._reg.fit(x, y)
        logger.log(f"Train R^2: {self._reg.score(x, y)}")

    def evaluate(self, dataset_path):
        (x, y) = self._extract_xy(pd.read_csv(dataset_path))
        return float(self._reg.score(x, y))

    def predict(self, queries):
        return [float(self._reg.predict(pd.DataFrame(q, index=[0]))[0]) for q in queries]

    def dump_parameters(self):
        return {
            "reg_base64": base64.b64encode(pickle.dumps(self._reg)).decode("utf-8"),
            "features": json.dumps(self._features),
            "target": self._target,
        }

    def load_parameters(self, params):
        self._reg = pickle.loads(base64.b64decode(params["reg_base64"]))
        self._features = json.loads(params["features"])
        self._target = params["target"]

    def _extract_xy(self, data):
        x = data.iloc[:, :-1] if self._features is None else data[self._features]
        y = data.iloc[:, -1] if self._target is None else data[self._target]
        return (x, y)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/diabetes_train.csv")
    parser.add_argument("--val_path", default="data/diabetes_val.csv")
    args = parser.parse_args()
    val = pd.read_csv(args.val_path)
    features = [c for c in val.columns if c != "target"]
    test_model_class(
        model_file_path=__file__,
        model_class="PdForestReg",
        task="TABULAR_REGRESSION",
        dependencies={},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        train_args={"features": features, "target": "target"},
        queries=[val.iloc[i][features].to_dict() for i in range(3)],
    )
