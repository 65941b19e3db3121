"""TABULAR_REGRESSION with scikit-learn's ridge regression on (optionally) polynomial features.

train_args: `features` (list of column names) and `target` (the numeric column). The score is
the R^2 on the validation set. The coefficients are saved as numpy arrays; prediction is numpy.
"""

import argparse
import json

import numpy as np
from sklearn.linear_model import Ridge

from rafiki.constants import ModelDependency
from rafiki.model import (
    BaseModel,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    logger,
    utils,
)
from rafiki.model.dev import test_model_class


def _expand(x, degree):
    """The columns of `x`, plus every product of two columns when `degree` is 2."""
    if degree == 1:
        return x
    n = x.shape[1]
    pairs = [x[:, i] * x[:, j] for i in range(n) for j in range(i, n)]
    return np.column_stack([x, *pairs])


def _r2(y, pred):
    total = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / total) if total > 0 else 0.0


class SkRidgeReg(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "alpha": FloatKnob(1e-4, 10.0, is_exp=True),
            "degree": IntegerKnob(1, 2),
            "fit_intercept": CategoricalKnob([True, False]),
            "standardize": FixedKnob(True),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self._knobs = knobs

    def train(self, dataset_path, shared_params=None, features=None, target=None, **train_args):
        dataset = utils.dataset.load_dataset_of_tabular(dataset_path, features, target)
        (x, y) = dataset.get_xy()
        y = np.asarray(y, dtype=np.float64)
        self._features = dataset.features
        self._target = dataset.target
        if self._knobs["standardize"]:
            self._mean = x.mean(axis=0)
            self._std = np.where(x.std(axis=0) == 0, 1.0, x.std(axis=0))
        else:
            self._mean = np.zeros(x.shape[1])
            self._std = np.ones(x.shape[1])
        reg = Ridge(alpha=self._knobs["alpha"], fit_intercept=self._knobs["fit_intercept"])
        reg.fit(self._design(x), y)
        self._coef = np.asarray(reg.coef_, dtype=np.float64)
        self._intercept = float(reg.intercept_)
        logger.log(train_r2=_r2(y, self._predict(x)))

    def evaluate(self, dataset_path):
        dataset = utils.dataset.load_dataset_of_tabular(dataset_path, self._features, self._target)
        (x, y) = dataset.get_xy()
        return _r2(np.asarray(y, dtype=np.float64), self._predict(x))

    def predict(self, queries):
        x = np.asarray([[float(q[f]) for f in self._features] for q in queries], dtype=np.float64)
        return [float(v) for v in self._predict(x.reshape(len(queries), len(self._features)))]

    def dump_parameters(self):
        return {
            "coef": self._coef,
            "intercept": self._intercept,
            "mean": self._mean,
            "std": self._std,
            "features": json.dumps(self._features),
            "target": self._target,
        }

    def load_parameters(self, params):
        self._coef = params["coef"]
        self._intercept = params["intercept"]
        self._mean = params["mean"]
        self._std = params["std"]
        self._features = json.loads(params["features"])
        self._target = params["target"]

    def _design(self, x):
        return _expand((x - self._mean) / self._std, self._knobs["degree"])

    def _predict(self, x):
        return self._design(x) @ self._coef + self._intercept


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/diabetes_train.csv")
    parser.add_argument("--val_path", default="data/diabetes_val.csv")
    args = parser.parse_args()
    val = utils.dataset.load_dataset_of_tabular(args.val_path, target="target")
    test_model_class(
        model_file_path=__file__,
        model_class="SkRidgeReg",
        task="TABULAR_REGRESSION",
        dependencies={ModelDependency.SCIKIT_LEARN: "1.3.0"},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        train_args={"features": val.features, "target": "target"},
        queries=[{f: val[i][f] for f in val.features} for i in range(3)],
    )
