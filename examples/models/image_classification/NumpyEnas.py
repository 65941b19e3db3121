"""IMAGE_CLASSIFICATION with an architecture searched by ENAS, in plain numpy.

The network: a dense stem on the flattened grayscale pixels, then `BLOCKS` blocks, each taking
one earlier node (the stem or an earlier block) as input and applying one operation to it
(identity, or a dense layer with relu, tanh or sigmoid); the classifier reads the mean of the
blocks' outputs. `cell_archs` (an ArchKnob) chooses each block's input and operation.

Every block holds weights for every operation, whichever it uses: that whole set is the shared
parameters. A trial trains only the weights its architecture uses, and its `dump_parameters()`
returns all of them, so the next trial, given them as `shared_params`, starts from everything
the earlier trials learned. Rafiki's ENAS schedule drives it with its policies:

- TRAIN trials (`DOWNSCALE`, `EARLY_STOP`): one epoch of the scaled-down network from the
  worker's most recent shared parameters;
- EVAL trials (`DOWNSCALE`, `SKIP_TRAIN`, `QUICK_EVAL`): no training, accuracy on a quarter of
  the validation set, with the shared parameters as they are;
- FINAL_EVAL (`DOWNSCALE`, `SKIP_TRAIN`) on the whole validation set, and FINAL_TRAIN (every
  policy off): the full-size network trained from scratch for `epochs` epochs.

`SHARE_PARAMS` is declared so that the admin picks ENAS; parameters passed in are used whether
or not it is on, as they only come when the advisor asked for them.
"""

import argparse

import numpy as np

from rafiki.model import ArchKnob, BaseModel, FixedKnob, PolicyKnob, logger, utils
from rafiki.model.dev import test_model_class

BLOCKS = 4
OPS = ["identity", "relu", "tanh", "sigmoid"]
WEIGHTED_OPS = OPS[1:]
ACTIVATIONS = {
    "relu": (lambda a: np.maximum(a, 0.0), lambda a, out: (a > 0).astype(a.dtype)),
    "tanh": (np.tanh, lambda a, out: 1.0 - out * out),
    "sigmoid": (lambda a: 1.0 / (1.0 + np.exp(-a)), lambda a, out: out * (1.0 - out)),
}


