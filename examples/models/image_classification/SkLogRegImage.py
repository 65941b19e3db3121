"""IMAGE_CLASSIFICATION with scikit-learn's logistic regression on flattened grayscale pixels.

The trained weights are saved as numpy arrays (no pickle) and prediction is plain numpy, so a
trial's parameters can be read by anything that reads docs/parameters.md.
"""

import argparse
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

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


class SkLogRegImage(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "C": FloatKnob(1e-3, 10.0, is_exp=True),
            "max_iter": IntegerKnob(50, 200),
            "fit_intercept": CategoricalKnob([True, False]),
            "image_size": FixedKnob(8),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self._knobs = knobs

    def train(self, dataset_path, shared_params=None, **train_args):
        dataset = utils.dataset.load_dataset_of_image_files(
            dataset_path, max_image_size=self._knobs["image_size"], mode="L"
        )
        (images, classes) = zip(*dataset)
        x = self._features(images)
        y = np.asarray(classes)
        clf = LogisticRegression(
            C=self._knobs["C"],
            max_iter=self._knobs["max_iter"],
            fit_intercept=self._knobs["fit_intercept"],
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
        self._image_size = dataset.image_size
        self._num_classes = dataset.classes
        self._coef = clf.coef_
        self._intercept = np.asarray(clf.intercept_, dtype=np.float64)
        self._labels = clf.classes_.astype(np.int64)
        accuracy = float(np.mean(self._predict_proba(x).argmax(axis=1) == y))
        logger.log(f"Trained on {dataset.size} images", train_accuracy=accuracy)

    def evaluate(self, dataset_path):
        dataset = utils.dataset.load_dataset_of_image_files(
            dataset_path, max_image_size=self._image_size, mode="L"
        )
        (images, classes) = zip(*dataset)
        probs = self._predict_proba(self._features(images))
        return float(np.mean(probs.argmax(axis=1) == np.asarray(classes)))

    def predict(self, queries):
        images = utils.dataset.transform_images(queries, image_size=self._image_size, mode="L")
        return self._predict_proba(self._features(images)).tolist()

    def dump_parameters(self):
        return {
            "coef": self._coef,
            "intercept": self._intercept,
            "labels": self._labels,
            "image_size": self._image_size,
            "num_classes": self._num_classes,
        }

    def load_parameters(self, params):
        self._coef = params["coef"]
        self._intercept = params["intercept"]
        self._labels = params["labels"]
        self._image_size = params["image_size"]
        self._num_classes = params["num_classes"]

    @staticmethod
    def _features(images):
        return np.asarray([np.asarray(x, dtype=np.float64).ravel() / 255 for x in images])

    def _predict_proba(self, x):
        z = x @ self._coef.T + self._intercept
        if z.shape[1] == 1:  # binary: one logit for the second label
            p = 1 / (1 + np.exp(-z[:, 0]))
            label_probs = np.stack([1 - p, p], axis=1)
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            label_probs = e / e.sum(axis=1, keepdims=True)
        # One probability per class 0..k-1, also for classes the train set happened to lack.
        probs = np.zeros((len(x), self._num_classes))
        probs[:, self._labels] = label_probs
        return probs


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/digits_train.zip")
    parser.add_argument("--val_path", default="data/digits_val.zip")
    args = parser.parse_args()
    val = utils.dataset.load_dataset_of_image_files(args.val_path, mode="RGB")
    test_model_class(
        model_file_path=__file__,
        model_class="SkLogRegImage",
        task="IMAGE_CLASSIFICATION",
        dependencies={ModelDependency.SCIKIT_LEARN: "1.3.0"},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        queries=[val[i][0].tolist() for i in range(3)],
    )
