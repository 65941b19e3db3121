"""TABULAR_CLASSIFICATION with scikit-learn's multi-layer perceptron (one hidden layer).

train_args: `features` (list of column names) and `target` (the class column, ints 0..k-1).
The weights are saved as numpy arrays and prediction is plain numpy.
"""

import argparse
import json
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

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

_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "logistic": lambda z: 1 / (1 + np.exp(-z)),
}


class SkMlpClf(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "hidden_layer_size": IntegerKnob(8, 64),
            "alpha": FloatKnob(1e-5, 1e-1, is_exp=True),
            "activation": CategoricalKnob(["relu", "tanh", "logistic"]),
            "max_iter": FixedKnob(300),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self._knobs = knobs

    def train(self, dataset_path, shared_params=None, features=None, target=None, **train_args):
        dataset = utils.dataset.load_dataset_of_tabular(dataset_path, features, target)
        (x, y) = dataset.get_xy()
        y = np.asarray(y, dtype=np.int64)
        self._features = dataset.features
        self._target = dataset.target
        self._mean = x.mean(axis=0)
        self._std = np.where(x.std(axis=0) == 0, 1.0, x.std(axis=0))
        clf = MLPClassifier(
            hidden_layer_sizes=(self._knobs["hidden_layer_size"],),
            alpha=self._knobs["alpha"],
            activation=self._knobs["activation"],
            max_iter=self._knobs["max_iter"],
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(self._standardize(x), y)
        logger.define_loss_plot()
        for epoch, loss in enumerate(clf.loss_curve_[::25]):
            logger.log_loss(loss, epoch * 25)
        self._weights = [np.asarray(w, dtype=np.float64) for w in clf.coefs_]
        self._biases = [np.asarray(b, dtype=np.float64) for b in clf.intercepts_]
        self._labels = clf.classes_.astype(np.int64)
        self._num_classes = int(y.max()) + 1
        accuracy = float(np.mean(self._predict_proba(x).argmax(axis=1) == y))
        logger.log(train_accuracy=accuracy)

    def evaluate(self, dataset_path):
        dataset = utils.dataset.load_dataset_of_tabular(dataset_path, self._features, self._target)
        (x, y) = dataset.get_xy()
        return float(np.mean(self._predict_proba(x).argmax(axis=1) == np.asarray(y)))

    def predict(self, queries):
        x = np.asarray([[float(q[f]) for f in self._features] for q in queries], dtype=np.float64)
        return self._predict_proba(x.reshape(len(queries), len(self._features))).tolist()

    def dump_parameters(self):
        return {
            "w0": self._weights[0],
            "b0": self._biases[0],
            "w1": self._weights[1],
            "b1": self._biases[1],
            "mean": self._mean,
            "std": self._std,
            "labels": self._labels,
            "num_classes": self._num_classes,
            "features": json.dumps(self._features),
            "target": self._target,
        }

    def load_parameters(self, params):
        self._weights = [params["w0"], params["w1"]]
        self._biases = [params["b0"], params["b1"]]
        self._mean = params["mean"]
        self._std = params["std"]
        self._labels = params["labels"]
        self._num_classes = params["num_classes"]
        self._features = json.loads(params["features"])
        self._target = params["target"]

    def _standardize(self, x):
        return (x - self._mean) / self._std

    def _predict_proba(self, x):
        hidden = _ACTIVATIONS[self._knobs["activation"]](
            self._standardize(x) @ self._weights[0] + self._biases[0]
        )
        z = hidden @ self._weights[1] + self._biases[1]
        if z.shape[1] == 1:
            p = 1 / (1 + np.exp(-z[:, 0]))
            label_probs = np.stack([1 - p, p], axis=1)
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            label_probs = e / e.sum(axis=1, keepdims=True)
        probs = np.zeros((len(x), self._num_classes))
        probs[:, self._labels] = label_probs
        return probs


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/wine_train.csv")
    parser.add_argument("--val_path", default="data/wine_val.csv")
    args = parser.parse_args()
    val = utils.dataset.load_dataset_of_tabular(args.val_path, target="target")
    test_model_class(
        model_file_path=__file__,
        model_class="SkMlpClf",
        task="TABULAR_CLASSIFICATION",
        dependencies={ModelDependency.SCIKIT_LEARN: "1.3.0"},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        train_args={"features": val.features, "target": "target"},
        queries=[{f: val[i][f] for f in val.features} for i in range(3)],
    )