class NumpyEnas(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            # Block b: its input (0 = the stem, i = block i - 1), then its operation.
            "cell_archs": ArchKnob(
                [items for b in range(BLOCKS) for items in (list(range(b + 1)), OPS)]
            ),
            "image_size": FixedKnob(8),
            "hidden": FixedKnob(32),
            "downscaled_hidden": FixedKnob(16),
            "epochs": FixedKnob(10),
            "learning_rate": FixedKnob(0.1),
            "batch_size": FixedKnob(32),
            "share_params": PolicyKnob("SHARE_PARAMS"),
            "downscale": PolicyKnob("DOWNSCALE"),
            "early_stop": PolicyKnob("EARLY_STOP"),
            "skip_train": PolicyKnob("SKIP_TRAIN"),
            "quick_eval": PolicyKnob("QUICK_EVAL"),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self._knobs = knobs
        arch = list(knobs["cell_archs"])
        self._blocks = [(int(arch[2 * b]), str(arch[2 * b + 1])) for b in range(BLOCKS)]
        self._hidden = knobs["downscaled_hidden"] if knobs["downscale"] else knobs["hidden"]
        self._params = None

    def train(self, dataset_path, shared_params=None, **train_args):
        dataset = utils.dataset.load_dataset_of_image_files(
            dataset_path, max_image_size=self._knobs["image_size"], mode="L"
        )
        (images, classes) = zip(*dataset)
        x = self._features(images)
        y = np.asarray(classes, dtype=np.int64)
        self._params = self._initial_params(x.shape[1], dataset.classes)
        if shared_params is not None:
            loaded = self._load_shared(shared_params)
            logger.log(f"Started from {loaded} of {len(self._weights())} shared weight arrays")
        if self._knobs["skip_train"]:
            return
        epochs = 1 if self._knobs["early_stop"] else self._knobs["epochs"]
        rng = np.random.default_rng(0)
        batch = self._knobs["batch_size"]
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                idx = order[start : start + batch]
                self._sgd_step(x[idx], y[idx])
            accuracy = float(np.mean(self._forward(x)[0].argmax(axis=1) == y))
            logger.log(f"Epoch {epoch + 1} of {epochs}", epoch=epoch, train_accuracy=accuracy)

    def evaluate(self, dataset_path):
        dataset = utils.dataset.load_dataset_of_image_files(
            dataset_path, max_image_size=int(self._params["image_size"]), mode="L"
        )
        (images, classes) = zip(*dataset)
        x = self._features(images)
        y = np.asarray(classes, dtype=np.int64)
        if self._knobs["quick_eval"]:
            keep = max(1, len(x) // 4)
            (x, y) = (x[:keep], y[:keep])
        return float(np.mean(self._forward(x)[0].argmax(axis=1) == y))

    def predict(self, queries):
        size = int(self._params["image_size"])
        images = utils.dataset.transform_images(queries, image_size=size, mode="L")
        logits = self._forward(self._features(images))[0]
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return (e / e.sum(axis=1, keepdims=True)).tolist()

    def dump_parameters(self):
        return dict(self._params)

    def load_parameters(self, params):
        self._params = dict(params)

    # The network.

    def _weights(self):
        return [k for k in self._params if k.endswith("_w") or k.endswith("_b")]

    def _initial_params(self, features, classes):
        rng = np.random.default_rng(1)
        h = self._hidden

        def dense(n_in, n_out):
            return rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_out)), np.zeros(n_out)

        params = {"image_size": self._knobs["image_size"], "num_classes": classes, "hidden": h}
        (params["stem_w"], params["stem_b"]) = dense(features, h)
        for b in range(BLOCKS):
            for op in WEIGHTED_OPS:
                (params[f"b{b}_{op}_w"], params[f"b{b}_{op}_b"]) = dense(h, h)
        (params["out_w"], params["out_b"]) = dense(h, classes)
        return params

    def _load_shared(self, shared):
        """Takes every shared weight array of the right shape; returns how many it took."""
        loaded = 0
        for key in self._weights():
            value = shared.get(key)
            if isinstance(value, np.ndarray) and value.shape == self._params[key].shape:
                self._params[key] = value.astype(np.float64)
                loaded += 1
        return loaded

    def _forward(self, x):
        p = self._params
        stem_a = x @ p["stem_w"] + p["stem_b"]
        nodes = [np.maximum(stem_a, 0.0)]
        cache = []
        for b, (source, op) in enumerate(self._blocks):
            inp = nodes[source]
            if op == "identity":
                out, a = inp, None
            else:
                a = inp @ p[f"b{b}_{op}_w"] + p[f"b{b}_{op}_b"]
                out = ACTIVATIONS[op][0](a)
            nodes.append(out)
            cache.append((a, out))
        feature = np.mean(nodes[1:], axis=0)
        logits = feature @ p["out_w"] + p["out_b"]
        return logits, (stem_a, nodes, cache, feature)

    def _sgd_step(self, x, y):
        """One step of softmax cross-entropy on the weights this architecture uses."""
        p = self._params
        (logits, (stem_a, nodes, cache, feature)) = self._forward(x)
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(len(y)), y] -= 1.0
        d_logits = probs / len(y)
        grads = {"out_w": feature.T @ d_logits, "out_b": d_logits.sum(axis=0)}
        d_feature = d_logits @ p["out_w"].T
        d_nodes = [np.zeros_like(n) for n in nodes]
        for i in range(1, len(nodes)):
            d_nodes[i] += d_feature / BLOCKS
        for b in reversed(range(BLOCKS)):
            (source, op) = self._blocks[b]
            if op == "identity":
                d_nodes[source] += d_nodes[b + 1]
                continue
            (a, out) = cache[b]
            d_a = d_nodes[b + 1] * ACTIVATIONS[op][1](a, out)
            grads[f"b{b}_{op}_w"] = nodes[source].T @ d_a
            grads[f"b{b}_{op}_b"] = d_a.sum(axis=0)
            d_nodes[source] += d_a @ p[f"b{b}_{op}_w"].T
        d_stem = d_nodes[0] * (stem_a > 0)
        grads["stem_w"] = x.T @ d_stem
        grads["stem_b"] = d_stem.sum(axis=0)
        rate = self._knobs["learning_rate"]
        for key, g in grads.items():
            p[key] = p[key] - rate * g

    @staticmethod
    def _features(images):
        return np.asarray([np.asarray(im, dtype=np.float64).ravel() / 255 for im in images])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/digits_train.zip")
    parser.add_argument("--val_path", default="data/digits_val.zip")
    args = parser.parse_args()
    val = utils.dataset.load_dataset_of_image_files(args.val_path, mode="RGB")
    test_model_class(
        model_file_path=__file__,
        model_class="NumpyEnas",
        task="IMAGE_CLASSIFICATION",
        dependencies={},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        queries=[val[i][0].tolist() for i in range(3)],
    )
