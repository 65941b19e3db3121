"""TABULAR_CLASSIFICATION in the style of Rafiki's XgbClf: pandas in, a pickled estimator out.

The CSV is read with pandas; train_args `features` (column names, in the order the model is
trained with) and `target` pick the columns, and text columns are label-encoded. `predict` turns
each query, a `{feature: value}` object, into a one-row DataFrame *in the query's key order*, as
Rafiki's XgbClf does, and scikit-learn refuses columns that are not in the order it was trained
with: the model only answers when every part of Rafiki keeps the caller's key order. The score
is the accuracy on the validation set; the estimator is saved pickled, as Rafiki's examples do.
"""

import argparse
import base64
import json
import pickle

import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from rafiki.model import BaseModel, CategoricalKnob, IntegerKnob, logger
from rafiki.model.dev import test_model_class


class PdForestClf(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "n_estimators": IntegerKnob(5, 40),
            "max_depth": IntegerKnob(2, 8),
            "criterion": CategoricalKnob(["gini", "entropy"]),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.__dict__.update(knobs)

    def train(self, dataset_path, shared_params=None, features=None, target=None, **train_args):
        self._features = features
        self._target = target
        (x, y) = self._extract_xy(pd.read_csv(dataset_path))
        x = self._encode(x, fit=True)
        self._clf = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            criterion=self.criterion,
            random_state=0,
        )
        self._clf.fit(x, y)
        logger.log(f"Train accuracy: {self._clf.score(x, y)}")

    def evaluate(self, dataset_path):
        (x, y) = self._extract_xy(pd.read_csv(dataset_path))
        return float(self._clf.score(self._encode(x), y))

    def predict(self, queries):
        frames = [self._encode(pd.DataFrame(query, index=[0])) for query in queries]
        return [self._clf.predict_proba(frame).tolist()[0] for frame in frames]

    def dump_parameters(self):
        return {
            "clf_base64": base64.b64encode(pickle.dumps(self._clf)).decode("utf-8"),
            "encoding": json.dumps(self._encoding),
            "features": json.dumps(self._features),
            "target": self._target,
        }

    def load_parameters(self, params):
        self._clf = pickle.loads(base64.b64decode(params["clf_base64"]))
        self._encoding = json.loads(params["encoding"])
        self._features = json.loads(params["features"])
        self._target = params["target"]

    def _extract_xy(self, data):
        x = data.iloc[:, :-1] if self._features is None else data[self._features]
        y = data.iloc[:, -1] if self._target is None else data[self._target]
        return (x, y)

    def _encode(self, x, fit=False):
        """Text columns as category codes (learnt at train time); numbers as they are."""
        if fit:
            self._encoding = {
                col: {cat: n for (n, cat) in enumerate(x[col].astype("category").cat.categories)}
                for col in x.columns
                if x[col].dtype == "object"
            }
        x = x.copy()
        for col, codes in self._encoding.items():
            x[col] = x[col].map(codes)
        return x


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/wine_train.csv")
    parser.add_argument("--val_path", default="data/wine_val.csv")
    args = parser.parse_args()
    val = pd.read_csv(args.val_path)
    features = [c for c in val.columns if c != "target"]
    test_model_class(
        model_file_path=__file__,
        model_class="PdForestClf",
        task="TABULAR_CLASSIFICATION",
        dependencies={},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        train_args={"features": features, "target": "target"},
        queries=[val.iloc[i][features].to_dict() for i in range(3)],
    )
